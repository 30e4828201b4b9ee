@testable import Crypto
import Loop
@testable import Roles
import Testing
import Wire

/// The hello on a session resumed with a resume credential: the relay signs nothing,
/// the agent signs nothing, and `HelloAuth.verify(..., resumed:)` admits only the key and role
/// the credential was issued to. The admission decision then runs as for a full hello.
@Suite struct ResumedHelloTests {
    final class Fixture {
        let rng: Rng
        let relay: PrivateKey
        let agent: PrivateKey
        let cert: Certificate
        let keys: ResumeKeys
        init() throws {
            rng = try Rng()
            relay = try PrivateKey.generate(rng: rng)
            agent = try PrivateKey.generate(rng: rng)
            cert = try CertificateWriter.selfSigned(key: agent, rng: rng)
            keys = try ResumeKeys()
            #expect(keys.rotate([], now: 1) != nil)
        }

        var pin: [UInt8] { Digest.sha256(relay.publicKeyDER()) }

        /// The claim the relay's TLS callback would find in a credential issued to `id`.
        func claim(_ id: AgentID, _ role: AgentRole) throws -> ResumeClaim {
            let p = try #require(keys.issue(id: id, role: role, now: 1, lifetime: 99))
            let m = try decodeBytes(p) { (b) throws(WireError) in try ResumeMessage.decode(b) }
            guard case .success(let (c, _)) = keys.open(m.identity, nowSeconds: 50) else { throw CryptoError("open", -1) }
            return c
        }

        func answer(_ payload: [UInt8], resumed: Bool, key: PrivateKey? = nil, certificate: Certificate? = nil,
                    role: AgentRole = .reverse) -> Result<[UInt8], HelloAuth.Refusal> {
            HelloAuth.answer(challenge: payload, pinDigest: pin, tlsPeerKey: nil, identity: key ?? agent,
                             certificates: [(certificate ?? cert).leafDER], role: role, token: [], hostnames: [], rng: rng,
                             resumed: resumed)
        }
    }

    static func decodeAuth(_ p: [UInt8]) throws -> AuthMessage {
        try decodeBytes(p) { (b) throws(WireError) in try AuthMessage.decode(b) }
    }

    @Test func aResumedHelloNeedsNoSignatureAndNamesTheCredentialsKey() throws {
        let f = try Fixture()
        let (challenge, _) = try HelloAuth.challenge(relayKey: f.relay, rng: f.rng, resumed: true)
        let c = try decodeBytes(challenge) { (b) throws(WireError) in try ChallengeMessage.decode(b) }
        #expect(c.signature.isEmpty)
        #expect(c.versionMin == WireProtocol.resumeVersion)
        let auth = try #require(try? f.answer(challenge, resumed: true).get())
        let m = try Self.decodeAuth(auth)
        #expect(m.signature.isEmpty)
        #expect(m.version == WireProtocol.version)
        let v = try #require(try? HelloAuth.verify(auth, nonce: [], relayPinDigest: [], resumed: f.claim(f.agent.id, .reverse)).get())
        #expect(v.id == f.agent.id)
        #expect(v.resumed)
    }

    @Test func anotherAgentsKeyOrRoleIsRefused() throws {
        let f = try Fixture()
        let (challenge, _) = try HelloAuth.challenge(relayKey: f.relay, rng: f.rng, resumed: true)
        // Another agent (its own key and certificate) on a session resumed with f.agent's credential.
        let other = try PrivateKey.generate(rng: f.rng)
        let otherCert = try CertificateWriter.selfSigned(key: other, rng: f.rng)
        let auth = try #require(try? f.answer(challenge, resumed: true, key: other, certificate: otherCert).get())
        #expect(HelloAuth.verify(auth, nonce: [], relayPinDigest: [], resumed: try f.claim(f.agent.id, .reverse)).failure == .resumeMismatch)
        // The right key in the other role.
        let forward = try #require(try? f.answer(challenge, resumed: true, role: .forward).get())
        #expect(HelloAuth.verify(forward, nonce: [], relayPinDigest: [], resumed: try f.claim(f.agent.id, .reverse)).failure == .resumeMismatch)
        // A version-1 AUTH cannot be resumed.
        var m = try Self.decodeAuth(try #require(try? f.answer(challenge, resumed: true).get()))
        m.version = 1
        #expect(HelloAuth.verify(m.encode(), nonce: [], relayPinDigest: [], resumed: try f.claim(f.agent.id, .reverse)).failure == .unsupportedVersion(1))
    }

    @Test func anUnsignedChallengeIsRefusedOnAFullSession() throws {
        let f = try Fixture()
        let (challenge, _) = try HelloAuth.challenge(relayKey: f.relay, rng: f.rng, resumed: true)
        #expect(f.answer(challenge, resumed: false).failure == .badRelaySignature)
        // And a resumed session still checks the pin against the key the relay names.
        let stranger = try PrivateKey.generate(rng: f.rng)
        let (foreign, _) = try HelloAuth.challenge(relayKey: stranger, rng: f.rng, resumed: true)
        #expect(f.answer(foreign, resumed: true).failure == .pinMismatch)
    }

    @Test func anUnsignedAuthIsRefusedByTheFullCheck() throws {
        let f = try Fixture()
        let (challenge, nonce) = try HelloAuth.challenge(relayKey: f.relay, rng: f.rng)
        let auth = try #require(try? f.answer(challenge, resumed: true).get())
        #expect(HelloAuth.verify(auth, nonce: nonce, relayPinDigest: f.pin).failure == .badSignature)
        // The signed answer to the same challenge passes.
        let signed = try #require(try? f.answer(challenge, resumed: false).get())
        #expect(HelloAuth.verify(signed, nonce: nonce, relayPinDigest: f.pin).failure == nil)
    }

    /// Admission of a resumed identity is the full hello's decision: a known key comes back
    /// in its role; a key the operator removed from the registry (revoked) does not.
    @Test func aResumedIdentityGoesThroughTheSameAdmission() throws {
        let f = try Fixture()
        let w = try AdmissionTests.World()
        let (challenge, _) = try HelloAuth.challenge(relayKey: f.relay, rng: f.rng, resumed: true)
        let auth = try #require(try? f.answer(challenge, resumed: true).get())
        let v = try #require(try? HelloAuth.verify(auth, nonce: [], relayPinDigest: [], resumed: f.claim(f.agent.id, .reverse)).get())
        func decide(open: Bool = false) -> String { w.decide(v.id, v.chain, role: v.message.role, open: open) }
        #expect(decide() == "not_enrolled")
        #expect(decide(open: true) == "admit via=open")
        #expect(decide() == "admit via=open")
        try w.registry.remove(v.id)
        #expect(decide() == "not_enrolled")
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let f) = self { return f }
        return nil
    }
}
