// Fuzz target `token`: the enrollment token parser and verifier
// (Sources/Roles/Common/Token.swift) and the text encodings under it
// (Sources/Wire/AgentID.swift: Base64URL, Base32, Hex).
//
// First byte selects the mode, the rest is the data:
//   0: the data is token text, checked with `EnrollmentToken.verify` against a
//      fixed secret, clock and device (what a relay does with AUTH's token);
//   1: the data is a token payload, signed here with the fixed secret and then
//      verified: the MAC passes, so the payload parser sees every input;
//   2: the data is text for Base64URL, Base32 (agent IDs) and Hex decoding.
// Checks: no trap; a verified token was not expired, matches the device if
// bound, has at most 8 valid hostnames and an 8-byte nonce, and signs again to
// a token that verifies to the same value; every decoder's output re-encodes to
// its input (the encodings are canonical: no padding, zero trailing bits).

import Crypto
import Roles
import Wire

let secret: [UInt8] = Array("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".utf8)
let tokenNow: Int64 = 1_700_000_000
let tokenDevice = AgentID(bytes: (0..<20).map { UInt8($0 + 1) })!

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzToken(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    let mode = input.u8() % 3
    let rest = Array(input.rest())
    switch mode {
    case 0:
        checkVerify(rest)
    case 1:
        let mac = Digest.hmacSHA256(key: secret, data: EnrollmentToken.label + rest)
        let text = EnrollmentToken.prefix + Base64URL.encode(rest) + "." + Base64URL.encode(mac)
        let r = checkVerify(Array(text.utf8))
        if text.utf8.count <= EnrollmentToken.maxLength, case .failure(let f) = r {
            require(f != .badSignature, "a correctly signed token failed its MAC")
        }
    default:
        checkEncodings(rest)
    }
    return 0
}

@discardableResult
func checkVerify(_ text: [UInt8]) -> Result<EnrollmentToken, EnrollmentToken.Failure> {
    let r = EnrollmentToken.verify(text, secret: secret, now: tokenNow, device: tokenDevice)
    guard case .success(let t) = r else { return r }
    require(t.expires > tokenNow, "verified an expired token")
    if let d = t.device { require(d == tokenDevice, "verified a token bound to another device") }
    require(t.hostnames.count <= 8, "more than 8 hostnames")
    for h in t.hostnames { require(OpenPayload.isHostnameBytes(Array(h.utf8)), "bad hostname in a token") }
    require(t.nonce.count == 8, "nonce size")
    require(t.uses >= 1 && t.uses <= Limits.tokenMaxUses, "use count out of range")
    if t.device != nil { require(t.uses == 1, "a bound token counts more than one use") }
    if t.role == .forward { require(t.hostnames.isEmpty, "an operator token with hostnames") }
    // Signing the value again gives a token that verifies to the same value.
    let again = t.sign(secret: secret)
    let r2 = EnrollmentToken.verify(Array(again.utf8), secret: secret, now: tokenNow, device: tokenDevice)
    guard case .success(let t2) = r2 else { require(false, "re-signed token does not verify: \(r2)"); return r }
    require(t2 == t, "re-signed token verifies to another value")
    // Another secret never verifies it.
    var other = secret
    other[0] ^= 1
    if case .success = EnrollmentToken.verify(text, secret: other, now: tokenNow, device: tokenDevice) {
        require(false, "token verified with the wrong secret")
    }
    return r
}

func checkEncodings(_ b: [UInt8]) {
    let s = String(decoding: b, as: UTF8.self)
    if let d = Base64URL.decode(s) {
        require(Array(Base64URL.encode(d).utf8) == b, "Base64URL is not canonical for " + hex(b))
    }
    if let d = Base32.decode(b) {
        let lower = b.map { $0 >= 0x41 && $0 <= 0x5a ? $0 + 0x20 : $0 }
        require(Array(Base32.encode(d).utf8) == lower, "Base32 is not canonical for " + hex(b))
    }
    if let id = AgentID(text: s) {
        let clean = b.filter { $0 != UInt8(ascii: "-") }.map { $0 >= 0x41 && $0 <= 0x5a ? $0 + 0x20 : $0 }
        require(Array(id.text.utf8) == clean, "agent ID text round trip")
    }
    if let d = Hex.decode(s) {
        let lower = b.map { $0 >= 0x41 && $0 <= 0x5a ? $0 + 0x20 : $0 }
        require(Array(Hex.encode(d).utf8) == lower, "Hex round trip")
    }
    if let pin = Identity.parsePin(s) { require(pin.count == 32, "pin size") }
}

// MARK: - Seeds

func fuzzSeeds() -> [(String, [UInt8])] {
    let nonce: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
    let plain = EnrollmentToken(expires: tokenNow + 3600, device: nil, hostnames: [], nonce: nonce)
    let bound = EnrollmentToken(expires: tokenNow + 86400, device: tokenDevice, hostnames: ["cam.example", "Door-2"], nonce: nonce)
    let op = EnrollmentToken(expires: tokenNow + 3600, device: nil, hostnames: [], nonce: nonce, role: .forward, uses: 1000)
    let expired = EnrollmentToken(expires: tokenNow - 1, device: nil, hostnames: ["x"], nonce: nonce)
    let otherDevice = EnrollmentToken(expires: tokenNow + 60, device: AgentID(bytes: [UInt8](repeating: 9, count: 20))!,
                                      hostnames: [], nonce: nonce)
    func text(_ t: EnrollmentToken) -> [UInt8] { [0] + Array(t.sign(secret: secret).utf8) }
    func payload(_ t: EnrollmentToken) -> [UInt8] {
        // The signed payload is the first base64url part of the token.
        let s = t.sign(secret: secret)
        let parts = Text.split(Text.dropFirst(s, Text.length(EnrollmentToken.prefix)), UInt8(ascii: "."))
        return [1] + Base64URL.decode(parts[0])!
    }
    return [
        ("verify-plain", text(plain)),
        ("verify-bound", text(bound)),
        ("verify-expired", text(expired)),
        ("verify-other-device", text(otherDevice)),
        ("payload-plain", payload(plain)),
        ("payload-bound", payload(bound)),
        ("payload-operator", payload(op)),
        ("encodings-id", [2] + Array(tokenDevice.text.utf8)),
        ("encodings-b64", [2] + Array(Base64URL.encode([0xfb, 0xff, 0x00, 0x10]).utf8)),
        ("encodings-pin", [2] + Array(("sha256:" + Hex.encode([UInt8](repeating: 0xab, count: 32))).utf8)),
    ]
}
