import CShims
@testable import Crypto
import Testing
import Wire

/// Resume credentials: sealing and opening (wrong key, expired, tampered), and the TLS
/// handshakes that use them in memory (psk_ke when the credential opens, a full
/// certificate handshake in the same connection when it does not).
@Suite struct ResumeTests {
    typealias T = TLSSessionTests

    static let keyA = [UInt8](repeating: 0xa1, count: 32)
    static let keyB = [UInt8](repeating: 0xb2, count: 32)
    static let idA: [UInt8] = [1, 2, 3, 4]
    static let idB: [UInt8] = [5, 6, 7, 8]
    static let agent = AgentID(bytes: [UInt8](repeating: 7, count: AgentID.byteCount))!

    /// A key file image written out by hand (shims.c): "AGRK" | 1 | count | (id | key | created u64)...
    static func image(_ entries: [([UInt8], [UInt8])], created: UInt8 = 9) -> [UInt8] {
        var o: [UInt8] = Array("AGRK".utf8) + [1, UInt8(entries.count)]
        for (id, key) in entries { o += id + key + [0, 0, 0, 0, 0, 0, 0, created] }
        return o
    }

    static func keys(_ current: ([UInt8], [UInt8]), previous: ([UInt8], [UInt8])? = nil) throws -> ResumeKeys {
        let k = try ResumeKeys()
        #expect(k.load(image([current] + (previous.map { [$0] } ?? []))) == 9)
        return k
    }

    /// Issues a credential and reads it back as the agent does.
    static func issue(_ k: ResumeKeys, role: AgentRole = .reverse, now: Int64, lifetime: UInt32) throws -> ResumeMessage {
        let payload = try #require(k.issue(id: agent, role: role, now: now, lifetime: lifetime))
        return try decodeBytes(payload) { (b) throws(WireError) in try ResumeMessage.decode(b) }
    }

    @Test func sealsAndOpens() throws {
        let k = try Self.keys((Self.idA, Self.keyA))
        let m = try Self.issue(k, now: 1000, lifetime: 1000)
        #expect(m.lifetimeSeconds == 1000)
        #expect(m.identity.count == Int(SHIM_RESUME_IDENTITY))
        #expect(Array(m.identity[0..<4]) == Self.idA)
        guard case .success(let (claim, psk)) = k.open(m.identity, nowSeconds: 1999) else {
            Issue.record("did not open")
            return
        }
        #expect(claim.id == Self.agent)
        #expect(claim.role == .reverse)
        #expect(claim.issuedAt == 1000)
        #expect(claim.expiresAt == 2000)
        #expect(psk == m.psk)
        // Two credentials for the same claim differ (fresh PSK and nonce): nothing links them.
        let again = try Self.issue(k, now: 1000, lifetime: 1000)
        #expect(again.identity != m.identity && again.psk != m.psk)
    }

    @Test func refusesExpired() throws {
        let k = try Self.keys((Self.idA, Self.keyA))
        let m = try Self.issue(k, role: .forward, now: 1000, lifetime: 1000)
        #expect(k.open(m.identity, nowSeconds: 2000).failure == .expired)
        #expect(k.open(m.identity, nowSeconds: 50_000).failure == .expired)
    }

    @Test func refusesWrongKey() throws {
        let a = try Self.keys((Self.idA, Self.keyA))
        let m = try Self.issue(a, now: 1, lifetime: 9)
        // Another relay's key under another id: unknown.
        let b = try Self.keys((Self.idB, Self.keyB))
        #expect(b.open(m.identity, nowSeconds: 5).failure == .unknownKey)
        // The same key id with other key bytes (a key file replaced): the tag fails.
        let c = try Self.keys((Self.idA, Self.keyB))
        #expect(c.open(m.identity, nowSeconds: 5).failure == .badTag)
    }

    @Test func previousKeyStillOpensAfterRotation() throws {
        let k = try Self.keys((Self.idA, Self.keyA))
        let m = try Self.issue(k, now: 1, lifetime: 9)
        let rotated = try #require(k.rotate(Self.image([(Self.idA, Self.keyA)]), now: 77))
        #expect(rotated.count == 6 + 2 * 44 && Array(rotated[50..<94]) == Array(Self.image([(Self.idA, Self.keyA)])[6..<50]))
        #expect(k.load(rotated) == 77)
        #expect(k.open(m.identity, nowSeconds: 5).failure == nil)
        let fresh = try Self.issue(k, now: 1, lifetime: 9)
        #expect(Array(fresh.identity[0..<4]) == Array(rotated[6..<10]))
        #expect(Array(fresh.identity[0..<4]) != Self.idA)
        // Rotated twice: the first key is gone.
        _ = try #require(k.rotate(rotated, now: 78))
        #expect(k.open(m.identity, nowSeconds: 5).failure == .unknownKey)
        #expect(k.open(fresh.identity, nowSeconds: 5).failure == nil)
    }

