// Fuzz target `mux-rx`: one multiplexer whose peer is the fuzzer. Its owner
// behaves (the same owner as `mux-ops`, Fuzz/Support/MuxHarness.swift); the
// bytes arriving in its `rx` are hostile: raw bytes, or frames with a correct
// header around a chosen type, stream and payload (valid or not), so the
// fuzzer gets past the header easily and reaches every state.
//
// Input: flags byte (bit 0: agent side, else relay side; bit 1: stay in the
// hello phase until op 16), limits (MuxConfig), then operations:
//   op % 20:  0-12 owner commands as in mux-ops
//             13 raw bytes into rx      14 one frame into rx     15 advance the clock
//             16 helloFinished          17 check and empty tx    18 sendHello   19 poll
// Checks: everything the owner checks (model = mux, pool accounting, buffer
// bounds, events only in allowed states, nothing after .failed); no trap
// whatever arrives (a peer may cost the tunnel, never the process); and
// everything the mux writes to `tx` is whole, well-formed frames.

import Mux
import Wire

let frameTypes: [UInt8] = FrameType.allCases.map { $0.rawValue } + [0x00, 0x05, 0x17, 0x25, 0xff]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMuxRx(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    let flags = input.u8()
    let config = MuxConfig(&input)
    var now = Instant(ms: 1_000_000)
    let o = Owner(isAgent: flags & 1 == 1, config: config, now: now, ledger: nil)
    if flags & 2 == 0 { o.mux.helloFinished(now: now) }
    var peerNext: UInt32 = o.isAgent ? 2 : 1  // the next id a well-behaved peer opens
    var steps = 0
    while !input.isEmpty && steps < 4000 {
        steps += 1
        let action = input.u8() % 20
        if !o.command(action, &input, now) {
            switch action {
            case 13:
                let n = Int(input.u8())
                inject(o, Array(input.take(n)), now)
            case 14:
                inject(o, hostileFrame(&input, o, &peerNext), now)
            case 15: now = now.adding(ms: clockStep(input.u8()))
            case 16: if !o.mux.helloDone { o.mux.helloFinished(now: now) }
            case 17: checkOutput(o)
            case 18:
                let t = input.pick([FrameType.challenge, .auth, .welcome, .denied])
                let ok = o.mux.sendHello(t, input.takeArray(Int(input.u8())))
                require(ok || o.mux.helloDone || o.mux.tx.freeSpace < 300, "sendHello refused with room")
            default: o.drain(now)
            }
        }
        o.check()
    }
    o.mux.produce()
    checkOutput(o)
    o.check()
    return 0
}

/// Appends bytes to rx (as many as fit, like a reader that stops when rx is full) and polls.
func inject(_ o: Owner, _ bytes: [UInt8], _ now: Instant) {
    bytes.withUnsafeBytes { _ = o.mux.rx.append($0) }
    o.drain(now)
}

/// One frame with a correct header: chosen type, stream and payload.
func hostileFrame(_ input: inout FuzzInput, _ o: Owner, _ peerNext: inout UInt32) -> [UInt8] {
    let type = input.pick(frameTypes)
    let stream: UInt32
    switch input.u8() % 8 {
    case 0: stream = 0
    case 1, 2:
        stream = peerNext
        if type == FrameType.open.rawValue { peerNext &+= 2 }
    case 3: stream = peerNext &- 2
    case 4: stream = input.u32()
    default: stream = o.select(input.u8()).map { $0.id } ?? peerNext
    }
    var p: [UInt8]
    let wellFormed = input.u8() % 4 != 0
    if !wellFormed {
        p = input.takeArray(Int(input.u8()))
    } else {
        switch FrameType(rawValue: type) {
        case .open:
            let window: UInt32 = input.pick([0, 1, 100, 65535, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff])
            let target: OpenPayload.Target = input.bool() ? .device(AgentID(bytes: [UInt8](repeating: 7, count: 20))!) : .hostname("x.example")
            p = OpenPayload(target: target, window: window).encode()
        case .accept, .window:
            p = ControlPayload.window(input.pick([0, 1, 1000, 65536, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, UInt32(input.u16())]))
        case .refuse, .reset:
            p = [input.u8() % 14]
        case .data:
            let n = input.pick([1, 2, 100, 4096, 16384, WireProtocol.maxPayload, Int(input.u8())])
            p = [UInt8](repeating: 0x44, count: n)
        case .fin:
            p = []
        case .ping, .pong:
            p = ControlPayload.ping(UInt64(input.u8() % 4))
        case .goaway:
            p = ControlPayload.goaway(Reason.from(input.u8() % 12), retryAfterMs: UInt32(input.u16()))
        default:
            p = input.takeArray(Int(input.u8()))
        }
    }
    var f = [UInt8](repeating: 0, count: WireProtocol.headerSize)
    let length = min(p.count, 0xffff)
    f.withUnsafeMutableBytes { b in
        b[0] = type
        b[1] = 0
        b[2] = UInt8(length >> 8)
        b[3] = UInt8(length & 0xff)
        b[4] = UInt8(stream >> 24)
        b[5] = UInt8((stream >> 16) & 0xff)
        b[6] = UInt8((stream >> 8) & 0xff)
        b[7] = UInt8(stream & 0xff)
    }
    return f + p
}

