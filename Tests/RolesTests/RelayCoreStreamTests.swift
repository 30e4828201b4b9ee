import Crypto
import Loop
import Mux
@testable import Roles
import Testing
import Wire

/// A forward's OPEN joined to the device's stream, bytes both ways, refusals
/// (RelayStreams.swift), in memory.
@Suite struct RelayCoreStreamTests {
    /// An enrolled device and forward, both admitted.
    static func pair() throws -> (World, TestAgent, TestAgent) {
        let w = World(try RelayFixture())
        let dev = try TestAgent(.reverse, relay: w.relay, now: w.now)
        let fwd = try TestAgent(.forward, relay: w.relay, source: "192.0.2.20", now: w.now)
        try w.relay.enroll(dev)
        try w.relay.enroll(fwd)
        w.admit(dev)
        w.admit(fwd)
        #expect(dev.phase == .ready && fwd.phase == .ready)
        return (w, dev, fwd)
    }

    /// Opens a stream from `fwd` to `dev` and accepts it on the device: (forward's id, device's id).
    static func join(_ w: World, _ dev: TestAgent, _ fwd: TestAgent) throws -> (UInt32, UInt32) {
        let fsid = try #require(fwd.mux.open(.device(dev.id), now: w.now))
        w.settle()
        let (dsid, open) = try #require(dev.takeOpen())
        #expect(open.target == .device(dev.id))
        #expect(open.origin == fwd.id.bytes)  // the device learns who asks
        w.settle()
        #expect(fwd.saw { if case .accepted(fsid) = $0 { return true } else { return false } })
        return (fsid, dsid)
    }

    @Test func anOpenIsJoinedAndBytesFlowBothWays() throws {
        let (w, dev, fwd) = try Self.pair()
        let (fsid, dsid) = try Self.join(w, dev, fwd)
        #expect(w.core.snapshot().streams == 1)
        let up = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let down = (0..<30_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        fwd.send(fsid, up)
        dev.send(dsid, down)
        var gotUp: [UInt8] = [], gotDown: [UInt8] = []
        for _ in 0..<50 where gotUp.count < up.count || gotDown.count < down.count {
            w.settle()
            gotUp += dev.receive(dsid)
            gotDown += fwd.receive(fsid)
        }
        #expect(gotUp == up)
        #expect(gotDown == down)
        #expect(w.core.stats.bytesUp == UInt64(up.count))
        #expect(w.core.stats.bytesDown == UInt64(down.count))
        // FIN both ways: the relay forgets the join and gives its buffers back.
        fwd.mux.finish(fsid)
        dev.mux.finish(dsid)
        w.settle()
        w.settle()
        #expect(w.core.snapshot().streams == 0)
        #expect(w.core.conns.values.allSatisfy { $0.joins.isEmpty })
        #expect(w.core.pool.inUse == 0)
    }

    @Test func anOpenForAnOfflineDeviceIsRefused() throws {
        let (w, dev, fwd) = try Self.pair()
        let absent = try PrivateKey.generate(rng: w.relay.rng)
        let fsid = try #require(fwd.mux.open(.device(absent.id), now: w.now))
        w.settle()
        #expect(fwd.saw { if case .refused(fsid, .noSuchDevice) = $0 { return true } else { return false } })
        #expect(dev.takeOpen() == nil)
        #expect(w.core.stats.count(w.core.stats.refusals, "no_such_device") == 1)
    }

    @Test func aDeviceMayNotOpenStreams() throws {
        let (w, dev, _) = try Self.pair()
        let sid = try #require(dev.mux.open(.device(dev.id), now: w.now))
        w.settle()
        #expect(dev.saw { if case .refused(sid, .notAuthorized) = $0 { return true } else { return false } })
    }

    @Test func aDeviceRefusingTheStreamIsPassedOnToTheForward() throws {
        let (w, dev, fwd) = try Self.pair()
        let fsid = try #require(fwd.mux.open(.device(dev.id), now: w.now))
        w.settle()
        let (dsid, _) = try #require(dev.takeOpen(accept: false))
        dev.mux.refuse(dsid, .targetNotAllowed)
        w.settle()
        #expect(fwd.saw { if case .refused(fsid, .targetNotAllowed) = $0 { return true } else { return false } })
        #expect(w.core.snapshot().streams == 0)
    }

    @Test func theDeviceGoingAwayResetsTheForwardsStream() throws {
        let (w, dev, fwd) = try Self.pair()
        let (fsid, _) = try Self.join(w, dev, fwd)
        dev.link.tls.sendCloseNotify()
        dev.link.close()
        w.settle()
        #expect(fwd.saw { if case .reset(fsid, _) = $0 { return true } else { return false } })
        #expect(w.core.online[dev.id] == nil)
        #expect(fwd.phase == .ready)  // the forward's tunnel stays up
    }
}
