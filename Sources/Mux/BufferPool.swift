import Wire

/// Stream receive buffers from a pool with a hard cap and a memory budget.
///
/// Every receive buffer of every stream comes from here, so the memory a role
/// can spend on streams is at most `budget` bytes by construction (by default
/// `limit x bufferSize`, the fixed windows of before). A stream starts with
/// `bufferSize` and may grow up to `maxBufferSize` while its path needs it
/// (`Mux` decides, see `MuxLimits.windowIdleMs`); growth takes at most half of
/// the budget still free and leaves room for one more base window, so streams
/// that grow later and new streams find room. When a new stream cannot have `bufferSize` it is refused
/// (`Reason.noResources`); a stream never grows because a peer asked for more.
///
/// Buffers hold no memory while empty and parked (they are made parked and the
/// multiplexer parks a stream's buffer when it idles): a relay sized for 4,096
/// streams holds only the buffers that carry data. The budget counts what is
/// promised (the capacity), which is the worst case.
public final class BufferPool {
    public let bufferSize: Int
    public let maxBufferSize: Int
    public let limit: Int
    public let budget: Int
    public let keepSpare: Int
    public private(set) var inUse = 0
    /// Bytes of capacity of the buffers in use (at most `budget`).
    public private(set) var committed = 0
    var spare: [ByteQueue] = []
    /// Storage of parked buffers goes back to the allocator (nothing is kept).
    let cache = BlockCache(keepPerSize: 0)

    /// `budget`: bytes all buffers may hold at once (default `limit x bufferSize`).
    public init(bufferSize: Int, limit: Int, maxBufferSize: Int? = nil, budget: Int? = nil, keepSpare: Int = 8) {
        precondition(bufferSize > 0 && limit >= 0)
        self.bufferSize = bufferSize
        self.limit = limit
        self.maxBufferSize = max(bufferSize, maxBufferSize ?? bufferSize)
        self.budget = budget ?? BufferPool.product(limit, bufferSize)
        self.keepSpare = keepSpare
    }

    /// a x b, or Int.max if that overflows (32-bit targets).
    public static func product(_ a: Int, _ b: Int) -> Int {
        let (p, o) = a.multipliedReportingOverflow(by: b)
        return o ? Int.max : p
    }

    /// Buffers that can still be taken.
    public var available: Int { max(0, min(limit - inUse, (budget - committed) / bufferSize)) }

    /// A buffer, or nil when `limit` buffers are in use or the budget has no room for one.
    public func take() -> ByteQueue? {
        guard inUse < limit, budget - committed >= bufferSize else { return nil }
        inUse += 1
        committed += bufferSize
        if let q = spare.popLast() { return q }
        return ByteQueue(capacity: bufferSize, cache: cache)
    }

    /// Grows a buffer taken from this pool to `size` (at most `maxBufferSize`) if
    /// the growth fits in half of the budget still free and leaves room for one more
    /// stream's base window; false if not.
    public func grow(_ q: ByteQueue, to size: Int) -> Bool {
        let delta = size - q.capacity
        let free = budget - committed
        let reserve = inUse < limit ? bufferSize : 0
        guard delta > 0, size <= maxBufferSize, delta <= free / 2, delta <= free - reserve else { return false }
        q.resize(to: size)
        committed += delta
        return true
    }

    /// Shrinks a buffer taken from this pool to `size` (at least `bufferSize` and
    /// what it holds).
    public func shrink(_ q: ByteQueue, to size: Int) {
        let target = max(size, bufferSize, q.count)
        guard target < q.capacity else { return }
        committed -= q.capacity - target
        q.park()   // when empty: nothing to copy, the smaller storage is taken when data comes
        q.resize(to: target)
    }

    /// Returns a buffer taken from this pool. Its contents are discarded.
    public func give(_ q: ByteQueue) {
        precondition(inUse > 0 && q.capacity >= bufferSize)
        inUse -= 1
        committed -= q.capacity
        q.removeAll()
        q.park()
        if q.capacity != bufferSize { q.resize(to: bufferSize) }
        if spare.count < keepSpare { spare.append(q) }
    }
}
