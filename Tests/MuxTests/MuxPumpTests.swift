#if canImport(Glibc)
import Glibc
#endif
@testable import Mux
import Testing
import Wire

/// Two multiplexers joined by the in-memory `Pump` (Pump.swift): transfers,
/// half-close, flow control, limits, timers and every way a peer can break
/// the tunnel. DESIGN.md section 4 is the contract under test.
@Suite struct MuxPumpTests {
    enum Opener: String, CaseIterable, CustomTestStringConvertible {
        case agent, relay
        var testDescription: String { rawValue }
    }

    /// (opener, acceptor).
    static func ends(_ p: Pump, _ o: Opener) -> (Endpoint, Endpoint) { o == .agent ? (p.a, p.b) : (p.b, p.a) }

    static func expectClean(_ p: Pump, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(p.failures.isEmpty, "failures: \(p.failures)", sourceLocation: sourceLocation)
        #expect(p.a.mux.pool.inUse == p.a.mux.streamCount, sourceLocation: sourceLocation)
        #expect(p.b.mux.pool.inUse == p.b.mux.streamCount, sourceLocation: sourceLocation)
    }

    static func expectEmpty(_ p: Pump, sourceLocation: SourceLocation = #_sourceLocation) {
        expectClean(p, sourceLocation: sourceLocation)
        #expect(p.a.mux.streamCount == 0 && p.b.mux.streamCount == 0, sourceLocation: sourceLocation)
        #expect(p.a.mux.pool.inUse == 0 && p.b.mux.pool.inUse == 0, "buffers not back in the pools",
                sourceLocation: sourceLocation)
    }

    /// Opens a stream from `x`, runs until `y` accepted it; returns the id.
    static func openAccepted(_ p: Pump, from x: Endpoint, _ target: OpenPayload.Target = .hostname("dev.example.com")) -> UInt32 {
        let id = x.open(target, now: p.now)!
        #expect(p.run { x.streams[id]?.phase == .open })
        return id
    }

    static func inject(_ e: Endpoint, _ bytes: [UInt8]) {
        let n = e.mux.rx.append(bytes)
        precondition(n == bytes.count, "rx full")
    }

    // MARK: - Hello

    @Test func helloFramesArriveBeforeHelloFinished() {
        let p = Pump(seed: 11, helloDone: false)
        let challenge: [UInt8] = [1, 1] + [UInt8](repeating: 7, count: 32) + [0, 1, 9, 0, 1, 8]
        #expect(p.a.mux.open(.hostname("x"), now: p.now) == nil, "open before the hello is over")
        #expect(p.b.mux.sendHello(.challenge, challenge))
        p.settle()
        #expect(p.a.hellos.count == 1)
        #expect(p.a.hellos.first?.0 == .challenge && p.a.hellos.first?.1 == challenge)
        #expect(p.a.mux.sendHello(.auth, [1, 2, 3]))
        p.settle()
        #expect(p.b.hellos.count == 1)
        #expect(p.b.hellos.first?.0 == .auth && p.b.hellos.first?.1 == [1, 2, 3])
        // The relay welcomes and is done; its first stream frames may travel right behind WELCOME.
        #expect(p.b.mux.sendHello(.welcome, [UInt8](repeating: 5, count: 21)))
        p.b.mux.helloFinished(now: p.now)
        #expect(!p.b.mux.sendHello(.welcome, [1]), "sendHello after helloFinished")
        let id = p.b.mux.open(.device(AgentID(bytes: [UInt8](repeating: 3, count: 20))!), now: p.now)
        #expect(id == 2)
        p.deliver(from: p.b, to: p.a)
        // The agent sees WELCOME first, finishes its hello, then sees the OPEN.
        let e1 = p.a.mux.poll(now: p.now)
        #expect(e1 == .hello(.welcome, [UInt8](repeating: 5, count: 21)))
        p.a.mux.helloFinished(now: p.now)
        if case .opened(let oid, let open)? = p.a.mux.poll(now: p.now) {
            #expect(oid == 2)
            // Before the first round trip is measured a stream extends only the minimum
            // credit (a peer cannot make the relay fill whole buffers up front).
            #expect(open.window == UInt32(MuxLimits.minCredit))
        } else {
            Issue.record("OPEN after WELCOME was not delivered")
        }
        #expect(p.failures.isEmpty)
    }

    /// A hello payload longer than one frame (an AUTH with a big certificate chain:
    /// `--cert` allows up to 4 certificates of any size) must be refused by
    /// `sendHello` (false), not trap: `sendHello` checks only the room in `tx`, then
    /// `FrameCodec.append` hits its `payload.count <= maxPayload` precondition and
    /// the agent process dies at every connection attempt.
    @Test func oversizedHelloPayloadIsRefusedNotTrapped() async {
        await #expect(processExitsWith: .exitCode(0)) {
            let m = Mux(side: .agent, limits: MuxLimits(), pool: BufferPool(bufferSize: 1024, limit: 1), now: .zero)
            let ok = m.sendHello(.auth, [UInt8](repeating: 0, count: WireProtocol.maxPayload + 1))
            exit(ok || !m.tx.isEmpty ? 1 : 0)
        }
        // Up to maxPayload is fine.
        let m = Mux(side: .agent, limits: MuxLimits(), pool: BufferPool(bufferSize: 1024, limit: 1), now: .zero)
        #expect(m.sendHello(.auth, [UInt8](repeating: 0, count: WireProtocol.maxPayload)))
        #expect(m.tx.count == WireProtocol.headerSize + WireProtocol.maxPayload)
    }

    @Test(arguments: [FrameType.challenge, .auth, .welcome, .denied])
    func helloFrameAfterHelloFinishedFails(type: FrameType) {
        let p = Pump(seed: 12)
        #expect(!p.a.mux.sendHello(type, [1]))
        Self.inject(p.a, FrameCodec.encode(type, stream: 0, payload: [1, 2, 3]))
        p.a.pollAll(now: p.now)
        #expect(p.a.failures == [.unexpected(type.rawValue)])
        #expect(p.a.mux.poll(now: p.now) == nil)
    }

    @Test(arguments: [FrameType.ping, .open, .data, .window, .goaway])
    func muxFrameBeforeHelloFinishedFails(type: FrameType) {
        let p = Pump(seed: 13, helloDone: false)
        Self.inject(p.b, FrameCodec.encode(type, stream: 0, payload: [0, 0, 0, 0, 0, 0, 0, 1]))
        p.b.pollAll(now: p.now)
        #expect(p.b.failures == [.unexpected(type.rawValue)])
    }

    @Test func helloFrameOnAStreamFails() {
        let p = Pump(seed: 14, helloDone: false)
        Self.inject(p.a, FrameCodec.encode(.challenge, stream: 1, payload: [1]))
        p.a.pollAll(now: p.now)
        #expect(p.a.failures == [.unexpected(FrameType.challenge.rawValue)])
    }

    // MARK: - Transfers

    static let transferSizes = [0, 1, 64 * 1024, 16 << 20]

    /// One stream, `size` bytes each way at once, random chunking on the tunnel and
    /// random read/write sizes; both ends finish, see all data then `.finished`, release.
    @Test(arguments: transferSizes, Opener.allCases)
    func transfer(size: Int, opener: Opener) {
        let p = Pump(seed: UInt64(size) &* 31 &+ (opener == .agent ? 1 : 2))
        let (x, y) = Self.ends(p, opener)
        y.configure = { s in
            s.toSend = UInt64(size)
            s.finishWhenSent = true
        }
        let id = x.open(now: p.now)!
        let sx = x.streams[id]!
        sx.toSend = UInt64(size)
        sx.finishWhenSent = true
        #expect(p.run { sx.done && (y.streams[id]?.done ?? false) }, "transfer did not complete")
        let sy = y.streams[id]!
        #expect(sx.received == UInt64(size) && sy.received == UInt64(size))
        #expect(sx.totalAtFin == UInt64(size) && sy.totalAtFin == UInt64(size))
        #expect(!sx.corrupt && !sy.corrupt)
        #expect(x.mux.info(id) == StreamInfo(isOpen: true, sendCredit: x.mux.info(id)!.sendCredit,
                                             finSent: true, finReceived: true, buffered: 0))
        x.release(id)
        y.release(id)
        #expect(p.settle())
        Self.expectEmpty(p)
        // A clean close needs no RESET: neither side saw one.
        #expect(sx.resetBy == nil && sy.resetBy == nil)
        #expect(p.a.mux.bytesOut == UInt64(size) && p.b.mux.bytesIn == UInt64(size))
    }

    /// Many streams at once, both directions, interleaved on one tunnel.
    @Test(arguments: [21, 22, 23])
    func manyStreamsInterleaved(seed: UInt64) {
        let p = Pump(seed: seed)
        var sizes: [UInt32: UInt64] = [:]
        var rng = SplitMix64(seed: seed)
        for y in [p.a, p.b] {
            y.configure = { s in
                s.toSend = UInt64(rng.int(0, 300_000))
                s.finishWhenSent = true
            }
        }
        var ids: [(Endpoint, UInt32)] = []
        for i in 0..<20 {
            let x = i % 2 == 0 ? p.a : p.b
            let id = x.open(now: p.now)!
            let size = UInt64(rng.int(0, 300_000))
            sizes[id] = size
            x.streams[id]!.toSend = size
            x.streams[id]!.finishWhenSent = true
            ids.append((x, id))
        }
        #expect(p.run {
            ids.allSatisfy { pair in
                let (x, id) = pair
                return x.streams[id]!.done && (p.peer(of: x).streams[id]?.done ?? false)
            }
        })
        for (x, id) in ids {
            let y = p.peer(of: x)
            #expect(y.streams[id]!.received == sizes[id]!)
            #expect(x.streams[id]!.received == y.streams[id]!.toSend)
            x.release(id)
            y.release(id)
        }
        #expect(p.settle())
        Self.expectEmpty(p)
    }

    // MARK: - Half-close

    /// `closer` sends then finishes; the other side sees all data then `.finished`,
    /// keeps sending, and the closer still receives everything; then both release.
    @Test(arguments: Opener.allCases)
    func halfClose(closerSide: Opener) {
        let p = Pump(seed: 31)
        let id = Self.openAccepted(p, from: p.a)
        let (closer, other) = Self.ends(p, closerSide)
        let c = closer.streams[id]!
        let o = other.streams[id]!
        c.toSend = 300_000
        c.finishWhenSent = true
        #expect(p.run { o.finished })
        #expect(o.totalAtFin == 300_000, "FIN overtook data")
        #expect(closer.mux.info(id)?.finSent == true)
        #expect(closer.mux.sendAllowance(id) == 0, "allowance after finish")
        #expect(other.mux.info(id)?.finReceived == true)
        #expect(other.mux.info(id)?.finSent == false)
        // The other direction is still open.
        o.toSend = 500_000
        #expect(p.run { c.received == 500_000 })
        #expect(!c.finished && !c.corrupt)
        #expect(p.settle())
        #expect(other.mux.info(id)?.isOpen == true)
        o.finishWhenSent = true
        #expect(p.run { c.finished })
        #expect(c.totalAtFin == 500_000)
        #expect(p.settle())
        closer.release(id)
        other.release(id)
        #expect(p.settle())
        Self.expectEmpty(p)
        #expect(c.resetBy == nil && o.resetBy == nil)
    }

    /// Releasing a stream whose peer has not finished resets it with `.closed`.
    @Test func releaseBeforeBothFinsResets() {
        let p = Pump(seed: 32)
        let id = Self.openAccepted(p, from: p.a)
        let sa = p.a.streams[id]!
        sa.toSend = 1000
        sa.finishWhenSent = true
        #expect(p.run { p.b.streams[id]?.finished == true })
        p.b.release(id)   // b never finished its direction
        #expect(p.settle())
        #expect(sa.resetBy == .closed)
        Self.expectEmpty(p)
    }

    /// `finish()` when `tx` has no room leaves our FIN pending (`finSent` false), and
    /// `release()` is documented to reset a stream unless the FIN was *sent*. So a
    /// clean close must wait for `info(id).finSent` (as the relay's Join and the
    /// agent's Splice do): released then, the peer sees `.finished` after all data.
    /// Released earlier, the peer gets RESET(closed) instead and drops what it has
    /// not read yet.
    @Test(arguments: [true, false])
    func releaseAfterAPendingFin(waitForFinSent: Bool) {
        let limitsA = MuxLimits(rxCapacity: 16384, txCapacity: 16384 + MuxLimits.controlReserve)
        let p = Pump(seed: 33, limitsA: limitsA,
                     poolA: BufferPool(bufferSize: 4096, limit: 400), poolB: BufferPool(bufferSize: 4096, limit: 400))
        let id = Self.openAccepted(p, from: p.a)
        let sa = p.a.streams[id]!
        let sb = p.b.streams[id]!
        sb.consuming = false
        sa.toSend = 1000
        #expect(p.settle())
        // tx fills up, to the last byte, with OPENs the slow TLS has not taken yet.
        let device = OpenPayload.Target.device(AgentID(bytes: [UInt8](repeating: 2, count: 20))!)
        while p.a.mux.tx.freeSpace > 290 { p.a.open(device, now: p.now) }
        let room = p.a.mux.tx.freeSpace
        p.a.open(.hostname(String(repeating: "h", count: room - 37)), now: p.now)
        #expect(p.a.mux.tx.freeSpace == 0)
        p.a.finish(id)
        #expect(p.a.mux.info(id)?.finSent == false, "FIN fitted; the case needs a full tx")
        #expect(p.a.mux.sendAllowance(id) == 0)
        // The peer finishes too; its FIN reaches us.
        p.b.finish(id)
        p.deliver(from: p.b, to: p.a)
        p.a.pollAll(now: p.now)
        #expect(sa.finished)
        if waitForFinSent {
            #expect(p.run { p.a.mux.info(id)?.finSent == true })
        }
        p.a.release(id)
        #expect(p.settle())
        Self.expectClean(p)
        if waitForFinSent {
            #expect(sb.resetBy == nil)
            #expect(sb.finished && sb.totalAtFin == 1000)
        } else {
            #expect(sb.resetBy == .closed)
            #expect(!sb.finished)
        }
    }

    // MARK: - Flow control

    /// A receiver that never reads one stream stops that stream's sender at
    /// exactly its window; another stream on the same tunnel is unaffected.
    @Test(arguments: [41, 42])
    func stalledStreamDoesNotSlowAnother(seed: UInt64) {
        let window = 64 * 1024
        let moving = 4 << 20

        // Baseline: the moving stream alone.
        let base = Pump(seed: seed)
        let t0 = Self.openAccepted(base, from: base.a)
        base.a.streams[t0]!.toSend = UInt64(moving)
        base.a.streams[t0]!.finishWhenSent = true
        let start0 = base.steps
        #expect(base.run { base.b.streams[t0]!.done })
        let alone = base.steps - start0

        let p = Pump(seed: seed)
        let stalled = Self.openAccepted(p, from: p.a)
        let t = Self.openAccepted(p, from: p.a)
        p.b.streams[stalled]!.consuming = false
        p.a.streams[stalled]!.toSend = 1 << 20
        p.a.streams[t]!.toSend = UInt64(moving)
        p.a.streams[t]!.finishWhenSent = true
        let start = p.steps
        #expect(p.run { p.b.streams[t]!.done })
        let shared = p.steps - start
        #expect(p.b.streams[t]!.received == UInt64(moving))
        #expect(shared <= alone + alone / 4 + 20, "moving stream took \(shared) steps beside a stalled one, \(alone) alone")
        #expect(p.settle())

        // The stalled stream stopped at exactly its window, with no failure.
        #expect(p.a.streams[stalled]!.sent == UInt64(window))
        #expect(p.b.mux.receiveBuffer(stalled)!.count == window)
        #expect(p.a.mux.sendAllowance(stalled) == 0)
        #expect(p.a.mux.info(stalled)!.sendCredit == 0)
        #expect(p.b.mux.streams[stalled]!.recvCredit == 0)
        Self.expectClean(p)

        // Reading again resumes it.
        p.b.streams[stalled]!.consuming = true
        p.a.streams[stalled]!.finishWhenSent = true
        #expect(p.run { p.b.streams[stalled]!.done })
        #expect(p.b.streams[stalled]!.received == 1 << 20)
        Self.expectClean(p)
    }

    /// WINDOW goes out when the grantable room reaches a quarter of the buffer,
    /// or when the buffer is empty; its increment is exactly that room.
    @Test func windowThresholds() {
        let p = Pump(seed: 43, poolB: BufferPool(bufferSize: 1024, limit: 4))
        let id = Self.openAccepted(p, from: p.a)
        #expect(p.a.mux.info(id)!.sendCredit == 1024, "ACCEPT carries the acceptor's buffer size")
        let sa = p.a.streams[id]!
        let sb = p.b.streams[id]!
        sb.consuming = false
        sa.toSend = 1024
        #expect(p.settle())
        #expect(p.a.mux.info(id)!.sendCredit == 0)
        #expect(p.b.mux.receiveBuffer(id)!.count == 1024)

        let window256: [UInt8] = [0x16, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0x01, 0x00]
        p.b.consumeSome(sb, limit: 100)
        p.b.mux.produce()
        #expect(p.b.mux.tx.isEmpty, "WINDOW below a quarter of the buffer")
        p.b.consumeSome(sb, limit: 155)
        p.b.mux.produce()
        #expect(p.b.mux.tx.isEmpty, "WINDOW at 255 of 1024")
        p.b.consumeSome(sb, limit: 1)
        p.b.mux.produce()
        #expect(p.b.mux.tx.peekAll() == window256)
        p.deliver(from: p.b, to: p.a)
        p.a.pollAll(now: p.now)
        #expect(p.a.mux.info(id)!.sendCredit == 256)

        // Empty buffer: any room is granted. Send 24, read them back.
        p.b.consumeSome(sb, limit: 768)
        p.b.mux.produce()
        #expect(p.b.mux.tx.peekAll() == [0x16, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0x03, 0x00])   // 768
        p.deliver(from: p.b, to: p.a)
        p.a.pollAll(now: p.now)
        #expect(p.a.mux.info(id)!.sendCredit == 1024)
        sa.toSend += 24
        p.a.sendSome(sa, limit: 24)
        p.deliver(from: p.a, to: p.b)
        p.b.pollAll(now: p.now)
        p.b.consumeSome(sb, limit: 10)
        p.b.mux.produce()
        #expect(p.b.mux.tx.isEmpty, "WINDOW of 10 with bytes still buffered")
        // Emptying the buffer grants nothing by itself: 24 bytes are below a quarter of
        // the window, so a request/response stream sends no WINDOW per message.
        p.b.consumeSome(sb, limit: 14)
        p.b.mux.produce()
        #expect(p.b.mux.tx.isEmpty, "WINDOW of 24 below the threshold")
        Self.expectClean(p)
    }

    /// `sendAllowance` is "how many payload bytes `send` would take now": with room
    /// for several frames it counts a header per frame, so `send` takes it all.
    /// (Regression: it used to count one header only, and `send` took 8 bytes less
    /// per extra DATA frame, leaving an owner with bytes it had read for nothing.)
    @Test(arguments: [64 * 1024, 10_000, WireProtocol.maxPayload, WireProtocol.maxPayload + 1, 3 * WireProtocol.maxPayload + 5])
    func sendTakesTheWholeAllowance(window: Int) {
        let p = Pump(seed: 44, poolB: BufferPool(bufferSize: window, limit: 2))
        let id = Self.openAccepted(p, from: p.a)
        var total = 0
        while true {
            let n = p.a.mux.sendAllowance(id)
            if n == 0 { break }
            let taken = [UInt8](repeating: 0x42, count: n).withUnsafeBytes { p.a.mux.send(id, $0) }
            #expect(taken == n, "allowance \(n), taken \(taken), tx free \(p.a.mux.tx.freeSpace)")
            if taken != n { break }
            total += taken
            // Drain part of tx, as a slow TLS would.
            p.a.mux.tx.consume(min(p.a.mux.tx.count, 5000))
        }
        #expect(total == window, "credit not used up")
        #expect(p.a.mux.info(id)?.sendCredit == 0)
    }

    /// The credit invariant, checked after every step of a long random run where
    /// every sender always offers its whole allowance and readers read at random.
    @Test(arguments: [51, 52, 53, 54])
    func windowNeverExceedsFreeSpace(seed: UInt64) {
        // Odd buffer sizes so capacity / 4 rounds.
        let p = Pump(seed: seed, poolA: BufferPool(bufferSize: 5003, limit: 8), poolB: BufferPool(bufferSize: 40_001, limit: 8))
        p.a.greedySend = true
        p.b.greedySend = true
        p.a.maxIO = 7000
        p.b.maxIO = 7000
        for y in [p.a, p.b] { y.configure = { $0.toSend = .max / 2 } }
        var ids: [UInt32] = []
        for i in 0..<6 {
            let x = i % 2 == 0 ? p.a : p.b
            let id = x.open(now: p.now)!
            x.streams[id]!.toSend = .max / 2
            ids.append(id)
        }
        var rng = SplitMix64(seed: seed ^ 0xabc)
        for _ in 0..<3000 {
            // Readers pause and resume at random.
            if rng.chance(10) {
                let e = rng.chance(50) ? p.a : p.b
                if let s = e.streams[ids[rng.below(ids.count)]] { s.consuming.toggle() }
            }
            p.step()
            for e in [p.a, p.b] {
                for (id, s) in e.mux.streams {
                    #expect(s.recvCredit >= 0 && s.recvCredit <= s.receive.freeSpace,
                            "\(e.name) stream \(id): recvCredit \(s.recvCredit), free \(s.receive.freeSpace)")
                    #expect(s.sendCredit >= 0)
                }
                #expect(e.mux.tx.count <= e.mux.tx.capacity && e.mux.rx.count <= e.mux.rx.capacity)
            }
            if !p.failures.isEmpty { break }
        }
        Self.expectClean(p)
        #expect(p.a.mux.bytesIn > 1_000_000 && p.b.mux.bytesIn > 1_000_000, "the run moved too little to mean anything")
    }

    // MARK: - Peers that break the rules

    /// DATA beyond the credit we granted fails the tunnel; DATA up to it is fine.
    @Test(arguments: [(0, 1025), (1024, 1), (1000, 25), (1, 16_000)])
    func creditViolation(legit: Int, extra: Int) {
        let p = Pump(seed: 61, poolB: BufferPool(bufferSize: 1024, limit: 4))
        let id = Self.openAccepted(p, from: p.a)
        p.b.streams[id]!.consuming = false
        p.a.streams[id]!.toSend = UInt64(legit)
        #expect(p.settle())
        #expect(p.b.mux.receiveBuffer(id)!.count == legit)
        Self.inject(p.b, FrameCodec.encode(.data, stream: id, payload: [UInt8](repeating: 0x55, count: extra)))
        p.b.pollAll(now: p.now)
        #expect(p.b.failures == [.creditViolation(id)])
        #expect(p.b.mux.poll(now: p.now) == nil)
        #expect(p.b.mux.receiveBuffer(id)!.count == legit, "violating bytes were stored")
    }

    @Test func dataExactlyAtCreditIsAccepted() {
        let p = Pump(seed: 62, poolB: BufferPool(bufferSize: 1024, limit: 4))
        let id = Self.openAccepted(p, from: p.a)
        p.b.streams[id]!.consuming = false
        p.a.streams[id]!.toSend = 1000
        #expect(p.settle())
        // The real sender has 24 bytes of credit left; a crafted frame of exactly 24 is within it.
        Self.inject(p.b, FrameCodec.encode(.data, stream: id, payload: [UInt8](repeating: 0x55, count: 24)))
        p.b.pollAll(now: p.now)
        #expect(p.b.failures.isEmpty)
        #expect(p.b.mux.receiveBuffer(id)!.count == 1024)
        #expect(p.b.events.last == .data(id))
    }

    @Test(arguments: [FrameType.data.rawValue, FrameType.ping.rawValue, 0x99])
    func oversizedFrameFails(type: UInt8) {
        let p = Pump(seed: 63)
        let n = WireProtocol.maxPayload + 1
        Self.inject(p.b, [type, 0, UInt8(n >> 8), UInt8(n & 0xff), 0, 0, 0, 1])
        p.b.pollAll(now: p.now)
        #expect(p.b.failures == [.oversized(n)])
        #expect(p.b.mux.poll(now: p.now) == nil)
    }

    struct BadFrame: CustomTestStringConvertible, @unchecked Sendable {
        var name: String
        var bytes: [UInt8]
        var failure: MuxFailure
        var testDescription: String { name }
    }

    static let goodOpen = OpenPayload(target: .device(AgentID(bytes: [UInt8](repeating: 1, count: 20))!), window: 1000).encode()

    static let badFrames: [BadFrame] = {
        func f(_ name: String, _ t: FrameType, _ stream: UInt32, _ payload: [UInt8], _ failure: MuxFailure) -> BadFrame {
            BadFrame(name: name, bytes: FrameCodec.encode(t, stream: stream, payload: payload), failure: failure)
        }
        var badKind = goodOpen
        badKind[0] = 3
        var badFamily = goodOpen
        badFamily[45] = 5
        return [
            f("OPEN with target kind 3", .open, 5, badKind, .malformed(0x10)),
            f("OPEN with address family 5", .open, 5, badFamily, .malformed(0x10)),
            f("OPEN on stream 0", .open, 0, goodOpen, .malformed(0x10)),
            f("OPEN with a trailing byte", .open, 5, goodOpen + [0], .malformed(0x10)),
            f("WINDOW of 0", .window, 1, [0, 0, 0, 0], .malformed(0x16)),
            f("WINDOW of 0 on an unknown stream", .window, 77, [0, 0, 0, 0], .malformed(0x16)),
            f("WINDOW of 5 bytes", .window, 1, [0, 0, 0, 0, 1], .malformed(0x16)),
            f("WINDOW on stream 0", .window, 0, [0, 0, 0, 1], .malformed(0x16)),
            f("DATA of length 0", .data, 1, [], .malformed(0x13)),
            f("DATA on stream 0", .data, 0, [1], .malformed(0x13)),
            f("FIN with a payload", .fin, 1, [0], .malformed(0x14)),
            f("PING on stream 5", .ping, 5, [0, 0, 0, 0, 0, 0, 0, 1], .malformed(0x20)),
            f("PING of 7 bytes", .ping, 0, [0, 0, 0, 0, 0, 0, 1], .malformed(0x20)),
            f("PONG on stream 1", .pong, 1, [0, 0, 0, 0, 0, 0, 0, 1], .malformed(0x21)),
            f("GOAWAY on stream 2", .goaway, 2, [7, 0, 0, 0, 1], .malformed(0x22)),
            f("GOAWAY of 4 bytes", .goaway, 0, [7, 0, 0, 0], .malformed(0x22)),
            f("ACCEPT of 3 bytes", .accept, 2, [0, 0, 1], .malformed(0x11)),
            f("ACCEPT on stream 0", .accept, 0, [0, 0, 0, 1], .malformed(0x11)),
            f("REFUSE of 0 bytes", .refuse, 2, [], .malformed(0x12)),
            f("RESET of 2 bytes", .reset, 1, [1, 1], .malformed(0x15)),
            f("RESET on stream 0", .reset, 0, [1], .malformed(0x15)),
            f("FIN on the acceptor's stream twice", .fin, 1, [], .unexpected(0x14)),   // see test: a FIN already came
            f("CHALLENGE after the hello", .challenge, 0, [1], .unexpected(0x01)),
            f("DENIED after the hello", .denied, 0, [], .unexpected(0x04)),
            f("ACCEPT for a stream we did not open", .accept, 1, [0, 0, 1, 0], .unexpected(0x11)),
            f("REFUSE for an open stream", .refuse, 1, [3], .unexpected(0x12)),
            f("DATA after FIN", .data, 1, [1], .unexpected(0x13)),
        ]
    }()

    /// Each bad frame reaches a relay-side Mux holding an open, half-closed
    /// stream 1 (the agent opened it, sent 10 bytes and FIN): the tunnel fails with
    /// the named failure, once, and stays failed.
    @Test(arguments: badFrames)
    func malformedOrUnexpectedFrameFailsTheTunnel(bad: BadFrame) {
        let p = Pump(seed: 64)
        let id = Self.openAccepted(p, from: p.a)
        #expect(id == 1)
        p.a.streams[id]!.toSend = 10
        p.a.streams[id]!.finishWhenSent = true
        #expect(p.run { p.b.streams[id]?.finished == true })
        #expect(p.settle())
        let txBefore = p.b.mux.tx.count
        Self.inject(p.b, bad.bytes)
        p.b.pollAll(now: p.now)
        #expect(p.b.failures == [bad.failure])
        // Sticky: nothing more comes out, whatever arrives or however long we wait.
        Self.inject(p.b, FrameCodec.encode(.ping, stream: 0, payload: [0, 0, 0, 0, 0, 0, 0, 9]))
        p.advance(ms: 10 * MuxLimits.defaultHeartbeatMs)
        #expect(p.b.mux.poll(now: p.now) == nil)
        #expect(p.b.mux.isFailed)
        #expect(p.b.mux.nextDeadline == nil)
        p.b.mux.produce()
        p.b.mux.ping(now: p.now)
        #expect(p.b.mux.tx.count == txBefore, "a failed Mux wrote frames")
        #expect(p.b.mux.open(.hostname("x"), now: p.now) == nil)
        #expect(p.b.failures.count == 1)
    }

    /// RESUME (version 2) goes relay -> agent on stream 0 after the hello: the agent gets
    /// it as an event; a relay that receives one fails the tunnel.
    @Test func resumeFramesGoFromRelayToAgentOnly() {
        let p = Pump(seed: 66)
        let payload = ResumeMessage(lifetimeSeconds: 60, psk: [UInt8](repeating: 1, count: 32), identity: [7, 7]).encode()
        #expect(p.b.mux.sendResume(payload))
        #expect(p.run { !p.a.resumes.isEmpty })
        #expect(p.a.resumes == [payload])
        #expect(p.a.failures.isEmpty && p.b.failures.isEmpty)
        Self.inject(p.b, FrameCodec.encode(.resume, stream: 0, payload: payload))
        p.b.pollAll(now: p.now)
        #expect(p.b.failures == [.unexpected(FrameType.resume.rawValue)])
        // Not before the hello is over.
        let early = Pump(seed: 67, helloDone: false)
        #expect(!early.b.mux.sendResume(payload))
    }

    /// Unknown frame types are skipped (their length is known) and counted; the
    /// tunnel carries on.
    @Test func unknownFrameTypesAreSkipped() {
        let p = Pump(seed: 65)
        let unknown: [(UInt8, UInt32, Int)] = [
            (0x00, 0, 0), (0x05, 1, 3), (0x0f, 2, 1), (0x17, 9, 100), (0x25, 0, 8), (0x30, 0, WireProtocol.maxPayload),
            (0x7f, 3, 2), (0xff, 0xffff_ffff, 1),
        ]
        for (t, stream, n) in unknown {
            var frame: [UInt8] = [t, 0x5a, UInt8(n >> 8), UInt8(n & 0xff),
                                  UInt8(stream >> 24), UInt8((stream >> 16) & 0xff), UInt8((stream >> 8) & 0xff), UInt8(stream & 0xff)]
            frame += [UInt8](repeating: 0x13, count: n)   // payload bytes that look like frame types
            Self.inject(p.b, frame)
            p.b.pollAll(now: p.now)
        }
        Self.inject(p.b, FrameCodec.encode(.ping, stream: 0, payload: [0, 0, 0, 0, 0, 0, 0, 42]))
        p.b.pollAll(now: p.now)
        #expect(p.b.failures.isEmpty)
        #expect(p.b.events.isEmpty)
        #expect(p.b.mux.unknownFrames == UInt64(unknown.count))
        p.b.mux.produce()
        #expect(p.b.mux.tx.peekAll() == FrameCodec.encode(.pong, stream: 0, payload: [0, 0, 0, 0, 0, 0, 0, 42]))
        // The tunnel still works.
        let id = Self.openAccepted(p, from: p.a)
        p.a.streams[id]!.toSend = 100_000
        p.a.streams[id]!.finishWhenSent = true
        #expect(p.run { p.b.streams[id]!.done })
        Self.expectClean(p)
    }

    @Test func unknownFrameTypesAreSkippedDuringTheHello() {
        let p = Pump(seed: 66, helloDone: false)
        Self.inject(p.a, [0x40, 0, 0, 2, 0, 0, 0, 0, 1, 2])
        Self.inject(p.a, FrameCodec.encode(.challenge, stream: 0, payload: [9]))
        p.a.pollAll(now: p.now)
        #expect(p.a.events == [.hello(.challenge, [9])])
        #expect(p.a.mux.unknownFrames == 1)
    }

    struct BadOpen: CustomTestStringConvertible, @unchecked Sendable {
        var name: String
        /// Frames the relay side receives, in order; the last one fails.
        var openIDs: [UInt32]
        /// Open stream 1 the legitimate way first (and optionally close it).
        var legitFirst: Bool
        var closeLegit: Bool
        var toAgent: Bool
        var bad: UInt32
        var testDescription: String { name }
    }

    static let badOpens: [BadOpen] = [
        BadOpen(name: "even id from the agent", openIDs: [2], legitFirst: false, closeLegit: false, toAgent: false, bad: 2),
        BadOpen(name: "odd id from the relay", openIDs: [3], legitFirst: false, closeLegit: false, toAgent: true, bad: 3),
        BadOpen(name: "id 1 reused while open", openIDs: [1], legitFirst: true, closeLegit: false, toAgent: false, bad: 1),
        BadOpen(name: "id 1 reused after close", openIDs: [1], legitFirst: true, closeLegit: true, toAgent: false, bad: 1),
        BadOpen(name: "id going down", openIDs: [7, 5], legitFirst: false, closeLegit: false, toAgent: false, bad: 5),
        BadOpen(name: "same id twice", openIDs: [9, 9], legitFirst: false, closeLegit: false, toAgent: false, bad: 9),
        BadOpen(name: "relay id going down", openIDs: [8, 4], legitFirst: false, closeLegit: false, toAgent: true, bad: 4),
    ]

    @Test(arguments: badOpens)
    func openWithBadStreamIDFails(c: BadOpen) {
        let p = Pump(seed: 67)
        if c.legitFirst {
            let id = Self.openAccepted(p, from: p.a)
            #expect(id == 1)
            if c.closeLegit {
                p.a.reset(id, .closed)
                #expect(p.settle())
                #expect(p.b.mux.streamCount == 0)
            }
        }
        let target = c.toAgent ? p.a : p.b
        target.openPolicy = .ignore
        let before = target.events.count
        for id in c.openIDs {
            Self.inject(target, FrameCodec.encode(.open, stream: id, payload: Self.goodOpen))
            target.pollAll(now: p.now)
        }
        #expect(target.failures == [.badStreamID(c.bad)])
        #expect(target.events[before...].filter { if case .opened = $0 { return true } else { return false } }.count
                == c.openIDs.count - 1)
    }

    /// One byte altered in flight (TLS would catch this; the Mux must survive it
    /// anyway): whatever the byte was, neither side traps, a side that detects it
    /// fails its tunnel once and stays failed, and a side that does not keeps its
    /// invariants. Altered DATA payload bytes are invisible to the Mux by design.
    @Test(arguments: Array(UInt64(1)...24))
    func oneByteAlteredInFlight(seed: UInt64) {
        let p = Pump(seed: seed)
        p.a.strict = false
        p.b.strict = false
        var rng = SplitMix64(seed: seed &* 0x51)
        for y in [p.a, p.b] {
            y.configure = { s in
                s.toSend = 200_000
                s.finishWhenSent = true
            }
        }
        var ids: [UInt32] = []
        for x in [p.a, p.b, p.a] {
            let id = x.open(now: p.now)!
            x.streams[id]!.toSend = 200_000
            x.streams[id]!.finishWhenSent = true
            ids.append(id)
        }
        for _ in 0..<rng.int(1, 40) { p.step() }
        let to = rng.chance(50) ? p.a : p.b
        if seed % 2 == 0 {
            // A byte of a frame header: after poll, `rx` starts with the next frame.
            #expect(p.run(maxSteps: 1000) { to.mux.rx.count >= WireProtocol.headerSize })
            let w = UnsafeMutableRawBufferPointer(mutating: to.mux.rx.readable)
            w[rng.below(WireProtocol.headerSize)] ^= UInt8(rng.int(1, 255))
        } else {
            // Any byte on its way.
            let from = p.peer(of: to)
            if !from.mux.tx.isEmpty {
                let w = UnsafeMutableRawBufferPointer(mutating: from.mux.tx.readable)
                w[rng.below(w.count)] ^= UInt8(rng.int(1, 255))
            }
        }
        var n = 0
        while n < 5_000 && p.failures.isEmpty {
            let allDone = ids.allSatisfy { id in
                [p.a, p.b].allSatisfy { $0.streams[id]?.done ?? ($0.gone[id] != nil) }
            }
            if allDone { break }
            p.step()
            p.advance(ms: 10)
            n += 1
        }
        for e in [p.a, p.b] {
            #expect(e.failures.count <= 1)
            if e.mux.isFailed {
                #expect(e.mux.poll(now: p.now) == nil)
            } else {
                #expect(e.mux.pool.inUse == e.mux.streamCount)
                for (id, s) in e.mux.streams {
                    #expect(s.recvCredit >= 0 && s.recvCredit <= s.receive.freeSpace, "stream \(id)")
                }
            }
        }
    }

    /// Issue 14: a tunnel's multiplexer visits only streams with something due. A hundred
    /// idle open streams beside one busy one: after the busy one is done and read, nothing is
    /// left to visit, and the idle ones still work afterwards.
    @Test func idleStreamsAreNotVisitedEachTurn() {
        let p = Pump(seed: 41, poolA: BufferPool(bufferSize: 64 * 1024, limit: 128),
                     poolB: BufferPool(bufferSize: 64 * 1024, limit: 128))
        var idle: [UInt32] = []
        for _ in 0..<100 { idle.append(Self.openAccepted(p, from: p.a)) }
        #expect(p.settle())
        #expect(p.a.mux.streamsNeedingWork == 0)
        #expect(p.b.mux.streamsNeedingWork == 0)
        let busy = Self.openAccepted(p, from: p.a)
        p.a.streams[busy]!.toSend = 3_000_000
        p.a.streams[busy]!.finishWhenSent = true
        #expect(p.run { p.b.streams[busy]?.done == true })
        // While data moved, only the busy stream was on the list.
        #expect(p.b.mux.streamsNeedingWork <= 1)
        #expect(p.settle())
        #expect(p.a.mux.streamsNeedingWork == 0)
        #expect(p.b.mux.streamsNeedingWork == 0)
        // An idle stream wakes up and carries data both ways.
        let one = idle[50]
        p.a.streams[one]!.toSend = 200_000
        p.b.streams[one]!.toSend = 200_000
        #expect(p.run { p.a.streams[one]!.received == 200_000 && p.b.streams[one]!.received == 200_000 })
        #expect(p.settle())
        #expect(p.a.mux.streamsNeedingWork == 0 && p.b.mux.streamsNeedingWork == 0)
    }

    // MARK: - Limits

    @Test func streamLimitRefusesWithNoResources() {
        let p = Pump(seed: 71, limitsB: MuxLimits(maxStreams: 2))
        let s1 = p.a.open(now: p.now)!
        let s2 = p.a.open(now: p.now)!
        let s3 = p.a.open(now: p.now)!
        #expect(p.settle())
        #expect(p.a.streams[s1]?.phase == .open && p.a.streams[s2]?.phase == .open)
        #expect(p.a.gone[s3]?.refused == .noResources)
        #expect(p.b.mux.streamCount == 2 && p.b.mux.pool.inUse == 2)
        #expect(p.a.mux.streamCount == 2 && p.a.mux.pool.inUse == 2)
        #expect(p.b.open(now: p.now) == nil, "local open beyond maxStreams")
        // Room again after one stream goes.
        p.a.reset(s1, .closed)
        #expect(p.settle())
        let s4 = p.a.open(now: p.now)!
        #expect(p.settle())
        #expect(p.a.streams[s4]?.phase == .open)
        Self.expectClean(p)
    }

    @Test func poolExhaustionRefusesWithNoResources() {
        let p = Pump(seed: 72, poolB: BufferPool(bufferSize: 4096, limit: 1))
        let s1 = p.a.open(now: p.now)!
        let s2 = p.a.open(now: p.now)!
        #expect(p.settle())
        #expect(p.a.streams[s1]?.phase == .open)
        #expect(p.a.gone[s2]?.refused == .noResources)
        #expect(p.b.mux.pool.inUse == 1 && p.b.mux.pool.available == 0)
        #expect(p.b.mux.open(.hostname("x"), now: p.now) == nil, "local open with an empty pool")
        #expect(p.b.mux.streamCount == 1)
        Self.expectClean(p)
    }

    @Test func poolSharedByTwoTunnelsIsACap() {
        // One pool for two tunnels (as a role would share it): the cap holds across both.
        let pool = BufferPool(bufferSize: 1024, limit: 3)
        let p = Pump(seed: 73, poolB: pool)
        let q = Pump(seed: 74, poolB: pool)
        for _ in 0..<2 { p.a.open(now: p.now) }
        #expect(p.settle())
        for _ in 0..<2 { q.a.open(now: q.now) }
        #expect(q.settle())
        #expect(pool.inUse == 3)
        #expect(q.a.gone.values.filter { $0.refused == .noResources }.count == 1)
    }

    @Test(arguments: Reason.allCases)
    func refuseReachesTheOpener(reason: Reason) {
        let p = Pump(seed: 75)
        p.b.openPolicy = .refuse(reason)
        let id = p.a.open(now: p.now)!
        #expect(p.a.mux.pool.inUse == 1)
        #expect(p.settle())
        #expect(p.a.gone[id]?.refused == reason)
        #expect(p.a.events.contains(.refused(id, reason)))
        Self.expectEmpty(p)
    }

    // MARK: - Reset

    /// A reset in the middle of a two-way transfer: the peer sees `.reset`, data in
    /// flight for the dead stream is dropped without failure, the tunnel carries on.
    @Test(arguments: Opener.allCases)
    func resetMidTransfer(resetterSide: Opener) {
        let p = Pump(seed: 81)
        for y in [p.a, p.b] { y.configure = { $0.toSend = 8 << 20 } }
        let id = p.a.open(now: p.now)!
        p.a.streams[id]!.toSend = 8 << 20
        let (resetter, other) = Self.ends(p, resetterSide)
        #expect(p.run {
            (resetter.streams[id]?.received ?? 0) >= 256 * 1024 && other.mux.tx.count > 4096
        })
        resetter.reset(id, .connectFailed)
        let eventsBefore = resetter.events.count
        #expect(p.settle())
        #expect(other.gone[id]?.resetBy == .connectFailed)
        #expect(other.events.contains(.reset(id, .connectFailed)))
        // The resetter processed the in-flight frames for the dead stream silently.
        #expect(resetter.events.count == eventsBefore, "events after reset: \(resetter.events[eventsBefore...])")
        Self.expectEmpty(p)
        // The tunnel carries on.
        let next = Self.openAccepted(p, from: p.b)
        p.b.streams[next]!.toSend = 100_000
        p.b.streams[next]!.finishWhenSent = true
        #expect(p.run { p.a.streams[next]!.done })
        Self.expectClean(p)
    }

    @Test func resetBeforeAcceptReachesTheAcceptor() {
        let p = Pump(seed: 82)
        p.b.openPolicy = .ignore
        let id = p.a.open(now: p.now)!
        #expect(p.settle())
        #expect(p.b.streams[id]?.phase == .pendingAccept)
        p.a.reset(id, .closed)
        #expect(p.settle())
        #expect(p.b.gone[id]?.resetBy == .closed)
        Self.expectEmpty(p)
    }

    // MARK: - Timers

    @Test func openTimeout() {
        let limits = MuxLimits(heartbeatMs: 2000, openTimeoutMs: 5000)
        let p = Pump(seed: 91, limitsA: limits, limitsB: limits)
        p.b.openPolicy = .ignore
        let id = p.a.open(now: p.now)!
        #expect(p.a.mux.nextDeadline == Instant(ms: 2000))
        while p.now.ms < 4999 {
            p.advance(ms: min(100, 4999 - p.now.ms))
            p.step()
        }
        #expect(p.settle())
        #expect(p.a.streams[id]?.phase == .opening, "refused before the timeout")
        #expect(p.b.streams[id]?.phase == .pendingAccept)
        #expect(p.a.mux.nextDeadline! <= Instant(ms: 5000))
        p.advance(ms: 1)
        p.step()
        #expect(p.a.gone[id]?.refused == .timeout)
        #expect(p.a.events.contains(.refused(id, .timeout)))
        #expect(p.settle())
        #expect(p.b.gone[id]?.resetBy == .timeout, "the acceptor was not told")
        Self.expectEmpty(p)
    }

    /// An ACCEPT that crosses the opener's timeout RESET is ignored on both sides.
    @Test func acceptCrossingTheOpenTimeout() {
        let limits = MuxLimits(heartbeatMs: 2000, openTimeoutMs: 5000)
        let p = Pump(seed: 92, limitsA: limits, limitsB: limits)
        p.b.openPolicy = .ignore
        let id = p.a.open(now: p.now)!
        #expect(p.settle())
        p.now = Instant(ms: 3000)
        #expect(p.settle())   // heartbeats
        p.deliverToB = false
        p.now = Instant(ms: 5000)
        p.step()
        #expect(p.a.gone[id]?.refused == .timeout)
        p.b.accept(id)   // b answers late; its ACCEPT crosses a's RESET
        p.b.mux.produce()
        p.deliverToB = true
        #expect(p.settle())
        #expect(p.b.gone[id]?.resetBy == .timeout)
        Self.expectEmpty(p)
    }

    @Test func heartbeatPingPong() {
        let limits = MuxLimits(heartbeatMs: 1000)
        let p = Pump(seed: 93, limitsA: limits, limitsB: limits)
        #expect(p.a.mux.nextDeadline == Instant(ms: 1000))
        #expect(p.settle())
        p.now = Instant(ms: 999)
        p.step()
        #expect(p.a.mux.tx.isEmpty && p.b.mux.tx.isEmpty, "PING before the interval")
        p.now = Instant(ms: 1000)
        p.a.pollAll(now: p.now)
        p.a.mux.produce()
        // PING 1 was the round-trip probe right after the hello: the first heartbeat is 2.
        let ping1: [UInt8] = [0x20, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
        #expect(p.a.mux.tx.peekAll() == ping1)
        // 10 ms to get there, 27 ms back.
        p.now = Instant(ms: 1010)
        p.deliver(from: p.a, to: p.b)
        p.b.pollAll(now: p.now)
        p.b.mux.produce()
        let pong1: [UInt8] = [0x21, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
        #expect(Array(p.b.mux.tx.peekAll().prefix(16)) == pong1)
        p.now = Instant(ms: 1037)
        p.deliver(from: p.b, to: p.a)
        p.a.pollAll(now: p.now)
        #expect(p.a.pongs == [37])
        #expect(p.a.mux.lastRttMs == 37)
        // On demand.
        p.now = Instant(ms: 1500)
        p.a.mux.ping(now: p.now)
        p.now = Instant(ms: 1504)
        #expect(p.settle())
        #expect(p.a.pongs == [37, 4])
        Self.expectClean(p)
    }

    /// Security review, finding 5: full credit was granted before the round trip was
    /// known, so a peer could fill every buffer of the relay's pool at once. Until the
    /// first PONG a stream extends `minCredit`; once the round trip is known, credit
    /// grows to what the path needs (here, a long path: the whole buffer).
    @Test func smallCreditUntilTheRoundTripIsMeasured() {
        let p = Pump(seed: 95, helloDone: false)
        p.a.mux.helloFinished(now: p.now)
        p.b.mux.helloFinished(now: p.now)
        // b opens before any PONG came back: a's answer carries a's credit.
        guard let id = p.b.mux.open(.hostname("x"), now: p.now) else {
            Issue.record("open refused")
            return
        }
        p.b.mux.produce()
        p.deliver(from: p.b, to: p.a)
        var opened: UInt32? = nil
        while let e = p.a.mux.poll(now: p.now) {
            if case .opened(let oid, let open) = e {
                opened = oid
                #expect(open.window == UInt32(MuxLimits.minCredit))
            }
        }
        guard let oid = opened else {
            Issue.record("no OPEN")
            return
        }
        p.a.mux.accept(oid)
        p.a.mux.produce()
        p.deliver(from: p.a, to: p.b)
        p.b.pollAll(now: p.now)
        #expect(p.b.mux.info(id)?.sendCredit == MuxLimits.minCredit)
        // The round trip is measured on a 300 ms path: credit grows to the whole buffer.
        p.now = Instant(ms: 300)
        #expect(p.settle())
        #expect(p.a.mux.lastRttMs == 300)
        #expect(p.b.mux.info(id)?.sendCredit == 64 * 1024)
    }

    @Test func staleOrUnsolicitedPongIsIgnored() {
        let p = Pump(seed: 94)
        Self.inject(p.a, FrameCodec.encode(.pong, stream: 0, payload: [0, 0, 0, 0, 0, 0, 0, 1]))
        p.a.pollAll(now: p.now)
        #expect(p.a.events.isEmpty && p.a.failures.isEmpty)
    }

    /// A peer that goes silent is declared dead exactly 2 x heartbeat after the
    /// last frame from it, not a millisecond before.
    @Test(arguments: [Int64(0), 500, 1234])
    func silentPeerTimesOutAtTwiceTheHeartbeat(lastFrameAt: Int64) {
        let limits = MuxLimits(heartbeatMs: 1000)
        #expect(limits.deadAfterMs == 2000)
        let p = Pump(seed: 95, limitsA: limits, limitsB: limits)
        p.deliverToA = false   // the path from b to a is black-holed
        if lastFrameAt > 0 {
            while p.now.ms < lastFrameAt {
                p.advance(ms: min(100, lastFrameAt - p.now.ms))
                p.step()
            }
            Self.inject(p.a, FrameCodec.encode(.ping, stream: 0, payload: [0, 0, 0, 0, 0, 0, 0, 7]))
            p.a.pollAll(now: p.now)
        }
        let deadline = lastFrameAt + 2000
        while p.now.ms < deadline - 1 {
            p.advance(ms: min(100, deadline - 1 - p.now.ms))
            p.step()
        }
        #expect(p.a.failures.isEmpty, "dead before 2 x heartbeat")
        #expect(p.a.mux.nextDeadline == Instant(ms: deadline))
        p.advance(ms: 1)
        p.step()
        #expect(p.a.failures == [.peerTimeout])
        #expect(p.b.failures.isEmpty, "b hears a's heartbeats")
        p.advance(ms: 5000)
        p.step()
        #expect(p.a.failures == [.peerTimeout])
    }

    // MARK: Keepalive announced by the device (issue 19: idle cost on metered links)

    static func announcing(_ ms: Int64) -> MuxLimits {
        var l = MuxLimits(heartbeatMs: ms)
        l.announceHeartbeat = true
        return l
    }

    /// Runs both sides to `until` in steps of `stepMs` (frames delivered each step).
    static func runClock(_ p: Pump, to until: Int64, stepMs: Int64 = 1000) {
        while p.now.ms < until {
            p.advance(ms: min(stepMs, until - p.now.ms))
            p.step()
            p.step()
        }
    }

    @Test func anAnnouncedKeepaliveStopsTheRelaysPings() {
        let p = Pump(seed: 97, limitsA: Self.announcing(60_000), limitsB: MuxLimits(heartbeatMs: 1000))
        #expect(p.b.mux.peerHeartbeatMs == 60_000)
        #expect(p.a.mux.peerHeartbeatMs == nil)
        let relayPings = p.b.mux.pingCounter
        Self.runClock(p, to: 59_000)
        // The relay's heartbeat is 1 s, but it has not pinged the device since its probe.
        #expect(p.b.mux.pingCounter == relayPings)
        #expect(p.a.mux.pingCounter == 1, "the device pings every 60 s")
        Self.runClock(p, to: 130_000)
        #expect(p.a.mux.pingCounter == 3)
        #expect(p.b.mux.pingCounter == relayPings)
        #expect(p.failures.isEmpty)
        // The relay's watch follows the device's interval: two missed PINGs.
        #expect(p.b.mux.nextDeadline == p.b.mux.lastReceived.adding(ms: 120_000))
    }

    @Test func aSilentAnnouncingDeviceIsDeadAfterTwoOfItsIntervals() {
        let p = Pump(seed: 98, limitsA: Self.announcing(10_000), limitsB: MuxLimits(heartbeatMs: 1000))
        Self.runClock(p, to: 10_500)   // one device PING has arrived
        let heard = p.b.mux.lastReceived.ms
        p.deliverToB = false           // the device's path goes dark
        Self.runClock(p, to: heard + 19_900, stepMs: 100)
        #expect(p.b.failures.isEmpty, "dead before 2 x the announced interval")
        Self.runClock(p, to: heard + 20_000, stepMs: 100)
        #expect(p.b.failures == [.peerTimeout])
    }

    @Test func anUnansweredPingFailsAfterThePongTimeoutNotTwoIntervals() {
        let p = Pump(seed: 99, limitsA: Self.announcing(240_000), limitsB: MuxLimits())
        Self.runClock(p, to: 239_000, stepMs: 10_000)
        #expect(p.failures.isEmpty)
        p.deliverToA = false   // the relay's answers are lost from now on
        Self.runClock(p, to: 240_000 + MuxLimits.defaultPongTimeoutMs - 100, stepMs: 100)
        #expect(p.a.failures.isEmpty)
        Self.runClock(p, to: 240_000 + MuxLimits.defaultPongTimeoutMs, stepMs: 100)
        #expect(p.a.failures == [.peerTimeout], "found at the PONG timeout, not after 480 s")
    }

    @Test func anAnnouncedIntervalIsClamped() {
        let p = Pump(seed: 100, limitsB: MuxLimits(heartbeatMs: 1000))
        Self.inject(p.b, FrameCodec.encode(.keepalive, stream: 0, payload: ControlPayload.window(1)))
        p.b.pollAll(now: p.now)
        #expect(p.b.mux.peerHeartbeatMs == MuxLimits.keepaliveMinMs)
        Self.inject(p.b, FrameCodec.encode(.keepalive, stream: 0, payload: ControlPayload.window(UInt32.max)))
        p.b.pollAll(now: p.now)
        #expect(p.b.mux.peerHeartbeatMs == MuxLimits.keepaliveMaxMs)
        Self.inject(p.b, FrameCodec.encode(.keepalive, stream: 0, payload: [1, 2]))
        p.b.pollAll(now: p.now)
        #expect(p.b.failures == [.malformed(0x24)])
    }

    @Test func talkingPeerNeverTimesOut() {
        let limits = MuxLimits(heartbeatMs: 1000)
        let p = Pump(seed: 96, limitsA: limits, limitsB: limits)
        for _ in 0..<600 {
            p.advance(ms: 100)
            p.step()
        }
        Self.expectClean(p)
        #expect(p.a.pongs.count >= 55 && p.b.pongs.count >= 55)
        #expect(p.a.pongs.allSatisfy { $0 >= 0 && $0 < limits.heartbeatMs })
    }

    // MARK: - Goaway

    @Test func goaway() {
        let p = Pump(seed: 97)
        let live = Self.openAccepted(p, from: p.a)
        p.a.streams[live]!.toSend = 1 << 20
        p.a.streams[live]!.finishWhenSent = true
        p.b.mux.goaway(.goingAway, retryAfterMs: 30_000)
        #expect(p.b.mux.goingAway)
        #expect(p.b.open(now: p.now) == nil, "open after our own goaway")
        let late = p.a.open(now: p.now)!   // a has not heard yet
        #expect(p.run { p.a.goaways.count == 1 && p.a.gone[late] != nil })
        #expect(p.a.goaways.first?.0 == .goingAway && p.a.goaways.first?.1 == 30_000)
        #expect(p.a.mux.peerGoingAway)
        #expect(p.a.gone[late]?.refused == .goingAway)
        #expect(p.a.open(now: p.now) == nil, "open after the peer's goaway")
        // Streams already open drain normally.
        #expect(p.run { p.b.streams[live]!.done })
        #expect(p.b.streams[live]!.received == 1 << 20)
        Self.expectClean(p)
    }

    // MARK: - Ordering

    /// Stream ids must reach the peer in increasing order (the receiver fails
    /// the tunnel otherwise), even when an OPEN has to wait for room in `tx`.
    /// (Regression: a long hostname OPEN that did not fit stayed pending while the
    /// next, shorter device OPEN went out at once, so the peer saw id n+2 before
    /// id n and failed with `.badStreamID(n)`; pending OPENs were also written in
    /// dictionary order.)
    @Test func opensLeaveInIDOrderWhenTxIsFull() {
        let limitsA = MuxLimits(rxCapacity: 16384, txCapacity: 16384 + MuxLimits.controlReserve)
        let p = Pump(seed: 98, limitsA: limitsA,
                     poolA: BufferPool(bufferSize: 256, limit: 400), poolB: BufferPool(bufferSize: 256, limit: 400))
        let longName = String(repeating: "a", count: 253)
        let longFrame = 8 + 1 + 4 + 1 + 253 + 20 + 1 + 2
        let device = OpenPayload.Target.device(AgentID(bytes: [UInt8](repeating: 2, count: 20))!)
        // Nothing drains a's tx (TLS is slow): fill it with OPENs.
        while p.a.mux.tx.freeSpace >= longFrame { #expect(p.a.open(device, now: p.now) != nil) }
        #expect(p.a.mux.tx.freeSpace >= 56)
        let long = p.a.open(.hostname(longName), now: p.now)!
        let short = p.a.open(device, now: p.now)!
        // Several OPENs wait at once.
        var waiting = [long, short]
        for _ in 0..<20 { waiting.append(p.a.open(device, now: p.now)!) }
        #expect(short == long + 2)
        #expect(p.settle())
        Self.expectClean(p)
        for id in waiting { #expect(p.a.streams[id]?.phase == .open, "stream \(id)") }
        let opened = p.b.events.compactMap { e -> UInt32? in if case .opened(let id, _) = e { return id } else { return nil } }
        #expect(opened == opened.sorted())
    }
}
