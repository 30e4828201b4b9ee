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
    static let psk = [UInt8](repeating: 0x5a, count: 32)

    static func keys(_ current: ([UInt8], [UInt8]), previous: ([UInt8], [UInt8])? = nil) throws -> ResumeKeys {
        let k = try ResumeKeys()
        try k.setKey(slot: 0, id: current.0, key: current.1)
        if let p = previous { try k.setKey(slot: 1, id: p.0, key: p.1) }
        return k
    }

    @Test func sealsAndOpens() throws {
        let k = try Self.keys((Self.idA, Self.keyA))
        let identity = try #require(k.seal(id: Self.agent, role: .reverse, issuedAt: 1000, expiresAt: 2000, psk: Self.psk))
        #expect(identity.count == ResumeKeys.identityBytes)
        #expect(Array(identity[0..<4]) == Self.idA)
        guard case .success(let (claim, psk)) = k.open(identity, nowSeconds: 1999) else {
            Issue.record("did not open")
            return
        }
        #expect(claim.id == Self.agent)
        #expect(claim.role == .reverse)
        #expect(claim.issuedAt == 1000)
        #expect(claim.expiresAt == 2000)
        #expect(psk == Self.psk)
        // Two seals of the same claim differ (fresh nonce): nothing to link them by.
        let again = try #require(k.seal(id: Self.agent, role: .reverse, issuedAt: 1000, expiresAt: 2000, psk: Self.psk))
        #expect(again != identity)
    }

    @Test func refusesExpired() throws {
        let k = try Self.keys((Self.idA, Self.keyA))
        let identity = try #require(k.seal(id: Self.agent, role: .forward, issuedAt: 1000, expiresAt: 2000, psk: Self.psk))
        #expect(k.open(identity, nowSeconds: 2000).failure == .expired)
        #expect(k.open(identity, nowSeconds: 50_000).failure == .expired)
    }

    @Test func refusesWrongKey() throws {
        let a = try Self.keys((Self.idA, Self.keyA))
        let identity = try #require(a.seal(id: Self.agent, role: .reverse, issuedAt: 1, expiresAt: 10, psk: Self.psk))
        // Another relay's key under another id: unknown.
        let b = try Self.keys((Self.idB, Self.keyB))
        #expect(b.open(identity, nowSeconds: 5).failure == .unknownKey)
        // The same key id with other key bytes (a key file replaced): the tag fails.
        let c = try Self.keys((Self.idA, Self.keyB))
        #expect(c.open(identity, nowSeconds: 5).failure == .badTag)
    }

    @Test func previousKeyStillOpensAfterRotation() throws {
        let before = try Self.keys((Self.idA, Self.keyA))
        let identity = try #require(before.seal(id: Self.agent, role: .reverse, issuedAt: 1, expiresAt: 10, psk: Self.psk))
        let rotated = try Self.keys((Self.idB, Self.keyB), previous: (Self.idA, Self.keyA))
        #expect(rotated.open(identity, nowSeconds: 5).failure == nil)
        let fresh = try #require(rotated.seal(id: Self.agent, role: .reverse, issuedAt: 1, expiresAt: 10, psk: Self.psk))
        #expect(Array(fresh[0..<4]) == Self.idB)
        // Rotated twice: the first key is gone.
        let twice = try Self.keys(([9, 9, 9, 9], Self.keyA), previous: (Self.idB, Self.keyB))
        #expect(twice.open(identity, nowSeconds: 5).failure == .unknownKey)
    }

    @Test func refusesTamperedAndMalformed() throws {
        let k = try Self.keys((Self.idA, Self.keyA))
        let identity = try #require(k.seal(id: Self.agent, role: .reverse, issuedAt: 1, expiresAt: 10, psk: Self.psk))
        for i in [4, 15, 16, 40, ResumeKeys.identityBytes - 1] {  // nonce, ciphertext, tag
            var t = identity
            t[i] ^= 0x01
            #expect(k.open(t, nowSeconds: 5).failure == .badTag, "byte \(i)")
        }
        #expect(k.open(Array(identity.dropLast()), nowSeconds: 5).failure == .malformed)
        #expect(k.open([], nowSeconds: 5).failure == .malformed)
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
            try keys.setKey(slot: 0, id: keyID, key: key)
            config = try TLSConfig(side: .server, rng: rng, certificate: id.cert, key: id.key, peerCheck: .none,
                                   resume: keys)
        }

        func credential(expiresAt: Int64 = Int64(shim_wall_ms() / 1000) + 3600, role: AgentRole = .reverse)
            throws -> (identity: [UInt8], key: [UInt8]) {
            let psk = rng.bytes(32)
            let identity = try #require(keys.seal(id: ResumeTests.agent, role: role, issuedAt: 0, expiresAt: expiresAt, psk: psk))
            return (identity, psk)
        }

        func connect(_ credential: (identity: [UInt8], key: [UInt8])?, modes: Int32? = nil)
            throws -> (TLSSession, TLSSession, TLSSession.Progress, TLSSession.Progress) {
            let cc = try TLSConfig(side: .client, rng: rng, certificate: nil, key: nil, peerCheck: .afterHandshake(trusted: nil),
                                   psk: credential)
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
        let good = try relay.credential()
        let (_, s, cp, sp) = try relay.connect((good.identity, [UInt8](repeating: 1, count: 32)))
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
