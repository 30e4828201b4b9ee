import Loop
import Wire

/// What a role gives the event loop. The loop is one thread and one `poll()`:
///
///     repeat:
///       work(now)            -- every state change happens here (protocol, timers, closing)
///       collect(into:)       -- every fd with its current interest (rebuilt each turn)
///       poll(min deadline)
///       ready(token, events) -- socket I/O only: read into, or write from, fixed buffers
///
/// `ready` never closes or frees anything; `work` does, so a token is never
/// stale within a turn.
public protocol LoopDriver: AnyObject {
    func work(now: Instant)
    func collect(into set: inout PollSet, now: Instant)
    func ready(token: UInt64, events: PollEvents, now: Instant)
    func nextDeadline(now: Instant) -> Instant?
    func signal(_ kind: Signals.Kind, now: Instant)
    /// Set when the role has stopped; `run` then returns `exitCode`.
    var finished: Bool { get }
    var exitCode: Int32 { get }
}

public enum EventLoop {
    static let signalToken = UInt64.max

    public static func now() -> Instant { Instant(ms: Clock.monotonicMs()) }

    /// Runs `driver` until it finishes. Signals (SIGTERM, SIGINT, SIGHUP) wake the loop.
    public static func run<D: LoopDriver>(_ driver: D) -> Int32 {
        var set = PollSet(capacity: 64)
        while true {
            var now = EventLoop.now()
            driver.work(now: now)
            if driver.finished { return driver.exitCode }
            set.removeAll()
            let sfd = Signals.wakeFd
            if sfd >= 0 { set.add(fd: sfd, interest: .read, token: signalToken) }
            driver.collect(into: &set, now: now)
            var dm = DeadlineMin()
            dm.consider(driver.nextDeadline(now: now)?.ms)
            let timeout = dm.timeout(now: now.ms, cap: 60_000)
            do throws(SysError) {
                _ = try set.wait(timeoutMs: timeout)
            } catch {
                Log.error("poll_failed", "error=" + Log.quote(error.message))
                return 1
            }
            now = EventLoop.now()
            for i in 0..<set.count {
                let ev = set.ready(i)
                if ev.isEmpty { continue }
                let token = set.token(i)
                if token == signalToken {
                    for k in Signals.take() { driver.signal(k, now: now) }
                } else {
                    driver.ready(token: token, events: ev, now: now)
                }
            }
        }
    }
}

/// Tokens: kind in the top byte, an object serial below.
public enum Token {
    public static func make(_ kind: UInt8, _ serial: UInt64) -> UInt64 { UInt64(kind) << 56 | (serial & 0x00ff_ffff_ffff_ffff) }
    public static func kind(_ t: UInt64) -> UInt8 { UInt8(t >> 56) }
    public static func serial(_ t: UInt64) -> UInt64 { t & 0x00ff_ffff_ffff_ffff }
}

/// At most `burst` log lines per `windowMs` for one kind of event; the rest are
/// counted and reported with the next line that gets through.
public struct RateLimit {
    public let burst: Int
    public let windowMs: Int64
    var windowStart: Int64? = nil
    var count = 0
    public private(set) var suppressed = 0

    public init(burst: Int = Limits.logBurst, windowMs: Int64 = Limits.logWindowMs) {
        self.burst = burst
        self.windowMs = windowMs
    }

    /// True if a line may be written now; then `takeSuppressed()` tells how many were dropped before it.
    public mutating func allow(now: Instant) -> Bool {
        if windowStart == nil || now.ms - windowStart! >= windowMs {
            windowStart = now.ms
            count = 0
        }
        if count < burst {
            count += 1
            return true
        }
        suppressed += 1
        return false
    }

    public mutating func takeSuppressed() -> Int {
        defer { suppressed = 0 }
        return suppressed
    }

    /// Writes one line at `level` if the limit allows it, ending in `suppressed=N`
    /// when lines were dropped since the last one written. The fields are built
    /// only when the line is written.
    public mutating func log(_ level: LogLevel, _ event: StaticString, _ fields: @autoclosure () -> String, now: Instant) {
        guard Log.enabled(level), allow(now: now) else { return }
        let s = takeSuppressed()
        Log.emit(level, event, fields() + (s > 0 ? " suppressed=" + String(s) : ""))
    }
}
