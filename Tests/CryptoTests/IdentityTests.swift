import Crypto
import Testing
import Wire

/// Identity: keys, IDs and pins (docs/IDENTITY.md).
///
/// The known-answer test pins the ID derivation to values computed WITHOUT this code:
/// the fixture key was made once with
///
///     openssl ecparam -name prime256v1 -genkey -noout
///
/// and its SubjectPublicKeyInfo, SHA-256, ID and pin come from
///
///     openssl ec -in key.pem -pubout -outform DER | xxd -p
///     openssl ec -in key.pem -pubout -outform DER | openssl dgst -sha256
///     openssl ec -in key.pem -pubout -outform DER | python3 -c 'import sys, hashlib, base64;
///         d = hashlib.sha256(sys.stdin.buffer.read()).digest();
///         print(base64.b32encode(d[:20]).decode().rstrip("=").lower()); print("sha256:" + d.hex())'
///
/// If this test fails, every deployed ID and pin would change: do not "fix" the literals.
@Suite struct IdentityTests {
    // MARK: Fixtures (all made with OpenSSL 3.0; test-only keys, never used elsewhere)

    /// P-256 key, SEC1 "EC PRIVATE KEY" (openssl ecparam -name prime256v1 -genkey -noout).
    static let fixedKeyPEM = """
        -----BEGIN EC PRIVATE KEY-----
        MHcCAQEEINQgf1h1uOnUjSLw0oJuaMkZsz94g40Tj4GYpuGzvsojoAoGCCqGSM49
        AwEHoUQDQgAEhbm6AE+Nk/ffibnMutOXZOSnzPw7AoU/aGhssPz8Mfc0WZewMS6B
        yArMrymiH35WM+KMbe0F3nUrsC1BPCywOg==
        -----END EC PRIVATE KEY-----

        """

    /// The same key as DER (openssl ec -outform DER | xxd -p).
    static let fixedKeyDERHex = "30770201010420d4207f5875b8e9d48d22f0d2826e68c919b33f78838d138f81"
        + "98a6e1b3beca23a00a06082a8648ce3d030107a1440342000485b9ba004f8d93"
        + "f7df89b9ccbad39764e4a7ccfc3b02853f68686cb0fcfc31f7345997b0312e81"
        + "c80accaf29a21f7e5633e28c6ded05de752bb02d413c2cb03a"

    /// The same key as PKCS#8 "PRIVATE KEY" (openssl pkcs8 -topk8 -nocrypt).
    static let fixedKeyPKCS8PEM = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1CB/WHW46dSNIvDS
        gm5oyRmzP3iDjROPgZim4bO+yiOhRANCAASFuboAT42T99+Jucy605dk5KfM/DsC
        hT9oaGyw/Pwx9zRZl7AxLoHICsyvKaIfflYz4oxt7QXedSuwLUE8LLA6
        -----END PRIVATE KEY-----

        """

    /// A self-signed certificate for the same key, made by OpenSSL
    /// (openssl req -new -x509 -key key.pem -subj /CN=fixture -days 36500).
    static let fixedKeyOpenSSLCertificatePEM = """
        -----BEGIN CERTIFICATE-----
        MIIBfDCCASGgAwIBAgIUCSPbieFec3G5/ZSgQvXWkXeR7ZYwCgYIKoZIzj0EAwIw
        EjEQMA4GA1UEAwwHZml4dHVyZTAgFw0yNjExMjIwNTM2MDNaGA8yMTI2MTAyOTA1
        MzYwM1owEjEQMA4GA1UEAwwHZml4dHVyZTBZMBMGByqGSM49AgEGCCqGSM49AwEH
        A0IABIW5ugBPjZP334m5zLrTl2Tkp8z8OwKFP2hobLD8/DH3NFmXsDEugcgKzK8p
        oh9+VjPijG3tBd51K7AtQTwssDqjUzBRMB0GA1UdDgQWBBTG1i8bg9ogHS8lGz2r
        ToKz5kO15zAfBgNVHSMEGDAWgBTG1i8bg9ogHS8lGz2rToKz5kO15zAPBgNVHRMB
        Af8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQDuL0iSYX+vUmTrg5w4AC/pSyhj
        zw5fD/34SKx1QrErQQIhAOjfcMYK4rObzHrhXCp9S3mvp2bIFK2g2qHimaueZMt0
        -----END CERTIFICATE-----

