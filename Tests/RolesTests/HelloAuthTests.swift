import Crypto
import Roles
import Testing
import Wire

/// The CHALLENGE signature covers the version range the relay offers (issue 12,
/// finding 10): a man in the middle that narrows it breaks the signature.
@Suite struct HelloAuthTests {
    final class Fixture {
        let rng: Rng
        let relay: PrivateKey
        let agent: PrivateKey
        let cert: Certificate
        init() throws {
            rng = try Rng()
            relay = try PrivateKey.generate(rng: rng)
            agent = try PrivateKey.generate(rng: rng)
            cert = try CertificateWriter.selfSigned(key: agent, rng: rng)
        }

        var pin: [UInt8] { Digest.sha256(relay.publicKeyDER()) }

        func answer(_ payload: [UInt8], tlsPeerKey: [UInt8]? = nil, tlsKeyHello: Bool = false)
            -> Result<[UInt8], HelloAuth.Refusal> {
            HelloAuth.answer(challenge: payload, pinDigest: pin, tlsPeerKey: tlsPeerKey, identity: agent,
                             certificates: [cert.leafDER], role: .reverse, token: [], hostnames: [], rng: rng,
                             tlsKeyHello: tlsKeyHello)
        }
    }

    static func decode(_ p: [UInt8]) throws -> ChallengeMessage {
        try decodeBytes(p) { (b) throws(WireError) in try ChallengeMessage.decode(b) }
    }

    @Test func theRelaysOwnChallengeIsAnswered() throws {
        let f = try Fixture()
        let (payload, nonce) = try HelloAuth.challenge(relayKey: f.relay, rng: f.rng)
        guard case .success(let auth) = f.answer(payload) else {
            Issue.record("a genuine challenge was refused")
            return
        }
        guard case .success(let v) = HelloAuth.verify(auth, nonce: nonce, relayPinDigest: f.pin) else {
            Issue.record("the relay refused the answer")
            return
        }
        #expect(v.id == f.agent.id)
    }

    @Test func theSignatureCoversNonceAndRange() throws {
        let f = try Fixture()
        let (payload, _) = try HelloAuth.challenge(relayKey: f.relay, rng: f.rng)
        let c = try Self.decode(payload)
        #expect(c.signedData == HelloLabel.challenge + c.nonce + [c.versionMin, c.versionMax])
        #expect(try PublicKey.parse(spki: f.relay.publicKeyDER()).verify(c.signedData, signature: c.signature))
    }

    /// Every other range, with the relay's genuine nonce, key and signature: refused.
    @Test(arguments: [(UInt8(0), UInt8(0)), (0, 1), (1, 2), (2, 2), (0, 255), (2, 255)])
    func anAlteredVersionRangeFailsVerification(lo: UInt8, hi: UInt8) throws {
        let f = try Fixture()
        let (payload, _) = try HelloAuth.challenge(relayKey: f.relay, rng: f.rng)
        var c = try Self.decode(payload)
        guard (lo, hi) != (c.versionMin, c.versionMax) else { return }
        c.versionMin = lo
        c.versionMax = hi
        #expect(f.answer(c.encode()) == .failure(.badRelaySignature))
    }

    /// A range narrowed by a man in the middle to a single version the agent speaks, built
    /// from a relay that offers more than one: the signature does not survive.
    @Test func aNarrowedRangeIsRefused() throws {
        let f = try Fixture()
        let nonce = f.rng.bytes(ChallengeMessage.nonceSize)
        var c = ChallengeMessage(versionMin: 1, versionMax: 3, nonce: nonce, relayKey: f.relay.publicKeyDER(), signature: [])
        c.signature = try f.relay.sign(c.signedData, rng: f.rng)
        guard case .success = f.answer(c.encode()) else {
            Issue.record("a signed 1...3 range was refused")
            return
        }
        c.versionMax = 1
        #expect(f.answer(c.encode()) == .failure(.badRelaySignature))
    }

    /// A relay of an older release signs only `agent relay challenge v1 || nonce`: refused,
    /// and the agent says why.
    @Test func anOldRelaysChallengeIsRefusedAsTooOld() throws {
        let f = try Fixture()
        let nonce = f.rng.bytes(ChallengeMessage.nonceSize)
        let sig = try f.relay.sign(Array("agent relay challenge v1".utf8) + nonce, rng: f.rng)
        let c = ChallengeMessage(versionMin: 1, versionMax: 1, nonce: nonce, relayKey: f.relay.publicKeyDER(), signature: sig)
        #expect(f.answer(c.encode()) == .failure(.relayTooOld))
    }

    /// ALPN `agent-tls-key` (TLS ends at the relay, the agent checks its TLS key): the relay
    /// sends CHALLENGE unsigned, and the agent takes it only with the relay's own TLS key.
    @Test func anUnsignedChallengeIsTakenOnlyOnTheRelaysOwnTLSKey() throws {
        let f = try Fixture()
        let (payload, nonce) = try HelloAuth.challenge(relayKey: f.relay, rng: f.rng, tlsKey: true)
        let c = try Self.decode(payload)
        #expect(c.signature.isEmpty)
        #expect(c.versionMin == WireProtocol.minVersion && c.versionMax == WireProtocol.version)
        let tlsKey = f.relay.publicKeyDER()
        guard case .success(let auth) = f.answer(payload, tlsPeerKey: tlsKey, tlsKeyHello: true) else {
            Issue.record("an unsigned challenge on the relay's own TLS key was refused")
            return
        }
        // The AUTH is still signed, over the nonce and the pin.
        guard case .success(let v) = HelloAuth.verify(auth, nonce: nonce, relayPinDigest: f.pin) else {
            Issue.record("the relay refused the answer")
            return
        }
        #expect(v.id == f.agent.id && !v.resumed)
        // Without the ALPN agreement, behind a front (no TLS key to compare), or on another
        // TLS key: refused.
        #expect(f.answer(payload, tlsPeerKey: tlsKey, tlsKeyHello: false) == .failure(.badRelaySignature))
        #expect(f.answer(payload, tlsPeerKey: nil, tlsKeyHello: true) == .failure(.badRelaySignature))
        let other = try PrivateKey.generate(rng: f.rng).publicKeyDER()
        #expect(f.answer(payload, tlsPeerKey: other, tlsKeyHello: true) == .failure(.keyMismatch))
    }

    /// A relay that signs anyway is still answered on an `agent-tls-key` session.
    @Test func aSignedChallengeIsTakenOnATLSKeySessionToo() throws {
        let f = try Fixture()
        let (payload, _) = try HelloAuth.challenge(relayKey: f.relay, rng: f.rng)
        guard case .success = f.answer(payload, tlsPeerKey: f.relay.publicKeyDER(), tlsKeyHello: true) else {
            Issue.record("a signed challenge was refused")
            return
        }
    }
}
