#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@testable import Mux
import Testing
import Wire

// An in-memory pump joining two sans-IO multiplexers, with a simulated clock.
//
// `Pump` owns an agent-side and a relay-side `Mux` (each with its own
// `BufferPool`) and plays the owner of both, in the order Mux.swift's header
// documents: append peer bytes to `rx`, drain `poll(now:)`, move stream bytes,
// `produce()`; the other side's turn then takes bytes out of this side's `tx`.
// Bytes move in random chunk sizes (a seeded SplitMix64, so a failing seed
// replays), so frames arrive split at every possible offset.
//
// Stream content is a deterministic pattern per (stream id, direction), so a
// receiver checks every byte it consumes against the sender's offset with one
// memcmp: received bytes are always a prefix of the bytes sent. That keeps a
// 16 MiB transfer well under a second in a debug build.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, seedable, good enough for tests.
struct SplitMix64 {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform enough in 0..<n (n > 0).
    mutating func below(_ n: Int) -> Int {
        precondition(n > 0)
        return Int(next() % UInt64(n))
    }

    /// In lo...hi.
    mutating func int(_ lo: Int, _ hi: Int) -> Int { lo + below(hi - lo + 1) }

    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    /// A size from a mix of scales: mostly large, sometimes tiny (1...16) or
    /// medium (1...1500), so frames are split at every kind of offset.
    mutating func size(max: Int) -> Int {
        precondition(max >= 1)
        let r = below(16)
        let cap = r == 0 ? 16 : r < 4 ? 1500 : max
        return int(1, Swift.min(cap, max))
    }
}

/// The bytes of every stream: byte `k` of stream `id` in direction `dir` is
/// `table[(base(id, dir) + k) % period]`. `table` repeats its first `period`
/// bytes so any run of up to `maxRun` bytes is one contiguous slice.
enum Pattern {
    static let period = 65_521   // prime: runs at different offsets differ
    static let maxRun = 1 << 18
    static let table: [UInt8] = {
        var t = [UInt8](repeating: 0, count: period + maxRun)
        var x: UInt32 = 0x2545_F491
        for i in 0..<period {
            x ^= x << 13
            x ^= x >> 17
            x ^= x << 5
            t[i] = UInt8(truncatingIfNeeded: x >> 11)
        }
        for i in period..<t.count { t[i] = t[i - period] }
        return t
    }()

    static func base(_ id: UInt32, fromAgent: Bool) -> Int {
        (Int(id) &* 7_919 &+ (fromAgent ? 0 : 31_337)) % period
    }

    /// Calls `body` with the `count` pattern bytes at stream offset `offset`.
    static func withRun<R>(_ id: UInt32, fromAgent: Bool, offset: UInt64, count: Int,
                           _ body: (UnsafeRawBufferPointer) -> R) -> R {
        precondition(count <= maxRun)
        let start = (base(id, fromAgent: fromAgent) + Int(offset % UInt64(period))) % period
        return table.withUnsafeBytes { t in
            body(UnsafeRawBufferPointer(rebasing: t[start..<(start + count)]))
        }
    }

    /// Whether `bytes` are the pattern at stream offset `offset`.
    static func matches(_ bytes: UnsafeRawBufferPointer, _ id: UInt32, fromAgent: Bool, offset: UInt64) -> Bool {
        if bytes.isEmpty { return true }
        return withRun(id, fromAgent: fromAgent, offset: offset, count: bytes.count) { p in
            memcmp(p.baseAddress!, bytes.baseAddress!, bytes.count) == 0
        }
    }
}

/// One end of one stream, as its owner in the test sees it.
final class StreamEnd {
    enum Phase: Equatable {
        case opening         // we opened, no answer yet
        case pendingAccept   // the peer opened, we have not answered
        case open
    }

    let id: UInt32
    var phase: Phase
    // Outgoing.
    /// Bytes the owner wants to send in total (raise it to send more).
    var toSend: UInt64 = 0
    var sent: UInt64 = 0
    /// Call finish() once `sent == toSend`.
    var finishWhenSent = false
    var finishCalled = false
    // Incoming.
    var received: UInt64 = 0
    /// false: the owner never reads this stream's receive buffer (a stalled consumer).
    var consuming = true
    var finished = false
    /// received + buffered when `.finished` arrived: everything the peer sent.
    var totalAtFin: UInt64? = nil
    var corrupt = false
    // How it ended.
    var refused: Reason? = nil
    var resetBy: Reason? = nil