        """

    /// Expected values, computed with openssl and python3 (see the suite comment).
    static let expectedSPKIHex = "3059301306072a8648ce3d020106082a8648ce3d0301070342000485b9ba004f"
        + "8d93f7df89b9ccbad39764e4a7ccfc3b02853f68686cb0fcfc31f7345997b031"
        + "2e81c80accaf29a21f7e5633e28c6ded05de752bb02d413c2cb03a"
    static let expectedSHA256Hex = "4f30d9a4f6ca7649271e79d674fdfc1ba310729375065209a4d42051a77581ac"
    static let expectedID = "j4yntjhwzj3esjy6phlhj7p4dorra4ut"
    static let expectedPin = "sha256:4f30d9a4f6ca7649271e79d674fdfc1ba310729375065209a4d42051a77581ac"

    /// RSA-1024, PKCS#8 (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024).
    static let rsaPKCS8PEM = """
        -----BEGIN PRIVATE KEY-----
        MIICdQIBADANBgkqhkiG9w0BAQEFAASCAl8wggJbAgEAAoGBAKnTuLm0vUEu83JS
        skqawJjuaXY/K8h7h7aLO3SmDfesdHPHdTE102o+pDTsTrDz81YbIOcU7a3kfm9T
        hyheB8RxCctcKe5UMZS30PdaSdy9KZztLkCRP6C/PMDy/e0XiKlF0UshC25wZZe6
        syiGS5ghWIxDF+96HmhXgQxGA1ETAgMBAAECgYALTPxo1x8U3FP00o3sqvmP86Vu
        6es27wlr2z38mCQry/z/y1EAEk3cLwjsQKFH4yPZIfsBhYH/ZUoIjG1dAUzQ6NKP
        /V8wGR4yGIrKyF84n17m0sc0b+ZYAuB+jZ7JImqQGN7p6LWsV5Y+St4Zfg1mtpM7
        5RL3CZri6LZRJZcIoQJBANlo7xjFYZv9IXFUliyXHEi20IQwfvpElJWl0xE0/+mQ
        huYvNMYd1VwxOiuSPEqjqMZgyDu2EIxmRM4dUJ7RhNECQQDH+KGQomTmzBC61w4p
        //IF/7scnjw2XquVoWlicKci1WlCoje4WQUTWS3E4HJbxbXyMAiTKQpktoYP+vU+
        z8CjAkBOZ+SKh2yLR//OklXSYPDHXH7YnXC9qwv26CW1d+qu/ftYej/LDylKJUq4
        OfXaaSlN2ct8lU1khOFdf/76N89xAkA85nyV5s8h9u31aP9YTSlxKEPc4FfoGwbY
        iBLnNvW/xwzKjUq46ut/y/4DYnORfXH+8x/5aVtP9sJ3ZW+BFJZPAkBL+7wdunOp
        ynBYdYv//oq2oDqgOw/QkLlE86eE+omalIZfp6T9Rryy0L8/En2ShkdcKTNoxxSB
        WtRlghFLnf3b
        -----END PRIVATE KEY-----

        """

    /// The same RSA key, traditional "RSA PRIVATE KEY" (openssl rsa -traditional).
    static let rsaTraditionalPEM = """
        -----BEGIN RSA PRIVATE KEY-----
        MIICWwIBAAKBgQCp07i5tL1BLvNyUrJKmsCY7ml2PyvIe4e2izt0pg33rHRzx3Ux
        NdNqPqQ07E6w8/NWGyDnFO2t5H5vU4coXgfEcQnLXCnuVDGUt9D3WkncvSmc7S5A
        kT+gvzzA8v3tF4ipRdFLIQtucGWXurMohkuYIViMQxfveh5oV4EMRgNREwIDAQAB
        AoGAC0z8aNcfFNxT9NKN7Kr5j/OlbunrNu8Ja9s9/JgkK8v8/8tRABJN3C8I7ECh
        R+Mj2SH7AYWB/2VKCIxtXQFM0OjSj/1fMBkeMhiKyshfOJ9e5tLHNG/mWALgfo2e
        ySJqkBje6ei1rFeWPkreGX4NZraTO+US9wma4ui2USWXCKECQQDZaO8YxWGb/SFx
        VJYslxxIttCEMH76RJSVpdMRNP/pkIbmLzTGHdVcMTorkjxKo6jGYMg7thCMZkTO
        HVCe0YTRAkEAx/ihkKJk5swQutcOKf/yBf+7HJ48Nl6rlaFpYnCnItVpQqI3uFkF
        E1ktxOByW8W18jAIkykKZLaGD/r1Ps/AowJATmfkiodsi0f/zpJV0mDwx1x+2J1w
        vasL9ugltXfqrv37WHo/yw8pSiVKuDn12mkpTdnLfJVNZIThXX/++jfPcQJAPOZ8
        lebPIfbt9Wj/WE0pcShD3OBX6BsG2IgS5zb1v8cMyo1KuOrrf8v+A2JzkX1x/vMf
        +WlbT/bCd2VvgRSWTwJAS/u8HbpzqcpwWHWL//6KtqA6oDsP0JC5RPOnhPqJmpSG
        X6ek/Ua8stC/PxJ9koZHXCkzaMcUgVrUZYIRS5392w==
        -----END RSA PRIVATE KEY-----

