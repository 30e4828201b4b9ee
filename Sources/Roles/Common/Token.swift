import Crypto
import Wire

/// Enrollment tokens: issued by `agent token` with the relay's secret, checked
/// by the relay when a key it does not know yet asks to register.
///
///     token   = "at1." base64url(payload) "." base64url(mac)
///     payload = version u8 (1) | expires u64 (Unix seconds) | flags u8 (bit 0: bound to a device)
///               | device id[20] (if bound) | hostnames u8 count (0...8), each u8 len + bytes | nonce[8]
///     mac     = HMAC-SHA256(secret, "agent enroll token v1" || payload)
///
/// The secret never leaves the relay's file; the token proves only that whoever
/// holds the secret allowed this enrollment until `expires`.
public struct EnrollmentToken: Equatable {
    public static let prefix = "at1."
    public static let label: [UInt8] = Array("agent enroll token v1".utf8)
    public static let maxLength = 1024

    public var expires: Int64
    public var device: AgentID?
    public var hostnames: [String]
    public var nonce: [UInt8]

    public init(expires: Int64, device: AgentID?, hostnames: [String], nonce: [UInt8]) {
        self.expires = expires
        self.device = device
        self.hostnames = hostnames
        self.nonce = nonce
    }

    public enum Failure: Error, Equatable {
        case malformed
        case badSignature   // tampered, or signed with another secret
        case expired
        case wrongDevice

        public var text: String {
            switch self {
            case .malformed: return "token_malformed"
            case .badSignature: return "token_bad_signature"
            case .expired: return "token_expired"
            case .wrongDevice: return "token_wrong_device"
            }
        }
    }

    func payload() -> [UInt8] {
        var p: [UInt8] = [1]
        appendU64(&p, UInt64(bitPattern: expires))
        if let d = device {
            p.append(1)
            p += d.bytes
        } else {
            p.append(0)
        }
        p.append(UInt8(hostnames.count))
        for h in hostnames {
            let b = Array(h.utf8)
            p.append(UInt8(b.count))
            p += b
        }
        p += nonce
        return p
    }

    /// The token text for this content, signed with `secret`.
    public func sign(secret: [UInt8]) -> String {
        let p = payload()
        let mac = Digest.hmacSHA256(key: secret, data: EnrollmentToken.label + p)
        return EnrollmentToken.prefix + Base64URL.encode(p) + "." + Base64URL.encode(mac)
    }

    /// Checks a token's signature and expiry (and, if it is bound, the device).
    /// The MAC is checked before anything in the payload is trusted.
    public static func verify(_ text: [UInt8], secret: [UInt8], now: Int64, device: AgentID) -> Result<EnrollmentToken, Failure> {
        guard text.count <= maxLength else { return .failure(.malformed) }
        let s = String(decoding: text, as: UTF8.self)
        guard Text.hasPrefix(s, prefix) else { return .failure(.malformed) }
        let parts = Text.split(Text.dropFirst(s, Text.length(prefix)), UInt8(ascii: "."))
        guard parts.count == 2, let p = Base64URL.decode(parts[0]), let mac = Base64URL.decode(parts[1]),
              mac.count == 32
        else { return .failure(.malformed) }
        let expect = Digest.hmacSHA256(key: secret, data: label + p)
        guard Digest.constantTimeEqual(expect, mac) else { return .failure(.badSignature) }
        guard let t = parse(p) else { return .failure(.malformed) }
        if now >= t.expires { return .failure(.expired) }
        if let d = t.device, d != device { return .failure(.wrongDevice) }
        return .success(t)
    }

    static func parse(_ p: [UInt8]) -> EnrollmentToken? {
        p.withUnsafeBytes { raw -> EnrollmentToken? in
            var r = Reader(raw)
            guard r.u8() == 1, let exp = r.u64(), let flags = r.u8() else { return nil }
            var device: AgentID? = nil
            if flags & 1 != 0 {
                guard let b = r.bytes(AgentID.byteCount) else { return nil }
                device = AgentID(bytes: b)
            }
            guard let n = r.u8(), n <= 8 else { return nil }
            var hosts: [String] = []
            for _ in 0..<Int(n) {
                guard let h = r.blob8(), OpenPayload.isHostnameBytes(h) else { return nil }
                hosts.append(String(decoding: h, as: UTF8.self))
            }
            guard let nonce = r.bytes(8), r.atEnd else { return nil }
            return EnrollmentToken(expires: Int64(bitPattern: exp), device: device, hostnames: hosts, nonce: nonce)
        }
    }
}
