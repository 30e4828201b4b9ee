// The owner of a `Mux`, played by the fuzz targets `mux-ops` (two honest muxes
// joined by an in-memory pump) and `mux-rx` (one mux, its peer's bytes come
// from the fuzzer). It follows the calling convention in Sources/Mux/Mux.swift:
// bytes into `rx`, `poll` until nil, move stream bytes, `produce`, drain `tx`.
//
// The owner keeps its own model of the streams (built only from what the API
// returned and the events it saw) and checks after every operation that the
// mux agrees with it, and that the mux's own invariants hold:
//   - the streams the owner knows are exactly `mux.streamIDs`;
//   - `pool.inUse == streamCount <= maxStreams`; `rx` and `tx` within capacity;
//   - credit is never negative and fits a 32-bit Int (armv7 release), a receive
//     buffer never holds more than its size;
//   - `send` takes exactly `min(len, sendAllowance)` and leaves the control reserve free;
//   - `open` fails only for a documented reason;
//   - events arrive only in states that allow them (DATA only on an open stream
//     whose peer has not finished, ACCEPT only for our opening stream, ...);
//   - after `.failed` nothing else is reported.
// With an honest peer (the `Ledger` set), it also checks what crossed the
// tunnel: every byte consumed equals the byte sent at that offset, a FIN comes
// after exactly the bytes sent before it, OPEN arrives as sent, and no
// failure other than a peer timeout ever happens.

import Mux
import Wire

/// Byte `k` of stream `id` in one direction: a cheap hash, so a lost, repeated
/// or reordered byte is caught.
@inline(__always)
func patternByte(_ id: UInt32, fromAgent: Bool, _ k: Int) -> UInt8 {
    var x = UInt64(truncatingIfNeeded: k) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(id) &* 0xBF58_476D_1CE4_E5B9
    if !fromAgent { x ^= 0x94D0_49BB_1331_11EB }
    x ^= x >> 31
    return UInt8(truncatingIfNeeded: x >> 24)
}

func ledgerKey(_ id: UInt32, fromAgent: Bool) -> UInt64 { UInt64(id) << 1 | (fromAgent ? 1 : 0) }

/// What the honest senders did, shared by both owners of `mux-ops`.
final class Ledger {
    /// Bytes `send` accepted, per stream and direction.
    var sent: [UInt64: Int] = [:]
    /// `sent` at the moment `finish` took effect.
    var sentAtFin: [UInt64: Int] = [:]
    /// The OPEN each opener asked for (the window is the mux's choice, up to the
    /// opener's buffer size, so it is checked against that).
    var opens: [UInt32: (open: OpenPayload, bufferSize: Int)] = [:]
    var goawaySentByAgent = false
    var goawaySentByRelay = false
    /// Hello payloads, checked on arrival.
    static let challenge: [UInt8] = Array(repeating: 0xc1, count: 40)
    static let auth: [UInt8] = Array(repeating: 0xa7, count: 300)
    static let welcome: [UInt8] = Array(repeating: 0x3e, count: 21)
}

/// The limits and sizes of one fuzz run, from the first bytes of the input.
struct MuxConfig {
    var limits: MuxLimits
    var bufferSize: Int
    var poolLimit: Int
    /// Windows may grow to this (large rx/tx runs: 4 x `bufferSize`, within the pool's budget).
    var maxBufferSize: Int

    init(_ input: inout FuzzInput) {
        let maxStreams = Int(input.u8() % 8) + 1
        poolLimit = Int(input.u8() % 10)
        bufferSize = input.pick([1, 2, 100, 4096, 16384, 65536, 70001])
        let heartbeat: Int64 = input.pick([1000, 15000])
        let openTimeout: Int64 = input.pick([100, 15000])
        let minRx = WireProtocol.headerSize + WireProtocol.maxPayload
        let minTx = minRx + MuxLimits.controlReserve
        let big = input.bool()
        maxBufferSize = big ? 4 * bufferSize : bufferSize
        limits = MuxLimits(maxStreams: maxStreams, heartbeatMs: heartbeat, openTimeoutMs: openTimeout,
                           rxCapacity: big ? 2 * minRx : minRx, txCapacity: big ? 4 * minRx : minTx)
    }
}