        """

    /// The RSA key's public half, DER SubjectPublicKeyInfo (openssl rsa -pubout -outform DER).
    static let rsaSPKIHex = "30819f300d06092a864886f70d010101050003818d0030818902818100a9d3b8"
        + "b9b4bd412ef37252b24a9ac098ee69763f2bc87b87b68b3b74a60df7ac7473c7"
        + "753135d36a3ea434ec4eb0f3f3561b20e714edade47e6f5387285e07c47109cb"
        + "5c29ee543194b7d0f75a49dcbd299ced2e40913fa0bf3cc0f2fded1788a945d1"
        + "4b210b6e706597bab328864b9821588c4317ef7a1e6857810c46035113020301"
        + "0001"

    /// P-384 key (openssl ecparam -name secp384r1 -genkey -noout).
    static let p384PEM = """
        -----BEGIN EC PRIVATE KEY-----
        MIGkAgEBBDCxxKa+I7hiqEOMOjA8O1EWqAzcknsYtvvh3M3ak1VT6XiFeONw++CW
        URnpv6QpdBagBwYFK4EEACKhZANiAAQ+q7XN0D4ndcXJjIWzMjEt4MfT1L+dVrZu
        fXunJar6cLgni/gi/BEaGC7Sn0lHSRRg2+rWNgYerdDrfHnjOGtnlnPyqpIab4GD
        C2WOyiOh1LLvks3+Ur1mzkv5Rst1F8A=
        -----END EC PRIVATE KEY-----

        """

    /// secp256k1 key: 256 bits, but not P-256 (openssl ecparam -name secp256k1 -genkey -noout).
    static let secp256k1PEM = """
        -----BEGIN EC PRIVATE KEY-----
        MHQCAQEEIL+tNg2sjc8TjfumOe6LvjMEtlxHfW/gvOAeJDAZV4WEoAcGBSuBBAAK
        oUQDQgAENHgtj1ZhIN/bffEm74OUqnYzSztHPQ7nsu7PGQYT6tkyUa0wtlAgt3pu
        w9k3yYaorsHJUCWnlDU7oDK2cIlDlQ==
        -----END EC PRIVATE KEY-----

        """

    /// The fixture key encrypted with a passphrase (openssl ec -aes256 -passout pass:secret):
    /// agent has no passphrase support, so it must be refused, not misread.
    static let encryptedKeyPEM = """
        -----BEGIN EC PRIVATE KEY-----
        Proc-Type: 4,ENCRYPTED
        DEK-Info: AES-256-CBC,23136019D60A9206BEF09F848208EECF

        lxBhm66eMXT8phxCeB+zoRkBhZxP44TmJf2SxXUKLiK6q5AQvCzAQFW/JHgD/wJP
        Ab55ey3y+/ZK0USHCzXAcERz0Ts4oNQMmAWN7/cKZZzC9/LwOnWj0ixrA5A+eoXA
        iA+rVvJRQPuraALASMo58WPxd7Z3f8qxn2rqvjCvTnc=
        -----END EC PRIVATE KEY-----

