import Wire

/// Fixed-size stream buffers from a pool with a hard cap.
///
/// Every receive buffer of every stream comes from here, so the memory a role
/// can spend on streams is at most `limit x bufferSize` by construction. When
/// the pool is exhausted new streams are refused (`Reason.noResources`); a
/// stream never grows its buffer because a peer asked for more.
///
/// Buffers are made on first use rather than up front (a relay sized for
/// 4,096 streams should not hold them all while idle); up to `keepSpare`
/// returned buffers are kept for reuse, the rest are freed.
public final class BufferPool {
    public let bufferSize: Int
    public let limit: Int
    public let keepSpare: Int
    public private(set) var inUse = 0
    var spare: [ByteQueue] = []

    public init(bufferSize: Int, limit: Int, keepSpare: Int = 8) {
        precondition(bufferSize > 0 && limit >= 0)
        self.bufferSize = bufferSize
        self.limit = limit
        self.keepSpare = keepSpare
    }

    public var available: Int { limit - inUse }

    /// A buffer, or nil when `limit` buffers are in use.
    public func take() -> ByteQueue? {
        guard inUse < limit else { return nil }
        inUse += 1
        if let q = spare.popLast() { return q }
        return ByteQueue(capacity: bufferSize)
    }

    /// Returns a buffer taken from this pool. Its contents are discarded.
    public func give(_ q: ByteQueue) {
        precondition(inUse > 0 && q.capacity == bufferSize)
        inUse -= 1
        q.removeAll()
        if spare.count < keepSpare { spare.append(q) }
    }
}