final class OwnedStream {
    enum State: Equatable {
        case opening        // we opened it; no answer yet
        case pendingAccept  // the peer opened it; we have not answered
        case open
    }

    let id: UInt32
    var state: State
    /// Bytes the owner consumed from the receive buffer.
    var received = 0
    var peerFinished = false
    var finishCalled = false

    init(id: UInt32, state: State) {
        self.id = id
        self.state = state
    }
}

final class Owner {
    let mux: Mux
    let isAgent: Bool
    let ledger: Ledger?
    let bufferSize: Int
    var streams: [UInt32: OwnedStream] = [:]
    var failed: MuxFailure? = nil
    var failureCount = 0
    /// Closing down (end of an honest run): refuse whatever the peer still opens.
    var closing = false
    /// Answer the hello exchange automatically (honest runs that start with it).
    var autoHello = false
    var helloEvents = 0

    init(isAgent: Bool, config: MuxConfig, now: Instant, ledger: Ledger?) {
        let pool = BufferPool(bufferSize: config.bufferSize, limit: config.poolLimit, maxBufferSize: config.maxBufferSize)
        mux = Mux(side: isAgent ? .agent : .relay, limits: config.limits, pool: pool, now: now)
        self.isAgent = isAgent
        self.ledger = ledger
        bufferSize = config.bufferSize
    }

    var name: String { isAgent ? "agent" : "relay" }

    /// Stream ids in a fixed order (Dictionary order is not), so a selector byte
    /// picks the same stream on every run of an input.
    func ids(_ filter: (OwnedStream) -> Bool = { _ in true }) -> [UInt32] {
        streams.values.filter(filter).map { $0.id }.sorted()
    }

    func select(_ sel: UInt8, _ filter: (OwnedStream) -> Bool = { _ in true }) -> OwnedStream? {
        let list = ids(filter)
        if list.isEmpty { return nil }
        return streams[list[Int(sel) % list.count]]
    }

    // MARK: - Invariants

    func check() {
        let m = mux
        require(m.pool.inUse == m.streamCount, name + ": pool.inUse \(m.pool.inUse) != streams \(m.streamCount)")
        require(m.streamCount <= m.limits.maxStreams, name + ": more streams than maxStreams")
        require(m.pool.inUse <= m.pool.limit, name + ": pool over its limit")
        require(m.pool.committed <= m.pool.budget, name + ": pool over its budget")
        require(m.rx.count >= 0 && m.rx.count <= m.rx.capacity, name + ": rx out of bounds")
        require(m.tx.count >= 0 && m.tx.count <= m.tx.capacity, name + ": tx out of bounds")
        let muxIDs = m.streamIDs.sorted()
        require(muxIDs == ids(), name + ": mux streams \(muxIDs) != owner's model \(ids())")
        for id in muxIDs {
            guard let info = m.info(id) else { require(false, name + ": no info for a listed stream"); continue }
            require(info.sendCredit >= 0, name + ": negative send credit on \(id)")
            // Credit must fit a 32-bit Int: the release runs on armv7, where Int is 32 bits
            // and a larger value (or Int(UInt32) of one) traps.
            require(info.sendCredit <= Int(Int32.max), name + ": send credit \(info.sendCredit) on \(id) does not fit a 32-bit Int")
            require(info.buffered >= 0 && info.buffered <= m.pool.maxBufferSize, name + ": receive buffer over its size on \(id)")
            let s = streams[id]!
            require(info.isOpen == (s.state == .open), name + ": stream \(id) open=\(info.isOpen) but model says \(s.state)")
            require(info.finReceived == s.peerFinished, name + ": finReceived differs from the events on \(id)")
            if info.finSent { require(s.finishCalled && s.state == .open, name + ": FIN sent on \(id) without finish() or before open") }
            if s.state == .opening { require(isOurs(id), name + ": opening stream \(id) of the peer's parity") }
            if s.state == .pendingAccept { require(!isOurs(id), name + ": pending stream \(id) of our parity") }
            if s.state != .open { require(info.buffered == 0, name + ": bytes buffered on a stream that is not open") }
        }
        if m.isFailed {
            require(m.nextDeadline == nil, name + ": a failed mux still has a deadline")
        } else if m.helloDone {
            require(m.nextDeadline != nil, name + ": no heartbeat deadline")
        }
    }

