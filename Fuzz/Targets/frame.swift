// Fuzz target `frame`: the frame decoder and every payload decoder
// (Sources/Wire/Frame.swift, Hello.swift).
//
// The input is used three ways:
//   1. as a stream of frames, decoded the way Mux.poll does (header, then the
//      payload decoder of its type), until the bytes run out or a frame is refused;
//   2. every payload decoder on the whole input;
//   3. every payload decoder on the input after its first 8 bytes.
// Checks: no trap, no out-of-bounds read (ASan); a header's length is within
// `maxPayload`; and whatever decodes re-encodes to exactly the same bytes
// (every layout is exact-length, so there is one encoding per value), and
// decodes again to the same value. A caller address prints as text that
// inet_pton reads back to the same bytes.

#if canImport(Glibc)
import Glibc
#endif
import Wire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrame(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let all = UnsafeRawBufferPointer(start: data, count: size)
    decodeStream(all)
    allDecoders(all)
    if size > WireProtocol.headerSize {
        allDecoders(UnsafeRawBufferPointer(rebasing: all[WireProtocol.headerSize...]))
    }
    return 0
}

/// Frames one after another, as Mux.poll reads them from `rx`.
func decodeStream(_ all: UnsafeRawBufferPointer) {
    var off = 0
    while off < all.count {
        let rest = UnsafeRawBufferPointer(rebasing: all[off...])
        let header: FrameHeader?
        do throws(WireError) {
            header = try FrameCodec.decodeHeader(rest)
        } catch {
            guard case .oversized(let n) = error else { require(false, "decodeHeader threw malformed"); return }
            require(n > WireProtocol.maxPayload && n == Int(rest[2]) << 8 | Int(rest[3]), "oversized length")
            return
        }
        guard let h = header else {
            require(rest.count < WireProtocol.headerSize, "no header from 8 bytes")
            return
        }
        require(h.length <= WireProtocol.maxPayload, "header length over maxPayload")
        // The header re-encodes to the same 8 bytes.
        var eh = [UInt8](repeating: 0, count: WireProtocol.headerSize)
        eh.withUnsafeMutableBytes { FrameCodec.encodeHeader(h, into: $0) }
        require(eh.elementsEqual(rest[0..<WireProtocol.headerSize]), "header round trip")
        guard rest.count >= WireProtocol.headerSize + h.length else { return }
        let p = UnsafeRawBufferPointer(rebasing: rest[WireProtocol.headerSize..<(WireProtocol.headerSize + h.length)])
        if let t = h.type {
            if !decodeTyped(t, p) { return }  // a malformed frame closes the tunnel: stop here
            if let bytes = try? decodeForReencode(t, p) {
                // The whole frame re-encodes to its input, but for `flags` (reserved: sent as 0).
                var input = Array(rest[0..<(WireProtocol.headerSize + h.length)])
                input[1] = 0
                require(FrameCodec.encode(t, stream: h.stream, payload: bytes) == input, "frame round trip")
            }
        }
        off += WireProtocol.headerSize + h.length
    }
}

/// Runs the decoder for `t`; false if it refused the payload.
func decodeTyped(_ t: FrameType, _ p: UnsafeRawBufferPointer) -> Bool {
    do throws(WireError) {
        switch t {
        case .challenge: checkChallenge(try ChallengeMessage.decode(p), p)
        case .auth: checkAuth(try AuthMessage.decode(p), p)
        case .welcome: checkWelcome(try WelcomeMessage.decode(p), p)
        case .resume: same(try ResumeMessage.decode(p).encode(), p, "RESUME")
        case .denied: break  // no payload layout: the relay's text, shown as is
        case .open: checkOpen(try OpenPayload.decode(p), p)
        case .accept, .window, .keepalive: checkU32(try ControlPayload.decodeU32(p, t), p, t)
        case .refuse, .reset: checkReason(try ControlPayload.decodeReason(p, t), p)
        case .ping, .pong: checkPing(try ControlPayload.decodePing(p, t), p)
        case .goaway:
            let (r, ms) = try ControlPayload.decodeGoaway(p)
            checkGoaway(r, ms, p)
        case .data, .fin: break  // opaque / empty, checked by the mux
        }
        return true
    } catch {
        guard case .malformed(let ft) = error else { require(false, "payload decoder threw oversized"); return false }
        require(ft == t, "malformed(\(ft)) from the \(t) decoder")
        return false
    }
}

