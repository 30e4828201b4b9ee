// Fuzz target `mux-ops`: operation sequences on two honest multiplexers (an
// agent side and a relay side) joined by an in-memory pump, with a simulated
// clock. See Fuzz/Support/MuxHarness.swift for the owner and its checks.
//
// Input: flags byte (bit 0: start with the hello exchange instead of after it;
// bit 1: the relay side gets its own limits), limits (MuxConfig), then
// operations, one byte each plus arguments:
//   op & 1        which side acts (0 agent, 1 relay)
//   (op >> 1) % 16:
//     0 open  1 accept  2 refuse  3 send  4 consume  5 finish  6 reset  7 release
//     8 produce  9 poll  10 goaway  11 ping  12 a command on an unknown stream
//     13 deliver up to N bytes of this side's tx to the other side and let it poll
//     14 pump both ways until quiet  15 advance the clock
// Between honest peers no failure other than a peer timeout may happen; when
// one happens the run ends (the tunnel is closed). Otherwise, at the end both
// owners read everything and pump until quiet: no credit may have leaked and
// every FIN asked for must have arrived (liveness); then both reset everything
// and pump until quiet: neither side may hold a stream or a pool buffer (no
// ghost streams).

import Mux
import Wire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMuxOps(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    let flags = input.u8()
    let agentConfig = MuxConfig(&input)
    let relayConfig = flags & 2 != 0 ? MuxConfig(&input) : agentConfig
    var now = Instant(ms: 1_000_000)
    let ledger = Ledger()
    let a = Owner(isAgent: true, config: agentConfig, now: now, ledger: ledger)
    let r = Owner(isAgent: false, config: relayConfig, now: now, ledger: ledger)
    if flags & 1 == 0 {
        a.mux.helloFinished(now: now)
        r.mux.helloFinished(now: now)
    } else {
        a.autoHello = true
        r.autoHello = true
        require(r.mux.sendHello(.challenge, Ledger.challenge), "CHALLENGE did not fit")
    }
    var steps = 0
    while !input.isEmpty && steps < 4000 {
        steps += 1
        let op = input.u8()
        let side = op & 1 == 0 ? a : r
        let other = op & 1 == 0 ? r : a
        let action = (op >> 1) % 16
        if fuzzTrace { trace("-- " + side.name + " op \(action)" + (action < 13 ? " " + String(describing: OpsOp(rawValue: action)!) : "")) }
        if !side.command(action, &input, now) {
            switch action {
            case 13: deliver(side, other, Int(input.u16()) + 1, now)
            case 14: pump(a, r, now)
            default: now = now.adding(ms: clockStep(input.u8()))
            }
        }
        a.check()
        r.check()
        require(a.mux.unknownFrames == 0 && r.mux.unknownFrames == 0, "a mux wrote a frame of unknown type")
        if a.failed != nil || r.failed != nil { return 0 }  // the tunnel is closed
    }
    if fuzzTrace { trace("-- close down") }
    closeDown(a, r, now)
    return 0
}

/// Both owners read everything they were sent, and the pump runs until quiet.
/// Then, on every stream open at both ends: a FIN the sender asked for has
/// arrived, and credit did not leak: unless the receiver got its FIN, the sender
/// may send at least three quarters of the receiver's credit target again (the
/// receiver tops credit up once a quarter of it is free; the target is the whole
/// buffer or `MuxLimits.minCredit`, whichever is smaller, or more on a long path).
func settle(_ a: Owner, _ r: Owner, _ now: Instant) {
    for _ in 0..<100 {
        let readA = a.consumeAll()
        let readR = r.consumeAll()
        pump(a, r, now)
        if a.failed != nil || r.failed != nil { return }
        let buffered = a.ids().contains { a.mux.receiveBuffer($0)?.isEmpty == false }
            || r.ids().contains { r.mux.receiveBuffer($0)?.isEmpty == false }
        if !readA && !readR && !buffered && a.mux.tx.isEmpty && r.mux.tx.isEmpty { break }
    }
    a.check()
    r.check()
    for id in a.ids() {
        guard let sa = a.streams[id], let sr = r.streams[id], sa.state == .open, sr.state == .open else { continue }
        for (sender, receiver) in [(a, r), (r, a)] {
            let s = sender.streams[id]!, rs = receiver.streams[id]!
            if s.finishCalled {
                require(rs.peerFinished, sender.name + " finished stream \(id) but the FIN never arrived")
            } else if !rs.peerFinished {
                let credit = sender.mux.info(id)!.sendCredit
                let target = min(receiver.bufferSize, MuxLimits.minCredit)
                require(credit >= target - max(1, target / 4) + 1,
                        "credit leak on \(id): \(sender.name) may send \(credit), \(receiver.name) has \(receiver.bufferSize) free")
            }
        }
    }
}

