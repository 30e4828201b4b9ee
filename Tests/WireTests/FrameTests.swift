import Testing
import Wire

/// The multiplexer's wire format (Sources/Wire/Frame.swift, Hello.swift and
/// docs/PROTOCOL.md) pinned byte for byte.
///
/// Every golden frame below is written out by hand from the layouts in the doc
/// comments, never produced by the encoder, so a change to the format shows up
/// here as a failing test (and must come with a `WireProtocol.version` bump).
/// Each golden is checked four ways: the encoder produces exactly these bytes,
/// the decoder reads them back to the same value, every truncation is rejected,
/// and one extra trailing byte is rejected.
@Suite struct FrameTests {
    // MARK: - Fixtures

    /// Parses "10 00 00 30 ..." (spaces and newlines ignored). Test-only and
    /// deliberately independent of `Hex`.
    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var pending: UInt8? = nil
        for c in s.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v = c - UInt8(ascii: "A") + 10
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "|"): continue
            default: preconditionFailure("bad hex digit in golden")
            }
            if let hi = pending {
                out.append(hi << 4 | v)
                pending = nil
            } else {
                pending = v
            }
        }
        precondition(pending == nil, "odd number of hex digits in golden")
        return out
    }

    /// Device id 01 02 ... 14.
    static let deviceID = AgentID(bytes: (1...20).map { UInt8($0) })!
    static let deviceHex = "01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14"
    /// Origin a0 a1 ... b3.
    static let origin: [UInt8] = (0xa0...0xb3).map { UInt8($0) }
    static let originHex = "a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab ac ad ae af b0 b1 b2 b3"
    static let zeroOriginHex = "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
    /// 2001:db8::1
    static let ipv6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]
    static let nonce: [UInt8] = (0..<32).map { UInt8($0) }
    static let nonceHex = """
        00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f
        10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
        """

    /// A decoded payload, so one table can hold every frame type.
    enum Value: Equatable {
        case open(OpenPayload)
        case accept(UInt32)
        case reason(Reason)           // REFUSE, RESET
        case window(UInt32)
        case ping(UInt64)             // PING, PONG
        case goaway(Reason, UInt32)
        case challenge(ChallengeMessage)
        case auth(AuthMessage)
        case welcome(WelcomeMessage)
        case resume(ResumeMessage)
        case raw([UInt8])             // DATA, FIN, DENIED: no payload decoder in Wire
    }

    struct Golden: @unchecked Sendable, CustomTestStringConvertible {
        var name: String
        var type: FrameType
        var stream: UInt32
        var value: Value
        /// The whole frame, header first.
        var hex: String

        var bytes: [UInt8] { FrameTests.hex(hex) }
        var payload: [UInt8] { Array(bytes.dropFirst(WireProtocol.headerSize)) }
        var testDescription: String { name }
        /// Whether Wire has a decoder that checks this payload's layout.
        var hasDecoder: Bool {
            if case .raw = value { return false }
            return true
        }
    }

    /// The payload as the production encoders write it.
    static func encodePayload(_ v: Value) -> [UInt8] {
        switch v {
        case .open(let o): return o.encode()
        case .accept(let w): return ControlPayload.accept(window: w)
        case .reason(let r): return ControlPayload.reason(r)
        case .window(let w): return ControlPayload.window(w)
        case .ping(let p): return ControlPayload.ping(p)
        case .goaway(let r, let ms): return ControlPayload.goaway(r, retryAfterMs: ms)
        case .challenge(let c): return c.encode()
        case .auth(let a): return a.encode()
        case .welcome(let w): return w.encode()
        case .resume(let r): return r.encode()
        case .raw(let b): return b
        }
    }

    /// The payload as the production decoders read it.
    static func decodePayload(_ type: FrameType, _ p: [UInt8]) throws(WireError) -> Value {
        var result: Value = .raw(p)
        var failure: WireError? = nil
        p.withUnsafeBytes { b in
            do throws(WireError) {
                switch type {
                case .open: result = .open(try OpenPayload.decode(b))
                case .accept: result = .accept(try ControlPayload.decodeU32(b, .accept))
                case .refuse: result = .reason(try ControlPayload.decodeReason(b, .refuse))
                case .reset: result = .reason(try ControlPayload.decodeReason(b, .reset))
                case .window: result = .window(try ControlPayload.decodeU32(b, .window))
                case .keepalive: result = .window(try ControlPayload.decodeU32(b, .keepalive))
                case .ping: result = .ping(try ControlPayload.decodePing(b, .ping))
                case .pong: result = .ping(try ControlPayload.decodePing(b, .pong))
                case .goaway:
                    let (r, ms) = try ControlPayload.decodeGoaway(b)
                    result = .goaway(r, ms)
                case .challenge: result = .challenge(try ChallengeMessage.decode(b))
                case .auth: result = .auth(try AuthMessage.decode(b))
                case .welcome: result = .welcome(try WelcomeMessage.decode(b))
                case .resume: result = .resume(try ResumeMessage.decode(b))
                case .data, .fin, .denied: result = .raw(p)
                }
            } catch {
                failure = error
            }
        }
        if let f = failure { throw f }
        return result
    }

    static let goldens: [Golden] = [
        // OPEN: kind u8 | window u32 | target | origin[20] | family u8 | ip | port u16
        Golden(
            name: "OPEN device, no caller", type: .open, stream: 1,
            value: .open(OpenPayload(target: .device(deviceID), window: 0x0004_0000)),
            hex: "10 00 00 30 00 00 00 01 | 01 | 00 04 00 00 | \(deviceHex) | \(zeroOriginHex) | 00 | 00 00"),
        Golden(
            name: "OPEN device, IPv4 caller", type: .open, stream: 0x0102_0305,
            value: .open(OpenPayload(target: .device(deviceID), window: 0xffff_ffff, origin: origin,
                                     caller: PeerAddress(ip: [203, 0, 113, 9], port: 0xffff))),
            hex: "10 00 00 34 01 02 03 05 | 01 | ff ff ff ff | \(deviceHex) | \(originHex) | 04 cb 00 71 09 | ff ff"),
        Golden(
            name: "OPEN device, IPv6 caller", type: .open, stream: 3,
            value: .open(OpenPayload(target: .device(deviceID), window: 0x0000_4000,
                                     caller: PeerAddress(ip: ipv6, port: 443))),
            hex: """
                10 00 00 40 00 00 00 03 | 01 | 00 00 40 00 | \(deviceHex) | \(zeroOriginHex)
                | 06 | 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 | 01 bb
                """),
        Golden(
            name: "OPEN hostname, IPv4 caller", type: .open, stream: 2,
            value: .open(OpenPayload(target: .hostname("dev1.example.com"), window: 0x0001_0000, origin: origin,
                                     caller: PeerAddress(ip: [192, 0, 2, 7], port: 51000))),
            hex: """
                10 00 00 31 00 00 00 02 | 02 | 00 01 00 00
                | 10 64 65 76 31 2e 65 78 61 6d 70 6c 65 2e 63 6f 6d | \(originHex) | 04 c0 00 02 07 | c7 38
                """),
        Golden(
            name: "OPEN hostname, no caller", type: .open, stream: 4,
            value: .open(OpenPayload(target: .hostname("A_b-9"), window: 1)),
            hex: "10 00 00 22 00 00 00 04 | 02 | 00 00 00 01 | 05 41 5f 62 2d 39 | \(zeroOriginHex) | 00 | 00 00"),
        Golden(
            name: "OPEN hostname, IPv6 caller", type: .open, stream: 6,
            value: .open(OpenPayload(target: .hostname("x"), window: 0,
                                     caller: PeerAddress(ip: [UInt8](repeating: 0, count: 15) + [1], port: 1))),
            hex: """
                10 00 00 2e 00 00 00 06 | 02 | 00 00 00 00 | 01 78 | \(zeroOriginHex)
                | 06 | 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 | 00 01
                """),
        // ACCEPT: window u32
        Golden(
            name: "ACCEPT", type: .accept, stream: 1, value: .accept(0x0004_0000),
            hex: "11 00 00 04 00 00 00 01 | 00 04 00 00"),
        // REFUSE: reason u8
        Golden(
            name: "REFUSE no_resources", type: .refuse, stream: 3, value: .reason(.noResources),
            hex: "12 00 00 01 00 00 00 03 | 03"),
        // DATA: the bytes
        Golden(
            name: "DATA", type: .data, stream: 5, value: .raw(Array("hello".utf8)),
            hex: "13 00 00 05 00 00 00 05 | 68 65 6c 6c 6f"),
        // FIN: empty
        Golden(name: "FIN", type: .fin, stream: 7, value: .raw([]), hex: "14 00 00 00 00 00 00 07"),
        // RESET: reason u8
        Golden(
            name: "RESET closed", type: .reset, stream: 0x0001_0001, value: .reason(.closed),
            hex: "15 00 00 01 00 01 00 01 | 0b"),
        // WINDOW: increment u32
        Golden(
            name: "WINDOW", type: .window, stream: 2, value: .window(0x0001_2345),
            hex: "16 00 00 04 00 00 00 02 | 00 01 23 45"),
        // PING, PONG: 8 opaque bytes
        Golden(
            name: "PING", type: .ping, stream: 0, value: .ping(0x0102_0304_0506_0708),
            hex: "20 00 00 08 00 00 00 00 | 01 02 03 04 05 06 07 08"),
        Golden(
            name: "PONG", type: .pong, stream: 0, value: .ping(0xfedc_ba98_7654_3210),
            hex: "21 00 00 08 00 00 00 00 | fe dc ba 98 76 54 32 10"),
        // KEEPALIVE: the agent's heartbeat in ms, u32 (240 s)
        Golden(name: "KEEPALIVE", type: .keepalive, stream: 0, value: .window(240_000),
               hex: "24 00 00 04 00 00 00 00 00 03 a9 80"),
        // GOAWAY: reason u8 | retry-after ms u32
        Golden(
            name: "GOAWAY", type: .goaway, stream: 0, value: .goaway(.goingAway, 30_000),
            hex: "22 00 00 05 00 00 00 00 | 07 | 00 00 75 30"),
        // CHALLENGE: versionMin u8 | versionMax u8 | nonce[32] | relay SPKI u16-len | signature u16-len
        Golden(
            name: "CHALLENGE", type: .challenge, stream: 0,
            value: .challenge(ChallengeMessage(versionMin: 1, versionMax: 2, nonce: nonce,
                                               relayKey: [0xde, 0xad, 0xbe, 0xef], signature: [0x30, 0x01, 0x02])),
            hex: "01 00 00 2d 00 00 00 00 | 01 02 | \(nonceHex) | 00 04 de ad be ef | 00 03 30 01 02"),
        // AUTH: version u8 | role u8 | n u8, n x (u16-len DER) | token u16-len | m u8, m x (u8-len name) | signature u16-len
        Golden(
            name: "AUTH 1 certificate, token, 1 hostname", type: .auth, stream: 0,
            value: .auth(AuthMessage(version: 1, role: .reverse, certificates: [[0x30, 0x03, 0x02, 0x01, 0x05]],
                                     token: Array("tok".utf8), hostnames: ["dev1.example.com"],
                                     signature: [0xaa, 0xbb])),
            hex: """
                02 00 00 25 00 00 00 00 | 01 | 01 | 01 | 00 05 30 03 02 01 05 | 00 03 74 6f 6b
                | 01 | 10 64 65 76 31 2e 65 78 61 6d 70 6c 65 2e 63 6f 6d | 00 02 aa bb
                """),
        Golden(
            name: "AUTH 2 certificates, no token, 2 hostnames", type: .auth, stream: 0,
            value: .auth(AuthMessage(version: 1, role: .forward, certificates: [[0x30, 0x01, 0x00], [0x30, 0x02, 0x05, 0x00]],
                                     token: [], hostnames: ["a", "b-2.x"], signature: [0x01])),
            hex: """
                02 00 00 1c 00 00 00 00 | 01 | 02 | 02 | 00 03 30 01 00 | 00 04 30 02 05 00 | 00 00
                | 02 | 01 61 | 05 62 2d 32 2e 78 | 00 01 01
                """),
        // WELCOME: agent id[20] | enrolled u8
        Golden(
            name: "WELCOME newly enrolled", type: .welcome, stream: 0,
            value: .welcome(WelcomeMessage(id: deviceID, newlyEnrolled: true)),
            hex: "03 00 00 15 00 00 00 00 | \(deviceHex) | 01"),
        Golden(
            name: "WELCOME known key", type: .welcome, stream: 0,
            value: .welcome(WelcomeMessage(id: deviceID, newlyEnrolled: false)),
            hex: "03 00 00 15 00 00 00 00 | \(deviceHex) | 00"),
        // DENIED: empty (the agent is told nothing about which check failed)
        Golden(name: "DENIED", type: .denied, stream: 0, value: .raw([]), hex: "04 00 00 00 00 00 00 00"),
        // RESUME: lifetime u32 | psk[32] | identity u16-len
        Golden(
            name: "RESUME", type: .resume, stream: 0,
            value: .resume(ResumeMessage(lifetimeSeconds: 86_400, psk: nonce, identity: [0xc0, 0xff, 0xee])),
            hex: "23 00 00 29 00 00 00 00 | 00 01 51 80 | \(nonceHex) | 00 03 c0 ff ee"),
        // CHALLENGE and AUTH of a resumed session (version 2): empty signatures
        Golden(
            name: "CHALLENGE resumed", type: .challenge, stream: 0,
            value: .challenge(ChallengeMessage(versionMin: 2, versionMax: 2, nonce: nonce, relayKey: [0xde, 0xad], signature: [])),
            hex: "01 00 00 28 00 00 00 00 | 02 02 | \(nonceHex) | 00 02 de ad | 00 00"),
        Golden(
            name: "AUTH resumed", type: .auth, stream: 0,
            value: .auth(AuthMessage(version: 2, role: .reverse, certificates: [[0x30, 0x00]], token: [], hostnames: [],
                                     signature: [])),
            hex: "02 00 00 0c 00 00 00 00 | 02 | 01 | 01 | 00 02 30 00 | 00 00 | 00 | 00 00"),
    ]

    // MARK: - Tables

    @Test func frameTypeCodesAreFixed() {
        let codes: [(FrameType, UInt8)] = [
            (.challenge, 0x01), (.auth, 0x02), (.welcome, 0x03), (.denied, 0x04),
            (.open, 0x10), (.accept, 0x11), (.refuse, 0x12), (.data, 0x13), (.fin, 0x14), (.reset, 0x15),
            (.window, 0x16), (.ping, 0x20), (.pong, 0x21), (.goaway, 0x22), (.resume, 0x23), (.keepalive, 0x24),
        ]
        #expect(codes.count == FrameType.allCases.count)
        for (t, raw) in codes {
            #expect(t.rawValue == raw)
            #expect(FrameType(rawValue: raw) == t)
        }
    }

    @Test func everyFrameTypeHasAGolden() {
        for t in FrameType.allCases {
            #expect(Self.goldens.contains { $0.type == t }, "no golden frame for type \(t.rawValue)")
        }
    }

    @Test func reasonCodesAreFixed() {
        let codes: [(Reason, UInt8, String)] = [
            (.unspecified, 0, "unspecified"), (.noSuchDevice, 1, "no_such_device"), (.notAuthorized, 2, "not_authorized"),
            (.noResources, 3, "no_resources"), (.targetNotAllowed, 4, "target_not_allowed"),
            (.connectFailed, 5, "connect_failed"), (.timeout, 6, "timeout"), (.goingAway, 7, "going_away"),
            (.protocolError, 8, "protocol_error"), (.unknownHostname, 9, "unknown_hostname"),
            (.deviceMismatch, 10, "device_mismatch"), (.closed, 11, "closed"),
        ]
        #expect(codes.count == Reason.allCases.count)
        for (r, raw, text) in codes {
            #expect(r.rawValue == raw)
            #expect(Reason.from(raw) == r)
            #expect(r.text == text)
        }
    }

    @Test(arguments: [UInt8(12), 13, 0x7f, 0x80, 0xfe, 0xff])
    func unknownReasonReadsAsUnspecified(raw: UInt8) throws {
        #expect(Reason.from(raw) == .unspecified)
        // And in the frames that carry one: a new reason code is not a protocol error.
        #expect(try Self.decodePayload(.refuse, [raw]) == .reason(.unspecified))
        #expect(try Self.decodePayload(.reset, [raw]) == .reason(.unspecified))
        #expect(try Self.decodePayload(.goaway, [raw, 0, 0, 0, 1]) == .goaway(.unspecified, 1))
    }

    @Test func constants() {
        #expect(WireProtocol.headerSize == 8)
        #expect(WireProtocol.maxPayload == 16376)
        #expect(WireProtocol.headerSize + WireProtocol.maxPayload == 16384)
        #expect(WireProtocol.version == 2)
        #expect(WireProtocol.minVersion == 1)
        #expect(WireProtocol.resumeVersion == 2)
        #expect(ResumeMessage.pskSize == 32)
        #expect(OpenPayload.maxHostname == 253)
        #expect(AuthMessage.maxCertificates == 4)
        #expect(AuthMessage.maxHostnames == 8)
        #expect(ChallengeMessage.nonceSize == 32)
    }

    // MARK: - Header

    static let headerCases: [(String, FrameHeader)] = [
        ("13 00 12 34 01 02 03 04", FrameHeader(rawType: 0x13, length: 0x1234, stream: 0x0102_0304)),
        ("00 00 00 00 00 00 00 00", FrameHeader(rawType: 0, length: 0, stream: 0)),
        ("ff ff 3f f8 ff ff ff ff", FrameHeader(rawType: 0xff, flags: 0xff, length: WireProtocol.maxPayload, stream: 0xffff_ffff)),
        ("20 80 00 01 80 00 00 00", FrameHeader(rawType: 0x20, flags: 0x80, length: 1, stream: 0x8000_0000)),
    ]

    @Test(arguments: headerCases)
    func headerEncodesAndDecodes(hex: String, header: FrameHeader) throws {
        let golden = Self.hex(hex)
        var out = [UInt8](repeating: 0xee, count: 10)
        out.withUnsafeMutableBytes { FrameCodec.encodeHeader(header, into: $0) }
        #expect(Array(out[0..<8]) == golden)
        #expect(out[8] == 0xee && out[9] == 0xee, "encodeHeader wrote past the header")
        let decoded = try golden.withUnsafeBytes { b throws(WireError) in try FrameCodec.decodeHeader(b) }
        #expect(decoded == header)
        // Flags are reserved: kept as read, never interpreted.
        #expect(decoded?.type == FrameType(rawValue: header.rawType))
    }

    @Test func headerNeedsEightBytes() throws {
        let golden = Self.hex("13 00 00 05 00 00 00 05 68 65")
        for k in 0..<8 {
            let h = try Array(golden[0..<k]).withUnsafeBytes { b throws(WireError) in try FrameCodec.decodeHeader(b) }
            #expect(h == nil, "decodeHeader returned a header from \(k) bytes")
        }
        // Eight bytes are a header even if the payload has not arrived.
        let h = try Array(golden[0..<8]).withUnsafeBytes { b throws(WireError) in try FrameCodec.decodeHeader(b) }
        #expect(h == FrameHeader(rawType: 0x13, length: 5, stream: 5))
    }

    @Test(arguments: [0, 1, 2, 255, 256, WireProtocol.maxPayload - 1, WireProtocol.maxPayload])
    func payloadSizesUpToMax(size: Int) throws {
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let frame = FrameCodec.encode(.data, stream: 9, payload: payload)
        #expect(frame.count == 8 + size)
        #expect(Array(frame[0..<8]) == [0x13, 0, UInt8(size >> 8), UInt8(size & 0xff), 0, 0, 0, 9])
        #expect(Array(frame[8...]) == payload)
        let h = try frame.withUnsafeBytes { b throws(WireError) in try FrameCodec.decodeHeader(b) }
        #expect(h == FrameHeader(rawType: 0x13, length: size, stream: 9))
        // append() writes the same bytes into a queue that has exactly enough room.
        let q = ByteQueue(capacity: 8 + size)
        FrameCodec.append(.data, stream: 9, payload: payload, to: q)
        #expect(q.peekAll() == frame)
        #expect(q.freeSpace == 0)
    }

    @Test(arguments: [WireProtocol.maxPayload + 1, 0x4000, 0x8000, 0xffff])
    func oversizedLengthThrows(length: Int) {
        let header: [UInt8] = [0x13, 0, UInt8(length >> 8), UInt8(length & 0xff), 0, 0, 0, 1]
        #expect(throws: WireError.oversized(length)) {
            _ = try header.withUnsafeBytes { b throws(WireError) in try FrameCodec.decodeHeader(b) }
        }
        // The check does not depend on the type: an unknown type cannot be oversized either.
        let unknown: [UInt8] = [0x99, 0, UInt8(length >> 8), UInt8(length & 0xff), 0, 0, 0, 0]
        #expect(throws: WireError.oversized(length)) {
            _ = try unknown.withUnsafeBytes { b throws(WireError) in try FrameCodec.decodeHeader(b) }
        }
    }

    // MARK: - Goldens

    @Test(arguments: goldens)
    func encoderWritesGolden(g: Golden) {
        let payload = Self.encodePayload(g.value)
        #expect(FrameCodec.encode(g.type, stream: g.stream, payload: payload) == g.bytes)
        // The ByteQueue path writes the same bytes, also after a wrap-around compaction.
        let q = ByteQueue(capacity: g.bytes.count + 3)
        q.append([1, 2, 3])
        q.consume(3)
        q.append([9])
        q.consume(1)
        FrameCodec.append(g.type, stream: g.stream, payload: payload, to: q)
        #expect(q.peekAll() == g.bytes)
    }

    @Test(arguments: goldens)
    func decoderReadsGolden(g: Golden) throws {
        let bytes = g.bytes
        let h = try bytes.withUnsafeBytes { b throws(WireError) in try FrameCodec.decodeHeader(b) }
        #expect(h == FrameHeader(rawType: g.type.rawValue, length: bytes.count - 8, stream: g.stream))
        #expect(h?.type == g.type)
        #expect(try Self.decodePayload(g.type, g.payload) == g.value)
    }

    @Test(arguments: goldens)
    func roundTrip(g: Golden) throws {
        let decoded = try Self.decodePayload(g.type, g.payload)
        #expect(Self.encodePayload(decoded) == g.payload)
    }

    /// Every prefix of every golden: no header below 8 bytes; from 8 bytes on, the
    /// header is readable but the payload decoder rejects every incomplete payload.
    @Test(arguments: goldens)
    func truncationAtEveryOffset(g: Golden) throws {
        let bytes = g.bytes
        for k in 0..<bytes.count {
            let prefix = Array(bytes[0..<k])
            let h = try prefix.withUnsafeBytes { b throws(WireError) in try FrameCodec.decodeHeader(b) }
            if k < WireProtocol.headerSize {
                #expect(h == nil, "\(g.name): header from \(k) bytes")
                continue
            }
            #expect(h?.length == bytes.count - 8, "\(g.name): header changed by truncation")
            guard g.hasDecoder else { continue }
            let partial = Array(prefix[8...])
            #expect(throws: WireError.malformed(g.type), "\(g.name): payload truncated to \(partial.count) bytes") {
                _ = try Self.decodePayload(g.type, partial)
            }
        }
    }

    @Test(arguments: goldens.filter { $0.hasDecoder })
    func trailingByteIsMalformed(g: Golden) {
        for extra in [UInt8(0x00), 0x01, 0xff] {
            #expect(throws: WireError.malformed(g.type), "\(g.name) + \(extra)") {
                _ = try Self.decodePayload(g.type, g.payload + [extra])
            }
        }
    }

    // MARK: - Layout rules beyond length

    static func expectMalformed(_ type: FrameType, _ payload: [UInt8], _ why: Comment,
                                sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: WireError.malformed(type), why, sourceLocation: sourceLocation) {
            _ = try Self.decodePayload(type, payload)
        }
    }

    static func openPayload(kind: UInt8, target: [UInt8], family: UInt8 = 0, ip: [UInt8] = []) -> [UInt8] {
        [kind, 0, 0, 0x40, 0] + target + [UInt8](repeating: 0, count: 20) + [family] + ip + [0, 80]
    }

    @Test func openRejectsBadLayouts() {
        let id = Array(Self.deviceID.bytes)
        // Sanity: the helper's layout is valid.
        #expect(throws: Never.self) { _ = try Self.decodePayload(.open, Self.openPayload(kind: 1, target: id)) }
        for kind: UInt8 in [0, 3, 0xff] {
            Self.expectMalformed(.open, Self.openPayload(kind: kind, target: id), "kind \(kind)")
        }
        Self.expectMalformed(.open, Self.openPayload(kind: 2, target: [0]), "empty hostname")
        Self.expectMalformed(.open, Self.openPayload(kind: 2, target: [3] + Array("a b".utf8)), "space in hostname")
        Self.expectMalformed(.open, Self.openPayload(kind: 2, target: [3] + Array("a/b".utf8)), "slash in hostname")
        Self.expectMalformed(.open, Self.openPayload(kind: 2, target: [2, 0xc3, 0xa9]), "non-ASCII hostname")
        Self.expectMalformed(.open, Self.openPayload(kind: 2, target: [254] + [UInt8](repeating: 0x61, count: 254)),
                             "hostname of 254 bytes")
        #expect(throws: Never.self) {
            _ = try Self.decodePayload(.open, Self.openPayload(kind: 2, target: [253] + [UInt8](repeating: 0x61, count: 253)))
        }
        for fam: UInt8 in [1, 5, 16, 0xff] {
            Self.expectMalformed(.open, Self.openPayload(kind: 1, target: id, family: fam, ip: [1, 2, 3, 4]), "family \(fam)")
        }
        // Family and address length must agree.
        Self.expectMalformed(.open, Self.openPayload(kind: 1, target: id, family: 4, ip: Self.ipv6), "family 4 with 16 bytes")
        Self.expectMalformed(.open, Self.openPayload(kind: 1, target: id, family: 6, ip: [1, 2, 3, 4]), "family 6 with 4 bytes")
        Self.expectMalformed(.open, Self.openPayload(kind: 1, target: id, family: 0, ip: [1, 2, 3, 4]), "family 0 with 4 bytes")
    }

    @Test func helloRejectsBadLayouts() {
        let c = ChallengeMessage(versionMin: 1, versionMax: 1, nonce: Self.nonce, relayKey: [1], signature: [2])
        #expect(throws: Never.self) { _ = try Self.decodePayload(.challenge, c.encode()) }
        var bad = c
        bad.versionMin = 2
        Self.expectMalformed(.challenge, bad.encode(), "versionMin > versionMax")
        bad = c
        bad.relayKey = []
        Self.expectMalformed(.challenge, bad.encode(), "empty relay key")
        bad = c
        bad.signature = []
        // The resumed form (version 2): it decodes; HelloAuth accepts it only on a resumed session.
        #expect(throws: Never.self) { _ = try Self.decodePayload(.challenge, bad.encode()) }

        let a = AuthMessage(version: 1, role: .reverse, certificates: [[1]], token: [], hostnames: [], signature: [9])
        #expect(throws: Never.self) { _ = try Self.decodePayload(.auth, a.encode()) }
        var ba = a
        ba.certificates = []
        Self.expectMalformed(.auth, ba.encode(), "no certificate")
        ba.certificates = [[1], [2], [3], [4], [5]]
        Self.expectMalformed(.auth, ba.encode(), "5 certificates")
        ba.certificates = [[1], [2], [3], [4]]
        #expect(throws: Never.self) { _ = try Self.decodePayload(.auth, ba.encode()) }
        ba = a
        ba.certificates = [[1], []]
        Self.expectMalformed(.auth, ba.encode(), "empty certificate")
        ba = a
        ba.hostnames = (0..<9).map { "h\($0)" }
        Self.expectMalformed(.auth, ba.encode(), "9 hostnames")
        ba.hostnames = (0..<8).map { "h\($0)" }
        #expect(throws: Never.self) { _ = try Self.decodePayload(.auth, ba.encode()) }
        ba = a
        ba.hostnames = ["ok", "not ok"]
        Self.expectMalformed(.auth, ba.encode(), "bad hostname")
        ba = a
        ba.hostnames = [""]
        Self.expectMalformed(.auth, ba.encode(), "empty hostname")
        ba = a
        ba.signature = []
        // The resumed form (version 2): it decodes; the relay's full-hello check refuses it.
        #expect(throws: Never.self) { _ = try Self.decodePayload(.auth, ba.encode()) }
        let r = ResumeMessage(lifetimeSeconds: 1, psk: Self.nonce, identity: [1])
        #expect(throws: Never.self) { _ = try Self.decodePayload(.resume, r.encode()) }
        var br = r
        br.identity = []
        Self.expectMalformed(.resume, br.encode(), "empty identity")
        Self.expectMalformed(.resume, Array(r.encode().prefix(20)), "short psk")
        var raw = a.encode()
        raw[1] = 3
        Self.expectMalformed(.auth, raw, "role 3")
        raw[1] = 0
        Self.expectMalformed(.auth, raw, "role 0")

        let w = WelcomeMessage(id: Self.deviceID, newlyEnrolled: false).encode()
        Self.expectMalformed(.welcome, Array(w[0..<20]) + [2], "enrolled flag 2")
        Self.expectMalformed(.welcome, Array(w[0..<20]) + [0xff], "enrolled flag 255")
    }

    @Test func fixedPayloadsRejectEveryOtherLength() {
        let sizes: [(FrameType, Int)] = [
            (.accept, 4), (.window, 4), (.refuse, 1), (.reset, 1), (.ping, 8), (.pong, 8), (.goaway, 5), (.welcome, 21),
        ]
        for (t, size) in sizes {
            for n in 0...(size + 2) where n != size {
                Self.expectMalformed(t, [UInt8](repeating: 0, count: n), "type \(t.rawValue) with \(n) bytes")
            }
        }
    }

    // MARK: - What is signed

    @Test func challengeSignedData() {
        // "v2" since issue 12: the relay signs the version range it offers with its nonce.
        #expect(HelloLabel.challenge == Array("agent relay challenge v2".utf8))
        #expect(HelloLabel.auth == Array("agent auth v1".utf8))
        let expected = Self.hex("61 67 65 6e 74 20 72 65 6c 61 79 20 63 68 61 6c 6c 65 6e 67 65 20 76 32 | \(Self.nonceHex) | 01 02")
        #expect(ChallengeMessage.signedData(nonce: Self.nonce, versionMin: 1, versionMax: 2) == expected)
        let c = ChallengeMessage(versionMin: 1, versionMax: 2, nonce: Self.nonce, relayKey: [1], signature: [2])
        #expect(c.signedData == expected)
    }

    @Test func authUnsignedIsEverythingButTheSignatureField() {
        for g in Self.goldens {
            guard case .auth(let a) = g.value else { continue }
            let unsigned = a.encodeUnsigned()
            let sigField = [UInt8(a.signature.count >> 8), UInt8(a.signature.count & 0xff)] + a.signature
            #expect(unsigned + sigField == g.payload)
            // The hash covers the fields, not the signature: changing the signature leaves it alone.
            var other = a
            other.signature = [1, 2, 3]
            #expect(other.encodeUnsigned() == unsigned)
        }
    }

    // MARK: - PeerAddress

    @Test func peerAddressText() {
        #expect(PeerAddress.none.text == "-")
        #expect(PeerAddress(ip: [1, 2, 3, 4], port: 5).text == "1.2.3.4:5")
        #expect(PeerAddress(ip: [255, 255, 255, 255], port: 65535).text == "255.255.255.255:65535")
        #expect(PeerAddress(ip: [0, 0, 0, 0], port: 0).text == "0.0.0.0:0")
        #expect(PeerAddress(ip: [1, 2, 3], port: 5).text == "-")
        let full: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0xab, 0xcd, 0x00, 0x01, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54]
        #expect(PeerAddress(ip: full, port: 8080).text == "[2001:db8:1234:abcd:1:fedc:ba98:7654]:8080")
    }

    /// IPv6 in the RFC 5952 text form: lowercase, no leading zeros, the longest
    /// run of two or more zero groups (the first of equal runs) written as "::".
    /// (Regression: the first version printed "[0:0:0:0:0:0:0:1]:5".)
    static let ipv6Texts: [(String, String)] = [
        ("00000000000000000000000000000001", "[::1]:5"),
        ("00000000000000000000000000000000", "[::]:5"),
        ("20010db8000000000000000000000001", "[2001:db8::1]:5"),
        ("20010db8000000000000000000000000", "[2001:db8::]:5"),
        ("00010000000000010000000000000001", "[1:0:0:1::1]:5"),
        ("00010000000000010001000000000001", "[1::1:1:0:0:1]:5"),
        ("20010db8000000010001000100010001", "[2001:db8:0:1:1:1:1:1]:5"),
        ("fe800000000000000202b3fffe1e8329", "[fe80::202:b3ff:fe1e:8329]:5"),
        ("ffffffffffffffffffffffffffffffff", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:5"),
    ]

    @Test(arguments: ipv6Texts)
    func peerAddressTextIPv6(ipHex: String, text: String) {
        #expect(PeerAddress(ip: Self.hex(ipHex), port: 5).text == text)
    }
}
