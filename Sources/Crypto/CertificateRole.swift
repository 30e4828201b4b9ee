import CShims
import Wire

/// The role a session CA gives a certificate, written as an extended key usage
/// (RFC 5280 4.2.1.12): one OID meaning "operator" (a forward), another meaning
/// "device" (a reverse). Without it, one CA certificate was a credential for every
/// role: a device's certificate let its holder in as an operator on every other
/// device that trusts the CA (security review, finding 2).
///
/// The OIDs are our own, under the UUID arc 2.25 (ITU-T X.667: an OID made of a
/// random UUID needs no registration). Each was generated once from a random
/// (version 4) UUID and must never change: certificates in the field carry them.
///
///     operator  9dcf0213-3f8c-4120-8485-407545e10f2b
///               2.25.209763642877769909226523877133101633323
///     device    c1020e82-040f-4139-b8d8-5350b34d779c
///               2.25.256551682034857793048626531993918470044
///
/// The extension also lists id-kp-serverAuth and id-kp-clientAuth, so that TLS
/// stacks that check the extended key usage (mbedTLS with
/// MBEDTLS_X509_CHECK_EXTENDED_KEY_USAGE, in the end-to-end session) still accept the
/// certificate on either side of a handshake. It is not critical: other software that
/// does not know our OIDs still reads the certificate.
public enum CertificateRole {
    /// DER content (no tag, no length) of 2.25.209763642877769909226523877133101633323: operator.
    public static let operatorOID: [UInt8] = [
        0x69, 0x82, 0xbb, 0xcf, 0x81, 0x84, 0xe7, 0xf8, 0xe2, 0x84,
        0xc1, 0x84, 0xc2, 0xd0, 0x8e, 0xd4, 0xaf, 0x84, 0x9e, 0x2b,
    ]
    /// DER content of 2.25.256551682034857793048626531993918470044: device.
    public static let deviceOID: [UInt8] = [
        0x69, 0x83, 0x82, 0x82, 0x87, 0xa0, 0xc0, 0xc0, 0xfa, 0x84,
        0xf3, 0xb8, 0xec, 0x94, 0xea, 0x8b, 0x9a, 0xb5, 0xef, 0x1c,
    ]
    /// 1.3.6.1.5.5.7.3.1 (id-kp-serverAuth) and 1.3.6.1.5.5.7.3.2 (id-kp-clientAuth).
    static let serverAuthOID: [UInt8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01]
    static let clientAuthOID: [UInt8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02]
    /// 2.5.29.37, extKeyUsage (MBEDTLS_OID_EXTENDED_KEY_USAGE is a string macro Swift cannot import).
    static let extKeyUsageOID: [CChar] = [0x55, 0x1d, 0x25]

    /// The OID that stands for `role`: `.forward` is an operator, `.reverse` a device.
    public static func oid(_ role: AgentRole) -> [UInt8] {
        role == .forward ? operatorOID : deviceOID
    }

    /// The extension's value: ExtKeyUsageSyntax, a SEQUENCE of OIDs (role, serverAuth, clientAuth).
    public static func extKeyUsageDER(_ role: AgentRole) -> [UInt8] {
        var body: [UInt8] = []
        for o in [oid(role), serverAuthOID, clientAuthOID] {
            body.append(0x06)  // OBJECT IDENTIFIER
            body.append(UInt8(o.count))
            body += o
        }
        return [0x30, UInt8(body.count)] + body
    }

    /// Adds the role's extended key usage to a certificate being written.
    static func set(_ w: UnsafeMutablePointer<mbedtls_x509write_cert>, _ role: AgentRole) throws(CryptoError) {
        let eku = extKeyUsageDER(role)
        let rc = extKeyUsageOID.withUnsafeBufferPointer { o in
            eku.withUnsafeBufferPointer { v in
                mbedtls_x509write_crt_set_extension(w, o.baseAddress, o.count, 0, v.baseAddress, v.count)
            }
        }
        try check("extended key usage", rc)
    }
}

extension Certificate {
    /// The role the leaf's issuer gave it: `.forward` for an operator certificate,
    /// `.reverse` for a device certificate, nil if its extended key usage names neither
    /// (a self-signed certificate, one issued before roles existed) or both.
    /// Only meaningful once the chain is verified against a trusted CA.
    public var agentRole: AgentRole? {
        var isOperator = false
        var isDevice = false
        var s = crt.pointee.ext_key_usage  // the list's head is inline in the certificate
        while true {
            if s.buf.tag == Int32(MBEDTLS_ASN1_OID), let p = s.buf.p, s.buf.len > 0 {
                let o = UnsafeBufferPointer(start: p, count: s.buf.len)
                if o.elementsEqual(CertificateRole.operatorOID) { isOperator = true }
                if o.elementsEqual(CertificateRole.deviceOID) { isDevice = true }
            }
            guard let next = s.next else { break }
            s = next.pointee
        }
        if isOperator == isDevice { return nil }
        return isOperator ? .forward : .reverse
    }
}
