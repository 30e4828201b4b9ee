import CShims
import Wire

/// A parsed X.509 certificate chain (leaf first).
public final class Certificate {
    public let crt: UnsafeMutablePointer<mbedtls_x509_crt>

    init() {
        _ = shim_psa_init()  // keys are PSA's (idempotent; see Rng)
        crt = .allocate(capacity: 1)
        mbedtls_x509_crt_init(crt)
    }

    deinit {
        mbedtls_x509_crt_free(crt)
        crt.deallocate()
    }

    /// A PEM certificate block or DER certificate (versus a key file): parse only these as certificates.
    public static func looksLikeCertificate(_ data: [UInt8]) -> Bool {
        let marker: [UInt8] = Array("-----BEGIN CERTIFICATE-----".utf8)
        guard data.count >= marker.count else { return data.first == 0x30 && isDERCertificate(data) }
        var i = 0
        while i + marker.count <= data.count && i < 4096 {
            if data[i] == marker[0] && data[i..<(i + marker.count)].elementsEqual(marker) { return true }
            i += 1
        }
        return data.first == 0x30 && isDERCertificate(data)
    }

    static func isDERCertificate(_ data: [UInt8]) -> Bool {
        let c = Certificate()
        return data.withUnsafeBufferPointer { mbedtls_x509_crt_parse_der(c.crt, $0.baseAddress, $0.count) } == 0
    }

    /// Parses one or more certificates, PEM (possibly several) or DER.
    public static func parse(_ data: [UInt8]) throws(CryptoError) -> Certificate {
        let c = Certificate()
        try c.add(data)
        return c
    }

    /// Appends certificates to the chain.
    public func add(_ data: [UInt8]) throws(CryptoError) {
        var input = data
        if PrivateKey.isPEM(data) { input.append(0) }
        let rc = input.withUnsafeBufferPointer { mbedtls_x509_crt_parse(crt, $0.baseAddress, $0.count) }
        // mbedtls_x509_crt_parse returns a positive count of certificates it skipped.
        if rc < 0 { throw CryptoError("parse certificate", rc) }
        if rc > 0 { throw CryptoError("parse certificate", MBEDTLS_ERR_X509_INVALID_FORMAT) }
    }

    /// DER of the leaf certificate.
    public var leafDER: [UInt8] {
        var len = 0
        guard let p = shim_crt_raw(crt, &len), len > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: p, count: len))
    }

    public var leafPublicKeyDER: [UInt8] { spkiDER(shim_crt_pk(crt)) }

    public var leafID: AgentID { Identity.id(spki: leafPublicKeyDER) }

    public var isCA: Bool { shim_crt_is_ca(crt) != 0 }

    /// The leaf's public key.
    public func leafPublicKey() throws(CryptoError) -> PublicKey {
        try PublicKey.parse(spki: leafPublicKeyDER)
    }

    /// Verifies the leaf against `trusted` (a CA chain). 0 means valid; otherwise
    /// mbedTLS's MBEDTLS_X509_BADCERT_* flags.
    public func verify(trustedBy trusted: Certificate) -> UInt32 {
        var flags: UInt32 = 0
        let rc = mbedtls_x509_crt_verify(crt, trusted.crt, nil, nil, &flags, nil, nil)
        if rc != 0 && flags == 0 { flags = UInt32.max }
        return flags
    }

    /// PEM text of a DER certificate.
    public static func pem(der: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: der.count * 2 + 200)
        var olen = 0
        let rc = der.withUnsafeBufferPointer { d in
            out.withUnsafeMutableBufferPointer { o in
                mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n",
                                         d.baseAddress, d.count, o.baseAddress, o.count, &olen)
            }
        }
        precondition(rc == 0, "pem buffer too small")
        // olen counts the terminating NUL.
        return Array(out[0..<(olen > 0 ? olen - 1 : 0)])
    }
}

/// Writes X.509 v3 certificates: self-signed (an agent's own, the relay's, a
/// session CA) or issued by a session CA.
public enum CertificateWriter {
    /// Validity of certificates agent makes for itself. Devices often boot with a
    /// wrong clock, and self-signed certificates are checked by key (ID or pin), so
    /// their validity spans the years a device may see.
    public static let selfSignedNotBefore = "20200101000000"
    public static let selfSignedNotAfter = "20991231235959"

    public struct Options {
        public var commonName: String
        public var isCA: Bool
        public var notBefore: String
        public var notAfter: String
        /// subjectAltName dNSNames (hostnames a session CA lets the agent claim); none if empty.
        public var dnsNames: [String]
        /// The role a session CA gives the certificate (an extended key usage, see
        /// `CertificateRole`); nil for self-signed and CA certificates.
        public var role: AgentRole?

