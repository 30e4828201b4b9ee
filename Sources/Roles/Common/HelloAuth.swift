import Crypto
import Wire

/// The hello exchange's cryptography, sans-IO (message layouts: Wire/Hello.swift).
///
/// Relay: `challenge` makes CHALLENGE; `verify` checks an AUTH against the
/// nonce it sent and its own pin and returns a `VerifiedAuth`, which only
/// `verify` can create (for a full hello or, with a claim, a resumed one): code that admits an agent must hold one.
///
/// Agent: `answer` checks CHALLENGE (relay key = the pinned key, relay signature)
/// and makes the signed AUTH.
///
/// Resumed (protocol version 2): on a TLS session authenticated by the agent's resume
/// credential, both signatures are left out. The relay's session proves it issued the
/// credential (so it is the relay the agent pinned when it got it), and the agent's
/// proves it holds the credential issued to the key it proved at its full admission:
/// `verify(..., resumed:)` admits an AUTH only for that key and role.
public enum HelloAuth {
    /// Why an AUTH was rejected (for the relay's log only: the agent is told nothing).
    public enum Rejection: Error, Equatable {
        case malformed
        case unsupportedVersion(UInt8)
        case badCertificate
        case badSignature
        /// A resumed session's AUTH names another key or role than its credential.
        case resumeMismatch

        public var text: String {
            switch self {
            case .malformed: return "auth_malformed"
            case .unsupportedVersion: return "unsupported_version"
            case .badCertificate: return "bad_certificate"
            case .badSignature: return "bad_signature"
            case .resumeMismatch: return "resume_mismatch"
            }
        }
    }

    /// Why an agent gave up on a relay (for the agent's log and exit message).
    public enum Refusal: Error, Equatable {
        case malformed
        case pinMismatch            // the relay's key is not the pinned one
        case keyMismatch            // CHALLENGE key differs from the TLS peer's key
        case badRelaySignature
        /// The challenge is signed the way releases before issue 12 signed it (nonce only):
        /// the relay runs an older release. Never accepted (it would let the range be narrowed).
        case relayTooOld
        case noCommonVersion(UInt8, UInt8)
        case signingFailed

        public var text: String {
            switch self {
            case .malformed: return "relay sent a malformed challenge"
            case .pinMismatch: return "relay key does not match --relay-pin"
            case .keyMismatch: return "relay's hello key differs from its TLS key"
            case .badRelaySignature: return "relay's challenge signature is invalid"
            case .relayTooOld: return "relay runs an older release (its challenge does not sign the version range): upgrade the relay"
            case .noCommonVersion(let lo, let hi):
                return "relay speaks protocol versions " + String(lo) + "-" + String(hi) + ", this agent "
                    + String(WireProtocol.minVersion) + "-" + String(WireProtocol.version)
            case .signingFailed: return "could not sign the hello"
            }
        }
    }

    // MARK: relay side

    /// A fresh CHALLENGE payload and its nonce; unsigned on a `resumed` session, and on a
    /// `tlsKey` one (`TLSSession.tlsKeyHello`: the agent checks this relay's TLS key, which
    /// is `relayKey`, and TLS 1.3's CertificateVerify already proved it for this session).
    public static func challenge(relayKey: PrivateKey, rng: Rng, resumed: Bool = false, tlsKey: Bool = false) throws(CryptoError)
        -> (payload: [UInt8], nonce: [UInt8]) {
        let nonce = rng.bytes(ChallengeMessage.nonceSize)
        var m = ChallengeMessage(versionMin: resumed ? WireProtocol.resumeVersion : WireProtocol.minVersion,
                                 versionMax: WireProtocol.version, nonce: nonce, relayKey: relayKey.publicKeyDER(), signature: [])
        // The range is signed with the nonce: a man in the middle cannot narrow it.
        if !resumed && !tlsKey { m.signature = try relayKey.sign(m.signedData, rng: rng) }
        return (m.encode(), nonce)
    }

    /// The bytes an agent signs in AUTH.
    static func authSignedData(nonce: [UInt8], relayPinDigest: [UInt8], unsignedAuth: [UInt8]) -> [UInt8] {
        HelloLabel.auth + nonce + relayPinDigest + Digest.sha256(unsignedAuth)
    }

