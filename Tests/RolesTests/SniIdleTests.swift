import Loop
@testable import Roles
import Testing
import Wire

/// A routed public connection is closed after `Limits.sniIdleTimeoutMs` with no bytes
/// either way (review finding 3: it had no deadline after routing).
@Suite struct SniIdleTests {
    static func conn(at ms: Int64) -> SniConn {
        let g = Gate(limit: 4, perSource: 4)
        let key = SourceKey(source: SocketAddress.numeric("127.0.0.1", port: 1)!)
        guard case .success(let p) = g.enter(key), case .success(let o) = g.enter(key) else { fatalError() }
        return SniConn(serial: 1, stream: SocketStream(fd: -1), peer: SocketAddress.numeric("127.0.0.1", port: 1)!, pendingTicket: p,
                       connectionTicket: o, now: Instant(ms: ms))
    }

    @Test func idleAfterTheTimeoutOnly() {
        let s = Self.conn(at: 0)
        s.phase = .open
        #expect(!s.pendingTicket.isHeld, "routing gives back the pending place")
        #expect(s.connectionTicket.isHeld)
        let t = Limits.sniIdleTimeoutMs
        #expect(!s.idleExpired(now: Instant(ms: t - 1)))
        #expect(s.deadline == Instant(ms: t))
        // Bytes moved: the clock starts again.
        s.splice.bytesIn += 100
        #expect(!s.idleExpired(now: Instant(ms: t - 1)))
        #expect(!s.idleExpired(now: Instant(ms: 2 * t - 2)))
        #expect(s.idleExpired(now: Instant(ms: 2 * t - 1)))
    }

    @Test func helloPhaseHasItsOwnDeadline() {
        let s = Self.conn(at: 1_000)
        #expect(s.isPending)
        #expect(s.deadline == Instant(ms: 1_000 + Limits.sniHelloTimeoutMs))
    }
}
