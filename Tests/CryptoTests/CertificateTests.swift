import CShims
import Crypto
import Testing
import Wire

/// Certificates agent writes: self-signed (agents, relay, session CA) and issued by a
/// session CA; parsing, IDs of their keys, chain verification, and the name check
/// that keeps user text from changing a DN's structure.
@Suite struct CertificateTests {
    /// A session CA and its key.
    struct CA {
        let key: PrivateKey
        let cert: Certificate
        init(_ name: String, rng: Rng) throws {
            key = try PrivateKey.generate(rng: rng)
            cert = try CertificateWriter.selfSigned(key: key, rng: rng, commonName: name, isCA: true)
        }

        /// A certificate for `subject`, signed by this CA.
        func issue(_ subject: PrivateKey, name: String, rng: Rng,
                   notBefore: String = CertificateWriter.selfSignedNotBefore,
                   notAfter: String = CertificateWriter.selfSignedNotAfter) throws -> Certificate {
            let der = try CertificateWriter.make(
                subjectKey: subject.pk,
                options: .init(commonName: name, notBefore: notBefore, notAfter: notAfter),
                issuerKey: key, issuer: cert, rng: rng)
            return try Certificate.parse(der)
        }
    }

    @Test func selfSignedParsesAndCarriesTheKeysID() throws {
        let rng = try Rng()
        let key = try PrivateKey.generate(rng: rng)
        let cert = try CertificateWriter.selfSigned(key: key, rng: rng)
        #expect(cert.leafID == key.id)
        #expect(cert.leafPublicKeyDER == key.publicKeyDER())
        #expect(try cert.leafPublicKey().id == key.id)
        #expect(!cert.isCA)
        let der = cert.leafDER
        #expect(der.first == 0x30)
        // DER and PEM both parse back to the same certificate.
        #expect(try Certificate.parse(der).leafDER == der)
        let pem = Certificate.pem(der: der)
        let text = String(decoding: pem, as: UTF8.self)
        #expect(text.hasPrefix("-----BEGIN CERTIFICATE-----\n"))
        #expect(text.hasSuffix("-----END CERTIFICATE-----\n"))
        #expect(!pem.contains(0))
        #expect(try Certificate.parse(pem).leafDER == der)
        #expect(try Certificate.parse(pem).leafID == key.id)
    }

    /// The names are written without mbedTLS's name parser (shim_x509write_set_cn): the
    /// same bytes as its "CN=..." (a Name of one RDN with one commonName UTF8String).
    @Test func namesAreOneCommonNameInUTF8String() throws {
        let rng = try Rng()
        let key = try PrivateKey.generate(rng: rng)
        let der = try CertificateWriter.selfSigned(key: key, rng: rng, commonName: "agent relay").leafDER
        let name = Array("agent relay".utf8)
        let rdn: [UInt8] = [0x30, UInt8(11 + name.count), 0x31, UInt8(9 + name.count), 0x30, UInt8(7 + name.count),
                            0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, UInt8(name.count)] + name
        var found = 0
        for i in 0...(der.count - rdn.count) where Array(der[i..<(i + rdn.count)]) == rdn { found += 1 }
        #expect(found == 2)  // issuer and subject
    }

    @Test func selfSignedIsNamedByItsIDUnlessToldOtherwise() throws {
        let rng = try Rng()
        let key = try PrivateKey.generate(rng: rng)
        let der = try CertificateWriter.selfSigned(key: key, rng: rng).leafDER
        // The CN (a UTF8String or PrintableString) holds the 32-character ID.
        #expect(Self.contains(der, Array(key.id.text.utf8)))
        let named = try CertificateWriter.selfSigned(key: key, rng: rng, commonName: "relay.example.com").leafDER
        #expect(Self.contains(named, Array("relay.example.com".utf8)))
        #expect(!Self.contains(named, Array(key.id.text.utf8)))
    }

    @Test func selfSignedVerifiesAgainstItself() throws {
        let rng = try Rng()
        let key = try PrivateKey.generate(rng: rng)
        let ca = try CertificateWriter.selfSigned(key: key, rng: rng, commonName: "Self CA", isCA: true)
        #expect(ca.isCA)
        #expect(ca.verify(trustedBy: ca) == 0)
    }

    @Test func caIssuedChainVerifiesAgainstTheCAOnly() throws {
        let rng = try Rng()
        let ca = try CA("Session CA", rng: rng)
        let other = try CA("Session CA", rng: rng)  // same name, different key
        let device = try PrivateKey.generate(rng: rng)
        let cert = try ca.issue(device, name: "device-1", rng: rng)
        #expect(cert.leafID == device.id)
        #expect(!cert.isCA)
        #expect(cert.verify(trustedBy: ca.cert) == 0)
        let flags = cert.verify(trustedBy: other.cert)
        #expect(flags != 0)
        #expect(flags & UInt32(MBEDTLS_X509_BADCERT_NOT_TRUSTED) != 0)
        // Not trusted by itself either (it is not self-signed).
        #expect(cert.verify(trustedBy: cert) != 0)
        // The CA's own certificate verifies against the CA, not against the other one.
        #expect(ca.cert.verify(trustedBy: ca.cert) == 0)
        #expect(ca.cert.verify(trustedBy: other.cert) != 0)
    }

    @Test func aTrustListWithSeveralCAsAcceptsEach() throws {
        let rng = try Rng()
        let a = try CA("CA A", rng: rng)
        let b = try CA("CA B", rng: rng)
        let trust = try Certificate.parse(Certificate.pem(der: a.cert.leafDER) + Certificate.pem(der: b.cert.leafDER))
        let device = try PrivateKey.generate(rng: rng)
        #expect(try a.issue(device, name: "d", rng: rng).verify(trustedBy: trust) == 0)
        #expect(try b.issue(device, name: "d", rng: rng).verify(trustedBy: trust) == 0)
        let c = try CA("CA C", rng: rng)
        #expect(try c.issue(device, name: "d", rng: rng).verify(trustedBy: trust) != 0)
    }

