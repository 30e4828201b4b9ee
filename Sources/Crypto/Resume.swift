import CShims
import Wire

/// Resume credentials: what a relay hands a device after a full admission so that
/// its next connection needs no public-key operation (docs/SECURITY.md, section 3.2).
/// A credential is a TLS 1.3 external PSK whose identity is the claim (agent ID, role,
/// issued-at, expiry, PSK) sealed with the relay's resume key, so the relay keeps
/// nothing per device. Layouts and the TLS callback: Sources/CShims/shims.c, "resume
/// credentials". The relay's TLS listener opens identities with these keys, and a
/// session that used one carries its `ResumeClaim` (`TLSSession.resumeClaim`).
public final class ResumeKeys {
    /// Why an identity did not open (tests; the TLS callback only says no).
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

    /// Installs the keys of a key file image (current, then previous): the current
    /// key's creation time (UNIX seconds), nil if `image` is not a key file.
    public func load(_ image: [UInt8]) -> Int64? {
        let t = shim_resume_load(raw, image, image.count)
        return t < 0 ? nil : Int64(t)
    }

    /// A fresh current key made at `now`; the current key of `image` (if it is a key
    /// file) becomes the previous one. Installs it and returns its image (nil on failure).
    public func rotate(_ image: [UInt8], now: Int64) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: Int(SHIM_RESUME_FILE_MAX))
        let n = shim_resume_rotate(raw, image, image.count, now, &out)
        return n == 0 ? nil : Array(out[0..<n])
    }

    /// A credential for `id` in `role`, valid `lifetime` seconds from `now` (UNIX), as
    /// the payload of a RESUME frame (`ResumeMessage`); nil without a key.
    public func issue(id: AgentID, role: AgentRole, now: Int64, lifetime: UInt32) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: Int(SHIM_RESUME_MESSAGE))
        let rc = shim_resume_issue(raw, id.bytes, Int32(role.rawValue), now, lifetime, &out)
        return rc == 0 ? out : nil
    }

    /// Opens an identity as the TLS callback does, at `nowSeconds` (UNIX): the claim and the PSK.
    public func open(_ identity: [UInt8], nowSeconds: Int64) -> Result<(ResumeClaim, [UInt8]), OpenError> {
        var c = shim_resume_claim()
        var psk = [UInt8](repeating: 0, count: 32)
        switch shim_resume_open(raw, identity, identity.count, nowSeconds, &c, &psk) {
        case 0: break
        case SHIM_RESUME_UNKNOWN_KEY: return .failure(.unknownKey)
        case SHIM_RESUME_BAD_TAG: return .failure(.badTag)
        case SHIM_RESUME_EXPIRED: return .failure(.expired)
        default: return .failure(.malformed)
        }
        guard let claim = ResumeClaim(c) else { return .failure(.malformed) }
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

    init?(_ c: shim_resume_claim) {
        var c = c
        guard let id = withUnsafeBytes(of: &c.id, { AgentID(bytes: Array($0)) }),
              let role = AgentRole(rawValue: UInt8(truncatingIfNeeded: c.role)) else { return nil }
        self.id = id
        self.role = role
        issuedAt = c.issued
        expiresAt = c.expiry
    }
}
