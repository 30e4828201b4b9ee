import Loop
@testable import Roles
import Testing
import Wire

/// The relay's shares of what peers can hold: pending handshakes and public
/// connections (`Gate`, global and per source) and a key's streams (`KeyShare`).
@Suite struct SharesTests {
    static func address(_ text: String) -> SocketAddress { SocketAddress.numeric(text, port: 1000)! }

    /// The review's finding: the pending count went up on accept and down only on some
    /// paths, so 256 refused connections locked the listener for good. With tickets,
    /// every way out gives the place back, however often it is taken.
    @Test func everyTicketLeavesOnce() {
        let g = Gate(limit: 4, perSource: 4)
        let a = SourceKey(source: Self.address("127.0.0.1"))
        for _ in 0..<1_000 {
            guard case .success(let t) = g.enter(a) else {
                Issue.record("gate closed after repeated use")
                return
            }
            #expect(g.count == 1)
            t.leave()
            t.leave()  // a second leave (another close path) changes nothing
            #expect(g.count == 0)
        }
        // Dropping a ticket without leaving (an object released on some path) also gives it back.
        do {
            guard case .success(let t) = g.enter(a) else { return }
            _ = t
        }
        #expect(g.count == 0)
        #expect(g.isOpen)
    }

    @Test func oneSourceCannotTakeTheWholeGate() {
        let g = Gate(limit: 8, perSource: 3)
        let a = SourceKey(source: Self.address("127.0.0.1"))
        let b = SourceKey(source: Self.address("127.0.0.2"))
        var held: [Gate.Ticket] = []
        for _ in 0..<3 {
            if case .success(let t) = g.enter(a) { held.append(t) }
        }
        #expect(held.count == 3)
        guard case .failure(.sourceShare) = g.enter(a) else {
            Issue.record("fourth place for one source")
            return
        }
        #expect(g.held(by: a) == 3)
        // Another source still gets in.
        guard case .success(let tb) = g.enter(b) else {
            Issue.record("other source refused")
            return
        }
        #expect(g.count == 4)
        held[0].leave()
        guard case .success = g.enter(a) else {
            Issue.record("place not given back")
            return
        }
        _ = tb
    }

    @Test func gateIsFullForEveryone() {
        let g = Gate(limit: 2, perSource: 2)
        let a = SourceKey(source: Self.address("127.0.0.1"))
        let b = SourceKey(source: Self.address("127.0.0.2"))
        guard case .success(let t1) = g.enter(a), case .success(let t2) = g.enter(a) else {
            Issue.record("could not fill")
            return
        }
        #expect(!g.isOpen)
        guard case .failure(.full) = g.enter(b) else {
            Issue.record("entered a full gate")
            return
        }
        t1.leave()
        #expect(g.isOpen)
        _ = t2
    }

    /// IPv6 sources count by /64: one subscriber cannot rotate addresses in its prefix.
    @Test func ipv6SourcesCountByPrefix() {
        let a = SourceKey(source: Self.address("2001:db8:1:2::1"))
        let b = SourceKey(source: Self.address("2001:db8:1:2:ffff::9"))
        let c = SourceKey(source: Self.address("2001:db8:1:3::1"))
        let v4 = SourceKey(source: Self.address("127.0.0.1"))
        #expect(a == b)
        #expect(a != c)
        #expect(a != v4)
        #expect(SourceKey(source: Self.address("127.0.0.1")) != SourceKey(source: Self.address("127.0.0.2")))
    }

    /// One key (however many tunnels) cannot take the relay's whole buffer pool.
    @Test func oneKeyKeepsToItsShareOfThePool() {
        let limit = 2 * Limits.relayMaxStreams  // buffers: two per joined stream
        var available = limit
        var streams = 0
        while KeyShare.mayOpen(streams: streams, poolAvailable: available) && available >= 2 {
            streams += 1
            available -= 2
        }
        #expect(streams <= Limits.relayMaxStreamsPerKey)
        // Plenty is left for everyone else.
        #expect(available >= limit / 2)
        // A second key, starting from nothing, still gets its floor.
        #expect(KeyShare.mayOpen(streams: 0, poolAvailable: available))
        // Near exhaustion, a key above the floor stops; one below it does not.
        #expect(!KeyShare.mayOpen(streams: Limits.relayStreamsPerKeyFloor, poolAvailable: 16))
        #expect(KeyShare.mayOpen(streams: Limits.relayStreamsPerKeyFloor - 1, poolAvailable: 16))
    }

    @Test func keySharesForgetIdleKeys() {
        var s = KeyShares()
        let id = AgentID(bytes: [UInt8](repeating: 7, count: AgentID.byteCount))!
        let share = s.of(id)
        share.tunnels += 1
        #expect(s.of(id) === share)
        s.tidy(id)
        #expect(s.count == 1)
        share.tunnels -= 1
        s.tidy(id)
        #expect(s.count == 0)
        #expect(s.peek(id) == nil)
    }
}
