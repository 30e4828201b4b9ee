/// A point on the monotonic clock, in milliseconds. Cores receive it as `now`;
/// only the Loop module reads the real clock (tests move a simulated one).
public struct Instant: Comparable, Hashable, Sendable {
    public var ms: Int64

    public init(ms: Int64) { self.ms = ms }

    public static let zero = Instant(ms: 0)

    public static func < (a: Instant, b: Instant) -> Bool { a.ms < b.ms }

    public func adding(ms d: Int64) -> Instant { Instant(ms: ms + d) }
    public func adding(seconds d: Int64) -> Instant { Instant(ms: ms + d * 1000) }

    /// Milliseconds from `earlier` to self (negative if earlier is later).
    public func since(_ earlier: Instant) -> Int64 { ms - earlier.ms }
}
