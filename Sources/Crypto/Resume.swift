import CShims
import Wire

/// Resume credentials: what a relay hands a device after a full admission so that
/// its next connection needs no public-key operation (docs/SECURITY.md, "Resumed
/// admission"). A credential is a TLS 1.3 external PSK: `psk` is 32 random bytes and
/// `identity` the claim sealed with the relay's resume key, so the relay keeps nothing
/// per device:
///
///     identity = key id (4) | nonce (12) | ChaCha20-Poly1305_k(plain) (70) | tag (16)
///     plain    = expiry u64 | psk (32) | format u8 (1) | agent ID (20) | role u8 | issued-at u64
///
/// (times in UNIX seconds, big-endian; the 16 bytes before the ciphertext are
/// additional data). The relay's TLS listener opens it in the PSK callback
/// (Sources/CShims/shims.c), and a session that used it carries the `ResumeClaim`.
public final class ResumeKeys {
    public static let keyBytes = 32
    public static let keyIDBytes = 4
    public static let pskBytes = 32
    public static let identityBytes = Int(SHIM_RESUME_IDENTITY)
    static let plainBytes = Int(SHIM_RESUME_PLAIN)
    static let format: UInt8 = 1

    /// Why an identity did not open (tests and logs; the TLS callback only says no).
    public enum OpenError: Error, Equatable {
        case unknownKey, badTag, expired, malformed
    }

    let raw: OpaquePointer

    public init() throws(CryptoError) {
        if shim_psa_init() != 0 { throw CryptoError("psa init", MBEDTLS_ERR_SSL_INTERNAL_ERROR) }
        guard let r = shim_resume_new() else { throw CryptoError("resume keys", MBEDTLS_ERR_SSL_ALLOC_FAILED) }
        raw = r
    }

    deinit { shim_resume_free(raw) }

    /// Installs the key that seals (`slot` 0) or the previous one, which still opens (1);
    /// nil clears the slot.
    public func setKey(slot: Int, id: [UInt8], key: [UInt8]?) throws(CryptoError) {
        precondition(id.count == ResumeKeys.keyIDBytes)
        let rc: Int32
        if let k = key {
            precondition(k.count == ResumeKeys.keyBytes)
            rc = shim_resume_set_key(raw, Int32(slot), id, k)
        } else {
            rc = shim_resume_set_key(raw, Int32(slot), id, nil)
        }
        if rc != 0 { throw CryptoError("resume key", MBEDTLS_ERR_SSL_INTERNAL_ERROR) }
    }

    /// A credential identity for `psk`: the claim sealed with the current key (nil without one).
    public func seal(id: AgentID, role: AgentRole, issuedAt: Int64, expiresAt: Int64, psk: [UInt8]) -> [UInt8]? {
        precondition(psk.count == ResumeKeys.pskBytes)
        var plain: [UInt8] = []
        plain.reserveCapacity(ResumeKeys.plainBytes)
        appendU64(&plain, UInt64(max(0, expiresAt)))
        plain += psk
        plain.append(ResumeKeys.format)
        plain += id.bytes
        plain.append(role.rawValue)
        appendU64(&plain, UInt64(max(0, issuedAt)))
        var out = [UInt8](repeating: 0, count: ResumeKeys.identityBytes)
        let rc = out.withUnsafeMutableBufferPointer { shim_resume_seal(raw, plain, $0.baseAddress!) }
        for i in plain.indices { plain[i] = 0 }
        return rc == 0 ? out : nil
    }

    /// Opens an identity as the TLS callback does, at `nowSeconds` (UNIX): the claim and the PSK.
    public func open(_ identity: [UInt8], nowSeconds: Int64) -> Result<(ResumeClaim, [UInt8]), OpenError> {
        var plain = [UInt8](repeating: 0, count: ResumeKeys.plainBytes)
        let rc = plain.withUnsafeMutableBufferPointer {
            shim_resume_open(raw, identity, identity.count, nowSeconds, $0.baseAddress!)
        }
        switch rc {
        case 0: break
        case SHIM_RESUME_UNKNOWN_KEY: return .failure(.unknownKey)
        case SHIM_RESUME_BAD_TAG: return .failure(.badTag)
        case SHIM_RESUME_EXPIRED: return .failure(.expired)
        default: return .failure(.malformed)
        }
        let psk = Array(plain[8..<40])
        guard let claim = ResumeClaim(plain: plain) else { return .failure(.malformed) }
        return .success((claim, psk))
    }
}

/// Who a resumed TLS session belongs to, as the relay sealed it at the device's full
/// admission. Made only by opening a credential (`TLSSession.resumeClaim` on the relay).
public struct ResumeClaim: Equatable {
    public let id: AgentID
    public let role: AgentRole
    public let issuedAt: Int64
    public let expiresAt: Int64

    /// From an opened plaintext (its psk bytes are not read).
    init?(plain p: [UInt8]) {
        guard p.count == ResumeKeys.plainBytes, p[40] == ResumeKeys.format,
              let id = AgentID(bytes: Array(p[41..<61])), let role = AgentRole(rawValue: p[61])
        else { return nil }
        self.id = id
        self.role = role
        expiresAt = Int64(bitPattern: openU64(p, 0))
        issuedAt = Int64(bitPattern: openU64(p, 62))
    }
}

private func openU64(_ p: [UInt8], _ at: Int) -> UInt64 {
    var v: UInt64 = 0
    for i in 0..<8 { v = v << 8 | UInt64(p[at + i]) }
    return v
}
