/// The multiplexer's wire format: one header, a table of frame types, exact
/// payload layouts. docs/PROTOCOL.md is the same table in prose; keep both in
/// step, and bump `Protocol.version` for any incompatible change.
///
///     0       1       2       3       4       5       6       7
///     +-------+-------+-------+-------+-------+-------+-------+-------+
///     | type  | flags |    length     |            stream            |
///     +-------+-------+-------+-------+-------+-------+-------+-------+
///     | payload: `length` bytes (0 ... maxPayload)                    |
///
/// All integers are big-endian. `flags` is reserved (sent as 0, ignored).
/// Stream 0 is the tunnel itself (hello, ping, pong, goaway, resume); streams opened by
/// an agent have odd ids, streams opened by the relay even ids.
///
/// A receiver skips a frame of an unknown type (its length is known) and
/// counts it; a known frame whose payload does not match its layout exactly,
/// or any frame longer than `maxPayload`, is a protocol error that closes the
/// tunnel (the decoder cannot trust anything after it).
public enum WireProtocol {
    /// Version history: 1 = first release; 2 = resume credentials (RESUME frame; on a
    /// TLS session authenticated by one, CHALLENGE and AUTH carry no signature).
    /// A version-1 peer still speaks with a version-2 one (full hellos only).
    public static let version: UInt8 = 2
    public static let minVersion: UInt8 = 1
    /// The first version whose agents take resume credentials.
    public static let resumeVersion: UInt8 = 2
    public static let headerSize = 8
    /// Largest payload: a whole frame fits one 16 KiB TLS record.
    public static let maxPayload = 16384 - headerSize
}

/// Frame types. Hello-phase frames come first on a tunnel (see `Hello.swift`).
public enum FrameType: UInt8, CaseIterable {
    // hello exchange (stream 0), in this order
    case challenge = 0x01   // relay -> agent
    case auth = 0x02        // agent -> relay
    case welcome = 0x03     // relay -> agent
    case denied = 0x04      // relay -> agent, then close
    // streams
    case open = 0x10
    case accept = 0x11
    case refuse = 0x12
    case data = 0x13
    case fin = 0x14
    case reset = 0x15
    case window = 0x16
    // tunnel (stream 0)
    case ping = 0x20
    case pong = 0x21
    case goaway = 0x22
    case resume = 0x23      // relay -> agent (version 2): a resume credential
    /// agent -> relay, once after the hello: "I ping every N ms" (u32). The relay then
    /// stops pinging this tunnel and watches for the agent's PINGs instead (an idle
    /// device on a metered link pays for one exchange per N). Relays that do not know
    /// the frame skip it and keep pinging.
    case keepalive = 0x24
}

/// Why a stream was refused or reset. The same codes travel in REFUSE and RESET
/// frames and in a reverse's answer inside an end-to-end session.
public enum Reason: UInt8, CaseIterable {
    case unspecified = 0
    case noSuchDevice = 1        // device unknown or not connected
    case notAuthorized = 2       // the device does not admit this operator
    case noResources = 3         // stream limit or buffer pool exhausted
    case targetNotAllowed = 4    // target outside the reverse's --allow list
    case connectFailed = 5       // the target refused or was unreachable
    case timeout = 6             // a phase timed out
    case goingAway = 7           // the peer is shutting down
    case protocolError = 8       // malformed or unexpected frame on this stream
    case unknownHostname = 9     // SNI hostname not claimed by any device
    case deviceMismatch = 10     // the device presented a key other than the ID asked for
    case closed = 11             // the local side closed without finishing

    public static func from(_ raw: UInt8) -> Reason { Reason(rawValue: raw) ?? .unspecified }

    public var text: String {
        switch self {
        case .unspecified: return "unspecified"
        case .noSuchDevice: return "no_such_device"
        case .notAuthorized: return "not_authorized"
        case .noResources: return "no_resources"
        case .targetNotAllowed: return "target_not_allowed"
        case .connectFailed: return "connect_failed"
        case .timeout: return "timeout"
        case .goingAway: return "going_away"
        case .protocolError: return "protocol_error"
        case .unknownHostname: return "unknown_hostname"
        case .deviceMismatch: return "device_mismatch"
        case .closed: return "closed"
        }
    }
}

/// A decoded frame header.
public struct FrameHeader: Equatable {
    public var rawType: UInt8
    public var flags: UInt8
    public var length: Int
    public var stream: UInt32

    public init(rawType: UInt8, flags: UInt8 = 0, length: Int, stream: UInt32) {
        self.rawType = rawType
        self.flags = flags
        self.length = length
        self.stream = stream
    }