    func isOurs(_ id: UInt32) -> Bool { (id % 2 == 1) == isAgent }

    // MARK: - Events

    /// `poll` until nil, handling every event.
    func drain(_ now: Instant) {
        var n = 0
        while let e = mux.poll(now: now) {
            handle(e, now)
            n += 1
            require(n < 100_000, name + ": poll never returns nil")
        }
        // After a failure, poll stays quiet.
        if failed != nil { require(mux.poll(now: now) == nil, name + ": event after .failed") }
    }

    func handle(_ e: MuxEvent, _ now: Instant) {
        if fuzzTrace { trace(name + " @" + String(now.ms) + ": " + String(describing: e)) }
        require(failed == nil, name + ": event \(e) after .failed")
        switch e {
        case .hello(let t, let p):
            require(!mux.helloDone, name + ": hello event after helloFinished")
            helloEvents += 1
            if ledger != nil {
                switch t {
                case .challenge: require(isAgent && p == Ledger.challenge, name + ": CHALLENGE changed in flight")
                case .auth: require(!isAgent && p == Ledger.auth, name + ": AUTH changed in flight")
                case .welcome: require(isAgent && p == Ledger.welcome, name + ": WELCOME changed in flight")
                default: require(false, name + ": unexpected hello \(t)")
                }
            }
            if autoHello {
                switch t {
                case .challenge: require(mux.sendHello(.auth, Ledger.auth), "AUTH did not fit")
                case .auth:
                    require(mux.sendHello(.welcome, Ledger.welcome), "WELCOME did not fit")
                    mux.helloFinished(now: now)
                case .welcome: mux.helloFinished(now: now)
                default: break
                }
            }
        case .opened(let id, let open):
            require(!isOurs(id), name + ": .opened for an id of our own parity \(id)")
            require(streams[id] == nil, name + ": .opened twice for \(id)")
            require(mux.exists(id), name + ": .opened for a stream the mux does not have")
            streams[id] = OwnedStream(id: id, state: .pendingAccept)
            if let l = ledger, let sent = l.opens[id] {
                require(open.target == sent.open.target && open.origin == sent.open.origin && open.caller == sent.open.caller,
                        name + ": OPEN \(id) changed in flight")
                require(open.window >= 1 && Int(open.window) <= sent.bufferSize, name + ": OPEN \(id) window \(open.window) beyond the opener's buffer")
            } else if ledger != nil {
                require(false, name + ": OPEN \(id) nobody sent")
            }
            if closing {
                mux.refuse(id, .goingAway)
                streams[id] = nil
            }
        case .accepted(let id):
            require(streams[id]?.state == .opening, name + ": .accepted for \(id), not an opening stream")
            streams[id]!.state = .open
        case .refused(let id, let r):
            require(streams[id]?.state == .opening, name + ": .refused(\(r)) for \(id), not an opening stream")
            require(!mux.exists(id), name + ": refused stream still exists")
            streams[id] = nil
        case .data(let id):
            guard let s = streams[id] else { require(false, name + ": .data for unknown stream \(id)"); return }
            require(s.state == .open && !s.peerFinished, name + ": .data on \(id) in state \(s.state) finished=\(s.peerFinished)")
            require((mux.receiveBuffer(id)?.count ?? 0) > 0, name + ": .data but nothing buffered")
        case .finished(let id):
            guard let s = streams[id] else { require(false, name + ": .finished for unknown stream \(id)"); return }
            require(s.state == .open && !s.peerFinished, name + ": .finished twice or on a stream not open")
            s.peerFinished = true
            if let l = ledger {
                let total = s.received + (mux.receiveBuffer(id)?.count ?? 0)
                let expect = l.sentAtFin[ledgerKey(id, fromAgent: !isAgent)]
                require(expect == total, name + ": FIN on \(id) after \(total) bytes, sender finished after \(String(describing: expect))")
            }
        case .reset(let id, _):
            require(streams[id] != nil, name + ": .reset for unknown stream \(id)")
            require(!mux.exists(id), name + ": reset stream still exists")
            streams[id] = nil
        case .credit(let id):
            require(streams[id]?.state == .open, name + ": .credit on \(id), not open")
        case .pong(let rtt):
            require(rtt >= 0, name + ": negative RTT")
        case .resume:
            require(isAgent, name + ": .resume on the relay's side")
        case .goaway:
            if let l = ledger { require(isAgent ? l.goawaySentByRelay : l.goawaySentByAgent, name + ": goaway nobody sent") }
        case .failed(let f):
            failed = f
            failureCount += 1
            require(failureCount == 1, name + ": second .failed")
            if ledger != nil { require(f == .peerTimeout, name + ": honest peers failed: " + f.text) }
        }
    }

