import Crypto
import Wire

/// Enrollment tokens: issued by `agent token` with the relay's secret, checked
/// by the relay when a key it does not know yet asks to register.
///
///     token   = "at2." base64url(payload) "." base64url(mac)
///     payload = version u8 (2) | role u8 (1 device, 2 operator: AgentRole's raw values)
///               | expires u64 (Unix seconds) | flags u8 (bit 0: bound to a device; no other bit)
///               | device id[20] (if bound) | uses u16 (if not bound: 1...1000)
///               | hostnames u8 count (0...8; 0 for an operator token), each u8 len + bytes | nonce[8]
///     mac     = HMAC-SHA256(secret, "agent enroll token v2" || payload)
///
/// The role says what the enrolled key may be (a device, or an operator); `uses` how
/// many distinct keys a token that is not bound to one device may enrol (the relay
/// counts them by `nonce`, the token's unique ID; a bound token enrols its key only,
/// `uses` is 1). Version 1 tokens ("at1.", no role, no count: one token enrolled any
/// number of keys in either role, all with its hostnames) are refused with
/// `.oldVersion`: make a new token.
///
/// The secret never leaves the relay's file; the token proves only that whoever
/// holds the secret allowed this enrollment until `expires`.
public struct EnrollmentToken: Equatable {
    public static let prefix = "at2."
    public static let label: [UInt8] = Array("agent enroll token v2".utf8)
    public static let version: UInt8 = 2
    /// Version 1: recognised only to be refused with `.oldVersion`.
    public static let prefixV1 = "at1."
    public static let labelV1: [UInt8] = Array("agent enroll token v1".utf8)
    public static let maxLength = 1024
    public static let nonceSize = 8

    public var expires: Int64
    public var device: AgentID?
    public var hostnames: [String]
    /// The token's unique ID (8 random bytes).
    public var nonce: [UInt8]
    /// What the enrolled key may be: `.reverse` a device, `.forward` an operator.
    public var role: AgentRole
    /// Distinct keys the token may enrol: 1...`Limits.tokenMaxUses`; 1 for a bound token.
    public var uses: Int

    public init(expires: Int64, device: AgentID?, hostnames: [String], nonce: [UInt8],
                role: AgentRole = .reverse, uses: Int = Limits.tokenDefaultUses) {
        self.expires = expires
        self.device = device
        self.hostnames = hostnames
        self.nonce = nonce
        self.role = role
        self.uses = device == nil ? uses : 1
    }

    /// The nonce in lowercase hex: the token's ID in the relay's registry and logs.
    public var idText: String { Hex.encode(nonce) }

    public enum Failure: Error, Equatable {
        case malformed
        case badSignature   // tampered, or signed with another secret
        case expired
        case wrongDevice
        case oldVersion     // a version 1 token, correctly signed: make a new one

        public var text: String {
            switch self {
            case .malformed: return "token_malformed"
            case .badSignature: return "token_bad_signature"
            case .expired: return "token_expired"
            case .wrongDevice: return "token_wrong_device"
            case .oldVersion: return "token_old_version"
            }
        }
    }

    func payload() -> [UInt8] {
        var p: [UInt8] = [EnrollmentToken.version, role.rawValue]
        appendU64(&p, UInt64(bitPattern: expires))
        if let d = device {
            p.append(1)
            p += d.bytes
        } else {
            p.append(0)
            appendU16(&p, UInt16(clamping: uses))
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
    /// The MAC is checked before anything in the payload is trusted. A version 1
    /// token with a valid MAC (under version 1's label) fails `.oldVersion`.
    public static func verify(_ text: [UInt8], secret: [UInt8], now: Int64, device: AgentID) -> Result<EnrollmentToken, Failure> {
        guard text.count <= maxLength else { return .failure(.malformed) }
        let s = String(decoding: text, as: UTF8.self)
        let v1 = Text.hasPrefix(s, prefixV1)
        guard v1 || Text.hasPrefix(s, prefix) else { return .failure(.malformed) }
        let parts = Text.split(Text.dropFirst(s, Text.length(prefix)), UInt8(ascii: "."))
        guard parts.count == 2, let p = Base64URL.decode(parts[0]), let mac = Base64URL.decode(parts[1]),
              mac.count == 32
        else { return .failure(.malformed) }
        let expect = Digest.hmacSHA256(key: secret, data: (v1 ? labelV1 : label) + p)
        guard Digest.constantTimeEqual(expect, mac) else { return .failure(.badSignature) }
        if v1 { return .failure(.oldVersion) }
        guard let t = parse(p) else { return .failure(.malformed) }
        if now >= t.expires { return .failure(.expired) }
        if let d = t.device, d != device { return .failure(.wrongDevice) }
        return .success(t)
    }

    static func parse(_ p: [UInt8]) -> EnrollmentToken? {
        p.withUnsafeBytes { raw -> EnrollmentToken? in
            var r = Reader(raw)
            guard r.u8() == version, let roleRaw = r.u8(), let role = AgentRole(rawValue: roleRaw),
                  let exp = r.u64(), let flags = r.u8(), flags <= 1
            else { return nil }
            var device: AgentID? = nil
            var uses = 1
            if flags & 1 != 0 {
                guard let b = r.bytes(AgentID.byteCount) else { return nil }
                device = AgentID(bytes: b)
            } else {
                guard let u = r.u16(), u >= 1, Int(u) <= Limits.tokenMaxUses else { return nil }
                uses = Int(u)
            }
            guard let n = r.u8(), n <= 8, n == 0 || role == .reverse else { return nil }
            var hosts: [String] = []
            for _ in 0..<Int(n) {
                guard let h = r.blob8(), OpenPayload.isHostnameBytes(h) else { return nil }
                hosts.append(String(decoding: h, as: UTF8.self))
            }
            guard let nonce = r.bytes(nonceSize), r.atEnd else { return nil }
            return EnrollmentToken(expires: Int64(bitPattern: exp), device: device, hostnames: hosts, nonce: nonce,
                                   role: role, uses: uses)
        }
    }
}