    public var type: FrameType? { FrameType(rawValue: rawType) }
}

/// Errors of the frame layer. All of them close the tunnel.
public enum WireError: Error, Equatable {
    case oversized(Int)           // length > maxPayload
    case malformed(FrameType)     // payload does not match the type's layout
}

public enum FrameCodec {
    /// Reads a header from the first 8 bytes. nil if fewer than 8 are present.
    public static func decodeHeader(_ b: UnsafeRawBufferPointer) throws(WireError) -> FrameHeader? {
        guard b.count >= WireProtocol.headerSize else { return nil }
        let length = Int(b[2]) << 8 | Int(b[3])
        if length > WireProtocol.maxPayload { throw .oversized(length) }
        let stream = UInt32(b[4]) << 24 | UInt32(b[5]) << 16 | UInt32(b[6]) << 8 | UInt32(b[7])
        return FrameHeader(rawType: b[0], flags: b[1], length: length, stream: stream)
    }

    /// Writes a header into the first 8 bytes of `b`.
    public static func encodeHeader(_ h: FrameHeader, into b: UnsafeMutableRawBufferPointer) {
        precondition(b.count >= WireProtocol.headerSize && h.length <= WireProtocol.maxPayload)
        b[0] = h.rawType
        b[1] = h.flags
        b[2] = UInt8(h.length >> 8)
        b[3] = UInt8(h.length & 0xff)
        b[4] = UInt8(h.stream >> 24)
        b[5] = UInt8((h.stream >> 16) & 0xff)
        b[6] = UInt8((h.stream >> 8) & 0xff)
        b[7] = UInt8(h.stream & 0xff)
    }

    /// Appends a whole frame to `out`. The caller MUST have checked that
    /// `out.freeSpace >= headerSize + payload.count`.
    public static func append(_ type: FrameType, stream: UInt32, payload: UnsafeRawBufferPointer, to out: ByteQueue) {
        let total = WireProtocol.headerSize + payload.count
        precondition(payload.count <= WireProtocol.maxPayload && out.freeSpace >= total)
        let w = out.writable(minimum: total)
        encodeHeader(FrameHeader(rawType: type.rawValue, length: payload.count, stream: stream), into: w)
        if payload.count > 0 {
            (w.baseAddress! + WireProtocol.headerSize).copyMemory(from: payload.baseAddress!, byteCount: payload.count)
        }
        out.commit(total)
    }

    public static func append(_ type: FrameType, stream: UInt32, payload: [UInt8], to out: ByteQueue) {
        payload.withUnsafeBytes { append(type, stream: stream, payload: $0, to: out) }
    }

    /// A whole frame as bytes (tests, hello messages).
    public static func encode(_ type: FrameType, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: WireProtocol.headerSize)
        out.withUnsafeMutableBytes {
            encodeHeader(FrameHeader(rawType: type.rawValue, length: payload.count, stream: stream), into: $0)
        }
        return out + payload
    }
}

// MARK: - Control payloads

/// The caller's address carried in OPEN (who connected to the forward, or to the
/// relay's SNI listener): family 0 (none), 4 or 6, address bytes, port.
public struct PeerAddress: Equatable {
    public var ip: [UInt8]   // 0, 4 or 16 bytes
    public var port: UInt16

    public init(ip: [UInt8], port: UInt16) {
        self.ip = ip
        self.port = port
    }

    public static let none = PeerAddress(ip: [], port: 0)

    var encodedSize: Int { 1 + ip.count + 2 }

    /// "1.2.3.4:5", "[::1]:5" or "-".
    public var text: String {
        if ip.count == 4 {
            return String(ip[0]) + "." + String(ip[1]) + "." + String(ip[2]) + "." + String(ip[3]) + ":" + String(port)
        }
        if ip.count == 16 && ip[0..<10].allSatisfy({ $0 == 0 }) && ip[10] == 0xff && ip[11] == 0xff {
            // RFC 5952 section 5: IPv4-mapped addresses end in dotted decimal.
            return "[::ffff:" + String(ip[12]) + "." + String(ip[13]) + "." + String(ip[14]) + "." + String(ip[15])
                + "]:" + String(port)
        }
        if ip.count == 16 {
            // RFC 5952: the longest run of two or more zero groups becomes "::".
            var groups: [UInt16] = []
            var i = 0
            while i < 16 {
                groups.append(UInt16(ip[i]) << 8 | UInt16(ip[i + 1]))
                i += 2
            }
            var bestStart = -1, bestLen = 0, runStart = -1
            for g in 0...8 {
                if g < 8 && groups[g] == 0 {
                    if runStart < 0 { runStart = g }
                } else if runStart >= 0 {
                    if g - runStart > bestLen && g - runStart >= 2 {
                        bestStart = runStart
                        bestLen = g - runStart
                    }
                    runStart = -1
                }
            }
            var s = "["
            var g = 0
            while g < 8 {
                if g == bestStart {
                    s += "::"
                    g += bestLen
                    continue
                }
                if g > 0 && s.utf8.last != UInt8(ascii: ":") { s += ":" }
                s += String(groups[g], radix: 16)
                g += 1
            }
            return s + "]:" + String(port)
        }
        return "-"
    }
}