    @Test func aLeafCannotIssue() throws {
        let rng = try Rng()
        let ca = try CA("Session CA", rng: rng)
        let leafKey = try PrivateKey.generate(rng: rng)
        let leaf = try ca.issue(leafKey, name: "leaf", rng: rng)
        // A certificate "issued" by the non-CA leaf, presented with the leaf as its chain.
        let victim = try PrivateKey.generate(rng: rng)
        let der = try CertificateWriter.make(subjectKey: victim.pk, options: .init(commonName: "victim"),
                                             issuerKey: leafKey, issuer: leaf, rng: rng)
        let chain = try Certificate.parse(Certificate.pem(der: der) + Certificate.pem(der: leaf.leafDER))
        #expect(chain.leafID == victim.id)
        #expect(chain.verify(trustedBy: ca.cert) != 0)
    }

    @Test func expiredAndNotYetValidCertificatesFail() throws {
        let rng = try Rng()
        let ca = try CA("Session CA", rng: rng)
        let device = try PrivateKey.generate(rng: rng)
        let expired = try ca.issue(device, name: "d", rng: rng, notBefore: "20000101000000", notAfter: "20010101000000")
        #expect(expired.verify(trustedBy: ca.cert) & UInt32(MBEDTLS_X509_BADCERT_EXPIRED) != 0)
        let future = try ca.issue(device, name: "d", rng: rng, notBefore: "20980101000000", notAfter: "20990101000000")
        #expect(future.verify(trustedBy: ca.cert) & UInt32(MBEDTLS_X509_BADCERT_FUTURE) != 0)
    }

    @Test func aTamperedCertificateFails() throws {
        let rng = try Rng()
        let ca = try CA("Session CA", rng: rng)
        let device = try PrivateKey.generate(rng: rng)
        let der = try ca.issue(device, name: "device-1", rng: rng).leafDER
        // Change one letter of the subject name: still parses, signature no longer matches.
        let name = Array("device-1".utf8)
        let at = try #require(Self.find(der, name))
        var tampered = der
        tampered[at + 7] = UInt8(ascii: "2")
        let t = try Certificate.parse(tampered)
        #expect(t.verify(trustedBy: ca.cert) != 0)
    }

    @Test func chainsParseLeafFirst() throws {
        let rng = try Rng()
        let ca = try CA("Session CA", rng: rng)
        let device = try PrivateKey.generate(rng: rng)
        let leaf = try ca.issue(device, name: "device-1", rng: rng)
        let chain = try Certificate.parse(Certificate.pem(der: leaf.leafDER))
        try chain.add(Certificate.pem(der: ca.cert.leafDER))
        #expect(chain.leafID == device.id)
        #expect(chain.verify(trustedBy: ca.cert) == 0)
    }

    @Test func parseRejectsGarbage() throws {
        let rng = try Rng()
        let key = try PrivateKey.generate(rng: rng)
        let good = try CertificateWriter.selfSigned(key: key, rng: rng)
        let pem = Certificate.pem(der: good.leafDER)
        #expect(throws: CryptoError.self) { try Certificate.parse([]) }
        #expect(throws: CryptoError.self) { try Certificate.parse(Array("not a certificate".utf8)) }
        #expect(throws: CryptoError.self) { try Certificate.parse(Array(good.leafDER.dropLast())) }
        #expect(throws: CryptoError.self) { try Certificate.parse(try key.pem()) }
        // A good certificate followed by a broken one (body lines missing): refused as a
        // whole, not half-accepted.
        let lines = String(decoding: pem, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let cut = (lines[0..<2] + lines[5...]).joined(separator: "\n")
        #expect(throws: CryptoError.self) { try Certificate.parse(pem + Array(cut.utf8)) }
        #expect(throws: CryptoError.self) {
            try Certificate.parse(pem + Array("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".utf8))
        }
    }

    // MARK: Names

    @Test(arguments: ["a,b", "CN=x", "", String(repeating: "a", count: 65), "a+b", "a;b", "a/b", "a\"b",
                      "a\\b", "a\nb", "a\0b", "dévice", "a=b", "<x>", "a#b"])
    func isSafeNameRejects(name: String) {
        #expect(!CertificateWriter.isSafeName(name))
    }

    @Test(arguments: ["a", "device-1", "My Device_2.local", "relay.example.com",
                      String(repeating: "a", count: 64), "j4yntjhwzj3esjy6phlhj7p4dorra4ut", "Session CA"])
    func isSafeNameAccepts(name: String) {
        #expect(CertificateWriter.isSafeName(name))
    }

    @Test func makeRefusesAnUnsafeName() throws {
        let rng = try Rng()
        let key = try PrivateKey.generate(rng: rng)
        #expect(throws: CryptoError.self) { try CertificateWriter.selfSigned(key: key, rng: rng, commonName: "a,CN=evil") }
        #expect(throws: CryptoError.self) { try CertificateWriter.selfSigned(key: key, rng: rng, commonName: "") }
        #expect(throws: CryptoError.self) {
            try CertificateWriter.make(subjectKey: key.pk, options: .init(commonName: "x,O=y"), issuerKey: key,
                                       issuer: nil, rng: rng)
        }
    }

    // MARK: helpers

    static func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
        guard needle.count <= hay.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }

    static func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool { find(hay, needle) != nil }
}
