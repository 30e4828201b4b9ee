import CShims
@testable import Crypto
import Testing
import Wire

/// The session CA's building blocks: validity times from the wall clock, the
/// hand-written subjectAltName DER, and reading it back.
@Suite struct CertificateAuthorityTests {
    @Test(arguments: [
        (Int64(0), "19700101000000"),
        (Int64(951_782_400), "20000229000000"),       // a leap day
        (Int64(1_798_761_599), "20261231235959"),
        (Int64(4_102_444_799), "20991231235959"),
        (Int64(4_102_444_800), "21000101000000"),     // 2100 is not a leap year: Jan 1 follows Dec 31
    ])
    func validityTime(unix: Int64, text: String) {
        #expect(CertificateAuthority.validityTime(unix) == text)
    }

    @Test func subjectAltNameDERShortAndLongLengths() throws {
        let one = try #require(CertificateWriter.subjectAltNameDER(dnsNames: ["a.example"]))
        // SEQUENCE { [2] "a.example" }
        #expect(one == [0x30, 11, 0x82, 9] + Array("a.example".utf8))
        // Eight 247-byte names: a SEQUENCE longer than 255 bytes needs a two-byte length (0x82 xx xx).
        let label = String(repeating: "a", count: 60)
        let long = [label, label, label, String(repeating: "b", count: 64)].joined(separator: ".")
        #expect(long.utf8.count == 247)
        let eight = try #require(CertificateWriter.subjectAltNameDER(dnsNames: Array(repeating: long, count: 8)))
        #expect(eight[0] == 0x30 && eight[1] == 0x82)
        let len = Int(eight[2]) << 8 | Int(eight[3])
        #expect(len == eight.count - 4)
        #expect(len == 8 * (3 + 247))  // each: tag, 0x81, length, bytes
        #expect(eight[4] == 0x82 && eight[5] == 0x81 && eight[6] == 247)
    }

    @Test func issuedCertificateCarriesItsNamesAndChainsToTheCA() throws {
        let rng = try Rng()
        let caKey = try PrivateKey.generate(rng: rng)
        let now = Clock_now()  // certificates are checked against the real clock
        let caCert = try Certificate.parse(try CertificateAuthority.makeCA(key: caKey, name: "test CA", now: now, rng: rng))
        #expect(caCert.isCA)
        let agent = try PrivateKey.generate(rng: rng)
        let der = try CertificateAuthority.issue(subject: try PublicKey.parse(spki: agent.publicKeyDER()), name: "dev1",
                                                 role: .reverse, dnsNames: ["dev1.example.test", "UI.dev1.example.test"], days: 30,
                                                 now: now, caKey: caKey, caCert: caCert, rng: rng)
        let cert = try Certificate.parse(der)
        #expect(cert.dnsNames == ["dev1.example.test", "UI.dev1.example.test"])
        #expect(cert.leafID == agent.id)
        #expect(cert.verify(trustedBy: caCert) == 0)
        let other = try Certificate.parse(try CertificateAuthority.makeCA(key: try PrivateKey.generate(rng: rng),
                                                                          name: "test CA", now: now, rng: rng))
        #expect(cert.verify(trustedBy: other) != 0)
        // A self-signed agent certificate has no names.
        #expect(try CertificateWriter.selfSigned(key: agent, rng: rng).dnsNames.isEmpty)
    }

    /// Security review finding 2: the role is in the certificate, and reads back.
    @Test(arguments: [AgentRole.forward, AgentRole.reverse])
    func issuedCertificateCarriesItsRole(role: AgentRole) throws {
        let rng = try Rng()
        let caKey = try PrivateKey.generate(rng: rng)
        let now = Clock_now()
        let caCert = try Certificate.parse(try CertificateAuthority.makeCA(key: caKey, name: "test CA", now: now, rng: rng))
        let agent = try PrivateKey.generate(rng: rng)
        let der = try CertificateAuthority.issue(subject: try PublicKey.parse(spki: agent.publicKeyDER()), name: "a",
                                                 role: role, dnsNames: [], days: 1, now: now,
                                                 caKey: caKey, caCert: caCert, rng: rng)
        let cert = try Certificate.parse(der)
        #expect(cert.agentRole == role)
        #expect(cert.verify(trustedBy: caCert) == 0)
        // The extension's bytes are in the certificate as written (a hand-built DER value).
        let eku = CertificateRole.extKeyUsageDER(role)
        #expect(contains(der, eku))
        #expect(!contains(der, CertificateRole.oid(role == .forward ? .reverse : .forward)))
        // Through PEM and back.
        #expect(try Certificate.parse(Certificate.pem(der: der)).agentRole == role)
    }

