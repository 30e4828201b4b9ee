/// "host:port" as typed by a user: `127.0.0.1:22`, `localhost:80`, `[::1]:443`,
/// and for allow rules `host:*`.
public struct HostPort: Hashable, Sendable {
    public static let maxHostLength = 253

    public var host: String
    /// nil means "any port" (only in allow rules).
    public var port: UInt16?

    public init(host: String, port: UInt16?) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; with `allowWildcard`, `host:*` too. nil if malformed:
    /// empty host, bad or zero port, unbalanced brackets, spaces or control bytes.
    public static func parse(_ text: String, allowWildcard: Bool = false) -> HostPort? {
        let u = Array(text.utf8)
        guard let colon = u.lastIndex(of: UInt8(ascii: ":")), colon > 0 else { return nil }
        var hostBytes = Array(u[0..<colon])
        let portBytes = Array(u[(colon + 1)...])
        if hostBytes.first == UInt8(ascii: "[") {
            guard hostBytes.last == UInt8(ascii: "]"), hostBytes.count > 2 else { return nil }
            hostBytes = Array(hostBytes[1..<(hostBytes.count - 1)])
        } else if hostBytes.contains(UInt8(ascii: ":")) {
            return nil  // IPv6 literals need brackets
        }
        guard !hostBytes.isEmpty, hostBytes.count <= maxHostLength else { return nil }
        for b in hostBytes where b <= 0x20 || b >= 0x7f || b == UInt8(ascii: "[") || b == UInt8(ascii: "]") {
            return nil
        }
        let host = String(decoding: hostBytes, as: UTF8.self)
        if allowWildcard && portBytes == [UInt8(ascii: "*")] { return HostPort(host: host, port: nil) }
        guard let port = parsePort(portBytes) else { return nil }
        return HostPort(host: host, port: port)
    }

    static func parsePort(_ b: [UInt8]) -> UInt16? {
        guard !b.isEmpty, b.count <= 5 else { return nil }
        var v = 0
        for c in b {
            guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else { return nil }
            v = v * 10 + Int(c - UInt8(ascii: "0"))
        }
        guard v >= 1 && v <= 65535 else { return nil }
        return UInt16(v)
    }

    /// `host:port`, with brackets around IPv6 literals; `*` for any port.
    public var text: String {
        let h = host.utf8.contains(UInt8(ascii: ":")) ? "[" + host + "]" : host
        return h + ":" + (port.map { String($0) } ?? "*")
    }
}