/// OPEN: what a stream is for.
///
///     kind u8 | window u32 | target | origin[20] | caller address
///     kind 1 (device): target = device id[20]
///     kind 2 (sni):    target = hostname length u8 (1...253) | hostname
///     caller address:  family u8 (0, 4, 6) | ip[0, 4 or 16] | port u16
///
/// `window` is the credit the opener grants the other side for sending back.
/// `origin` is the opener's agent ID as the relay authenticated it (all zero
/// when unknown, e.g. in OPEN from a forward, or for SNI streams).
public struct OpenPayload: Equatable {
    public enum Target: Equatable {
        case device(AgentID)
        case hostname(String)
    }

    public var target: Target
    public var window: UInt32
    public var origin: [UInt8]   // 20 bytes
    public var caller: PeerAddress

    public init(target: Target, window: UInt32, origin: [UInt8] = [UInt8](repeating: 0, count: 20), caller: PeerAddress = .none) {
        self.target = target
        self.window = window
        self.origin = origin
        self.caller = caller
    }

    public static let maxHostname = 253

    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        switch target {
        case .device(let id):
            out.append(1)
            appendU32(&out, window)
            out += id.bytes
        case .hostname(let h):
            out.append(2)
            appendU32(&out, window)
            let hb = Array(h.utf8)
            precondition(hb.count >= 1 && hb.count <= OpenPayload.maxHostname)
            out.append(UInt8(hb.count))
            out += hb
        }
        precondition(origin.count == AgentID.byteCount)
        out += origin
        out.append(caller.ip.count == 4 ? 4 : caller.ip.count == 16 ? 6 : 0)
        out += caller.ip
        appendU16(&out, caller.port)
        return out
    }

    public static func decode(_ p: UnsafeRawBufferPointer) throws(WireError) -> OpenPayload {
        var r = Reader(p)
        guard let kind = r.u8(), let window = r.u32() else { throw .malformed(.open) }
        let target: Target
        switch kind {
        case 1:
            guard let idb = r.bytes(AgentID.byteCount), let id = AgentID(bytes: idb) else { throw .malformed(.open) }
            target = .device(id)
        case 2:
            guard let n = r.u8(), n >= 1, let hb = r.bytes(Int(n)), isHostnameBytes(hb) else { throw .malformed(.open) }
            target = .hostname(String(decoding: hb, as: UTF8.self))
        default:
            throw .malformed(.open)
        }
        guard let origin = r.bytes(AgentID.byteCount), let fam = r.u8() else { throw .malformed(.open) }
        let ipLen: Int
        switch fam {
        case 0: ipLen = 0
        case 4: ipLen = 4
        case 6: ipLen = 16
        default: throw .malformed(.open)
        }
        guard let ip = r.bytes(ipLen), let port = r.u16(), r.atEnd else { throw .malformed(.open) }
        return OpenPayload(target: target, window: window, origin: origin, caller: PeerAddress(ip: ip, port: port))
    }

    /// Hostname bytes: letters, digits, '-', '.', '_' (case is kept; matching ignores it).
    public static func isHostnameBytes(_ b: [UInt8]) -> Bool {
        if b.isEmpty || b.count > maxHostname { return false }
        for c in b {
            let ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
                || c == UInt8(ascii: "-") || c == UInt8(ascii: ".") || c == UInt8(ascii: "_")
            if !ok { return false }
        }
        return true
    }
}

/// Fixed-size control payloads.
public enum ControlPayload {
    /// ACCEPT: window u32 (credit granted to the opener). 4 bytes.
    public static func accept(window: UInt32) -> [UInt8] { u32Bytes(window) }
    /// REFUSE and RESET: reason u8. 1 byte.
    public static func reason(_ r: Reason) -> [UInt8] { [r.rawValue] }
    /// WINDOW: increment u32, > 0. 4 bytes.
    public static func window(_ increment: UInt32) -> [UInt8] { u32Bytes(increment) }
    /// PING and PONG: 8 opaque bytes, echoed.
    public static func ping(_ v: UInt64) -> [UInt8] { u32Bytes(UInt32(v >> 32)) + u32Bytes(UInt32(v & 0xffff_ffff)) }
    /// GOAWAY: reason u8 | retry-after milliseconds u32. 5 bytes.
    public static func goaway(_ r: Reason, retryAfterMs: UInt32) -> [UInt8] { [r.rawValue] + u32Bytes(retryAfterMs) }

