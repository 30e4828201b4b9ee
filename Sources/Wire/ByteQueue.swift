/// A byte queue of a fixed capacity (changed only by `resize(to:)`, never by writes).
///
/// Bytes are appended at `tail` and consumed from `head`:
/// `0 <= head <= tail <= capacity`. When the free space at the end runs out,
/// `writable()` moves the unread bytes to the front (at most `count` bytes),
/// so the free space is always one contiguous region. Two-phase API in the
/// style of BearSSL's `_buf`/`_ack`: ask for room, write into it, `commit(n)`;
/// look at `readable`, use some of it, `consume(n)`.
///
/// A queue made with a `BlockCache` can `park()` while empty: its storage goes back to
/// the cache and is taken again when bytes are written (an idle tunnel then holds no
/// buffer memory). Without a cache the storage is allocated once and kept.
///
/// Exactly one owner writes and one reads; it is not thread-safe (nothing in
/// agent is).
public final class ByteQueue {
    /// Fixed unless the owner calls `resize(to:)` (a stream window that follows the path).
    public private(set) var capacity: Int
    /// The storage; nil while parked (then the queue is empty).
    @usableFromInline var storage: UnsafeMutableRawPointer?
    let cache: BlockCache?
    /// Bytes of the storage written since it was taken (wiped up to here when it goes back).
    var written = 0
    /// Index of the first unread byte.
    public private(set) var head = 0
    /// Index one past the last written byte.
    public private(set) var tail = 0

    public init(capacity: Int, cache: BlockCache? = nil) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.cache = cache
        if cache == nil { storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16) }
    }

    deinit {
        // Wipe: these buffers carry plaintext and key-dependent data.
        guard let p = storage else { return }
        if let c = cache {
            c.give(p, size: capacity, written: max(written, tail))
        } else {
            p.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
            p.deallocate()
        }
    }

    /// True while the storage is back in the cache.
    public var isParked: Bool { storage == nil }

    /// Gives the storage back to the cache if the queue is empty and has one; true if parked.
    @discardableResult
    public func park() -> Bool {
        guard let c = cache, let p = storage else { return storage == nil }
        guard head == tail else { return false }
        c.give(p, size: capacity, written: max(written, tail))
        storage = nil
        written = 0
        head = 0
        tail = 0
        return true
    }

    /// Changes the capacity (at least `count`), keeping the unread bytes. The old
    /// storage is wiped and freed (or given back to the cache); a parked queue only
    /// takes the new size when it is next written.
    public func resize(to newCapacity: Int) {
        precondition(newCapacity >= count && newCapacity > 0)
        if newCapacity == capacity { return }
        guard let old = storage else {
            capacity = newCapacity
            return
        }
        let n = count
        let p = cache?.take(newCapacity) ?? UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        if n > 0 { p.copyMemory(from: old + head, byteCount: n) }
        let used = max(written, tail)
        if let c = cache {
            c.give(old, size: capacity, written: used)
        } else {
            old.initializeMemory(as: UInt8.self, repeating: 0, count: used)
            old.deallocate()
        }
        storage = p
        capacity = newCapacity
        head = 0
        tail = n
        written = n
    }

    /// The storage, taken from the cache if parked.
    @usableFromInline var base: UnsafeMutableRawPointer {
        if let p = storage { return p }
        return unpark()
    }

    @inline(never)
    func unpark() -> UnsafeMutableRawPointer {
        let p = cache!.take(capacity)
        storage = p
        return p
    }

    /// Unread bytes.
    @inlinable public var count: Int { tail - head }
    @inlinable public var isEmpty: Bool { tail == head }
    /// Bytes that can still be appended (after compaction).
    @inlinable public var freeSpace: Int { capacity - (tail - head) }

    /// The unread bytes. Valid until the next mutating call.
    @inlinable public var readable: UnsafeRawBufferPointer {
        guard let p = storage else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: p + head, count: tail - head)
    }

    /// Marks `n` unread bytes as used.
    public func consume(_ n: Int) {
        precondition(n >= 0 && n <= count)
        head += n
        if head == tail {
            if tail > written { written = tail }
            head = 0
            tail = 0
        }
    }

    /// Contiguous free space to write into (compacts first when needed).
    public func writable() -> UnsafeMutableRawBufferPointer {
        if tail == capacity && head > 0 { compact() }
        return UnsafeMutableRawBufferPointer(start: base + tail, count: capacity - tail)
    }

    /// Free space of at least `minimum` bytes if the queue has that much room in all
    /// (compacting when the tail end is too short); otherwise what `writable()` gives.
    public func writable(minimum: Int) -> UnsafeMutableRawBufferPointer {
        if capacity - tail < minimum && head > 0 { compact() }
        return UnsafeMutableRawBufferPointer(start: base + tail, count: capacity - tail)
    }

    /// Marks `n` bytes written into `writable()` as readable.
    public func commit(_ n: Int) {
        precondition(n >= 0 && tail + n <= capacity)
        tail += n
    }

    /// Copies in as many bytes as fit; returns how many.
    @discardableResult
    public func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        let n = min(bytes.count, freeSpace)
        if n == 0 { return 0 }
        let w = writable(minimum: n)
        w.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: n)
        commit(n)
        return n
    }

    @discardableResult
    public func append(_ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Copies out up to `into.count` unread bytes and consumes them.
    public func read(into: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(into.count, count)
        if n == 0 { return 0 }
        into.baseAddress!.copyMemory(from: base + head, byteCount: n)
        consume(n)
        return n
    }

    /// The unread bytes as an array (tests and small control payloads).
    public func peekAll() -> [UInt8] { Array(readable) }

    public func removeAll() {
        if tail > written { written = tail }
        head = 0
        tail = 0
    }

    func compact() {
        if tail > written { written = tail }
        let n = tail - head
        if head > 0 && n > 0 { (base).copyMemory(from: base + head, byteCount: n) }
        head = 0
        tail = n
    }
}
