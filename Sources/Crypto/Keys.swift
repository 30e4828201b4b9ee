import CShims
import Wire

/// An ECDSA P-256 private key (an agent's identity, the relay's key, a session CA's key).
public final class PrivateKey {
    public let pk: UnsafeMutablePointer<mbedtls_pk_context>

    init() {
        _ = shim_psa_init()  // keys are PSA's (idempotent; see Rng)
        pk = .allocate(capacity: 1)
        mbedtls_pk_init(pk)
    }

    deinit {
        mbedtls_pk_free(pk)  // zeroizes the key
        pk.deallocate()
    }

    /// A fresh P-256 key.
    public static func generate(rng: Rng) throws(CryptoError) -> PrivateKey {
        let k = PrivateKey()
        _ = rng  // PSA draws from the kernel directly (MBEDTLS_PSA_CRYPTO_EXTERNAL_RNG), as Rng does
        try check("generate key", shim_pk_generate_p256(k.pk))
        return k
    }

    /// Parses a PEM or DER private key. Only EC P-256 keys are accepted.
    public static func parse(_ data: [UInt8]) throws(CryptoError) -> PrivateKey {
        let k = PrivateKey()
        var input = data
        if isPEM(data) { input.append(0) }  // mbedTLS wants PEM NUL-terminated, length included
        let rc = input.withUnsafeBufferPointer { p in
            mbedtls_pk_parse_key(k.pk, p.baseAddress, p.count, nil, 0, mbedtls_psa_get_random, nil)
        }
        wipe(&input)
        try check("parse key", rc)
        try k.requireP256()
        // (The random source is PSA's: with keys held as PSA data neither call draws from it.)
        // mbedTLS takes the public point stored in the file on trust: a corrupted
        // file could carry the right ID and a private scalar that does not match it.
        try check("key pair mismatch", mbedtls_pk_check_pair(k.pk, k.pk, mbedtls_psa_get_random, nil))
        return k
    }

    func requireP256() throws(CryptoError) {
        guard shim_pk_is_p256(pk) != 0 else { throw CryptoError("key type (need EC P-256)", MBEDTLS_ERR_PK_KEY_INVALID_FORMAT) }
    }

    /// The key as PEM ("EC PRIVATE KEY"). Secret: write only to a 0600 file.
    public func pem() throws(CryptoError) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 1024)
        let rc = buf.withUnsafeMutableBufferPointer { mbedtls_pk_write_key_pem(pk, $0.baseAddress, $0.count) }
        if rc != 0 {
            wipe(&buf)
            throw CryptoError("write key", rc)
        }
        let n = buf.firstIndex(of: 0) ?? buf.count
        let out = Array(buf[0..<n])
        wipe(&buf)
        return out
    }

    /// DER SubjectPublicKeyInfo of the public half.
    public func publicKeyDER() -> [UInt8] { spkiDER(pk) }

    /// The agent ID of this key.
    public var id: AgentID { Identity.id(spki: publicKeyDER()) }

    /// ECDSA-SHA256 signature (DER) over `message`.
    public func sign(_ message: [UInt8], rng: Rng) throws(CryptoError) -> [UInt8] {
        let hash = Digest.sha256(message)
        var sig = [UInt8](repeating: 0, count: Int(shim_pk_signature_max()))
        var len = 0
        let rc = hash.withUnsafeBufferPointer { h in
            sig.withUnsafeMutableBufferPointer { s in
                mbedtls_pk_sign(pk, MBEDTLS_MD_SHA256, h.baseAddress, 32, s.baseAddress, s.count, &len,
                                mbedtls_psa_get_random, nil)
            }
        }
        try check("sign", rc)
        return Array(sig[0..<len])
    }

    static func isPEM(_ data: [UInt8]) -> Bool {
        let marker: [UInt8] = Array("-----BEGIN".utf8)
        guard data.count >= marker.count else { return false }
        var i = 0
        while i + marker.count <= data.count {
            if data[i..<(i + marker.count)].elementsEqual(marker) { return true }
            i += 1
            if i > 256 { break }  // the marker is at the start, after at most a short comment
        }
        return false
    }
}

/// A public key (from a certificate or a DER SubjectPublicKeyInfo).
public final class PublicKey {
    public let pk: UnsafeMutablePointer<mbedtls_pk_context>

    init() {
        _ = shim_psa_init()  // keys are PSA's (idempotent; see Rng)
        pk = .allocate(capacity: 1)
        mbedtls_pk_init(pk)
    }

    deinit {
        mbedtls_pk_free(pk)
        pk.deallocate()
    }

    public static func parse(spki: [UInt8]) throws(CryptoError) -> PublicKey {
        let k = PublicKey()
        let rc = spki.withUnsafeBufferPointer { mbedtls_pk_parse_public_key(k.pk, $0.baseAddress, $0.count) }
        try check("parse public key", rc)
        guard shim_pk_is_p256(k.pk) != 0 else {
            throw CryptoError("public key type (need EC P-256)", MBEDTLS_ERR_PK_KEY_INVALID_FORMAT)
        }
        return k
    }

    public func der() -> [UInt8] { spkiDER(pk) }

    public var id: AgentID { Identity.id(spki: der()) }

    /// Checks an ECDSA-SHA256 signature (DER) over `message`.
    public func verify(_ message: [UInt8], signature: [UInt8]) -> Bool {
        let hash = Digest.sha256(message)
        let rc = hash.withUnsafeBufferPointer { h in
            signature.withUnsafeBufferPointer { s in
                mbedtls_pk_verify(pk, MBEDTLS_MD_SHA256, h.baseAddress, 32, s.baseAddress, s.count)
            }
        }
        return rc == 0
    }
}

/// DER SubjectPublicKeyInfo of a pk context (mbedTLS writes it at the end of the buffer).
func spkiDER(_ pk: UnsafeMutablePointer<mbedtls_pk_context>) -> [UInt8] {
    var buf = [UInt8](repeating: 0, count: 600)
    let n = buf.withUnsafeMutableBufferPointer { mbedtls_pk_write_pubkey_der(pk, $0.baseAddress, $0.count) }
    guard n > 0 else { return [] }
    return Array(buf[(buf.count - Int(n))...])
}

/// Overwrites a buffer that held secret bytes.
public func wipe(_ a: inout [UInt8]) {
    a.withUnsafeMutableBytes { p in
        if let b = p.baseAddress { mbedtls_platform_zeroize(b, p.count) }
    }
}