        public init(commonName: String, isCA: Bool = false,
                    notBefore: String = CertificateWriter.selfSignedNotBefore,
                    notAfter: String = CertificateWriter.selfSignedNotAfter,
                    dnsNames: [String] = [], role: AgentRole? = nil) {
            self.commonName = commonName
            self.isCA = isCA
            self.notBefore = notBefore
            self.notAfter = notAfter
            self.dnsNames = dnsNames
            self.role = role
        }
    }

    /// A certificate for `subject`'s key, signed by `issuerKey`. With `issuer` nil it is
    /// self-signed (issuer name = subject name). Returns DER.
    public static func make(subjectKey: UnsafeMutablePointer<mbedtls_pk_context>, options: Options,
                            issuerKey: PrivateKey, issuer: Certificate?, rng: Rng) throws(CryptoError) -> [UInt8] {
        guard isSafeName(options.commonName) else {
            throw CryptoError("certificate name", MBEDTLS_ERR_X509_BAD_INPUT_DATA)
        }
        var w = mbedtls_x509write_cert()
        mbedtls_x509write_crt_init(&w)
        defer { mbedtls_x509write_crt_free(&w) }
        mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3)
        mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256)
        mbedtls_x509write_crt_set_subject_key(&w, subjectKey)
        mbedtls_x509write_crt_set_issuer_key(&w, issuerKey.pk)
        let cn = Array(options.commonName.utf8)
        try check("certificate subject", shim_x509write_set_cn(&w, 0, cn, cn.count))
        if let issuer = issuer {
            // The issuer name is exactly the CA's subject name.
            try check("certificate issuer", shim_x509write_issuer_from(&w, issuer.crt))
        } else {
            try check("certificate issuer", shim_x509write_set_cn(&w, 1, cn, cn.count))
        }
        var sb = rng.bytes(16)
        sb[0] &= 0x7f  // positive
        sb[0] |= 0x01  // non-zero, full length
        try check("certificate serial", sb.withUnsafeMutableBufferPointer {
            mbedtls_x509write_crt_set_serial_raw(&w, $0.baseAddress, $0.count)
        })
        try check("certificate validity", mbedtls_x509write_crt_set_validity(&w, options.notBefore, options.notAfter))
        try check("basic constraints", mbedtls_x509write_crt_set_basic_constraints(&w, options.isCA ? 1 : 0, options.isCA ? 0 : -1))
        let usage = options.isCA
            ? UInt32(MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_DIGITAL_SIGNATURE)
            : UInt32(MBEDTLS_X509_KU_DIGITAL_SIGNATURE)
        try check("key usage", mbedtls_x509write_crt_set_key_usage(&w, usage))
        if !options.dnsNames.isEmpty { try setSubjectAltName(&w, options.dnsNames) }
        if let role = options.role { try CertificateRole.set(&w, role) }
        // No subject/authority key identifiers: they need SHA-1, which the release
        // configuration leaves out; chains are built by issuer name and signature.
        var buf = [UInt8](repeating: 0, count: 2048 + options.dnsNames.count * 256)
        let n = buf.withUnsafeMutableBufferPointer { b in
            mbedtls_x509write_crt_der(&w, b.baseAddress, b.count, mbedtls_psa_get_random, nil)
        }
        if n < 0 { throw CryptoError("write certificate", n) }
        return Array(buf[(buf.count - Int(n))...])
    }

    /// Self-signed certificate for `key`, named by its ID unless told otherwise.
    public static func selfSigned(key: PrivateKey, rng: Rng, commonName: String? = nil,
                                  isCA: Bool = false) throws(CryptoError) -> Certificate {
        let der = try make(subjectKey: key.pk, options: Options(commonName: commonName ?? key.id.text, isCA: isCA),
                           issuerKey: key, issuer: nil, rng: rng)
        return try Certificate.parse(der)
    }

    /// Letters, digits, '.', '-', '_' and ' ' only: a name never changes the DN's structure.
    public static func isSafeName(_ s: String) -> Bool {
        if s.isEmpty || s.utf8.count > 64 { return false }
        for b in s.utf8 {
            let ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: " ")
            if !ok { return false }
        }
        return true
    }
}

extension Certificate {
    /// DER of every certificate in the chain, leaf first.
    public var chainDER: [[UInt8]] {
        var out: [[UInt8]] = []
        var p: UnsafePointer<mbedtls_x509_crt>? = UnsafePointer(crt)
        while let c = p {
            var len = 0
            if let raw = shim_crt_raw(c, &len), len > 0 { out.append(Array(UnsafeBufferPointer(start: raw, count: len))) }
            p = shim_crt_next(c)
        }
        return out
    }
}