    init(id: UInt32, phase: Phase) {
        self.id = id
        self.phase = phase
    }

    var done: Bool { finished && totalAtFin == received }
}

/// The owner of one side: handles events, keeps per-stream sinks and sources.
final class Endpoint {
    enum OpenPolicy: Equatable {
        case accept
        case refuse(Reason)
        /// Leave `.opened` streams unanswered (the test decides).
        case ignore
    }

    let name: String
    let mux: Mux
    var isAgent: Bool { mux.side == .agent }
    var openPolicy: OpenPolicy = .accept
    /// Called for every stream the peer opens, before the policy answers it.
    var configure: ((StreamEnd) -> Void)? = nil
    /// Always offer `send` the whole allowance (instead of a random amount).
    var greedySend = false
    /// Streams the Mux holds, by id (kept equal to `mux.streamIDs`).
    var streams: [UInt32: StreamEnd] = [:]
    /// Streams that ended (refused, reset by the peer, or removed by us).
    var gone: [UInt32: StreamEnd] = [:]
    var events: [MuxEvent] = []
    var failures: [MuxFailure] = []
    var pongs: [Int64] = []
    var goaways: [(Reason, UInt32)] = []
    var resumes: [[UInt8]] = []
    var hellos: [(FrameType, [UInt8])] = []
    /// Sends and reads are random up to this many bytes per turn.
    var maxIO = 1 << 17
    /// Progress in the current step (events, bytes sent, bytes consumed).
    var progress = 0
    /// false: content that differs from what was sent is only counted (pumps that
    /// alter bytes in flight), not recorded as a test failure.
    var strict = true
    /// Streams whose received bytes differed from what was sent (with `strict` off).
    var corruptions = 0
    /// Filled by `Pump`: bytes each direction of each stream has sent.
    unowned(unsafe) var pump: Pump! = nil

    init(name: String, mux: Mux) {
        self.name = name
        self.mux = mux
    }

    func stream(_ id: UInt32) -> StreamEnd? { streams[id] ?? gone[id] }

    /// Drains `poll` (step 2 of the calling convention).
    func pollAll(now: Instant) {
        while let e = mux.poll(now: now) { handle(e) }
    }

    func handle(_ e: MuxEvent) {
        events.append(e)
        progress += 1
        switch e {
        case .hello(let t, let p):
            hellos.append((t, p))
        case .opened(let id, _):
            let s = StreamEnd(id: id, phase: .pendingAccept)
            streams[id] = s
            configure?(s)
            switch openPolicy {
            case .accept: accept(id)
            case .refuse(let r): refuse(id, r)
            case .ignore: break
            }
        case .accepted(let id):
            streams[id]?.phase = .open
        case .refused(let id, let r):
            if let s = streams.removeValue(forKey: id) {
                s.refused = r
                gone[id] = s
            }
        case .data:
            break
        case .finished(let id):
            if let s = streams[id] {
                s.finished = true
                s.totalAtFin = s.received + UInt64(mux.receiveBuffer(id)?.count ?? 0)
                if strict { pump.checkFin(s, receiverIsAgent: isAgent) }
            }
        case .reset(let id, let r):
            if let s = streams.removeValue(forKey: id) {
                s.resetBy = r
                gone[id] = s
            }
        case .credit:
            break
        case .pong(let rtt):
            pongs.append(rtt)
        case .goaway(let r, let ms):
            goaways.append((r, ms))
        case .resume(let p):
            resumes.append(p)
        case .failed(let f):
            failures.append(f)
        }
    }

    // MARK: Commands, mirrored in the model

    @discardableResult
    func open(_ target: OpenPayload.Target = .hostname("dev.example.com"), caller: PeerAddress = .none,
              now: Instant) -> UInt32? {
        guard let id = mux.open(target, caller: caller, now: now) else { return nil }
        streams[id] = StreamEnd(id: id, phase: .opening)
        return id
    }

    func accept(_ id: UInt32) {
        guard let s = streams[id], s.phase == .pendingAccept else { return }
        mux.accept(id)
        s.phase = .open
    }

    func refuse(_ id: UInt32, _ r: Reason) {
        guard let s = streams[id], s.phase == .pendingAccept else { return }
        mux.refuse(id, r)
        streams[id] = nil
        gone[id] = s
    }

