import CShims
import Wire

/// A session CA (the ParaQ model): one P-256 key and a self-signed CA certificate
/// that sign agents' certificates. A relay started with `--client-ca` admits agents
/// that present such a certificate; a reverse started with `--authorized-ca` admits
/// forwards that present one. An agent's ID still comes from its key alone: the
/// certificate only adds a name, a validity period and the hostnames it may claim.
///
/// Unlike the self-signed certificates agents make for themselves, these carry real
/// validity dates (from the wall clock, backdated an hour for clock skew): a CA's
/// signature is the trust decision, so it must expire.
public enum CertificateAuthority {
    public static let defaultName = "agent session CA"
    /// notBefore is this far in the past: a peer whose clock is a little behind still accepts.
    public static let backdateSeconds: Int64 = 3600
    /// A session CA's own certificate: 10 years.
    public static let caValidityDays = 3652
    public static let defaultValidityDays = 365
    public static let maxValidityDays = 36500
    /// As many hostnames as an enrollment token can grant.
    public static let maxDNSNames = 8

    /// A self-signed CA certificate for `key` (DER): basicConstraints CA, keyCertSign.
    public static func makeCA(key: PrivateKey, name: String, now: Int64, rng: Rng) throws(CryptoError) -> [UInt8] {
        let options = CertificateWriter.Options(commonName: name, isCA: true,
                                                notBefore: validityTime(now - backdateSeconds),
                                                notAfter: validityTime(now + Int64(caValidityDays) * 86400))
        return try CertificateWriter.make(subjectKey: key.pk, options: options, issuerKey: key, issuer: nil, rng: rng)
    }

    /// A certificate for `subject` (DER) signed by the CA: CN = `name`, digitalSignature,
    /// not a CA, valid from an hour ago for `days` days, with one dNSName per hostname,
    /// and `role` as an extended key usage (`.forward`: operator, `.reverse`: device;
    /// see `CertificateRole`): a device's certificate is never an operator's credential.
    public static func issue(subject: PublicKey, name: String, role: AgentRole, dnsNames: [String], days: Int, now: Int64,
                             caKey: PrivateKey, caCert: Certificate, rng: Rng) throws(CryptoError) -> [UInt8] {
        guard caCert.isCA, caCert.leafPublicKeyDER == caKey.publicKeyDER() else {
            throw CryptoError("CA certificate does not match the CA key", MBEDTLS_ERR_X509_BAD_INPUT_DATA)
        }
        guard days >= 1 && days <= maxValidityDays else {
            throw CryptoError("certificate validity", MBEDTLS_ERR_X509_BAD_INPUT_DATA)
        }
        let options = CertificateWriter.Options(commonName: name, isCA: false,
                                                notBefore: validityTime(now - backdateSeconds),
                                                notAfter: validityTime(now + Int64(days) * 86400),
                                                dnsNames: dnsNames, role: role)
        return try CertificateWriter.make(subjectKey: subject.pk, options: options, issuerKey: caKey, issuer: caCert, rng: rng)
    }

    /// The X.509 validity text mbedTLS wants, "YYYYMMDDHHMMSS" in UTC, for Unix seconds
    /// (years clamped to 0000...9999).
    public static func validityTime(_ unixSeconds: Int64) -> String {
        var days = unixSeconds / 86400
        var secs = unixSeconds % 86400
        if secs < 0 { secs += 86400; days -= 1 }
        // Civil date from days since 1970-01-01 (H. Hinnant's days_from_civil, inverted).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        if y < 0 { return "00000101000000" }
        if y > 9999 { return "99991231235959" }
        var out: [UInt8] = []
        func digits(_ v: Int64, _ n: Int) {
            var buf = [UInt8](repeating: 0x30, count: n)
            var x = v
            var i = n - 1
            while i >= 0 {
                buf[i] = 0x30 + UInt8(x % 10)
                x /= 10
                i -= 1
            }
            out += buf
        }
        digits(y, 4); digits(m, 2); digits(d, 2)
        digits(secs / 3600, 2); digits(secs / 60 % 60, 2); digits(secs % 60, 2)
        return String(decoding: out, as: UTF8.self)
    }
}

extension CertificateWriter {
    /// DER of the subjectAltName OID, 2.5.29.17 (MBEDTLS_OID_SUBJECT_ALT_NAME, a string
    /// macro Swift cannot import).
    static let subjectAltNameOID: [CChar] = [0x55, 0x1d, 0x11]

    /// The subjectAltName extension's value: GeneralNames, a SEQUENCE of dNSName
    /// ([2] IMPLICIT IA5String). Nil if a name is not a hostname (letters, digits,
    /// '-', '.', '_', 1...253 bytes: ASCII, so valid IA5) or there are more than
    /// `CertificateAuthority.maxDNSNames`.
    public static func subjectAltNameDER(dnsNames: [String]) -> [UInt8]? {
        guard dnsNames.count <= CertificateAuthority.maxDNSNames else { return nil }
        var body: [UInt8] = []
        for n in dnsNames {
            let b = Array(n.utf8)
            guard OpenPayload.isHostnameBytes(b) else { return nil }
            body.append(0x82)  // context-specific, primitive, tag 2: dNSName
            appendDERLength(&body, b.count)
            body += b
        }
        var out: [UInt8] = [0x30]  // SEQUENCE
        appendDERLength(&out, body.count)
        return out + body
    }

    /// DER definite length: short form below 128, else 0x81/0x82 and the big-endian length.
    static func appendDERLength(_ out: inout [UInt8], _ n: Int) {
        if n < 0x80 {
            out.append(UInt8(n))
        } else if n <= 0xff {
            out += [0x81, UInt8(n)]
        } else {
            precondition(n <= 0xffff)
            out += [0x82, UInt8(n >> 8), UInt8(n & 0xff)]
        }
    }

    /// Adds a non-critical subjectAltName (the subject name is not empty, RFC 5280 4.2.1.6).
    static func setSubjectAltName(_ w: UnsafeMutablePointer<mbedtls_x509write_cert>, _ dnsNames: [String]) throws(CryptoError) {
        guard let san = subjectAltNameDER(dnsNames: dnsNames) else {
            throw CryptoError("subject alt name", MBEDTLS_ERR_X509_BAD_INPUT_DATA)
        }
        let rc = subjectAltNameOID.withUnsafeBufferPointer { o in
            san.withUnsafeBufferPointer { s in
                mbedtls_x509write_crt_set_extension(w, o.baseAddress, o.count, 0, s.baseAddress, s.count)
            }
        }
        try check("subject alt name", rc)
    }
}

extension Certificate {
    /// The leaf's subjectAltName dNSNames: the hostnames a CA let this agent claim.
    /// Entries that are not hostname bytes (see `OpenPayload.isHostnameBytes`) are skipped.
    public var dnsNames: [String] {
        var out: [String] = []
        var s = crt.pointee.subject_alt_names  // the list's head is inline in the certificate
        while true {
            if s.buf.tag == Int32(MBEDTLS_ASN1_CONTEXT_SPECIFIC) | 2, let p = s.buf.p, s.buf.len > 0 {
                let b = Array(UnsafeBufferPointer(start: p, count: s.buf.len))
                if OpenPayload.isHostnameBytes(b) { out.append(String(decoding: b, as: UTF8.self)) }
            }
            guard let next = s.next else { break }
            s = next.pointee
        }
        return out
    }
}
