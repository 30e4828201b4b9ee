import Crypto
import Loop
import Mux
@testable import Roles
import Testing
import Wire

/// A tunnel's life after admission, in memory: takeover of a stale session by the same
/// key, drain (GOAWAY, the drain timeout, then resets), the dead-peer timeout
/// (RelayAdmission.swift, RelayDrain.swift, RelayCore.swift).
@Suite struct RelayCoreLifecycleTests {
    @Test func theSameKeyTakesOverAStaleSession() throws {
        let (w, dev, fwd) = try RelayCoreStreamTests.pair()
        let (fsid, _) = try RelayCoreStreamTests.join(w, dev, fwd)
        let old = try #require(w.core.online[dev.id])
        // The device lost its network without a word and comes back with the same key.
        let again = try TestAgent(.reverse, relay: w.relay, key: dev.key, port: 40_001, now: w.now)
        let c = try #require(w.admit(again))
        #expect(again.phase == .ready)
        #expect(w.core.online[dev.id] === c)
        #expect(old.link.isClosed)
        #expect(dev.relayEnd.isClosed)
        #expect(fwd.saw { if case .reset(fsid, _) = $0 { return true } else { return false } })
        #expect(w.core.keyShares.peek(dev.id)?.tunnels == 1)
        // The new session serves streams at once.
        let (f2, d2) = try RelayCoreStreamTests.join(w, again, fwd)
        fwd.send(f2, [1, 2, 3])
        w.settle()
        #expect(again.receive(d2) == [1, 2, 3])
    }

    @Test func drainSendsGoawayGivesStreamsTheTimeoutThenResets() throws {
        let (w, dev, fwd) = try RelayCoreStreamTests.pair()
        let (fsid, dsid) = try RelayCoreStreamTests.join(w, dev, fwd)
        w.core.startDrain(now: w.now)
        w.settle()
        #expect(dev.saw { if case .goaway(.goingAway, _) = $0 { return true } else { return false } })
        #expect(fwd.saw { if case .goaway(.goingAway, _) = $0 { return true } else { return false } })
        #expect(!w.core.acceptingTunnels)
        // The joined stream still moves bytes while draining.
        fwd.send(fsid, [9, 9])
        w.settle()
        #expect(dev.receive(dsid) == [9, 9])
        // A new connection is dropped.
        let late = try TestAgent(.reverse, relay: w.relay, source: "192.0.2.99", now: w.now)
        #expect(w.connect(late) == nil)
        #expect(late.relayEnd.isClosed)
        #expect(w.core.stats.count(w.core.stats.drops, "draining") == 1)
        // Until the drain timeout: then every tunnel closes and the core stops.
        w.advance(ms: 4_999)
        #expect(!w.core.stopped)
        #expect(!dev.relayEnd.isClosed)
        w.advance(ms: 1)
        #expect(w.core.stopped)
        #expect(dev.relayEnd.isClosed && fwd.relayEnd.isClosed)
        #expect(w.core.conns.isEmpty)
    }

    @Test func drainWithoutStreamsStopsAtOnce() throws {
        let (w, _, _) = try RelayCoreStreamTests.pair()
        w.core.startDrain(now: w.now)
        w.settle()
        #expect(w.core.stopped)
    }

    @Test func anIdleTunnelIsClosedAfterTheDeadPeerTimeout() throws {
        let (w, dev, _) = try RelayCoreStreamTests.pair()
        // The device stops answering: no frame reaches the relay any more.
        w.agents.removeAll { $0 === dev }
        for _ in 0..<10 { w.advance(ms: 15_000) }
        #expect(dev.relayEnd.isClosed)
        #expect(w.core.online[dev.id] == nil)
    }
}

