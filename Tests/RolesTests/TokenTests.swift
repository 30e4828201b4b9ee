import Crypto
import Roles
import Testing
import Wire

/// Enrollment token format version 2 (security review finding 8): a role, and a use
/// count for tokens not bound to a device; version 1 tokens refused.
@Suite struct TokenTests {
    static let secret: [UInt8] = Array("0123456789abcdef0123456789abcdef".utf8)
    static let now: Int64 = 1_700_000_000
    static let dev = AgentID(bytes: [UInt8](1...20))!
    static let other = AgentID(bytes: [UInt8](repeating: 7, count: 20))!
    static let nonce: [UInt8] = [0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x0a, 0xff]

    static func verify(_ text: String, device: AgentID = dev, secret: [UInt8] = secret,
                       now: Int64 = now) -> Result<EnrollmentToken, EnrollmentToken.Failure> {
        EnrollmentToken.verify(Array(text.utf8), secret: secret, now: now, device: device)
    }

    static func payload(_ text: String) -> [UInt8] {
        let parts = Text.split(Text.dropFirst(text, 4), UInt8(ascii: "."))
        return Base64URL.decode(parts[0])!
    }

    /// A token text for any payload bytes, correctly signed (version 2 label and prefix).
    static func signed(_ p: [UInt8], label: [UInt8] = EnrollmentToken.label, prefix: String = EnrollmentToken.prefix) -> String {
        prefix + Base64URL.encode(p) + "." + Base64URL.encode(Digest.hmacSHA256(key: secret, data: label + p))
    }

    @Test(arguments: [
        EnrollmentToken(expires: now + 60, device: nil, hostnames: [], nonce: nonce),
        EnrollmentToken(expires: now + 60, device: nil, hostnames: ["cam.example"], nonce: nonce, role: .reverse, uses: 5),
        EnrollmentToken(expires: now + 60, device: nil, hostnames: [], nonce: nonce, role: .forward, uses: 1000),
        EnrollmentToken(expires: now + 60, device: dev, hostnames: ["a.example", "b"], nonce: nonce, role: .reverse),
        EnrollmentToken(expires: now + 60, device: dev, hostnames: [], nonce: nonce, role: .forward),
    ])
    func roundTrip(t: EnrollmentToken) throws {
        let text = t.sign(secret: Self.secret)
        #expect(text.hasPrefix("at2."))
        let back = try Self.verify(text).get()
        #expect(back == t)
        #expect(back.role == t.role && back.uses == t.uses && back.hostnames == t.hostnames && back.device == t.device)
        #expect(back.nonce == Self.nonce && back.idText == "deadbeef00010aff")
    }

    @Test func defaultsAndBoundTokensCountOne() {
        let t = EnrollmentToken(expires: 1, device: nil, hostnames: [], nonce: Self.nonce)
        #expect(t.role == .reverse && t.uses == Limits.tokenDefaultUses && t.uses == 1)
        // A bound token enrols its key only, whatever it was given.
        #expect(EnrollmentToken(expires: 1, device: Self.dev, hostnames: [], nonce: Self.nonce, uses: 9).uses == 1)
    }

