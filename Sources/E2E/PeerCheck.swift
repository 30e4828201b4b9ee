import Crypto
import Wire

/// How the peer of an end-to-end session passed its check (for logs).
public enum E2EGrant: Equatable {
    /// Client: the server's key is the device ID that was asked for.
    case device
    /// Server: the forward's ID is in the authorized keys.
    case key
    /// Server: the forward's certificate verifies against the authorized CA.
    case ca
    /// Server: `--authorize-any`.
    case any
}

/// Proof that the peer of a finished handshake passed its check. Only the checks
/// in this file can make one (the init is fileprivate: rustls-style proof token),
/// and every `E2ESession` state after the handshake carries it, so no code path
/// reaches the target request, the answer or stream data without a checked peer.
struct PeerProof {
    /// The peer's agent ID (nil only for a certificate-less forward under `any`).
    let id: AgentID?
    let grant: E2EGrant

    fileprivate init(id: AgentID?, grant: E2EGrant) {
        self.id = id
        self.grant = grant
    }
}

enum PeerCheck {
    /// Client side: the server MUST hold the key of `device`. The ID is derived from
    /// the key the server proved in this handshake, or, on resumption, from the
    /// certificate saved with the session (which a full handshake checked the same
    /// way). A relay that substitutes a device's key fails here.
    static func device(_ tls: TLSSession, expected: AgentID) -> Result<PeerProof, E2EFailure> {
        guard let spki = tls.peerPublicKeyDER else { return .failure(.deviceMismatch(presented: nil)) }
        let id = Identity.id(spki: spki)
        guard id == expected else { return .failure(.deviceMismatch(presented: id)) }
        return .success(PeerProof(id: id, grant: .device))
    }

    /// Server side: the forward is admitted by `authorization` as it is now (a SIGHUP
    /// reload applies to every session checked after it, resumed ones included).
    /// Order: any, key list, CA (an operator certificate only). Failure carries the presented ID for the local log;
    /// the peer is told nothing.
    static func authorize(_ tls: TLSSession, _ authorization: Authorization) -> Result<PeerProof, E2EFailure> {
        let id = tls.peerPublicKeyDER.map { Identity.id(spki: $0) }
        if authorization.any { return .success(PeerProof(id: id, grant: .any)) }
        guard let id = id else { return .failure(.unauthorized(nil)) }
        if let keys = authorization.keys, keys.ids.contains(id) { return .success(PeerProof(id: id, grant: .key)) }
        if let ca = authorization.ca, let der = tls.peerCertificateDER,
           let leaf = try? Certificate.parse(der), leaf.verify(trustedBy: ca) == 0, leaf.agentRole == .forward {
            // Checked again here rather than trusting the handshake's verify result: a
            // resumed session carries the result of a check made under an older
            // configuration, and `reload` may have changed the CA since.
            // Only an operator certificate admits: the same CA signs devices'
            // certificates, and a device must not be an operator on its peers (a
            // role-less certificate, issued before roles existed, admits no one).
            return .success(PeerProof(id: id, grant: .ca))
        }
        return .failure(.unauthorized(id))
    }
}