    @Test func certificatesWithoutARoleOrWithBothHaveNone() throws {
        let rng = try Rng()
        let key = try PrivateKey.generate(rng: rng)
        // Self-signed (an agent's own) and CA certificates carry no role.
        #expect(try CertificateWriter.selfSigned(key: key, rng: rng).agentRole == nil)
        let now = Clock_now()
        #expect(try Certificate.parse(try CertificateAuthority.makeCA(key: key, name: "CA", now: now, rng: rng)).agentRole == nil)
        // An extended key usage with only the standard purposes: no role.
        let standard: [UInt8] = [0x30, 20, 0x06, 8] + CertificateRole.serverAuthOID + [0x06, 8] + CertificateRole.clientAuthOID
        #expect(try certificate(key: key, rng: rng, eku: standard).agentRole == nil)
        // Both roles at once: ambiguous, so none.
        let both: [UInt8] = [0x30, 44, 0x06, 20] + CertificateRole.operatorOID + [0x06, 20] + CertificateRole.deviceOID
        #expect(try certificate(key: key, rng: rng, eku: both).agentRole == nil)
        let op: [UInt8] = [0x30, 22, 0x06, 20] + CertificateRole.operatorOID
        #expect(try certificate(key: key, rng: rng, eku: op).agentRole == .forward)
        // A prefix of the OID is another OID.
        let cut: [UInt8] = [0x30, 21, 0x06, 19] + CertificateRole.deviceOID.dropLast()
        #expect(try certificate(key: key, rng: rng, eku: cut).agentRole == nil)
    }

    /// The constants are the DER of 2.25.<the UUIDs written beside them>.
    @Test func roleOIDsAreTheUUIDArcs() {
        #expect(oidText(CertificateRole.operatorOID) == "2.25.209763642877769909226523877133101633323")
        #expect(oidText(CertificateRole.deviceOID) == "2.25.256551682034857793048626531993918470044")
        // 9dcf0213-3f8c-4120-8485-407545e10f2b and c1020e82-040f-4139-b8d8-5350b34d779c as integers.
        #expect(UInt128(0x9dcf_0213_3f8c_4120_8485_4075_45e1_0f2b).description == "209763642877769909226523877133101633323")
        #expect(UInt128(0xc102_0e82_040f_4139_b8d8_5350_b34d_779c).description == "256551682034857793048626531993918470044")
    }

    /// A self-signed certificate with a hand-made extended key usage value.
    func certificate(key: PrivateKey, rng: Rng, eku: [UInt8]) throws -> Certificate {
        var w = mbedtls_x509write_cert()
        mbedtls_x509write_crt_init(&w)
        defer { mbedtls_x509write_crt_free(&w) }
        mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3)
        mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256)
        mbedtls_x509write_crt_set_subject_key(&w, key.pk)
        mbedtls_x509write_crt_set_issuer_key(&w, key.pk)
        #expect(mbedtls_x509write_crt_set_subject_name(&w, "CN=t") == 0)
        #expect(mbedtls_x509write_crt_set_issuer_name(&w, "CN=t") == 0)
        var serial: [UInt8] = [7]
        #expect(mbedtls_x509write_crt_set_serial_raw(&w, &serial, 1) == 0)
        #expect(mbedtls_x509write_crt_set_validity(&w, "20200101000000", "20991231235959") == 0)
        let oid: [CChar] = [0x55, 0x1d, 0x25]
        #expect(eku.withUnsafeBufferPointer { v in
            mbedtls_x509write_crt_set_extension(&w, oid, oid.count, 0, v.baseAddress, v.count)
        } == 0)
        var buf = [UInt8](repeating: 0, count: 2048)
        let n = buf.withUnsafeMutableBufferPointer { b in
            mbedtls_x509write_crt_der(&w, b.baseAddress, b.count, mbedtls_psa_get_random, nil)
        }
        #expect(n > 0)
        return try Certificate.parse(Array(buf[(buf.count - Int(n))...]))
    }

    /// Dotted text of DER OID content (first byte 40 * a + b, then base-128 arcs).
    func oidText(_ der: [UInt8]) -> String {
        var arcs: [UInt128] = []
        var v: UInt128 = 0
        for (i, b) in der.enumerated() {
            if i == 0 {
                arcs += b >= 80 ? [2, UInt128(b - 80)] : [UInt128(b / 40), UInt128(b % 40)]
                continue
            }
            v = v << 7 | UInt128(b & 0x7f)
            if b & 0x80 == 0 { arcs.append(v); v = 0 }
        }
        return arcs.map { $0.description }.joined(separator: ".")
    }

    func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= hay.count else { return false }
        for i in 0...(hay.count - needle.count) where hay[i..<(i + needle.count)].elementsEqual(needle) { return true }
        return false
    }

    func Clock_now() -> Int64 { Int64(time(nil)) }
}