/// The canonical payload bytes of a decoded payload (for the whole-frame round trip).
func decodeForReencode(_ t: FrameType, _ p: UnsafeRawBufferPointer) throws(WireError) -> [UInt8] {
    switch t {
    case .challenge: return try ChallengeMessage.decode(p).encode()
    case .auth: return try AuthMessage.decode(p).encode()
    case .welcome: return try WelcomeMessage.decode(p).encode()
    case .resume: return try ResumeMessage.decode(p).encode()
    case .open: return try OpenPayload.decode(p).encode()
    case .accept: return ControlPayload.accept(window: try ControlPayload.decodeU32(p, t))
    case .window, .keepalive: return ControlPayload.window(try ControlPayload.decodeU32(p, t))
    case .ping, .pong: return ControlPayload.ping(try ControlPayload.decodePing(p, t))
    case .denied, .data, .fin, .refuse, .reset, .goaway: return Array(p)  // raw or lossy (unknown reasons)
    }
}

func allDecoders(_ p: UnsafeRawBufferPointer) {
    for t in FrameType.allCases { _ = decodeTyped(t, p) }
}

func same(_ a: [UInt8], _ p: UnsafeRawBufferPointer, _ what: String) {
    require(a.elementsEqual(p), what + " does not re-encode to its input: " + hex(Array(p)) + " -> " + hex(a))
}

func checkChallenge(_ m: ChallengeMessage, _ p: UnsafeRawBufferPointer) {
    require(m.versionMin <= m.versionMax && m.nonce.count == ChallengeMessage.nonceSize, "challenge fields")
    require(!m.relayKey.isEmpty && !m.signature.isEmpty, "challenge blobs")
    let e = m.encode()
    same(e, p, "CHALLENGE")
    require((try? decodeBytes(e, ChallengeMessage.decode)) == m, "CHALLENGE decode(encode)")
}

func checkAuth(_ m: AuthMessage, _ p: UnsafeRawBufferPointer) {
    require(m.certificates.count >= 1 && m.certificates.count <= AuthMessage.maxCertificates, "auth certificate count")
    require(m.hostnames.count <= AuthMessage.maxHostnames, "auth hostname count")
    for h in m.hostnames { require(OpenPayload.isHostnameBytes(Array(h.utf8)), "auth hostname bytes") }
    let e = m.encode()
    same(e, p, "AUTH")
    // The signed part is the encoding without the signature field.
    let u = m.encodeUnsigned()
    require(u.count + 2 + m.signature.count == e.count && e.starts(with: u), "AUTH unsigned prefix")
    require((try? decodeBytes(e, AuthMessage.decode)) == m, "AUTH decode(encode)")
}

func checkWelcome(_ m: WelcomeMessage, _ p: UnsafeRawBufferPointer) {
    let e = m.encode()
    same(e, p, "WELCOME")
    require(AgentID(text: m.id.text) == m.id, "agent ID text round trip")
}

func checkOpen(_ o: OpenPayload, _ p: UnsafeRawBufferPointer) {
    require(o.origin.count == AgentID.byteCount, "open origin size")
    switch o.target {
    case .device(let id): require(id.bytes.count == AgentID.byteCount, "open device id size")
    case .hostname(let h): require(OpenPayload.isHostnameBytes(Array(h.utf8)), "open hostname bytes")
    }
    let e = o.encode()
    same(e, p, "OPEN")
    require((try? decodeBytes(e, OpenPayload.decode)) == o, "OPEN decode(encode)")
    checkAddressText(o.caller)
}

