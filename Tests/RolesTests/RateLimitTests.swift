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
