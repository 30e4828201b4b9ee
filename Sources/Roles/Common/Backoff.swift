/// Reconnect delays: exponential with full jitter between half and all of the
/// current step, first step `firstMs`, capped at `capMs`. Sans-IO: the caller
/// supplies randomness (0 ..< 1,000,000) and the time.
public struct Backoff {
    public let firstMs: Int64
    public let capMs: Int64
    public private(set) var attempt = 0

    public init(firstMs: Int64, capMs: Int64) {
        self.firstMs = firstMs
        self.capMs = max(capMs, firstMs)
    }

    /// The next delay. `random` is uniform in 0 ..< 1_000_000.
    public mutating func next(random: UInt64) -> Int64 {
        var step = firstMs
        var i = 0
        while i < attempt && step < capMs {
            step *= 2
            i += 1
        }
        step = min(step, capMs)
        attempt += 1
        let half = step / 2
        return half + Int64(random % 1_000_000) * (step - half) / 1_000_000
    }

    /// After a connection that worked: start again from the first step.
    public mutating func reset() { attempt = 0 }
}
