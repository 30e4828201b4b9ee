/// Spare memory blocks for buffers that are only needed while data moves.
///
/// A relay holds tens of thousands of tunnels that are idle almost all the time. Their
/// queues and TLS record buffers are empty between heartbeats, so they hand their storage
/// back here (`ByteQueue.park()`, `TLSSession.park()`) and take a block again when bytes
/// arrive. Spare blocks are kept per size (a list threaded through the blocks' first
/// word), up to `keepPerSize` of each; the rest go back to the allocator. A block is
/// wiped, as far as it was written, before it is kept or freed.
///
/// One owner (one loop); not thread-safe.
public final class BlockCache {
    public let keepPerSize: Int
    var sizes: [Int] = []
    var heads: [UnsafeMutableRawPointer?] = []
    var counts: [Int] = []
    /// Blocks handed out and not yet given back.
    public private(set) var lent = 0
    /// Spare blocks held now, all sizes.
    public private(set) var spareCount = 0

    public init(keepPerSize: Int) {
        precondition(keepPerSize >= 0)
        self.keepPerSize = keepPerSize
    }

    deinit {
        for h in heads {
            var p = h
            while let b = p {
                p = b.load(as: UnsafeMutableRawPointer?.self)
                b.deallocate()
            }
        }
    }

    /// A block of `size` bytes (contents unspecified).
    public func take(_ size: Int) -> UnsafeMutableRawPointer {
        lent += 1
        if let i = sizes.firstIndex(of: size), let p = heads[i] {
            heads[i] = p.load(as: UnsafeMutableRawPointer?.self)
            counts[i] -= 1
            spareCount -= 1
            return p
        }
        return UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
    }

    /// Gives back a block of `size` bytes from `take`; its first `written` bytes are wiped.
    public func give(_ p: UnsafeMutableRawPointer, size: Int, written: Int) {
        precondition(lent > 0 && written >= 0 && written <= size && size > 0)
        lent -= 1
        if written > 0 { p.initializeMemory(as: UInt8.self, repeating: 0, count: written) }
        // A spare block holds the list's next pointer in its first word.
        guard keepPerSize > 0 && size >= 8 else { return p.deallocate() }
        if sizes.firstIndex(of: size) == nil {
            sizes.append(size)
            heads.append(nil)
            counts.append(0)
        }
        let i = sizes.firstIndex(of: size)!
        guard counts[i] < keepPerSize else { return p.deallocate() }
        p.storeBytes(of: heads[i], as: UnsafeMutableRawPointer?.self)
        heads[i] = p
        counts[i] += 1
        spareCount += 1
    }
}
