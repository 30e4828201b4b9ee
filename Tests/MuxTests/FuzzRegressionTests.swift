import Mux
import Testing
import Wire

/// Regressions for inputs the fuzz targets found (Fuzz/FailCases/, Fuzz/README.md).
@Suite struct MuxFuzzRegressionTests {
    static func mux(_ side: Mux.Side) -> Mux {
        let m = Mux(side: side, limits: MuxLimits(maxStreams: 4), pool: BufferPool(bufferSize: 4096, limit: 4), now: .zero)
        m.helloFinished(now: .zero)
        return m
    }

    static func events(_ m: Mux) -> [MuxEvent] {
        var out: [MuxEvent] = []
        while let e = m.poll(now: .zero) { out.append(e) }
        return out
    }

    /// Fuzz/FailCases/mux-rx/open-window-over-int32: a peer's OPEN, ACCEPT or WINDOW
    /// granting 2^31 bytes or more of credit. Credit became `Int(window)`, which traps
    /// on armv7 (32-bit Int) -- any peer could stop the process. Credit is now capped
    /// at Int32.max, and a WINDOW that would pass it fails the tunnel instead.
    @Test(arguments: [UInt32(0x7fff_ffff), 0x8000_0000, 0xffff_ffff])
    func openWindowFitsA32BitInt(window: UInt32) {
        let relay = Self.mux(.relay)
        let open = OpenPayload(target: .hostname("x.example"), window: window)
        relay.rx.append(FrameCodec.encode(.open, stream: 1, payload: open.encode()))
        #expect(Self.events(relay) == [.opened(1, open)])
        let credit = relay.info(1)?.sendCredit ?? -1
        #expect(credit >= 0 && credit <= Int(Int32.max))
        #expect(credit == Int(min(window, UInt32(Int32.max))))
    }

    @Test(arguments: [UInt32(0x8000_0000), 0xffff_ffff])
    func acceptWindowFitsA32BitInt(window: UInt32) {
        let agent = Self.mux(.agent)
        let id = agent.open(.hostname("x.example"), now: .zero)!
        agent.tx.removeAll()
        agent.rx.append(FrameCodec.encode(.accept, stream: id, payload: ControlPayload.accept(window: window)))
        #expect(Self.events(agent) == [.accepted(id)])
        #expect(agent.info(id)?.sendCredit == Int(Int32.max))
        // More credit on top of the cap is a credit violation, not a trap.
        agent.rx.append(FrameCodec.encode(.window, stream: id, payload: ControlPayload.window(0xffff_ffff)))
        #expect(Self.events(agent) == [.failed(.creditViolation(id))])
    }

    @Test func windowUpToTheCapIsCredit() {
        let agent = Self.mux(.agent)
        let id = agent.open(.hostname("x.example"), now: .zero)!
        agent.rx.append(FrameCodec.encode(.accept, stream: id, payload: ControlPayload.accept(window: 1)))
        agent.rx.append(FrameCodec.encode(.window, stream: id, payload: ControlPayload.window(0x7fff_fffe)))
        #expect(Self.events(agent) == [.accepted(id), .credit(id)])
        #expect(agent.info(id)?.sendCredit == Int(Int32.max))
    }
}
