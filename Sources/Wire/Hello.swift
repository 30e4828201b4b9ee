/// The hello exchange: the first frames on a tunnel, all on stream 0, right
/// after TLS (or after the HTTP Upgrade when the relay sits behind a proxy).
///
///     relay -> agent  CHALLENGE  versions, fresh nonce, relay key, relay signature
///     agent -> relay  AUTH       version, role, certificate chain, token, claims, signature
///     relay -> agent  WELCOME    the agent's ID            (or DENIED, then close)
///
/// The relay speaks first, so its CHALLENGE travels right behind its TLS
/// Finished. The agent proves its identity at the application level (so the
/// proof survives a TLS-terminating proxy): it signs the relay's nonce, the
/// SHA-256 pin of the relay key it was told to trust, and a hash of its AUTH
/// fields. The relay signs its own nonce and the version range it offers, so an
/// agent behind a proxy can still check that the relay holds the pinned key, and no
/// one in the middle can narrow the range.
///
/// Resumed (version 2): on a TLS session authenticated by the agent's resume
/// credential (a PSK only that agent and the relay hold, see RESUME), CHALLENGE and
/// AUTH travel with an empty signature: the session itself proves both ends.
public enum HelloLabel {
    /// "v2": the signature also covers versionMin and versionMax (issue 12, finding 10).
    /// "agent relay challenge v1" signed the nonce alone; it is never accepted.
    public static let challenge: [UInt8] = Array("agent relay challenge v2".utf8)
    /// The label of releases before issue 12, recognized only to tell an agent its relay is too old.
    public static let challengeV1: [UInt8] = Array("agent relay challenge v1".utf8)
    public static let auth: [UInt8] = Array("agent auth v1".utf8)
}

public enum AgentRole: UInt8 {
    case reverse = 1
    case forward = 2

    public var text: String { self == .reverse ? "reverse" : "forward" }
}

/// CHALLENGE: versionMin u8 | versionMax u8 | nonce[32] | relay SPKI (u16 len) | signature (u16 len)
/// signature = ECDSA-SHA256 by the relay key over `HelloLabel.challenge || nonce || versionMin || versionMax`,
/// or empty on a resumed session (version 2).
public struct ChallengeMessage: Equatable {
    public static let nonceSize = 32
    public var versionMin: UInt8
    public var versionMax: UInt8
    public var nonce: [UInt8]
    public var relayKey: [UInt8]
    public var signature: [UInt8]

    public init(versionMin: UInt8, versionMax: UInt8, nonce: [UInt8], relayKey: [UInt8], signature: [UInt8]) {
        self.versionMin = versionMin
        self.versionMax = versionMax
        self.nonce = nonce
        self.relayKey = relayKey
        self.signature = signature
    }

    /// The bytes the relay signs: the label, the nonce and the version range it offers.
    public static func signedData(nonce: [UInt8], versionMin: UInt8, versionMax: UInt8) -> [UInt8] {
        HelloLabel.challenge + nonce + [versionMin, versionMax]
    }

    /// The bytes this CHALLENGE's signature must cover.
    public var signedData: [UInt8] { ChallengeMessage.signedData(nonce: nonce, versionMin: versionMin, versionMax: versionMax) }

    public func encode() -> [UInt8] {
        var o: [UInt8] = [versionMin, versionMax]
        o += nonce
        appendU16(&o, UInt16(relayKey.count))
        o += relayKey
        appendU16(&o, UInt16(signature.count))
        o += signature
        return o
    }

    public static func decode(_ p: UnsafeRawBufferPointer) throws(WireError) -> ChallengeMessage {
        var r = Reader(p)
        guard let lo = r.u8(), let hi = r.u8(), lo <= hi, let nonce = r.bytes(nonceSize),
              let key = r.blob16(), !key.isEmpty, let sig = r.blob16(), r.atEnd
        else { throw .malformed(.challenge) }
        return ChallengeMessage(versionMin: lo, versionMax: hi, nonce: nonce, relayKey: key, signature: sig)
    }
}

/// AUTH: version u8 | role u8 | certificates u8 count (1...4), each u16 len + DER (leaf first)
///       | token u16 len (0 = none) | hostnames u8 count (0...8), each u8 len + bytes
///       | signature u16 len
/// signature = ECDSA-SHA256 by the agent's identity key over
///       `HelloLabel.auth || challenge nonce || SHA-256(relay SPKI) || SHA-256(AUTH without its signature field)`,
///       or empty on a resumed session (version 2)
public struct AuthMessage: Equatable {
    public static let maxCertificates = 4
    public static let maxHostnames = 8
    public var version: UInt8
    public var role: AgentRole
    public var certificates: [[UInt8]]
    public var token: [UInt8]
    public var hostnames: [String]
    public var signature: [UInt8]