    /// Checks an AUTH payload. `relayPinDigest` is SHA-256 of the relay's own key.
    /// `resumed`: the claim of the resume credential that authenticated this TLS session
    /// (`TLSSession.resumeClaim`); the AUTH then carries no signature, but its key must be
    /// the one the credential was issued to, in the same role. Everything else is the same.
    public static func verify(_ payload: [UInt8], nonce: [UInt8], relayPinDigest: [UInt8],
                              resumed claim: ResumeClaim? = nil) -> Result<VerifiedAuth, Rejection> {
        let m: AuthMessage
        do throws(WireError) {
            m = try decodeBytes(payload) { (p) throws(WireError) in try AuthMessage.decode(p) }
        } catch {
            return .failure(.malformed)
        }
        let lowest = claim == nil ? WireProtocol.minVersion : WireProtocol.resumeVersion
        guard m.version >= lowest && m.version <= WireProtocol.version else {
            return .failure(.unsupportedVersion(m.version))
        }
        let chain: Certificate
        let key: PublicKey
        do throws(CryptoError) {
            chain = try Certificate.parse(m.certificates[0])
            for c in m.certificates.dropFirst() { try chain.add(c) }
            key = try chain.leafPublicKey()
        } catch {
            return .failure(.badCertificate)
        }
        let id = key.id
        if let c = claim {
            guard id == c.id, m.role == c.role else { return .failure(.resumeMismatch) }
        } else {
            let signed = authSignedData(nonce: nonce, relayPinDigest: relayPinDigest, unsignedAuth: m.encodeUnsigned())
            guard !m.signature.isEmpty, key.verify(signed, signature: m.signature) else { return .failure(.badSignature) }
        }
        return .success(VerifiedAuth(id: id, message: m, chain: chain, resumed: claim != nil))
    }

    // MARK: agent side

    /// Checks CHALLENGE and returns the signed AUTH payload.
    /// - Parameters:
    ///   - pinDigest: SHA-256 of the relay key the agent was told to trust (--relay-pin), if any.
    ///   - tlsPeerKey: the TLS peer's key (DER SPKI) when TLS ends at the relay itself; it must then be the
    ///     key in CHALLENGE. nil behind a TLS-terminating proxy (the proxy's TLS was checked by --ca).
    ///   - resumed: the agent's TLS session was authenticated by its resume credential
    ///     (`TLSSession.resumedWithPSK`): the CHALLENGE's signature is not needed, and the AUTH
    ///     goes unsigned. Never true otherwise: an unsigned CHALLENGE is then refused.
    ///   - tlsKeyHello: the session negotiated ALPN `agent-tls-key` (`TLSSession.tlsKeyHello`).
    ///     With `tlsPeerKey` (TLS ends at the relay, whose key must be the one in CHALLENGE)
    ///     the CHALLENGE's signature is not needed: TLS 1.3's CertificateVerify proved that key
    ///     over this session's transcript, and CHALLENGE came inside the session. The AUTH is
    ///     signed as always.
    public static func answer(challenge payload: [UInt8], pinDigest: [UInt8]?, tlsPeerKey: [UInt8]?,
                              identity: PrivateKey, certificates: [[UInt8]], role: AgentRole, token: [UInt8],
                              hostnames: [String], rng: Rng, resumed: Bool = false,
                              tlsKeyHello: Bool = false) -> Result<[UInt8], Refusal> {
        let c: ChallengeMessage
        do throws(WireError) {
            c = try decodeBytes(payload) { (p) throws(WireError) in try ChallengeMessage.decode(p) }
        } catch {
            return .failure(.malformed)
        }
        let relayDigest = Digest.sha256(c.relayKey)
        if let pin = pinDigest, !Digest.constantTimeEqual(pin, relayDigest) { return .failure(.pinMismatch) }
        if let k = tlsPeerKey, k != c.relayKey { return .failure(.keyMismatch) }
        let provenByTLS = tlsKeyHello && tlsPeerKey != nil  // equal to c.relayKey: checked above
        if !resumed && !provenByTLS {
            guard !c.signature.isEmpty, let relayKey = try? PublicKey.parse(spki: c.relayKey) else {
                return .failure(.badRelaySignature)
            }
            guard relayKey.verify(c.signedData, signature: c.signature) else {
                // Only to say why: an old relay signed label v1 || nonce (the pin already matched).
                if relayKey.verify(HelloLabel.challengeV1 + c.nonce, signature: c.signature) { return .failure(.relayTooOld) }
                return .failure(.badRelaySignature)
            }
        }
        let version = min(c.versionMax, WireProtocol.version)
        guard version >= c.versionMin && version >= WireProtocol.minVersion else {
            return .failure(.noCommonVersion(c.versionMin, c.versionMax))
        }
        var m = AuthMessage(version: version, role: role, certificates: certificates, token: token, hostnames: hostnames)
        if resumed { return .success(m.encode()) }
        let signed = authSignedData(nonce: c.nonce, relayPinDigest: relayDigest, unsignedAuth: m.encodeUnsigned())
        guard let sig = try? identity.sign(signed, rng: rng) else { return .failure(.signingFailed) }
        m.signature = sig
        return .success(m.encode())
    }
}

/// An AUTH whose signature was checked against the relay's fresh nonce and pin, or
/// (`resumed`) that came on a session authenticated by the resume credential issued to
/// its key. Only `HelloAuth.verify` makes one.
public struct VerifiedAuth {
    public let id: AgentID
    public let message: AuthMessage
    public let chain: Certificate
    public let resumed: Bool

    fileprivate init(id: AgentID, message: AuthMessage, chain: Certificate, resumed: Bool) {
        self.id = id
        self.message = message
        self.chain = chain
        self.resumed = resumed
    }
}
