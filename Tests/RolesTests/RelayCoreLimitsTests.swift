import Crypto
import Loop
import Mux
@testable import Roles
import Testing
import Wire

/// The limits on connections, in memory: tunnels, pending handshakes per source, tunnels
/// per key (RelayHandshake.swift, RelayAdmission.swift).
@Suite struct RelayCoreLimitsTests {
    @Test func theTunnelLimitDropsTheNextConnection() throws {
        let w = World(try RelayFixture(maxTunnels: 2))
        let a = try TestAgent(.reverse, relay: w.relay, source: "192.0.2.1", now: w.now)
        let b = try TestAgent(.reverse, relay: w.relay, source: "192.0.2.2", now: w.now)
        let c = try TestAgent(.reverse, relay: w.relay, source: "192.0.2.3", now: w.now)
        #expect(w.connect(a) != nil)
        #expect(w.connect(b) != nil)
        #expect(!w.core.acceptingTunnels)  // the driver stops watching the listener
        #expect(w.connect(c) == nil)
        #expect(c.relayEnd.isClosed)
        #expect(w.core.stats.count(w.core.stats.drops, "tunnel_limit") == 1)
    }

    @Test func pendingHandshakesAreCappedPerSource() throws {
        let w = World(try RelayFixture())
        let peer = SocketAddress.numeric("203.0.113.5", port: 1)!
        var ends: [PipeEnd] = []
        for _ in 0..<Limits.relayMaxPendingPerSource {
            let (_, theirs) = PipeEnd.pair()
            ends.append(theirs)
            #expect(w.core.accept(theirs, peer: peer, now: w.now) != nil)
        }
        let (_, one) = PipeEnd.pair()
        #expect(w.core.accept(one, peer: peer, now: w.now) == nil)
        #expect(one.isClosed)
        #expect(w.core.stats.count(w.core.stats.drops, "pending_per_source") == 1)
        // Another source still gets in; and once the first ones time out, so does this one.
        let (_, other) = PipeEnd.pair()
        #expect(w.core.accept(other, peer: SocketAddress.numeric("203.0.113.6", port: 1)!, now: w.now) != nil)
        w.advance(ms: Limits.relayHandshakeTimeoutMs)
        #expect(w.core.pending.count == 0)
        let (_, later) = PipeEnd.pair()
        #expect(w.core.accept(later, peer: peer, now: w.now) != nil)
    }

    @Test func forwardTunnelsPerKeyAreCapped() throws {
        let w = World(try RelayFixture())
        let first = try TestAgent(.forward, relay: w.relay, now: w.now)
        try w.relay.enroll(first)
        var agents = [first]
        for i in 1..<Limits.relayMaxTunnelsPerKey {
            agents.append(try TestAgent(.forward, relay: w.relay, key: first.key, port: UInt16(40_000 + i), now: w.now))
        }
        for a in agents { w.admit(a) }
        #expect(agents.allSatisfy { $0.phase == .ready })
        let extra = try TestAgent(.forward, relay: w.relay, key: first.key, port: 41_000, now: w.now)
        w.admit(extra)
        #expect(extra.phase == .denied)
        #expect(w.core.stats.count(w.core.stats.handshakeFailures, "tunnels_per_key") == 1)
    }
}
