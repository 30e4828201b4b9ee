/// What comes between TLS and the hello on an agent's connection (sans-IO).
///
/// The relay listens for two kinds of agents on one port and tells them apart by
/// the first bytes the agent sends after the TLS handshake:
///
///     raw:   "agent/1\n"                                   -> CHALLENGE follows
///     HTTPS: "GET /PATH HTTP/1.1\r\n ... Upgrade: agent/1\r\n ... \r\n\r\n"
///            answered "HTTP/1.1 101 Switching Protocols" -> CHALLENGE follows
///
/// The second form lets the relay sit behind nginx, HAProxy or a cloud load
/// balancer on 443 that terminates TLS and passes the Upgrade on. Agents behind
/// a corporate proxy first open the TCP path with HTTP CONNECT (`connectRequest`).
public enum Preamble {
    public static let raw: [UInt8] = Array("agent/1\n".utf8)
    public static let upgradeToken = "agent/1"
    /// Longest HTTP head (request or response line plus headers) either side reads.
    public static let maxHead = 8192

    public enum Kind: Equatable {
        case needMore
        /// Raw agent; the preamble is this many bytes.
        case raw(Int)
        /// HTTP request head of this many bytes (ending with the blank line); `upgrade`
        /// says whether it asked for `Upgrade: agent/1`.
        case http(Int, upgrade: Bool)
        case garbage
    }

    /// Classifies the first bytes an agent sent.
    public static func classify(_ b: UnsafeRawBufferPointer) -> Kind {
        let n = min(b.count, raw.count)
        var rawPrefix = true
        for i in 0..<n where b[i] != raw[i] { rawPrefix = false }
        if rawPrefix { return b.count >= raw.count ? .raw(raw.count) : .needMore }
        let get: [UInt8] = Array("GET ".utf8)
        for i in 0..<min(b.count, 4) where b[i] != get[i] { return .garbage }
        if b.count < 4 { return .needMore }
        guard let end = headEnd(b) else { return b.count >= maxHead ? .garbage : .needMore }
        let up = header(b, end: end, name: "upgrade")
        let isUpgrade = up.map { containsToken($0, upgradeToken) } ?? false
        return .http(end, upgrade: isUpgrade)
    }

    /// Offset just past the first "\r\n\r\n" within `maxHead`, if any.
    public static func headEnd(_ b: UnsafeRawBufferPointer) -> Int? {
        let limit = min(b.count, maxHead)
        if limit < 4 { return nil }
        var i = 0
        while i + 3 < limit {
            if b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i + 4 }
            i += 1
        }
        return nil
    }

    /// The value of the first header `name` (matched case-insensitively) in a head.
    public static func header(_ b: UnsafeRawBufferPointer, end: Int, name: String) -> [UInt8]? {
        let want = Array(name.utf8)
        var i = 0
        // skip the first line
        while i + 1 < end && !(b[i] == 13 && b[i + 1] == 10) { i += 1 }
        i += 2
        while i < end {
            var j = i
            while j + 1 < end && !(b[j] == 13 && b[j + 1] == 10) { j += 1 }
            // line [i, j)
            if let colon = (i..<j).first(where: { b[$0] == UInt8(ascii: ":") }), colon - i == want.count {
                var same = true
                for k in 0..<want.count where lower(b[i + k]) != lower(want[k]) { same = false }
                if same {
                    var v = colon + 1
                    while v < j && (b[v] == 0x20 || b[v] == 0x09) { v += 1 }
                    var e = j
                    while e > v && (b[e - 1] == 0x20 || b[e - 1] == 0x09) { e -= 1 }
                    return Array(b[v..<e])
                }
            }
            i = j + 2
        }
        return nil
    }

    static func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5a ? c + 0x20 : c }

    /// Whether a comma-separated header value contains `token` (case-insensitive).
    public static func containsToken(_ value: [UInt8], _ token: String) -> Bool {
        let t = Array(token.utf8).map(lower)
        for part in value.split(separator: UInt8(ascii: ",")) {
            var p = Array(part)
            while let f = p.first, f == 0x20 || f == 0x09 { p.removeFirst() }
            while let l = p.last, l == 0x20 || l == 0x09 { p.removeLast() }
            if p.map(lower) == t { return true }
        }
        return false
    }

    /// The status code of an HTTP response head ("HTTP/1.1 101 ..."), if well formed.
    public static func status(_ b: UnsafeRawBufferPointer, end: Int) -> Int? {
        let prefix: [UInt8] = Array("HTTP/1.".utf8)
        guard end >= 12 else { return nil }
        for i in 0..<prefix.count where b[i] != prefix[i] { return nil }
        guard b[8] == 0x20 else { return nil }
        var code = 0
        for i in 9..<12 {
            guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
            code = code * 10 + Int(b[i] - 0x30)
        }
        return code
    }

    // MARK: messages

    /// The agent's Upgrade request for `https://host[:port]/path`.
    public static func upgradeRequest(host: String, port: UInt16, path: String) -> [UInt8] {
        let hostHeader = port == 443 ? host : host + ":" + String(port)
        let s = "GET " + path + " HTTP/1.1\r\nHost: " + hostHeader + "\r\nUpgrade: " + upgradeToken
            + "\r\nConnection: Upgrade\r\nUser-Agent: agent\r\n\r\n"
        return Array(s.utf8)
    }

    public static let switching: [UInt8] = Array(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + upgradeToken
        + "\r\nConnection: Upgrade\r\n\r\n").utf8)

    /// The relay's answer to an HTTP request that is not an agent upgrade (a health check, a browser).
    public static let upgradeRequired: [UInt8] = Array(("HTTP/1.1 426 Upgrade Required\r\nUpgrade: " + upgradeToken
        + "\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").utf8)

    /// HTTP CONNECT through a proxy to `host:port`.
    public static func connectRequest(host: String, port: UInt16) -> [UInt8] {
        let target = HostPort(host: host, port: port).text
        return Array(("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\nUser-Agent: agent\r\n\r\n").utf8)
    }
}