    // MARK: - Commands (each followed by `check()` in the targets)

    func open(_ input: inout FuzzInput, _ now: Instant) {
        let target: OpenPayload.Target
        switch input.u8() % 4 {
        case 0: target = .device(AgentID(bytes: [UInt8](repeating: 0x11, count: 20))!)
        case 1: target = .device(AgentID(bytes: (0..<20).map { UInt8($0) })!)
        case 2: target = .hostname("device.example")
        default: target = .hostname(String(repeating: "h", count: 253))
        }
        let origin: [UInt8] = input.bool() ? [UInt8](repeating: 0, count: 20) : [UInt8](repeating: 0xab, count: 20)
        let caller = input.pick([PeerAddress.none, PeerAddress(ip: [192, 0, 2, 1], port: 40000),
                                 PeerAddress(ip: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1], port: 1)])
        let m = mux
        let couldOpen = m.helloDone && !m.isFailed && !m.goingAway && !m.peerGoingAway
            && m.streamCount < m.limits.maxStreams && m.pool.available > 0
        guard let id = m.open(target, origin: origin, caller: caller, now: now) else {
            require(!couldOpen, name + ": open failed with room for a stream")
            return
        }
        require(couldOpen, name + ": open succeeded where it must not")
        require(isOurs(id), name + ": open gave an id of the peer's parity")
        require(streams[id] == nil, name + ": open reused id \(id)")
        streams[id] = OwnedStream(id: id, state: .opening)
        ledger?.opens[id] = (OpenPayload(target: target, window: 0, origin: origin, caller: caller), bufferSize)
    }

    func accept(_ sel: UInt8) {
        guard let s = select(sel, { $0.state == .pendingAccept }) else { return }
        mux.accept(s.id)
        s.state = .open
    }

    func refuse(_ sel: UInt8, _ reason: Reason) {
        guard let s = select(sel, { $0.state == .pendingAccept }) else { return }
        mux.refuse(s.id, reason)
        streams[s.id] = nil
        require(!mux.exists(s.id), name + ": refused stream still exists")
    }

    func send(_ sel: UInt8, _ len: Int) {
        guard let s = select(sel) else { return }
        let key = ledgerKey(s.id, fromAgent: isAgent)
        let offset = ledger?.sent[key] ?? 0
        let allowance = mux.sendAllowance(s.id)
        let bytes = (0..<len).map { patternByte(s.id, fromAgent: isAgent, offset + $0) }
        let txBefore = mux.tx.count
        let n = bytes.withUnsafeBytes { mux.send(s.id, $0) }
        require(n == min(len, allowance), name + ": send took \(n) of \(len) with allowance \(allowance)")
        if s.state != .open || s.finishCalled || failed != nil { require(n == 0, name + ": sent on a stream that may not send") }
        if n > 0 {
            require(mux.tx.freeSpace >= MuxLimits.controlReserve, name + ": data ate the control reserve")
            let frames = (n + WireProtocol.maxPayload - 1) / WireProtocol.maxPayload
            require(mux.tx.count - txBefore == n + frames * WireProtocol.headerSize, name + ": send wrote an unexpected amount")
        }
        ledger?.sent[key] = offset + n
    }

    func consume(_ sel: UInt8, _ len: Int) {
        guard let s = select(sel), let q = mux.receiveBuffer(s.id) else { return }
        let k = min(len, q.count)
        if ledger != nil {
            let r = q.readable
            for i in 0..<k where r[i] != patternByte(s.id, fromAgent: !isAgent, s.received + i) {
                require(false, name + ": stream \(s.id) byte \(s.received + i) differs from what was sent")
            }
        }
        q.consume(k)
        s.received += k
    }

    /// Consumes every buffered byte of every stream (checking it against the sender's).
    /// Returns whether anything was buffered.
    @discardableResult
    func consumeAll() -> Bool {
        var any = false
        for id in ids() {
            guard let s = streams[id], let q = mux.receiveBuffer(id), !q.isEmpty else { continue }
            any = true
            consume(UInt8(truncatingIfNeeded: ids().firstIndex(of: s.id)!), q.count)
        }
        return any
    }

    func finish(_ sel: UInt8) {
        guard let s = select(sel) else { return }
        mux.finish(s.id)
        // Takes effect on an open stream, and on our opening stream (the FIN then waits for ACCEPT).
        if s.state != .pendingAccept && !s.finishCalled {
            s.finishCalled = true
            let key = ledgerKey(s.id, fromAgent: isAgent)
            ledger?.sentAtFin[key] = ledger?.sent[key] ?? 0
        }
    }

    func reset(_ sel: UInt8, _ reason: Reason) {
        guard let s = select(sel) else { return }
        mux.reset(s.id, reason)
        streams[s.id] = nil
        require(!mux.exists(s.id), name + ": reset stream still exists")
    }

    func release(_ sel: UInt8) {
        guard let s = select(sel) else { return }
        mux.release(s.id, otherwise: .closed)
        streams[s.id] = nil
        require(!mux.exists(s.id), name + ": released stream still exists")
    }

    /// Commands on an id the owner does not have must change nothing.
    func misuse(_ id: UInt32, _ what: UInt8, _ now: Instant) {
        guard streams[id] == nil else { return }
        let tx = mux.tx.count, count = mux.streamCount
        switch what % 8 {
        case 0: mux.accept(id)
        case 1: mux.refuse(id, .closed)
        case 2: mux.reset(id, .closed)
        case 3: mux.finish(id)
        case 4: mux.release(id)
        case 5: require([UInt8](repeating: 1, count: 10).withUnsafeBytes { mux.send(id, $0) } == 0, name + ": send on unknown stream")
        case 6: require(mux.sendAllowance(id) == 0 && mux.info(id) == nil && mux.receiveBuffer(id) == nil, name + ": unknown stream has state")
        default: require(!mux.exists(id), name + ": unknown stream exists")
        }
        require(mux.tx.count == tx && mux.streamCount == count, name + ": a command on unknown stream \(id) changed the mux")
    }

    /// Generic owner operations shared by both targets. false if `op` is not one of them.
    func command(_ op: UInt8, _ input: inout FuzzInput, _ now: Instant) -> Bool {
        switch op {
        case 0: open(&input, now)
        case 1: accept(input.u8())
        case 2: refuse(input.u8(), Reason.from(input.u8() % 12))
        case 3:
            let sel = input.u8()
            send(sel, Int(input.u16()) % 40000)
        case 4:
            let sel = input.u8()
            consume(sel, Int(input.u16()))
        case 5: finish(input.u8())
        case 6: reset(input.u8(), Reason.from(input.u8() % 12))
        case 7: release(input.u8())
        case 8: mux.produce()
        case 9: drain(now)
        case 10:
            let r = Reason.from(input.u8() % 12)
            let ms = UInt32(input.u16())
            mux.goaway(r, retryAfterMs: ms)
            if isAgent { ledger?.goawaySentByAgent = true } else { ledger?.goawaySentByRelay = true }
        case 11: mux.ping(now: now)
        case 12:
            let sel = input.u8()
            let fixed: [UInt32] = [0, 1, 2, 3, 4, 5, 0x7fff_ffff, 0xffff_ffff, 0xffff_fffe]
            let id = Int(sel) % 10 == 9 ? input.u32() : fixed[Int(sel) % 10]
            misuse(id, input.u8(), now)
        default: return false
        }
        return true
    }
}