        """

    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    static func hex(_ s: String) -> [UInt8] {
        guard let b = Hex.decode(s) else { preconditionFailure("bad hex literal in test") }
        return b
    }

    // MARK: Known answer

    @Test func knownAnswerSPKIIDAndPin() throws {
        let key = try PrivateKey.parse(Self.bytes(Self.fixedKeyPEM))
        let spki = key.publicKeyDER()
        #expect(Hex.encode(spki) == Self.expectedSPKIHex)
        #expect(spki.count == 91)  // P-256 SPKI: 26-byte header + 65-byte uncompressed point
        #expect(Hex.encode(Digest.sha256(spki)) == Self.expectedSHA256Hex)
        // ID: first 20 bytes of the digest, base32 lowercase without padding.
        #expect(Identity.id(spki: spki).text == Self.expectedID)
        #expect(key.id.text == Self.expectedID)
        #expect(key.id.bytes == Array(Self.hex(Self.expectedSHA256Hex)[0..<20]))
        #expect(Self.expectedID.utf8.count == AgentID.textLength)
        // Pin: "sha256:" + lowercase hex of the whole digest.
        #expect(Identity.pin(spki: spki) == Self.expectedPin)
        #expect(Identity.parsePin(Self.expectedPin) == Self.hex(Self.expectedSHA256Hex))
    }

    @Test func knownAnswerFromEveryEncodingOfTheKey() throws {
        let expected = try #require(AgentID(text: Self.expectedID))
        // PEM (SEC1), DER (SEC1), PEM (PKCS#8): same key, same ID.
        #expect(try Identity.idOfKeyOrCertificate(Self.bytes(Self.fixedKeyPEM)) == expected)
        #expect(try Identity.idOfKeyOrCertificate(Self.hex(Self.fixedKeyDERHex)) == expected)
        #expect(try Identity.idOfKeyOrCertificate(Self.bytes(Self.fixedKeyPKCS8PEM)) == expected)
        #expect(try PrivateKey.parse(Self.hex(Self.fixedKeyDERHex)).id == expected)
        #expect(try PrivateKey.parse(Self.bytes(Self.fixedKeyPKCS8PEM)).id == expected)
    }

    @Test func knownAnswerFromACertificateOfTheKey() throws {
        let expected = try #require(AgentID(text: Self.expectedID))
        // A certificate made by OpenSSL for the key.
        let openssl = Self.bytes(Self.fixedKeyOpenSSLCertificatePEM)
        #expect(try Identity.idOfKeyOrCertificate(openssl) == expected)
        let parsed = try Certificate.parse(openssl)
        #expect(parsed.leafID == expected)
        #expect(Hex.encode(parsed.leafPublicKeyDER) == Self.expectedSPKIHex)
        #expect(try Identity.idOfKeyOrCertificate(parsed.leafDER) == expected)  // DER certificate
        // A certificate agent makes for the key (self-signed, fresh serial every time).
        let rng = try Rng()
        let key = try PrivateKey.parse(Self.bytes(Self.fixedKeyPEM))
        let mine = try CertificateWriter.selfSigned(key: key, rng: rng)
        #expect(mine.leafID == expected)
        #expect(try Identity.idOfKeyOrCertificate(Certificate.pem(der: mine.leafDER)) == expected)
        #expect(try Identity.idOfKeyOrCertificate(mine.leafDER) == expected)
        // A second certificate for the same key differs but keeps the ID.
        let again = try CertificateWriter.selfSigned(key: key, rng: rng, commonName: "renamed")
        #expect(again.leafDER != mine.leafDER)
        #expect(again.leafID == expected)
    }

    @Test func knownAnswerPublicKeyFromSPKI() throws {
        let pub = try PublicKey.parse(spki: Self.hex(Self.expectedSPKIHex))
        #expect(Hex.encode(pub.der()) == Self.expectedSPKIHex)
        #expect(pub.id.text == Self.expectedID)
    }

    // MARK: Keys

    @Test func fixedKeyPEMRoundTripIsByteExact() throws {
        let key = try PrivateKey.parse(Self.bytes(Self.fixedKeyPEM))
        let pem = try key.pem()
        // mbedTLS writes the same SEC1 encoding OpenSSL does.
        #expect(String(decoding: pem, as: UTF8.self) == Self.fixedKeyPEM)
    }

    @Test func generatedKeyPEMRoundTrip() throws {
        let rng = try Rng()
        let key = try PrivateKey.generate(rng: rng)
        let pem = try key.pem()
        let text = String(decoding: pem, as: UTF8.self)
        #expect(text.hasPrefix("-----BEGIN EC PRIVATE KEY-----\n"))
        #expect(text.hasSuffix("-----END EC PRIVATE KEY-----\n"))
        #expect(!pem.contains(0))
        let back = try PrivateKey.parse(pem)
        #expect(back.publicKeyDER() == key.publicKeyDER())
        #expect(back.id == key.id)
        #expect(try back.pem() == pem)
        // Every P-256 SPKI has the same 26-byte header; only the point differs.
        let header = Array(Self.hex(Self.expectedSPKIHex)[0..<26])
        #expect(Array(key.publicKeyDER()[0..<26]) == header)
        #expect(key.publicKeyDER().count == 91)
    }

    @Test func freshKeysHaveDistinctIDs() throws {
        let rng = try Rng()
        var seen = Set<AgentID>()
        for _ in 0..<8 { seen.insert(try PrivateKey.generate(rng: rng).id) }
        #expect(seen.count == 8)
    }

    @Test func signVerify() throws {
        let rng = try Rng()
        let key = try PrivateKey.parse(Self.bytes(Self.fixedKeyPEM))
        let pub = try PublicKey.parse(spki: key.publicKeyDER())
        let message = Array("challenge 0123456789 sha256:pin".utf8)
        let sig = try key.sign(message, rng: rng)
        #expect(sig.first == 0x30)  // DER SEQUENCE
        #expect(sig.count >= 8 && sig.count <= 72)
        #expect(pub.verify(message, signature: sig))
        // ECDSA signatures are randomized; both verify.
        let sig2 = try key.sign(message, rng: rng)
        #expect(pub.verify(message, signature: sig2))
        // Empty message.
        #expect(pub.verify([], signature: try key.sign([], rng: rng)))
    }

    @Test func flippedBitsFailVerification() throws {
        let rng = try Rng()
        let key = try PrivateKey.parse(Self.bytes(Self.fixedKeyPEM))
        let pub = try PublicKey.parse(spki: key.publicKeyDER())
        let message = Array("challenge 0123456789 sha256:pin".utf8)
        let sig = try key.sign(message, rng: rng)
        for i in 0..<message.count {
            var m = message
            m[i] ^= 0x01
            #expect(!pub.verify(m, signature: sig), "message bit flipped at byte \(i)")
        }
        for i in 0..<sig.count {
            var s = sig
            s[i] ^= 0x01
            #expect(!pub.verify(message, signature: s), "signature bit flipped at byte \(i)")
        }
        #expect(!pub.verify(message, signature: Array(sig.dropLast())))
        #expect(!pub.verify(message, signature: sig + [0]))
        #expect(!pub.verify(message, signature: []))
        #expect(!pub.verify(message + [0], signature: sig))
        // Another key's public half does not accept it.
        let other = try PublicKey.parse(spki: try PrivateKey.generate(rng: rng).publicKeyDER())
        #expect(!other.verify(message, signature: sig))
    }

    struct BadKey: CustomTestStringConvertible, Sendable {
        let name: String
        let data: [UInt8]
        var testDescription: String { name }
    }

    static let badKeys: [BadKey] = {
        let good = bytes(fixedKeyPEM)
        // The first base64 character after the header: breaks the outer DER SEQUENCE.
        var corrupted = good
        corrupted[31] = UInt8(ascii: "A")
        return [
            BadKey(name: "RSA PKCS#8", data: bytes(rsaPKCS8PEM)),
            BadKey(name: "RSA traditional", data: bytes(rsaTraditionalPEM)),
            BadKey(name: "P-384", data: bytes(p384PEM)),
            BadKey(name: "secp256k1", data: bytes(secp256k1PEM)),
            BadKey(name: "encrypted P-256", data: bytes(encryptedKeyPEM)),
            BadKey(name: "empty", data: []),
            BadKey(name: "garbage text", data: bytes("hello, I am not a key\n")),
            BadKey(name: "garbage bytes", data: (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 7) }),
            BadKey(name: "PEM header only", data: bytes("-----BEGIN EC PRIVATE KEY-----\n-----END EC PRIVATE KEY-----\n")),
            BadKey(name: "truncated PEM", data: Array(good[0..<(good.count / 2)])),
            BadKey(name: "corrupted DER structure", data: corrupted),
            BadKey(name: "truncated DER", data: Array(hex(fixedKeyDERHex).dropLast(10))),
            BadKey(name: "public key DER", data: hex(expectedSPKIHex)),
            BadKey(name: "a certificate", data: bytes(fixedKeyOpenSSLCertificatePEM)),
        ]
    }()

    @Test(arguments: badKeys)
    func parseRejects(_ bad: BadKey) {
        #expect(throws: CryptoError.self) { try PrivateKey.parse(bad.data) }
    }

    /// The fixture key with one bit of its private scalar flipped (DER byte 7, the first
    /// byte of the 32-byte scalar): still well-formed, but the stored public point no
    /// longer belongs to the private scalar. mbedTLS 2.28's SEC1 parser takes the stored
    /// point without checking it against the scalar, so PrivateKey.parse accepts the
    /// file and `id` reports the ORIGINAL key's ID while every signature it makes fails
    /// against that ID's key. A bit-rotted or tampered key file should be refused at load
    /// (mbedtls_pk_check_pair, or recompute Q = d*G and compare).
    @Test func parseRejectsKeyWhosePublicPointDoesNotMatchItsScalar() throws {
        var der = Self.hex(Self.fixedKeyDERHex)
        #expect(Array(der[5..<7]) == [0x04, 0x20])  // OCTET STRING of 32 bytes: the scalar
        der[7] ^= 0x01
        let rng = try Rng()
        #expect(throws: CryptoError.self) { try PrivateKey.parse(der) }
        // What goes wrong when it is accepted: the ID is the original key's, but the
        // key's own public half does not verify its signatures.
        if let key = try? PrivateKey.parse(der) {
            #expect(key.id.text == Self.expectedID)
            let pub = try PublicKey.parse(spki: key.publicKeyDER())
            let message = Array("challenge".utf8)
            #expect(!pub.verify(message, signature: try key.sign(message, rng: rng)))
        }
    }

    @Test(arguments: badKeys.filter { $0.name != "a certificate" })
    func idOfRejects(_ bad: BadKey) {
        #expect(throws: CryptoError.self) { try Identity.idOfKeyOrCertificate(bad.data) }
    }

    @Test func publicKeyParseRejectsRSAAndGarbage() {
        #expect(throws: CryptoError.self) { try PublicKey.parse(spki: Self.hex(Self.rsaSPKIHex)) }
        #expect(throws: CryptoError.self) { try PublicKey.parse(spki: []) }
        #expect(throws: CryptoError.self) { try PublicKey.parse(spki: [0x30, 0x03, 0x02, 0x01, 0x00]) }
        #expect(throws: CryptoError.self) {
            try PublicKey.parse(spki: Array(Self.hex(Self.expectedSPKIHex).dropLast()))
        }
    }

    // MARK: Pins

    @Test func parsePinAcceptsEitherHexCase() {
        let digest = Self.hex(Self.expectedSHA256Hex)
        #expect(Identity.parsePin(Self.expectedPin) == digest)
        #expect(Identity.parsePin("sha256:" + Self.expectedSHA256Hex.uppercased()) == digest)
    }

    static let badPins: [String] = {
        let h = expectedSHA256Hex
        var list: [String] = []
        list.append("")
        list.append("sha256:")
        list.append(h)  // no prefix
        list.append("SHA256:" + h)  // the prefix is lowercase
        list.append("sha-256:" + h)
        list.append("sha256:" + String(h.dropLast()))  // 63 digits
        list.append("sha256:" + h + "0")  // 65 digits
        list.append("sha256:" + String(h.dropLast(2)) + "zz")
        list.append("sha256: " + String(h.dropLast()))
        list.append("sha256:" + h + "\n")
        list.append("sha1:" + String(h.prefix(40)))
        return list
    }()

    @Test(arguments: badPins)
    func parsePinRejects(text: String) {
        #expect(Identity.parsePin(text) == nil)
    }

    @Test func pinAndIDShareTheDigest() throws {
        let rng = try Rng()
        let key = try PrivateKey.generate(rng: rng)
        let spki = key.publicKeyDER()
        let pin = Identity.pin(spki: spki)
        #expect(pin.hasPrefix("sha256:"))
        #expect(pin.utf8.count == 7 + 64)
        #expect(pin == pin.lowercased())
        let digest = try #require(Identity.parsePin(pin))
        #expect(Array(digest[0..<20]) == key.id.bytes)
    }
}
