import Crypto
import Testing
import Wire

/// Known-answer vectors for SHA-256 (FIPS 180-4 examples, NIST "SHA256.pdf" and the
/// long-message example) and HMAC-SHA256 (RFC 4231 test cases 1-4, 6, 7; case 5 is a
/// truncated output and does not apply). Inputs and outputs are typed in as hex, as
/// the documents give them.
@Suite struct DigestTests {
    static func hex(_ s: String) -> [UInt8] {
        guard let b = Hex.decode(s) else { preconditionFailure("bad hex literal in test: " + s) }
        return b
    }

    struct SHAVector: CustomTestStringConvertible, Sendable {
        let name: String
        let message: [UInt8]
        let digest: String
        var testDescription: String { name }
    }

    static let shaVectors: [SHAVector] = [
        SHAVector(name: "empty", message: [],
                  digest: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        SHAVector(name: "abc (one block)", message: hex("616263"),
                  digest: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        SHAVector(name: "448 bits (two blocks)",
                  message: Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
                  digest: "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        SHAVector(name: "896 bits",
                  message: Array(("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                                  + "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu").utf8),
                  digest: "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
        SHAVector(name: "one million 'a'", message: [UInt8](repeating: 0x61, count: 1_000_000),
                  digest: "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
    ]

    @Test(arguments: shaVectors)
    func sha256KnownAnswers(_ v: SHAVector) {
        let d = Digest.sha256(v.message)
        #expect(d.count == Digest.sha256Length)
        #expect(Hex.encode(d) == v.digest)
        // The raw-buffer entry point gives the same.
        #expect(v.message.withUnsafeBytes { Hex.encode(Digest.sha256($0)) } == v.digest)
    }

    /// The incremental hasher gives the one-shot digest for any split of the message,
    /// including empty pieces and splits inside a 64-byte block.
    @Test(arguments: shaVectors)
    func sha256HasherMatchesOneShot(_ v: SHAVector) {
        // Byte-at-a-time over a million bytes is slow in a debug build: larger pieces there.
        let pieces = v.message.count > 4096 ? [63, 64, 65, 1000, 1 << 20] : [1, 3, 63, 64, 65, 1000]
        for piece in pieces {
            var h = SHA256Hasher()
            h.update([])
            var off = 0
            while off < v.message.count {
                let end = min(off + piece, v.message.count)
                Array(v.message[off..<end]).withUnsafeBytes { h.update($0) }
                off = end
            }
            #expect(Hex.encode(h.finish()) == v.digest, "piece size \(piece)")
        }
    }

    struct HMACVector: CustomTestStringConvertible, Sendable {
        let name: String
        let key: String
        let data: String
        let mac: String
        var testDescription: String { name }
    }

    /// RFC 4231 section 4: keys, data and HMAC-SHA-256 outputs as printed there.
    static let hmacVectors: [HMACVector] = [
        HMACVector(name: "RFC 4231 test case 1",
                   key: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
                   data: "4869205468657265",  // "Hi There"
                   mac: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        HMACVector(name: "RFC 4231 test case 2",
                   key: "4a656665",  // "Jefe"
                   data: "7768617420646f2079612077616e7420666f72206e6f7468696e673f",  // "what do ya want for nothing?"
                   mac: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        HMACVector(name: "RFC 4231 test case 3",
                   key: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                   data: String(repeating: "dd", count: 50),
                   mac: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        HMACVector(name: "RFC 4231 test case 4",
                   key: "0102030405060708090a0b0c0d0e0f10111213141516171819",
                   data: String(repeating: "cd", count: 50),
                   mac: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        HMACVector(name: "RFC 4231 test case 6 (131-byte key)",
                   key: String(repeating: "aa", count: 131),
                   // "Test Using Larger Than Block-Size Key - Hash Key First"
                   data: "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65"
                       + "204b6579202d2048617368204b6579204669727374",
                   mac: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        HMACVector(name: "RFC 4231 test case 7 (131-byte key, 152-byte data)",
                   key: String(repeating: "aa", count: 131),
                   // "This is a test using a larger than block-size key and a larger than
                   //  block-size data. The key needs to be hashed before being used by the
                   //  HMAC algorithm."
                   data: "5468697320697320612074657374207573696e672061206c6172676572207468"
                       + "616e20626c6f636b2d73697a65206b657920616e642061206c61726765722074"
                       + "68616e20626c6f636b2d73697a6520646174612e20546865206b6579206e6565"
                       + "647320746f20626520686173686564206265666f7265206265696e6720757365"
                       + "642062792074686520484d414320616c676f726974686d2e",
                   mac: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ]

    @Test(arguments: hmacVectors)
    func hmacSHA256KnownAnswers(_ v: HMACVector) {
        let mac = Digest.hmacSHA256(key: Self.hex(v.key), data: Self.hex(v.data))
        #expect(mac.count == 32)
        #expect(Hex.encode(mac) == v.mac)
    }

    @Test func hmacWithEmptyKeyAndData() {
        // Computed with python3: hmac.new(b"", b"", hashlib.sha256).hexdigest()
        #expect(Hex.encode(Digest.hmacSHA256(key: [], data: []))
                == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    @Test func hmacDependsOnEveryKeyAndDataBit() {
        let key = Self.hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b")
        let data = Self.hex("4869205468657265")
        let base = Digest.hmacSHA256(key: key, data: data)
        for i in 0..<key.count {
            var k = key
            k[i] ^= 0x01
            #expect(Digest.hmacSHA256(key: k, data: data) != base)
        }
        for i in 0..<data.count {
            var d = data
            d[i] ^= 0x80
            #expect(Digest.hmacSHA256(key: key, data: d) != base)
        }
    }

    @Test func constantTimeEqual() {
        let a: [UInt8] = [1, 2, 3, 4]
        #expect(Digest.constantTimeEqual(a, [1, 2, 3, 4]))
        #expect(Digest.constantTimeEqual([], []))
        #expect(!Digest.constantTimeEqual(a, [0, 2, 3, 4]))  // first byte
        #expect(!Digest.constantTimeEqual(a, [1, 2, 3, 5]))  // last byte
        #expect(!Digest.constantTimeEqual(a, [1, 2, 3]))  // shorter
        #expect(!Digest.constantTimeEqual(a, [1, 2, 3, 4, 0]))  // longer
        #expect(!Digest.constantTimeEqual(a, []))
        // Every single-bit difference is seen.
        for i in 0..<a.count {
            for bit in 0..<8 {
                var b = a
                b[i] ^= UInt8(1 << bit)
                #expect(!Digest.constantTimeEqual(a, b))
            }
        }
    }
}