/// The server name in a TLS ClientHello (RFC 8446 4.1.2, RFC 6066 section 3), read
/// from the first bytes a client sends, without any TLS state (sans-IO). The
/// ClientHello may span several records; at most `maxBytes` are looked at.
public enum ClientHelloSNI {
    public static let maxBytes = 16384 + 5

    public enum Result: Equatable {
        case needMore
        case hostname(String)
        case noSNI
        case malformed
    }

    public static func parse(_ b: UnsafeRawBufferPointer) -> Result {
        // Reassemble the handshake message from the records seen so far.
        var hs: [UInt8] = []
        var i = 0
        while i + 5 <= b.count {
            guard b[i] == 22, b[i + 1] == 3 else { return .malformed }  // handshake record, TLS 1.x
            let len = Int(b[i + 3]) << 8 | Int(b[i + 4])
            guard len > 0 && len <= 16384 + 2048 else { return .malformed }
            if i + 5 + len > b.count {
                hs += b[(i + 5)..<b.count]
                i = b.count
                break
            }
            hs += b[(i + 5)..<(i + 5 + len)]
            i += 5 + len
            if hs.count >= 4 {
                let need = 4 + (Int(hs[1]) << 16 | Int(hs[2]) << 8 | Int(hs[3]))
                if hs.count >= need { break }
            }
        }
        if hs.count < 4 { return b.count >= maxBytes ? .malformed : .needMore }
        guard hs[0] == 1 else { return .malformed }  // client_hello
        let bodyLen = Int(hs[1]) << 16 | Int(hs[2]) << 8 | Int(hs[3])
        guard bodyLen + 4 <= maxBytes else { return .malformed }
        if hs.count < 4 + bodyLen { return b.count >= maxBytes ? .malformed : .needMore }
        return hs.withUnsafeBytes { raw -> Result in
            var r = Reader(UnsafeRawBufferPointer(rebasing: raw[4..<(4 + bodyLen)]))
            guard r.u16() != nil, r.bytes(32) != nil,       // version, random
                  r.blob8() != nil,                          // session id
                  let suites = r.u16(), r.bytes(Int(suites)) != nil,
                  r.blob8() != nil                           // compression methods
            else { return .malformed }
            if r.atEnd { return .noSNI }
            guard let extLen = r.u16(), Int(extLen) == r.remaining else { return .malformed }
            while !r.atEnd {
                guard let type = r.u16(), let data = r.blob16() else { return .malformed }
                if type != 0 { continue }
                return data.withUnsafeBytes { d -> Result in
                    var s = Reader(d)
                    guard let listLen = s.u16(), Int(listLen) == s.remaining else { return .malformed }
                    while !s.atEnd {
                        guard let nameType = s.u8(), let name = s.blob16() else { return .malformed }
                        if nameType == 0 {
                            guard OpenPayload.isHostnameBytes(name) else { return .malformed }
                            return .hostname(String(decoding: name, as: UTF8.self))
                        }
                    }
                    return .noSNI
                }
            }
            return .noSNI
        }
    }
}