/// "1.2.3.4:5", "[v6]:5" or "-"; the address part reads back with inet_pton.
func checkAddressText(_ a: PeerAddress) {
    let t = Array(a.text.utf8)
    switch a.ip.count {
    case 0:
        require(t == Array("-".utf8), "no-address text")
    case 4, 16:
        guard let colon = t.lastIndex(of: UInt8(ascii: ":")) else { require(false, "address text without port"); return }
        require(String(decoding: t[(colon + 1)...], as: UTF8.self) == String(a.port), "address text port")
        var host = Array(t[0..<colon])
        let v6 = a.ip.count == 16
        if v6 {
            require(host.first == UInt8(ascii: "[") && host.last == UInt8(ascii: "]"), "v6 text brackets")
            host = Array(host.dropFirst().dropLast())
        }
        host.append(0)
        var out = [UInt8](repeating: 0, count: 16)
        let rc = host.withUnsafeBufferPointer { h in
            out.withUnsafeMutableBytes { inet_pton(v6 ? AF_INET6 : AF_INET, UnsafeRawPointer(h.baseAddress!).assumingMemoryBound(to: CChar.self), $0.baseAddress) }
        }
        require(rc == 1 && Array(out[0..<a.ip.count]) == a.ip,
                "address text '" + a.text + "' does not read back as " + hex(a.ip))
        // RFC 5952: lowercase, no leading zeros, "::" for the longest run of two or
        // more zero groups (the first of equal runs), and nowhere else; IPv4-mapped
        // addresses as ::ffff:a.b.c.d.
        if v6 {
            let s = Array(host.dropLast())
            if s.contains(UInt8(ascii: ".")) {
                // RFC 5952 section 5: an IPv4-mapped address ends in dotted decimal.
                require(a.ip[0..<12].elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]) && s.starts(with: Array("::ffff:".utf8)),
                        "dotted decimal in a v6 address that is not IPv4-mapped: " + a.text)
            } else {
                checkRFC5952(s, a.text)
            }
        }
    default:
        require(false, "caller address of \(a.ip.count) bytes")
    }
}

func checkRFC5952(_ s: [UInt8], _ text: String) {
    for c in s { require(!(c >= UInt8(ascii: "A") && c <= UInt8(ascii: "F")), "v6 text uppercase: " + text) }
    // Split at "::" (at most once), then each side at ":".
    var cut: Int? = nil
    var i = 0
    while i + 1 < s.count {
        if s[i] == UInt8(ascii: ":") && s[i + 1] == UInt8(ascii: ":") {
            require(cut == nil, "two '::' in " + text)
            cut = i
            i += 1
        }
        i += 1
    }
    func groups(_ b: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        b.isEmpty ? [] : b.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
    }
    let before = groups(cut.map { s[0..<$0] } ?? s[...])
    let after = cut.map { groups(s[($0 + 2)...]) } ?? []
    for g in before + after {
        require(g.count >= 1 && g.count <= 4 && (g.count == 1 || g.first != UInt8(ascii: "0")),
                "v6 group '" + String(decoding: g, as: UTF8.self) + "' in " + text)
    }
    func longestZeroRun(_ gs: [ArraySlice<UInt8>]) -> Int {
        var best = 0, run = 0
        for g in gs {
            run = g.elementsEqual([UInt8(ascii: "0")]) ? run + 1 : 0
            best = max(best, run)
        }
        return best
    }
    if cut != nil {
        let compressed = 8 - before.count - after.count
        require(compressed >= 2, "'::' stands for \(compressed) group(s) in " + text)
        require(longestZeroRun(before) < compressed && longestZeroRun(after) <= compressed,
                "'::' is not the first longest zero run in " + text)
    } else {
        require(before.count == 8, "v6 text without '::' has \(before.count) groups: " + text)
        require(longestZeroRun(before) < 2, "v6 zero run not compressed: " + text)
    }
}

func checkU32(_ v: UInt32, _ p: UnsafeRawBufferPointer, _ t: FrameType) {
    same(t == .accept ? ControlPayload.accept(window: v) : ControlPayload.window(v), p, "u32 payload")
}

func checkReason(_ r: Reason, _ p: UnsafeRawBufferPointer) {
    require(!r.text.isEmpty, "reason text")
    if Reason(rawValue: p[0]) != nil { same(ControlPayload.reason(r), p, "reason") } else { require(r == .unspecified, "unknown reason maps to unspecified") }
}

