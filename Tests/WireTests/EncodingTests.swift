import Testing
import Wire

/// Base32 (RFC 4648 section 6, written lowercase without padding), Hex, and the
/// AgentID text form built on them (docs/IDENTITY.md).
@Suite struct EncodingTests {
    // MARK: Base32

    /// RFC 4648 section 10 test vectors, lowercased and with the '=' padding removed.
    static let base32Vectors: [(String, String)] = [
        ("", ""),
        ("f", "my"),
        ("fo", "mzxq"),
        ("foo", "mzxw6"),
        ("foob", "mzxw6yq"),
        ("fooba", "mzxw6ytb"),
        ("foobar", "mzxw6ytboi"),
    ]

    @Test(arguments: base32Vectors)
    func base32EncodesRFC4648Vectors(plain: String, encoded: String) {
        #expect(Base32.encode(Array(plain.utf8)) == encoded)
    }

    @Test(arguments: base32Vectors)
    func base32DecodesRFC4648Vectors(plain: String, encoded: String) {
        #expect(Base32.decode(Array(encoded.utf8)) == Array(plain.utf8))
        // Case-insensitive.
        #expect(Base32.decode(Array(encoded.uppercased().utf8)) == Array(plain.utf8))
    }

    @Test func base32AlphabetIsLowercaseRFC4648() {
        // 5 bytes = 40 bits = 8 characters: 0x00.. and 0xff.. hit both ends of the alphabet.
        #expect(Base32.encode([0, 0, 0, 0, 0]) == "aaaaaaaa")
        #expect(Base32.encode([0xff, 0xff, 0xff, 0xff, 0xff]) == "77777777")
        // These 20 bytes are the 5-bit groups 0, 1, ..., 31: the alphabet in order
        // (checked with python3 base64.b32decode).
        let counting: [UInt8] = [0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6, 0x35, 0xcf,
                                 0x84, 0x65, 0x3a, 0x56, 0xd7, 0xc6, 0x75, 0xbe, 0x77, 0xdf]
        #expect(Base32.encode(counting) == "abcdefghijklmnopqrstuvwxyz234567")
        #expect(Base32.decode(Array("abcdefghijklmnopqrstuvwxyz234567".utf8)) == counting)
    }

    @Test func base32RoundTripsEveryLength() {
        var data: [UInt8] = []
        for n in 0..<64 {
            #expect(Base32.decode(Array(Base32.encode(data).utf8)) == data)
            #expect(Base32.encode(data).utf8.count == (n * 8 + 4) / 5)
            data.append(UInt8(truncatingIfNeeded: n &* 37 &+ 11))
        }
    }

    @Test(arguments: ["my=", "my======", "m y", "mz1", "mz8", "mz0", "mz!", "mzé", "-my", "\0"])
    func base32RejectsCharactersOutsideTheAlphabet(text: String) {
        #expect(Base32.decode(Array(text.utf8)) == nil)
    }

    /// "my" and "mz" both start with the 8 bits of "f"; "mz" leaves bits 01 over,
    /// which a canonical encoder never writes.
    @Test(arguments: ["mz", "mzxr", "mzxw7", "mzxw6yr", "mzxw6ytboj", "b", "7"])
    func base32RejectsNonZeroTrailingBits(text: String) {
        #expect(Base32.decode(Array(text.utf8)) == nil)
    }

    /// Lengths 1, 3 and 6 (mod 8) cannot come out of any encoder (no byte count needs
    /// them). Base32.decode accepts them when the left-over bits are zero, so two
    /// different strings decode to the same bytes. AgentID is not affected (it accepts
    /// exactly 32 characters), but a future user of Base32.decode could be.
    @Test(arguments: ["a", "aaa", "aaaaaa", "mya", "mzxw6ytba"])
    func base32RejectsImpossibleLengths(text: String) {
        #expect(Base32.decode(Array(text.utf8)) == nil)
    }

    // MARK: Hex

    @Test func hexEncodesLowercase() {
        #expect(Hex.encode([UInt8]()) == "")
        #expect(Hex.encode([0x00, 0x01, 0x7f, 0x80, 0xab, 0xff]) == "00017f80abff")
    }

    @Test func hexRoundTripsAllByteValues() {
        let all = (0...255).map { UInt8($0) }
        let text = Hex.encode(all)
        #expect(text.utf8.count == 512)
        #expect(Hex.decode(text) == all)
        #expect(Hex.decode(text.uppercased()) == all)
    }

    @Test func hexDecodesMixedCase() {
        #expect(Hex.decode("aBcDeF") == [0xab, 0xcd, 0xef])
        #expect(Hex.decode("") == [])
    }