    public init(version: UInt8, role: AgentRole, certificates: [[UInt8]], token: [UInt8], hostnames: [String],
                signature: [UInt8] = []) {
        self.version = version
        self.role = role
        self.certificates = certificates
        self.token = token
        self.hostnames = hostnames
        self.signature = signature
    }

    /// Everything but the signature (what its hash covers).
    public func encodeUnsigned() -> [UInt8] {
        var o: [UInt8] = [version, role.rawValue, UInt8(certificates.count)]
        for c in certificates {
            appendU16(&o, UInt16(c.count))
            o += c
        }
        appendU16(&o, UInt16(token.count))
        o += token
        o.append(UInt8(hostnames.count))
        for h in hostnames {
            let b = Array(h.utf8)
            o.append(UInt8(b.count))
            o += b
        }
        return o
    }

    public func encode() -> [UInt8] {
        var o = encodeUnsigned()
        appendU16(&o, UInt16(signature.count))
        o += signature
        return o
    }

    public static func decode(_ p: UnsafeRawBufferPointer) throws(WireError) -> AuthMessage {
        var r = Reader(p)
        guard let version = r.u8(), let roleRaw = r.u8(), let role = AgentRole(rawValue: roleRaw),
              let n = r.u8(), n >= 1, Int(n) <= maxCertificates
        else { throw .malformed(.auth) }
        var certs: [[UInt8]] = []
        for _ in 0..<Int(n) {
            guard let c = r.blob16(), !c.isEmpty else { throw .malformed(.auth) }
            certs.append(c)
        }
        guard let token = r.blob16(), let hn = r.u8(), Int(hn) <= maxHostnames else { throw .malformed(.auth) }
        var hosts: [String] = []
        for _ in 0..<Int(hn) {
            guard let h = r.blob8(), OpenPayload.isHostnameBytes(h) else { throw .malformed(.auth) }
            hosts.append(String(decoding: h, as: UTF8.self))
        }
        guard let sig = r.blob16(), r.atEnd else { throw .malformed(.auth) }
        return AuthMessage(version: version, role: role, certificates: certs, token: token, hostnames: hosts, signature: sig)
    }
}

/// WELCOME: agent id[20] | enrolled u8 (1 if this connection registered the key)
public struct WelcomeMessage: Equatable {
    public var id: AgentID
    public var newlyEnrolled: Bool

    public init(id: AgentID, newlyEnrolled: Bool) {
        self.id = id
        self.newlyEnrolled = newlyEnrolled
    }

    public func encode() -> [UInt8] { id.bytes + [newlyEnrolled ? 1 : 0] }

    public static func decode(_ p: UnsafeRawBufferPointer) throws(WireError) -> WelcomeMessage {
        guard p.count == AgentID.byteCount + 1, p[AgentID.byteCount] <= 1,
              let id = AgentID(bytes: Array(p[0..<AgentID.byteCount]))
        else { throw .malformed(.welcome) }
        return WelcomeMessage(id: id, newlyEnrolled: p[AgentID.byteCount] == 1)
    }
}

/// RESUME (relay -> agent, stream 0, after WELCOME; version 2): a resume credential.
///     lifetime u32 (seconds from now) | psk[32] | identity (u16 len, opaque)
/// Sent right after WELCOME and again on a live tunnel before the last one expires.
/// The agent offers it as a TLS 1.3 external PSK on its next connection.
public struct ResumeMessage: Equatable {
    public static let pskSize = 32
    public var lifetimeSeconds: UInt32
    public var psk: [UInt8]
    public var identity: [UInt8]

    public init(lifetimeSeconds: UInt32, psk: [UInt8], identity: [UInt8]) {
        self.lifetimeSeconds = lifetimeSeconds
        self.psk = psk
        self.identity = identity
    }

    public func encode() -> [UInt8] {
        var o: [UInt8] = []
        appendU32(&o, lifetimeSeconds)
        o += psk
        appendU16(&o, UInt16(identity.count))
        o += identity
        return o
    }

    public static func decode(_ p: UnsafeRawBufferPointer) throws(WireError) -> ResumeMessage {
        var r = Reader(p)
        guard let life = r.u32(), let psk = r.bytes(pskSize), let id = r.blob16(), !id.isEmpty, r.atEnd
        else { throw .malformed(.resume) }
        return ResumeMessage(lifetimeSeconds: life, psk: psk, identity: id)
    }
}