/// Milliseconds for a clock step, from one byte: mostly small, sometimes past every timer.
func clockStep(_ b: UInt8) -> Int64 {
    switch b % 4 {
    case 0: return Int64(b)
    case 1: return Int64(b) * 50
    case 2: return Int64(b) * 1000
    default: return 30_000 + Int64(b)
    }
}

/// Moves up to `max` bytes from `from.tx` to `to.rx` (as much as `to.rx` has room
/// for), then lets `to` handle them. Returns the number of bytes moved.
@discardableResult
func deliver(_ from: Owner, _ to: Owner, _ max: Int, _ now: Instant) -> Int {
    let k = min(max, from.mux.tx.count, to.mux.rx.freeSpace)
    if k > 0 {
        let w = to.mux.rx.writable(minimum: k)
        require(w.count >= k, "rx.writable(minimum:) gave less than its free space")
        w.baseAddress!.copyMemory(from: from.mux.tx.readable.baseAddress!, byteCount: k)
        to.mux.rx.commit(k)
        from.mux.tx.consume(k)
    }
    to.drain(now)
    return k
}

/// Both owners' turns until no byte moves (bounded).
func pump(_ a: Owner, _ b: Owner, _ now: Instant, rounds: Int = 64) {
    for _ in 0..<rounds {
        a.mux.produce()
        var moved = deliver(a, b, Int.max, now)
        b.mux.produce()
        moved += deliver(b, a, Int.max, now)
        if moved == 0 && a.mux.tx.isEmpty && b.mux.tx.isEmpty { return }
        if a.failed != nil || b.failed != nil { return }
    }
}