    @Test(arguments: ["0", "abc", "0g", "g0", " 00", "00 ", "0x00", "+1", "éé", "0-"])
    func hexRejectsBadInput(text: String) {
        #expect(Hex.decode(text) == nil)
    }

    // MARK: AgentID

    static let sampleBytes: [UInt8] = (0..<20).map { UInt8($0 &* 13 &+ 7) }

    @Test func agentIDTextIs32LowercaseCharacters() throws {
        let id = try #require(AgentID(bytes: Self.sampleBytes))
        let text = id.text
        #expect(text.utf8.count == AgentID.textLength)
        #expect(text == Base32.encode(Self.sampleBytes))
        #expect(text == text.lowercased())
        #expect(AgentID(text: text) == id)
        #expect(AgentID(text: text)?.bytes == Self.sampleBytes)
    }

    @Test func agentIDKnownText() throws {
        // 20 zero bytes and 20 0xff bytes: the ends of the alphabet.
        #expect(AgentID(bytes: [UInt8](repeating: 0, count: 20))?.text == String(repeating: "a", count: 32))
        #expect(AgentID(bytes: [UInt8](repeating: 0xff, count: 20))?.text == String(repeating: "7", count: 32))
        let id = try #require(AgentID(text: "j4yntjhwzj3esjy6phlhj7p4dorra4ut"))
        #expect(Hex.encode(id.bytes) == "4f30d9a4f6ca7649271e79d674fdfc1ba3107293")
    }

    @Test func agentIDParsingIsCaseInsensitive() throws {
        let id = try #require(AgentID(bytes: Self.sampleBytes))
        #expect(AgentID(text: id.text.uppercased()) == id)
        // Mixed case.
        var mixed = ""
        for (i, c) in id.text.enumerated() { mixed += i % 2 == 0 ? String(c).uppercased() : String(c) }
        #expect(AgentID(text: mixed) == id)
        // Printing is always lowercase.
        #expect(AgentID(text: mixed)?.text == id.text)
    }

    @Test func agentIDIgnoresDashes() throws {
        let id = try #require(AgentID(bytes: Self.sampleBytes))
        let t = Array(id.text)
        var grouped = ""
        for i in stride(from: 0, to: 32, by: 4) {
            if i > 0 { grouped += "-" }
            grouped += String(t[i..<(i + 4)])
        }
        #expect(grouped.utf8.count == 39)
        #expect(AgentID(text: grouped) == id)
        #expect(AgentID(text: "-" + id.text + "-") == id)
        #expect(AgentID(text: String(t[0..<16]) + "--" + String(t[16...])) == id)
        #expect(AgentID(text: grouped.uppercased()) == id)
    }

    @Test func agentIDFromBytesNeedsExactly20() {
        #expect(AgentID(bytes: [UInt8](repeating: 1, count: 19)) == nil)
        #expect(AgentID(bytes: [UInt8](repeating: 1, count: 21)) == nil)
        #expect(AgentID(bytes: [UInt8]()) == nil)
        #expect(AgentID(bytes: [UInt8](repeating: 1, count: 20)) != nil)
        // The Collection initializer (e.g. a slice of a digest).
        let digest = [UInt8](repeating: 9, count: 32)
        #expect(AgentID(bytes: digest[0..<20])?.bytes == [UInt8](repeating: 9, count: 20))
        #expect(AgentID(bytes: digest[0..<21]) == nil)
    }

    static let validText = "j4yntjhwzj3esjy6phlhj7p4dorra4ut"

    static let badTexts: [String] = {
        let v = validText
        let short = String(v.dropLast())
        var list: [String] = []
        list.append("")
        list.append(short)  // 31 characters
        list.append(v + "a")  // 33 characters
        list.append(v + "aaaaaaaa")  // 40 characters: 25 bytes
        list.append(String(v.dropLast(8)))  // 24 characters: 15 bytes
        list.append(short + "1")  // '1' is not base32
        list.append(short + "8")
        list.append(short + "=")
        list.append(short + " ")
        list.append(" " + v)
        list.append(v + "\n")
        list.append(short + "é")
        list.append(String(v.dropLast(2)) + "==")
        list.append("0" + String(v.dropFirst()))
        list.append(String(repeating: "-", count: 32))
        return list
    }()

    @Test(arguments: badTexts)
    func agentIDRejectsBadText(text: String) {
        #expect(AgentID(text: text) == nil)
    }

    @Test func agentIDHashableAndEquatable() throws {
        let a = try #require(AgentID(bytes: Self.sampleBytes))
        let b = try #require(AgentID(text: a.text.uppercased()))
        var other = Self.sampleBytes
        other[19] ^= 1
        let c = try #require(AgentID(bytes: other))
        #expect(a == b)
        #expect(a != c)
        #expect(Set([a, b, c]).count == 2)
    }
}