    public static func decodeU32(_ p: UnsafeRawBufferPointer, _ t: FrameType) throws(WireError) -> UInt32 {
        guard p.count == 4 else { throw .malformed(t) }
        return UInt32(p[0]) << 24 | UInt32(p[1]) << 16 | UInt32(p[2]) << 8 | UInt32(p[3])
    }

    public static func decodeReason(_ p: UnsafeRawBufferPointer, _ t: FrameType) throws(WireError) -> Reason {
        guard p.count == 1 else { throw .malformed(t) }
        return Reason.from(p[0])
    }

    public static func decodePing(_ p: UnsafeRawBufferPointer, _ t: FrameType) throws(WireError) -> UInt64 {
        guard p.count == 8 else { throw .malformed(t) }
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(p[i]) }
        return v
    }

    public static func decodeGoaway(_ p: UnsafeRawBufferPointer) throws(WireError) -> (Reason, UInt32) {
        guard p.count == 5 else { throw .malformed(.goaway) }
        let ms = UInt32(p[1]) << 24 | UInt32(p[2]) << 16 | UInt32(p[3]) << 8 | UInt32(p[4])
        return (Reason.from(p[0]), ms)
    }
}

// MARK: - Byte helpers

@inline(__always) public func appendU16(_ out: inout [UInt8], _ v: UInt16) {
    out.append(UInt8(v >> 8))
    out.append(UInt8(v & 0xff))
}

@inline(__always) public func appendU32(_ out: inout [UInt8], _ v: UInt32) {
    out.append(UInt8(v >> 24))
    out.append(UInt8((v >> 16) & 0xff))
    out.append(UInt8((v >> 8) & 0xff))
    out.append(UInt8(v & 0xff))
}

@inline(__always) public func appendU64(_ out: inout [UInt8], _ v: UInt64) {
    appendU32(&out, UInt32(v >> 32))
    appendU32(&out, UInt32(v & 0xffff_ffff))
}

func u32Bytes(_ v: UInt32) -> [UInt8] {
    var o: [UInt8] = []
    appendU32(&o, v)
    return o
}

/// Bounds-checked big-endian reader over a payload. Every accessor returns nil
/// instead of reading past the end.
public struct Reader {
    let p: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ p: UnsafeRawBufferPointer) { self.p = p }

    public var remaining: Int { p.count - offset }
    public var atEnd: Bool { offset == p.count }

    public mutating func u8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { offset += 1 }
        return p[offset]
    }

    public mutating func u16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { offset += 2 }
        return UInt16(p[offset]) << 8 | UInt16(p[offset + 1])
    }

    public mutating func u32() -> UInt32? {
        guard remaining >= 4 else { return nil }
        defer { offset += 4 }
        return UInt32(p[offset]) << 24 | UInt32(p[offset + 1]) << 16 | UInt32(p[offset + 2]) << 8 | UInt32(p[offset + 3])
    }

    public mutating func u64() -> UInt64? {
        guard let hi = u32(), let lo = u32() else { return nil }
        return UInt64(hi) << 32 | UInt64(lo)
    }

    public mutating func bytes(_ n: Int) -> [UInt8]? {
        guard n >= 0, remaining >= n else { return nil }
        defer { offset += n }
        return Array(p[offset..<(offset + n)])
    }

    /// u16 length then that many bytes.
    public mutating func blob16() -> [UInt8]? {
        guard let n = u16() else { return nil }
        return bytes(Int(n))
    }

    /// u8 length then that many bytes.
    public mutating func blob8() -> [UInt8]? {
        guard let n = u8() else { return nil }
        return bytes(Int(n))
    }
}

/// Runs a payload decoder over an array's bytes, keeping the typed error
/// (`withUnsafeBytes` itself only rethrows untyped errors).
public func decodeBytes<T>(_ bytes: [UInt8], _ decode: (UnsafeRawBufferPointer) throws(WireError) -> T) throws(WireError) -> T {
    var result: Result<T, WireError>? = nil
    bytes.withUnsafeBytes { p in
        do throws(WireError) {
            result = .success(try decode(p))
        } catch {
            result = .failure(error)
        }
    }
    return try result!.get()
}