/// Both owners reset every stream they have, then the pump runs until quiet.
func closeDown(_ a: Owner, _ r: Owner, _ now: Instant) {
    settle(a, r, now)
    if a.failed != nil || r.failed != nil { return }
    for o in [a, r] {
        o.closing = true
        for id in o.ids() {
            o.mux.reset(id, .closed)
            o.streams[id] = nil
        }
        o.check()
    }
    pump(a, r, now, rounds: 1000)
    if a.failed != nil || r.failed != nil { return }
    a.check()
    r.check()
    require(a.mux.tx.isEmpty && r.mux.tx.isEmpty, "pump did not go quiet")
    require(a.mux.streamCount == 0 && r.mux.streamCount == 0,
            "ghost streams after both sides closed everything: agent \(a.mux.streamIDs.sorted()) relay \(r.mux.streamIDs.sorted())")
    require(a.mux.pool.inUse == 0 && r.mux.pool.inUse == 0, "pool buffers still in use after close")
}

// MARK: - Seeds

/// mux-ops operation codes (op byte = action << 1 | side).
enum OpsOp: UInt8 {
    case open = 0, accept, refuse, send, consume, finish, reset, release, produce, poll, goaway, ping, misuse,
         deliver, pump, clock
}

extension OpsBuilder {
    mutating func op(_ o: OpsOp, relay: Bool, _ args: [UInt8] = []) {
        add([o.rawValue << 1 | (relay ? 1 : 0)] + args)
    }
    mutating func pump() { op(.pump, relay: false) }
    mutating func u16(_ v: Int) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
}

func fuzzSeeds() -> [(String, [UInt8])] {
    var out: [(String, [UInt8])] = []

    // A whole stream life: open, accept, data both ways, half-closes, release.
    var b = OpsBuilder(flags: 0)
    b.op(.open, relay: false, [0, 0, 1])
    b.pump()
    b.op(.accept, relay: true, [0])
    b.pump()
    b.op(.send, relay: false, [0] + b.u16(5000))
    b.pump()
    b.op(.consume, relay: true, [0] + b.u16(5000))
    b.op(.send, relay: true, [0] + b.u16(3000))
    b.pump()
    b.op(.consume, relay: false, [0] + b.u16(3000))
    b.op(.finish, relay: false, [0])
    b.pump()
    b.op(.finish, relay: true, [0])
    b.pump()
    b.op(.release, relay: false, [0])
    b.op(.release, relay: true, [0])
    b.pump()
    out.append(("stream-life", b.bytes))

    // The hello exchange first, then a relay-opened stream (SNI-style hostname target).
    b = OpsBuilder(flags: 1)
    b.pump()
    b.pump()
    b.op(.open, relay: true, [2, 1, 2])
    b.pump()
    b.op(.accept, relay: false, [0])
    b.pump()
    b.op(.send, relay: true, [0] + b.u16(100))
    b.op(.deliver, relay: true, b.u16(50))
    b.op(.deliver, relay: true, b.u16(500))
    b.op(.consume, relay: false, [0] + b.u16(100))
    b.pump()
    out.append(("hello-then-relay-open", b.bytes))

    // Refused, reset with data in flight, window exhaustion on a small buffer.
    b = OpsBuilder(flags: 0, bufferSizeIndex: 2)
    b.op(.open, relay: false, [0, 0, 0])
    b.op(.open, relay: false, [1, 0, 0])
    b.pump()
    b.op(.refuse, relay: true, [0, 3])
    b.op(.accept, relay: true, [0])
    b.pump()
    b.op(.send, relay: false, [0] + b.u16(20000))
    b.op(.deliver, relay: false, b.u16(60))
    b.op(.reset, relay: false, [0, 11])
    b.pump()
    out.append(("refuse-reset-window", b.bytes))

    // Open timeout, goaway, ping, heartbeat timers.
    b = OpsBuilder(flags: 0, shortTimers: true)
    b.op(.open, relay: false, [0, 0, 0])
    b.op(.clock, relay: false, [200])
    b.op(.poll, relay: false)
    b.pump()
    b.op(.goaway, relay: true, [7, 0, 100])
    b.pump()
    b.op(.open, relay: false, [0, 0, 0])
    b.op(.ping, relay: false)
    b.pump()
    b.op(.clock, relay: false, [1])
    b.pump()
    out.append(("timeout-goaway-ping", b.bytes))

    // More opens than streams and buffers allow, from both sides, tiny windows.
    b = OpsBuilder(flags: 2, maxStreams: 3, poolLimit: 2, bufferSizeIndex: 0)
    b.add([3, 5, 3, 1, 1, 0])  // the relay's own limits: 4 streams, 5 buffers
    for _ in 0..<4 { b.op(.open, relay: false, [0, 0, 0]) }
    for _ in 0..<4 { b.op(.open, relay: true, [1, 0, 0]) }
    b.pump()
    for i in 0..<3 { b.op(.accept, relay: true, [UInt8(i)]) }
    b.op(.accept, relay: false, [0])
    b.pump()
    b.op(.send, relay: false, [1] + b.u16(10))
    b.pump()
    b.op(.consume, relay: true, [1] + b.u16(1))
    b.pump()
    b.op(.misuse, relay: false, [9, 0, 0, 0, 99, 2])
    out.append(("limits-tiny-windows", b.bytes))
    return out
}