    @Test func refusesTamperedAndMalformed() throws {
        let k = try Self.keys((Self.idA, Self.keyA))
        let identity = try Self.issue(k, now: 1, lifetime: 9).identity
        for i in [4, 15, 16, 40, identity.count - 1] {  // nonce, ciphertext, tag
            var t = identity
            t[i] ^= 0x01
            #expect(k.open(t, nowSeconds: 5).failure == .badTag, "byte \(i)")
        }
        #expect(k.open(Array(identity.dropLast()), nowSeconds: 5).failure == .malformed)
        #expect(k.open([], nowSeconds: 5).failure == .malformed)
        // Not a key file: refused, and the keys in force stay.
        #expect(k.load(Array("AGRK".utf8) + [1, 3]) == nil)
        #expect(k.load(Array(Self.image([(Self.idA, Self.keyA)]).dropLast())) == nil)
        #expect(k.load(Self.image([(Self.idA, Self.keyA), (Self.idB, Self.keyB), (Self.idB, Self.keyA)])) == nil)
        #expect(k.open(identity, nowSeconds: 5).failure == nil)
    }

    // MARK: TLS

    final class Relay {
        let rng: Rng
        let id: T.Party
        let keys: ResumeKeys
        let config: TLSConfig
        init(keyID: [UInt8] = ResumeTests.idA, key: [UInt8] = ResumeTests.keyA) throws {
            rng = try Rng()
            id = try T.Party(rng: rng)
            keys = try ResumeKeys.init()
            #expect(keys.load(ResumeTests.image([(keyID, key)])) != nil)
            config = try TLSConfig(side: .server, rng: rng, certificate: id.cert, key: id.key, peerCheck: .none,
                                   resume: keys)
        }

        /// A RESUME payload, as the agent keeps it.
        func credential(expiresAt: Int64 = Int64(shim_wall_ms() / 1000) + 3600, role: AgentRole = .reverse) throws -> [UInt8] {
            try ResumeTests.issue(keys, role: role, now: expiresAt - 100, lifetime: 100).encode()
        }

        func connect(_ credential: [UInt8]?, modes: Int32? = nil)
            throws -> (TLSSession, TLSSession, TLSSession.Progress, TLSSession.Progress) {
            let cc = try TLSConfig(side: .client, rng: rng, certificate: nil, key: nil, peerCheck: .afterHandshake(trusted: nil),
                                   resumeCredential: credential)
            if let m = modes { mbedtls_ssl_conf_tls13_key_exchange_modes(cc.conf, m) }
            let c = try TLSSession(config: cc)
            let s = try TLSSession(config: config)
            var pump = T.Pump(seed: 3, maxChunk: 700)
            let (cp, sp) = T.handshake(c, s, pump: &pump)
            return (c, s, cp, sp)
        }
    }

    @Test func validCredentialResumesWithoutCertificate() throws {
        let relay = try Relay()
        let (c, s, cp, sp) = try relay.connect(try relay.credential(role: .forward))
        #expect(cp == .done && sp == .done)
        #expect(c.resumedWithPSK)
        #expect(c.peerCertificateDER == nil)
        let claim = try #require(s.resumeClaim)
        #expect(claim.id == Self.agent)
        #expect(claim.role == .forward)
        // Data flows on the resumed session.
        var got: [UInt8] = []
        T.send(Array("hello".utf8), from: c, to: s, got: &got)
        #expect(got == Array("hello".utf8))
    }

    @Test func unknownOrExpiredCredentialFallsBackToFullHandshake() throws {
        let relay = try Relay()
        let other = try Relay(keyID: ResumeTests.idB, key: ResumeTests.keyB)  // another relay's key: unknown here
        let expired = try relay.credential(expiresAt: Int64(shim_wall_ms() / 1000) - 1)
        for cred in [expired, try other.credential()] {
            let (c, s, cp, sp) = try relay.connect(cred)
            #expect(cp == .done && sp == .done)
            #expect(!c.resumedWithPSK)
            #expect(c.peerPublicKeyDER == relay.id.key.publicKeyDER())
            #expect(s.resumeClaim == nil)
        }
    }

    @Test func credentialWithWrongPSKFailsTheHandshake() throws {
        let relay = try Relay()
        var forged = try relay.credential()
        for i in 4..<36 { forged[i] = 1 }  // the right identity with another PSK
        let (_, s, cp, sp) = try relay.connect(forged)
        // The identity alone (it travels in clear in the ClientHello) admits nothing:
        // the binder does not check, and mbedTLS aborts rather than fall back.
        #expect(cp != .done || sp != .done)
        #expect(s.resumeClaim == nil)
    }

    @Test func credentialWithoutPlainPSKModeIsNoResumption() throws {
        // A client that offers the credential but only psk_dhe_ke (not what agents send):
        // the credential opens, yet no handshake may end with its claim and no PSK.
        let relay = try Relay()
        let modes = Int32(MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL | MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL)
        let (_, s, _, sp) = try relay.connect(try relay.credential(), modes: modes)
        if sp == .done { #expect(s.resumeClaim == nil) }
        #expect(s.resumeClaim == nil)
    }

    @Test func aMalformedCredentialIsNotOffered() throws {
        let rng = try Rng()
        for bad in [[UInt8](), [0, 0, 0, 1], [UInt8](repeating: 0, count: 39)] {
            #expect(throws: CryptoError.self) {
                _ = try TLSConfig(side: .client, rng: rng, certificate: nil, key: nil, peerCheck: .afterHandshake(trusted: nil),
                                  resumeCredential: bad)
            }
        }
    }

    @Test func noCredentialIsAFullHandshake() throws {
        let relay = try Relay()
        let (c, s, cp, sp) = try relay.connect(nil)
        #expect(cp == .done && sp == .done)
        #expect(!c.resumedWithPSK)
        #expect(c.peerCertificateDER != nil)
        #expect(s.resumeClaim == nil)
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let f) = self { return f }
        return nil
    }
}
