import Wire

/// A rate bound: up to `burst` events at once, refilled at `perSecond`. Sans-IO: the
/// caller passes `now`.
public struct TokenBucket {
    public let burst: Int
    public let perSecond: Int
    /// Tokens in thousandths, so slow rates refill smoothly.
    var milli: Int64
    var last: Int64? = nil

    public init(burst: Int, perSecond: Int) {
        precondition(burst > 0 && perSecond > 0)
        self.burst = burst
        self.perSecond = perSecond
        milli = Int64(burst) * 1000
    }

    /// Takes one token if there is one.
    public mutating func take(now: Instant) -> Bool {
        refill(now: now)
        guard milli >= 1000 else { return false }
        milli -= 1000
        return true
    }

    /// Whole tokens there are now.
    public mutating func tokens(now: Instant) -> Int {
        refill(now: now)
        return Int(milli / 1000)
    }

    mutating func refill(now: Instant) {
        if let l = last, now.ms > l {
            milli = min(Int64(burst) * 1000, milli + (now.ms - l) * Int64(perSecond))
        }
        if last == nil || now.ms > last! { last = now.ms }
    }
}