    func reset(_ id: UInt32, _ r: Reason) {
        guard let s = streams.removeValue(forKey: id) else { return }
        mux.reset(id, r)
        gone[id] = s
    }

    func release(_ id: UInt32) {
        guard let s = streams.removeValue(forKey: id) else { return }
        mux.release(id)
        gone[id] = s
    }

    func finish(_ id: UInt32) {
        guard let s = streams[id], s.phase == .open, !s.finishCalled else { return }
        mux.finish(id)
        s.finishCalled = true
    }

    /// Sends up to `limit` more of the stream's pattern; returns bytes taken.
    @discardableResult
    func sendSome(_ s: StreamEnd, limit: Int) -> Int {
        let want = Int(min(UInt64(limit), s.toSend - s.sent))
        let n = min(want, mux.sendAllowance(s.id))
        if n <= 0 { return 0 }
        let taken = Pattern.withRun(s.id, fromAgent: isAgent, offset: s.sent, count: n) { mux.send(s.id, $0) }
        #expect(taken == n, "\(name): send took \(taken) of an allowance of \(n)")
        s.sent += UInt64(taken)
        pump.recordSent(s.id, fromAgent: isAgent, UInt64(taken))
        progress += taken
        return taken
    }

    /// Reads and checks up to `limit` bytes of the stream's receive buffer.
    @discardableResult
    func consumeSome(_ s: StreamEnd, limit: Int) -> Int {
        guard let q = mux.receiveBuffer(s.id), !q.isEmpty else { return 0 }
        let n = min(limit, q.count)
        let chunk = UnsafeRawBufferPointer(rebasing: q.readable[0..<n])
        if !Pattern.matches(chunk, s.id, fromAgent: !isAgent, offset: s.received) {
            if !s.corrupt { corruptions += 1 }
            s.corrupt = true
            if strict {
                Issue.record("\(name): stream \(s.id) bytes \(s.received)..<\(s.received + UInt64(n)) differ from what was sent")
            }
        }
        let sentByPeer = pump.sentTotal(s.id, fromAgent: !isAgent)
        if strict && s.received + UInt64(n) > sentByPeer {
            Issue.record("\(name): stream \(s.id) received \(s.received + UInt64(n)) bytes, peer sent \(sentByPeer)")
        }
        q.consume(n)
        s.received += UInt64(n)
        progress += n
        return n
    }

    /// Step 3: move stream bytes for every stream, in id order.
    func moveBytes(_ rng: inout SplitMix64) {
        for id in streams.keys.sorted() {
            guard let s = streams[id] else { continue }
            if s.consuming { consumeSome(s, limit: rng.size(max: maxIO)) }
            if s.phase == .open && s.sent < s.toSend { sendSome(s, limit: greedySend ? .max : rng.size(max: maxIO)) }
            if s.phase == .open && s.finishWhenSent && s.sent == s.toSend && !s.finishCalled { finish(id) }
        }
    }
}

/// Two joined multiplexers and a simulated clock.
final class Pump {
    var now: Instant = .zero
    let a: Endpoint   // agent side: opens odd ids
    let b: Endpoint   // relay side: opens even ids
    var rng: SplitMix64
    /// When false, bytes in the peer's tx stay there (a silent or black-holed path).
    var deliverToA = true
    var deliverToB = true
    /// Largest chunk moved from one tx to the other rx per step.
    var maxChunk = 1 << 16
    var steps = 0
    var bytesMoved = 0
    /// Bytes sent per (stream id, direction): the truth receivers are checked against.
    var sent: [UInt64: UInt64] = [:]

    static func defaultPool() -> BufferPool { BufferPool(bufferSize: 64 * 1024, limit: 64) }

    init(seed: UInt64 = 1,
         limitsA: MuxLimits = MuxLimits(), limitsB: MuxLimits = MuxLimits(),
         poolA: BufferPool = Pump.defaultPool(), poolB: BufferPool = Pump.defaultPool(),
         helloDone: Bool = true) {
        rng = SplitMix64(seed: seed)
        a = Endpoint(name: "agent", mux: Mux(side: .agent, limits: limitsA, pool: poolA, now: .zero))
        b = Endpoint(name: "relay", mux: Mux(side: .relay, limits: limitsB, pool: poolB, now: .zero))
        a.pump = self
        b.pump = self
        if helloDone {
            a.mux.helloFinished(now: now)
            b.mux.helloFinished(now: now)
            exchangeRttProbes()
        }
    }

