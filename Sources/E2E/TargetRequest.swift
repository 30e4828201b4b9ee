import Wire

/// The two messages inside an end-to-end session, after the TLS handshake
/// (docs/E2E.md is the same in prose; keep both in step).
///
///     request: client (forward) -> server (reverse), the first application data
///       0        1          2 ... 2+n-1     2+n    2+n+1
///       +--------+----------+---------------+--------------+
///       | ver=1  | n (1-253)| host (n bytes)| port u16 BE  |
///       +--------+----------+---------------+--------------+
///     answer: server -> client, the first application data
///       +--------+
///       | status |   0 = ok, else a `Reason` raw value (Wire/Frame.swift)
///       +--------+
///
/// Rules, decided once:
/// - The request may arrive split over several records; its length is known after
///   two bytes. Host bytes are printable ASCII without space, '[' or ']' (an IPv6
///   literal travels without brackets), the port is 1...65535.
/// - The client sends nothing after the request until it has read the answer: any
///   byte the server sees after the request and before it answered (trailing bytes
///   in the request's record included) is a protocol error.
/// - After an ok answer both directions carry stream bytes. After a refusal the
///   server sends close_notify and nothing else.
/// - An unknown status byte is a refusal with `Reason.unspecified`; a server never
///   sends status 0 for a refusal (see `answerByte`).
public enum TargetRequest {
    /// Version history: 1 = first release.
    public static let version: UInt8 = 1
    public static let maxHostLength = HostPort.maxHostLength
    /// Largest request: version, length, 253 host bytes, port.
    public static let maxSize = 2 + maxHostLength + 2
    public static let answerOK: UInt8 = 0

    /// Where an incoming request stands after `bytes` (its first bytes, in order).
    public enum Progress: Equatable {
        /// The request is `total` bytes long in all (2 while the length is unknown).
        case needMore(total: Int)
        case complete(HostPort)
        case malformed
    }

    /// Parses the prefix of a request. Never reads past what the request needs; the
    /// caller reads exactly up to the announced total, so `bytes.count > total`
    /// cannot happen (and is malformed if it does).
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Progress {
        if bytes.count >= 1 && bytes[0] != version { return .malformed }
        if bytes.count < 2 { return .needMore(total: 2) }
        let n = Int(bytes[1])
        if n < 1 || n > maxHostLength { return .malformed }
        let total = 2 + n + 2
        if bytes.count < total { return .needMore(total: total) }
        if bytes.count > total { return .malformed }
        var i = 2
        while i < 2 + n {
            if !isHostByte(bytes[i]) { return .malformed }
            i += 1
        }
        let port = UInt16(bytes[2 + n]) << 8 | UInt16(bytes[2 + n + 1])
        if port == 0 { return .malformed }
        let host = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[2..<(2 + n)]), as: UTF8.self)
        return .complete(HostPort(host: host, port: port))
    }

    /// Writes the request for `target` into `out` (at least `maxSize` bytes) and returns
    /// its length; nil if `target` cannot be sent (no port, empty or oversized host,
    /// a byte outside the allowed set).
    public static func encode(_ target: HostPort, into out: UnsafeMutableRawBufferPointer) -> Int? {
        guard let port = target.port, port != 0 else { return nil }
        let host = target.host.utf8
        guard host.count >= 1, host.count <= maxHostLength, out.count >= 2 + host.count + 2 else { return nil }
        out[0] = version
        out[1] = UInt8(host.count)
        var i = 2
        for b in host {
            guard isHostByte(b) else { return nil }
            out[i] = b
            i += 1
        }
        out[i] = UInt8(port >> 8)
        out[i + 1] = UInt8(port & 0xff)
        return i + 2
    }

    /// The request as bytes (tests, docs).
    public static func encode(_ target: HostPort) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: maxSize)
        let n = buf.withUnsafeMutableBytes { encode(target, into: $0) }
        guard let n = n else { return nil }
        return Array(buf[0..<n])
    }

    /// Printable ASCII except space and the brackets that would make `host:port` ambiguous
    /// (the rule `HostPort.parse` applies to what a user types).
    public static func isHostByte(_ b: UInt8) -> Bool {
        b > 0x20 && b < 0x7f && b != UInt8(ascii: "[") && b != UInt8(ascii: "]")
    }

    /// The answer byte for `refusal` (nil = ok). `Reason.unspecified` has the raw value
    /// 0, which here means ok, so a refusal without a more precise reason goes out as
    /// `Reason.closed` (11).
    public static func answerByte(_ refusal: Reason?) -> UInt8 {
        guard let r = refusal else { return answerOK }
        return r == .unspecified ? Reason.closed.rawValue : r.rawValue
    }
}
