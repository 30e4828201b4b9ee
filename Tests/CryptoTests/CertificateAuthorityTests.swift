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
                                                 dnsNames: ["dev1.example.test", "UI.dev1.example.test"], days: 30,
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

    func Clock_now() -> Int64 { Int64(time(nil)) }
}