// MARK: - Seeds

enum RxOp: UInt8 {
    case open = 0, accept, refuse, send, consume, finish, reset, release, produce, poll, goaway, ping, misuse,
         raw, frame, clock, helloFinished, output, sendHello, drain
}

/// Indexes into `frameTypes`.
enum RxType: UInt8 {
    case challenge = 0, auth, welcome, denied, open, accept, refuse, data, fin, reset, window, ping, pong, goaway, unknown
}

extension OpsBuilder {
    mutating func op(_ o: RxOp, _ args: [UInt8] = []) { add([o.rawValue] + args) }
    /// A frame for the stream the next peer OPEN gets (stream selector 1) or our first stream (5, 0).
    mutating func frame(_ t: RxType, newStream: Bool = false, _ args: [UInt8] = []) {
        add([RxOp.frame.rawValue, t.rawValue] + (newStream ? [1] : [5, 0]) + [1] + args)
    }
}

func fuzzSeeds() -> [(String, [UInt8])] {
    var out: [(String, [UInt8])] = []

    // The peer opens a stream; we accept; it sends data and FIN; we answer and close.
    var b = OpsBuilder(flags: 0)
    b.frame(.open, newStream: true, [3, 1])
    b.op(.accept, [0])
    b.op(.produce)
    b.op(.output)
    b.frame(.data, [2])
    b.op(.consume, [0, 0, 100])
    b.op(.produce)
    b.frame(.fin)
    b.op(.send, [0, 0, 10])
    b.op(.finish, [0])
    b.op(.produce)
    b.op(.output)
    b.op(.release, [0])
    b.frame(.ping, [1])
    b.op(.produce)
    b.op(.output)
    out.append(("peer-opens", b.bytes))

    // We open (agent side); the peer accepts, grants credit, then resets.
    b = OpsBuilder(flags: 1)
    b.op(.open, [0, 0, 0])
    b.op(.output)
    b.frame(.accept, [3])
    b.op(.send, [0, 0x10, 0])
    b.frame(.window, [2])
    b.op(.send, [0, 0x10, 0])
    b.op(.output)
    b.frame(.reset, [5])
    b.frame(.goaway, [7, 0, 10])
    out.append(("we-open", b.bytes))

    // Raw bytes: real encoded frames back to back, split at odd places.
    var raw: [UInt8] = []
    raw += FrameCodec.encode(.open, stream: 1, payload: OpenPayload(target: .hostname("a.example"), window: 4096,
                                                                     caller: PeerAddress(ip: [10, 0, 0, 1], port: 22)).encode())
    raw += FrameCodec.encode(.data, stream: 1, payload: [1, 2, 3])
    raw += FrameCodec.encode(.ping, stream: 0, payload: ControlPayload.ping(42))
    raw += FrameCodec.encode(.window, stream: 1, payload: ControlPayload.window(100))
    raw += FrameCodec.encode(.fin, stream: 1, payload: [])
    b = OpsBuilder(flags: 0)
    b.op(.raw, [UInt8(20)] + raw[0..<20])
    b.op(.raw, [UInt8(raw.count - 20)] + raw[20...])
    b.op(.accept, [0])
    b.op(.drain)
    b.op(.produce)
    b.op(.output)
    out.append(("raw-frames", b.bytes))

    // Hello phase: hello frames, then the switch to mux frames.
    b = OpsBuilder(flags: 3)
    b.op(.sendHello, [1, 4, 1, 2, 3, 4])
    b.frame(.challenge, [3, 9, 9, 9])
    b.op(.helloFinished)
    b.frame(.welcome, [0])
    out.append(("hello-phase", b.bytes))
    return out
}