    /// Each field is in the payload where the format says, and is covered by the MAC.
    @Test func payloadLayout() {
        let unbound = EnrollmentToken(expires: 0x0102_0304_0506_0708, device: nil, hostnames: ["h"], nonce: Self.nonce,
                                      role: .reverse, uses: 0x0203)
        #expect(Self.payload(unbound.sign(secret: Self.secret))
            == [2, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0x02, 0x03, 1, 1, UInt8(ascii: "h")] + Self.nonce)
        let bound = EnrollmentToken(expires: 9, device: Self.dev, hostnames: [], nonce: Self.nonce, role: .forward)
        #expect(Self.payload(bound.sign(secret: Self.secret))
            == [2, 2, 0, 0, 0, 0, 0, 0, 0, 9, 1] + Array(1...20) + [0] + Self.nonce)
    }

    /// Changing any byte of a signed token makes it fail (never verify as something else).
    @Test func everyTamperedByteFails() {
        let t = EnrollmentToken(expires: Self.now + 60, device: nil, hostnames: ["cam.example"], nonce: Self.nonce,
                                role: .reverse, uses: 3)
        let text = Array(t.sign(secret: Self.secret).utf8)
        for i in 0..<text.count {
            var b = text
            b[i] = b[i] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            let r = EnrollmentToken.verify(b, secret: Self.secret, now: Self.now, device: Self.dev)
            if case .success = r { Issue.record("byte \(i) changed and the token still verified") }
        }
        // The role byte flipped and the token re-signed by someone without the secret: bad signature.
        var p = Self.payload(String(decoding: text, as: UTF8.self))
        p[1] = AgentRole.forward.rawValue
        let forged = "at2." + Base64URL.encode(p) + "." + String(decoding: text, as: UTF8.self).split(separator: ".")[2]
        #expect(Self.verify(forged) == .failure(.badSignature))
        #expect(Self.verify(String(decoding: text, as: UTF8.self), secret: Array("another secret, 32 bytes long!!!".utf8))
            == .failure(.badSignature))
    }

    @Test func expiryAndDevice() {
        let bound = EnrollmentToken(expires: Self.now + 60, device: Self.dev, hostnames: [], nonce: Self.nonce)
        let text = bound.sign(secret: Self.secret)
        #expect(Self.verify(text, now: Self.now + 60) == .failure(.expired))
        #expect(Self.verify(text, device: Self.other) == .failure(.wrongDevice))
        #expect((try? Self.verify(text).get()) == bound)
    }

    /// Correctly signed payloads the format does not allow are malformed.
    @Test(arguments: [
        ("role 0", [2, 0] + exp + [0, 0, 1, 0] + nonce),
        ("role 3", [2, 3] + exp + [0, 0, 1, 0] + nonce),
        ("uses 0", [2, 1] + exp + [0, 0, 0, 0] + nonce),
        ("uses 1001", [2, 1] + exp + [0, 0x03, 0xe9, 0] + nonce),
        ("no uses", [2, 1] + exp + [0, 0] + nonce),
        ("unknown flag", [2, 1] + exp + [2, 0, 1, 0] + nonce),
        ("operator with a hostname", [2, 2] + exp + [0, 0, 1, 1, 1, UInt8(ascii: "h")] + nonce),
        ("9 hostnames", [2, 1] + exp + [0, 0, 1, 9] + Array([[UInt8]](repeating: [1, UInt8(ascii: "h")], count: 9).joined()) + nonce),
        ("bad hostname", [2, 1] + exp + [0, 0, 1, 1, 1, UInt8(ascii: "/")] + nonce),
        ("short nonce", [2, 1] + exp + [0, 0, 1, 0] + nonce.dropLast()),
        ("trailing byte", [2, 1] + exp + [0, 0, 1, 0] + nonce + [0]),
        ("version 1 payload under the version 2 label", [1] + exp + [0, 0] + nonce),
        ("version 3", [3, 1] + exp + [0, 0, 1, 0] + nonce),
    ] as [(String, [UInt8])])
    func malformedPayloads(name: String, p: [UInt8]) {
        #expect(Self.verify(Self.signed(p)) == .failure(.malformed), "\(name)")
    }

    static let exp: [UInt8] = [0, 0, 0, 0, 0x70, 0, 0, 0]  // far in the future

    @Test func wellFormedBoundaryPayloads() throws {
        let t = try Self.verify(Self.signed([2, 2] + Self.exp + [0, 0x03, 0xe8, 0] + Self.nonce)).get()
        #expect(t.role == .forward && t.uses == 1000 && t.device == nil)
    }

    /// Version 1 ("at1.", no role, no count) is refused, with its own reason, whether it
    /// is bound or not; a forged one is still just a bad signature.
    @Test func versionOneIsRefused() {
        let v1 = [UInt8(1)] + Self.exp + [1] + Self.dev.bytes + [0] + Self.nonce
        #expect(Self.verify(Self.signed(v1, label: EnrollmentToken.labelV1, prefix: "at1.")) == .failure(.oldVersion))
        let v1Unbound = [UInt8(1)] + Self.exp + [0, 2, 1, UInt8(ascii: "a"), 1, UInt8(ascii: "b")] + Self.nonce
        #expect(Self.verify(Self.signed(v1Unbound, label: EnrollmentToken.labelV1, prefix: "at1.")) == .failure(.oldVersion))
        #expect(EnrollmentToken.Failure.oldVersion.text == "token_old_version")
        // Signed with another secret: a bad signature, not an old version.
        let mac = Digest.hmacSHA256(key: Array("x".utf8), data: EnrollmentToken.labelV1 + v1)
        #expect(Self.verify("at1." + Base64URL.encode(v1) + "." + Base64URL.encode(mac)) == .failure(.badSignature))
        // A version 2 payload dressed as version 1 (prefix and label) is not accepted either.
        let v2 = EnrollmentToken(expires: Self.now + 60, device: nil, hostnames: [], nonce: Self.nonce).sign(secret: Self.secret)
        #expect(Self.verify(Self.signed(Self.payload(v2), label: EnrollmentToken.labelV1, prefix: "at1.")) == .failure(.oldVersion))
        #expect(Self.verify("at1." + String(v2.dropFirst(4))) == .failure(.badSignature))
    }
}
