import Roles
import Testing
import Wire

/// Repeated log events from one source (bad handshakes, refused targets, SNI
/// garbage) go through `RateLimit`: at most `burst` lines per window, and the
/// number dropped is reported with the next line that gets through.
@Suite struct RateLimitTests {
    /// Offers `n` events at `at` ms; returns how many were allowed.
    static func offer(_ r: inout RateLimit, _ n: Int, at ms: Int64) -> Int {
        var allowed = 0
        for _ in 0..<n where r.allow(now: Instant(ms: ms)) { allowed += 1 }
        return allowed
    }

    @Test func burstThenSilenceThenCount() {
        var r = RateLimit(burst: 3, windowMs: 1_000)
        #expect(Self.offer(&r, 3, at: 0) == 3)
        let none = r.takeSuppressed()
        #expect(none == 0)
        #expect(Self.offer(&r, 100, at: 10) == 0)
        #expect(Self.offer(&r, 5, at: 999) == 0)        // still the same window
        let newWindow = r.allow(now: Instant(ms: 1_000))
        #expect(newWindow)                              // a new window
        let reported = r.takeSuppressed()
        #expect(reported == 105)                        // reported with that line...
        let again = r.takeSuppressed()
        #expect(again == 0)                             // ...once
        #expect(Self.offer(&r, 5, at: 1_500) == 2)      // the rest of its burst
        #expect(r.suppressed == 3)
    }

    @Test func defaultsAreTenPerTenSeconds() {
        var r = RateLimit()
        #expect(r.burst == 10 && r.windowMs == 10_000)
        // 1,000 events in 25 s: three windows start (0, 10 s, 20 s), 10 lines each.
        var allowed = 0
        for i in 0..<1_000 { if r.allow(now: Instant(ms: Int64(i) * 25)) { allowed += 1 } }
        #expect(allowed == 30)
        let dropped = r.takeSuppressed()
        #expect(dropped == 1_000 - 30)
    }

    /// A quiet source is never throttled: one event per window always gets through.
    @Test func slowEventsAllPass() {
        var r = RateLimit(burst: 1, windowMs: 100)
        for i in 0..<50 {
            let ok = r.allow(now: Instant(ms: Int64(i) * 100))
            #expect(ok)
        }
        #expect(r.suppressed == 0)
    }
}

/// `TokenBucket`: the enrollment rate of the relay (review finding 8).
@Suite struct TokenBucketTests {
    static func take(_ b: inout TokenBucket, _ ms: Int64) -> Bool { b.take(now: Instant(ms: ms)) }

    @Test func burstThenRefillAtTheRate() {
        var b = TokenBucket(burst: 5, perSecond: 10)
        var n = 0
        for _ in 0..<20 where b.take(now: Instant(ms: 1_000)) { n += 1 }
        #expect(n == 5)
        // 100 ms at 10 per second: one more.
        #expect(Self.take(&b, 1_100) == true)
        #expect(Self.take(&b, 1_100) == false)
        // 50 ms: half a token, not enough; 50 more: one.
        #expect(Self.take(&b, 1_150) == false)
        #expect(Self.take(&b, 1_200) == true)
        // A long pause refills only up to the burst.
        n = 0
        for _ in 0..<20 where b.take(now: Instant(ms: 100_000)) { n += 1 }
        #expect(n == 5)
    }

    @Test func clockGoingBackDoesNotRefill() {
        var b = TokenBucket(burst: 1, perSecond: 1)
        #expect(Self.take(&b, 10_000) == true)
        #expect(Self.take(&b, 5_000) == false)
        #expect(Self.take(&b, 10_500) == false)
        #expect(Self.take(&b, 11_000) == true)
    }
}
