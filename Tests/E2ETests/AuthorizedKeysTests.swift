import E2E
import Testing
import Wire

@Suite struct AuthorizedKeysTests {
    // Two fixed IDs (20 bytes each, base32 text).
    static let a = AgentID(bytes: [UInt8](0..<20))!
    static let b = AgentID(bytes: [UInt8](repeating: 0xA5, count: 20))!

    static func ok(_ text: String) -> Set<AgentID>? {
        if case .success(let k) = AuthorizedKeys.parse(text) { return Set(k.ids) }
        return nil
    }

    static func error(_ text: String) -> String? {
        if case .failure(let e) = AuthorizedKeys.parse(text) { return e.message }
        return nil
    }

    @Test func accepted() {
        let a = Self.a.text
        let b = Self.b.text
        let upper = String(decoding: a.utf8.map { $0 >= 0x61 && $0 <= 0x7a ? $0 - 0x20 : $0 }, as: UTF8.self)
        let grouped = String(a.prefix(8)) + "-" + String(a.dropFirst(8).prefix(8)) + "-" + String(a.dropFirst(16))
        let table: [(String, Set<AgentID>)] = [
            ("", []),
            ("\n\n", []),
            ("# only a comment\n", []),
            (a, [Self.a]),
            (a + "\n", [Self.a]),
            (a + "\n" + b + "\n", [Self.a, Self.b]),
            ("# operators\n\n" + a + "   # alice's laptop\n\t" + b + "\t\n", [Self.a, Self.b]),
            (a + "\r\n" + b + "\r\n", [Self.a, Self.b]),          // CRLF
            (upper + "\n", [Self.a]),                              // uppercase IDs
            (grouped + "\n", [Self.a]),                            // '-' groups
            (a + "\n" + a + "\n", [Self.a]),                       // duplicates are fine
            ("\u{FEFF}" + a + "\n", [Self.a]),                     // byte order mark
            ("   \n\t\n" + b, [Self.b]),                           // blank lines with spaces, no final newline
        ]
        for (text, ids) in table {
            #expect(Self.ok(text) == ids, "\(text.debugDescription)")
        }
    }

    @Test func refusedWithTheLineNumber() {
        let a = Self.a.text
        let table: [(String, String)] = [
            ("nonsense", "line 1: not an agent ID (expected 32 characters, found 8)"),
            (a + "\n\n# c\n" + String(a.dropLast()) + "\n", "line 4: not an agent ID (expected 32 characters, found 31)"),
            (a + "x\n", "line 1: not an agent ID (expected 32 characters, found 33)"),
            ("\n" + a + " " + a + "\n", "line 2: expected one agent ID, found several words"),
            (String(a.dropLast()) + "1\n", "line 1: not an agent ID (only letters a-z and digits 2-7 are allowed)"),
            ("sha256:" + String(repeating: "ab", count: 32), "line 1: not an agent ID (only letters a-z and digits 2-7 are allowed)"),
            ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI...\n", "line 1: expected one agent ID, found several words"),
        ]
        for (text, message) in table {
            #expect(Self.error(text) == message, "\(text.debugDescription)")
        }
    }

    /// The message never repeats the line's content (it may be a secret pasted by mistake).
    @Test func messagesDoNotEchoTheInput() {
        let secret = "-----BEGIN-EC-PRIVATE-KEY-----MHcCAQEEIsecretsecret"
        let m = Self.error(secret) ?? ""
        #expect(!m.isEmpty)
        #expect(!m.contains("secret") && !m.contains("BEGIN"))
    }
}