    /// Each side sends one PING right after the hello to measure the round trip
    /// (it sizes stream credit). Tests start after that exchange, with empty queues
    /// and no events recorded.
    func exchangeRttProbes() {
        for _ in 0..<2 {
            a.mux.produce()
            b.mux.produce()
            _ = deliver(from: a, to: b)
            _ = deliver(from: b, to: a)
            a.pollAll(now: now)
            b.pollAll(now: now)
        }
        a.mux.produce()
        b.mux.produce()
        precondition(a.mux.tx.isEmpty && b.mux.tx.isEmpty)
        for e in [a, b] {
            e.events.removeAll()
            e.pongs.removeAll()
        }
    }

    func peer(of e: Endpoint) -> Endpoint { e === a ? b : a }

    static func key(_ id: UInt32, fromAgent: Bool) -> UInt64 { UInt64(id) << 1 | (fromAgent ? 1 : 0) }

    func recordSent(_ id: UInt32, fromAgent: Bool, _ n: UInt64) {
        sent[Pump.key(id, fromAgent: fromAgent), default: 0] += n
    }

    func sentTotal(_ id: UInt32, fromAgent: Bool) -> UInt64 { sent[Pump.key(id, fromAgent: fromAgent)] ?? 0 }

    /// At `.finished` everything the peer sent on the stream has arrived.
    func checkFin(_ s: StreamEnd, receiverIsAgent: Bool) {
        let total = sentTotal(s.id, fromAgent: !receiverIsAgent)
        #expect(s.totalAtFin == total, "stream \(s.id): FIN after \(s.totalAtFin ?? 0) bytes, peer sent \(total)")
    }

    /// Moves up to `limit` bytes from `from.tx` to `to.rx`; returns how many.
    @discardableResult
    func deliver(from: Endpoint, to: Endpoint, limit: Int = .max) -> Int {
        let n = min(limit, from.mux.tx.count, to.mux.rx.freeSpace)
        if n <= 0 { return 0 }
        let moved = to.mux.rx.append(UnsafeRawBufferPointer(rebasing: from.mux.tx.readable[0..<n]))
        precondition(moved == n)
        from.mux.tx.consume(n)
        bytesMoved += n
        return n
    }

    /// One loop turn of one side, in the documented order.
    func turn(_ x: Endpoint, deliver enabled: Bool) {
        let y = peer(of: x)
        if enabled { x.progress += deliver(from: y, to: x, limit: rng.size(max: maxChunk)) }   // 1
        x.pollAll(now: now)                                                                    // 2
        x.moveBytes(&rng)                                                                      // 3
        x.mux.produce()                                                                        // 4
    }

    /// One turn for each side; returns whether anything happened.
    @discardableResult
    func step() -> Bool {
        a.progress = 0
        b.progress = 0
        turn(a, deliver: deliverToA)
        turn(b, deliver: deliverToB)
        steps += 1
        return a.progress + b.progress > 0
    }

    /// Steps until `done()` holds; false if `maxSteps` ran out first or nothing can
    /// move any more (100 steps without progress: the clock does not move here).
    @discardableResult
    func run(maxSteps: Int = 200_000, until done: () -> Bool) -> Bool {
        var n = 0
        var idle = 0
        while !done() {
            if n == maxSteps || idle == 100 { return false }
            idle = step() ? 0 : idle + 1
            n += 1
        }
        return true
    }

    /// Steps until nothing moves: both tx and rx empty and a step with no progress.
    /// false if that does not happen (e.g. a failed side stopped reading its rx).
    @discardableResult
    func settle(maxSteps: Int = 200_000) -> Bool {
        var n = 0
        var idle = 0
        while n < maxSteps && idle < 100 {
            let moved = step()
            n += 1
            idle = moved ? 0 : idle + 1
            if !moved && a.mux.tx.isEmpty && b.mux.tx.isEmpty && a.mux.rx.isEmpty && b.mux.rx.isEmpty { return true }
        }
        return false
    }

    func advance(ms: Int64) { now = now.adding(ms: ms) }

    var failures: [MuxFailure] { a.failures + b.failures }
}