/// Checks that `tx` holds only whole, well-formed frames a strict peer accepts,
/// then empties it (the bytes went to a peer that is not there).
func checkOutput(_ o: Owner) {
    let tx = o.mux.tx.readable
    var off = 0
    while off < tx.count {
        let rest = UnsafeRawBufferPointer(rebasing: tx[off...])
        let h: FrameHeader?
        do throws(WireError) { h = try FrameCodec.decodeHeader(rest) } catch {
            require(false, o.name + ": wrote an oversized frame")
            return
        }
        guard let h = h, rest.count >= WireProtocol.headerSize + h.length else {
            require(false, o.name + ": tx ends inside a frame")
            return
        }
        let p = UnsafeRawBufferPointer(rebasing: rest[WireProtocol.headerSize..<(WireProtocol.headerSize + h.length)])
        guard let t = h.type else { require(false, o.name + ": wrote unknown frame type \(h.rawType)"); return }
        switch t {
        case .challenge, .auth, .welcome, .denied:
            require(h.stream == 0, o.name + ": hello frame on a stream")
        case .ping, .pong, .goaway:
            require(h.stream == 0, o.name + ": tunnel frame \(t) on stream \(h.stream)")
        default:
            require(h.stream != 0, o.name + ": stream frame \(t) on stream 0")
        }
        do throws(WireError) {
            switch t {
            case .challenge, .auth, .welcome, .denied, .resume: break  // the role's payloads, not the mux's
            case .open:
                _ = try OpenPayload.decode(p)
                require(o.isOurs(h.stream), o.name + ": OPEN with the peer's parity")
            case .accept, .keepalive: _ = try ControlPayload.decodeU32(p, t)
            case .window: require(try ControlPayload.decodeU32(p, t) > 0, o.name + ": WINDOW of 0")
            case .refuse, .reset: _ = try ControlPayload.decodeReason(p, t)
            case .ping, .pong: _ = try ControlPayload.decodePing(p, t)
            case .goaway: _ = try ControlPayload.decodeGoaway(p)
            case .data: require(h.length > 0, o.name + ": empty DATA")
            case .fin: require(h.length == 0, o.name + ": FIN with a payload")
            }
        } catch {
            require(false, o.name + ": wrote a malformed \(t) frame")
        }
        off += WireProtocol.headerSize + h.length
    }
    o.mux.tx.consume(tx.count)
}

// MARK: - Seed inputs

/// Builds mux-ops / mux-rx inputs: flags, limits, then operations.
struct OpsBuilder {
    var bytes: [UInt8]

    /// Limits: maxStreams 4, pool 4 buffers of 4096 bytes, heartbeat and open
    /// timeout 15 s, minimal rx/tx. `bufferSizeIndex` picks from MuxConfig's list.
    init(flags: UInt8, maxStreams: UInt8 = 4, poolLimit: UInt8 = 4, bufferSizeIndex: UInt8 = 3,
         shortTimers: Bool = false, bigQueues: Bool = false) {
        bytes = [flags, maxStreams - 1, poolLimit, bufferSizeIndex, shortTimers ? 0 : 1, shortTimers ? 0 : 1,
                 bigQueues ? 1 : 0]
    }

    mutating func add(_ b: [UInt8]) { bytes += b }
}