func checkPing(_ v: UInt64, _ p: UnsafeRawBufferPointer) { same(ControlPayload.ping(v), p, "ping") }

func checkGoaway(_ r: Reason, _ ms: UInt32, _ p: UnsafeRawBufferPointer) {
    if Reason(rawValue: p[0]) != nil { same(ControlPayload.goaway(r, retryAfterMs: ms), p, "goaway") } else { require(r == .unspecified, "goaway unknown reason") }
}

// MARK: - Seeds

func fuzzSeeds() -> [(String, [UInt8])] {
    let id = AgentID(bytes: (0..<20).map { UInt8($0 * 7) })!
    let v6 = PeerAddress(ip: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], port: 443)
    var out: [(String, [UInt8])] = [
        ("challenge", FrameCodec.encode(.challenge, stream: 0, payload: ChallengeMessage(
            versionMin: 1, versionMax: 1, nonce: [UInt8](repeating: 0x5a, count: 32),
            relayKey: [0x30, 0x59, 0x30, 0x13], signature: [0x30, 0x45, 0x02, 0x20]).encode())),
        ("auth", FrameCodec.encode(.auth, stream: 0, payload: AuthMessage(
            version: 1, role: .reverse, certificates: [[0x30, 0x82, 0x01, 0x00], [0x30, 0x01]],
            token: Array("at1.xyz".utf8), hostnames: ["cam.example", "b"], signature: [0x30, 0x44]).encode())),
        ("welcome", FrameCodec.encode(.welcome, stream: 0, payload: WelcomeMessage(id: id, newlyEnrolled: true).encode())),
        ("denied", FrameCodec.encode(.denied, stream: 0, payload: Array("not enrolled".utf8))),
        ("open-device-v6", FrameCodec.encode(.open, stream: 1, payload: OpenPayload(
            target: .device(id), window: 262_144, caller: v6).encode())),
        ("open-hostname-v4", FrameCodec.encode(.open, stream: 2, payload: OpenPayload(
            target: .hostname("Cam-1.example"), window: 65536, origin: id.bytes,
            caller: PeerAddress(ip: [192, 0, 2, 7], port: 51234)).encode())),
        ("accept", FrameCodec.encode(.accept, stream: 1, payload: ControlPayload.accept(window: 65536))),
        ("refuse", FrameCodec.encode(.refuse, stream: 3, payload: ControlPayload.reason(.noSuchDevice))),
        ("data", FrameCodec.encode(.data, stream: 5, payload: Array("GET / HTTP/1.1\r\n\r\n".utf8))),
        ("fin", FrameCodec.encode(.fin, stream: 5, payload: [])),
        ("reset", FrameCodec.encode(.reset, stream: 7, payload: ControlPayload.reason(.timeout))),
        ("window", FrameCodec.encode(.window, stream: 9, payload: ControlPayload.window(16384))),
        ("ping", FrameCodec.encode(.ping, stream: 0, payload: ControlPayload.ping(0x0102_0304_0506_0708))),
        ("pong", FrameCodec.encode(.pong, stream: 0, payload: ControlPayload.ping(1))),
        ("goaway", FrameCodec.encode(.goaway, stream: 0, payload: ControlPayload.goaway(.goingAway, retryAfterMs: 5000))),
    ]
    // A tunnel's worth of frames back to back, and an unknown type in the middle.
    var stream: [UInt8] = []
    for (_, f) in out where f[0] >= FrameType.open.rawValue { stream += f }
    stream.insert(contentsOf: [0x7f, 0, 0, 2, 0, 0, 0, 1, 0xaa, 0xbb], at: 0)
    out.append(("tunnel", stream))
    // Two IPv6 callers whose text needs RFC 5952 care.
    out.append(("open-v6-zero-runs", FrameCodec.encode(.open, stream: 11, payload: OpenPayload(
        target: .device(id), window: 1,
        caller: PeerAddress(ip: [0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], port: 1)).encode())))
    out.append(("open-v4-mapped", FrameCodec.encode(.open, stream: 13, payload: OpenPayload(
        target: .device(id), window: 1,
        caller: PeerAddress(ip: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1], port: 8080)).encode())))
    return out
}
