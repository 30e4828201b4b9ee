import CShims
import Wire

/// How IDs and pins are derived (docs/IDENTITY.md):
///
///   ID  = base32(SHA-256(DER SubjectPublicKeyInfo)[0..<20]), lowercase, 32 characters
///   pin = "sha256:" + hex(SHA-256(DER SubjectPublicKeyInfo)), 64 hex digits
///
/// Both depend on the public key only: a re-issued certificate for the same key
/// keeps its ID, and whoever is told an ID can check a presented key against it.
public enum Identity {
    public static func id(spki: [UInt8]) -> AgentID {
        AgentID(bytes: Array(Digest.sha256(spki)[0..<AgentID.byteCount]))!
    }

    public static func pin(spki: [UInt8]) -> String {
        "sha256:" + Hex.encode(Digest.sha256(spki))
    }

    /// Parses "sha256:<64 hex>" (hex in either case) into the 32 digest bytes.
    public static func parsePin(_ text: String) -> [UInt8]? {
        guard text.utf8.starts(with: "sha256:".utf8) else { return nil }
        let hex = String(decoding: text.utf8.dropFirst(7), as: UTF8.self)
        guard hex.utf8.count == 64, let bytes = Hex.decode(hex) else { return nil }
        return bytes
    }

    /// The ID of a PEM/DER private key or certificate file's content.
    public static func idOfKeyOrCertificate(_ data: [UInt8]) throws(CryptoError) -> AgentID {
        if Certificate.looksLikeCertificate(data) {
            let c = try Certificate.parse(data)
            return c.leafID
        }
        return try PrivateKey.parse(data).id
    }
}
