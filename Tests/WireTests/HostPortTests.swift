import Testing
import Wire

/// HostPort.parse: "host:port" as typed in flags and allow rules. Table-driven:
/// every row is one input and the exact result (or nil).
@Suite struct HostPortTests {
    struct Valid: CustomTestStringConvertible, Sendable {
        let input: String
        let wildcard: Bool
        let host: String
        let port: UInt16?
        /// `text` of the parsed value (how it is printed back).
        let text: String
        var testDescription: String { input }
    }

    static let valid: [Valid] = [
        Valid(input: "127.0.0.1:22", wildcard: false, host: "127.0.0.1", port: 22, text: "127.0.0.1:22"),
        Valid(input: "localhost:80", wildcard: false, host: "localhost", port: 80, text: "localhost:80"),
        Valid(input: "relay.example.com:443", wildcard: false, host: "relay.example.com", port: 443,
              text: "relay.example.com:443"),
        Valid(input: "a:1", wildcard: false, host: "a", port: 1, text: "a:1"),
        Valid(input: "h:65535", wildcard: false, host: "h", port: 65535, text: "h:65535"),
        Valid(input: "[::1]:443", wildcard: false, host: "::1", port: 443, text: "[::1]:443"),
        Valid(input: "[fe80::1]:22", wildcard: false, host: "fe80::1", port: 22, text: "[fe80::1]:22"),
        Valid(input: "[::ffff:127.0.0.1]:8080", wildcard: false, host: "::ffff:127.0.0.1", port: 8080,
              text: "[::ffff:127.0.0.1]:8080"),
        Valid(input: "[::]:7443", wildcard: false, host: "::", port: 7443, text: "[::]:7443"),
        Valid(input: "0.0.0.0:7443", wildcard: false, host: "0.0.0.0", port: 7443, text: "0.0.0.0:7443"),
        // Wildcard port only where allowed (allow rules).
        Valid(input: "127.0.0.1:*", wildcard: true, host: "127.0.0.1", port: nil, text: "127.0.0.1:*"),
        Valid(input: "[::1]:*", wildcard: true, host: "::1", port: nil, text: "[::1]:*"),
        Valid(input: "localhost:22", wildcard: true, host: "localhost", port: 22, text: "localhost:22"),
        // The longest host allowed.
        Valid(input: String(repeating: "h", count: 253) + ":1", wildcard: false,
              host: String(repeating: "h", count: 253), port: 1, text: String(repeating: "h", count: 253) + ":1"),
    ]

    @Test(arguments: valid)
    func parsesValidInput(_ row: Valid) throws {
        let hp = try #require(HostPort.parse(row.input, allowWildcard: row.wildcard))
        #expect(hp.host == row.host)
        #expect(hp.port == row.port)
        #expect(hp.text == row.text)
        // What is printed parses back to the same value.
        #expect(HostPort.parse(hp.text, allowWildcard: row.wildcard) == hp)
    }

    struct Invalid: CustomTestStringConvertible, Sendable {
        let input: String
        let wildcard: Bool
        let why: String
        var testDescription: String { why + ": " + input }
    }

    static let invalid: [Invalid] = [
        Invalid(input: "", wildcard: false, why: "empty"),
        Invalid(input: ":22", wildcard: false, why: "empty host"),
        Invalid(input: "[]:22", wildcard: false, why: "empty bracketed host"),
        Invalid(input: "host", wildcard: false, why: "no port"),
        Invalid(input: "host:", wildcard: false, why: "empty port"),
        Invalid(input: "host:0", wildcard: false, why: "port 0"),
        Invalid(input: "host:00", wildcard: false, why: "port 0 with leading zero"),
        Invalid(input: "host:65536", wildcard: false, why: "port 65536"),
        Invalid(input: "host:99999", wildcard: false, why: "port 99999"),
        Invalid(input: "host:100000", wildcard: false, why: "six-digit port"),
        Invalid(input: "host:18446744073709551617", wildcard: false, why: "port beyond UInt64"),
        Invalid(input: "host:-1", wildcard: false, why: "negative port"),
        Invalid(input: "host:+22", wildcard: false, why: "signed port"),
        Invalid(input: "host:0x16", wildcard: false, why: "hex port"),
        Invalid(input: "host:2 2", wildcard: false, why: "space in port"),
        Invalid(input: "host: 22", wildcard: false, why: "space before port"),
        Invalid(input: "host:22 ", wildcard: false, why: "trailing space"),
        Invalid(input: " host:22", wildcard: false, why: "leading space"),
        Invalid(input: "ho st:22", wildcard: false, why: "space in host"),
        Invalid(input: "ho\tst:22", wildcard: false, why: "tab in host"),
        Invalid(input: "host\n:22", wildcard: false, why: "newline in host"),
        Invalid(input: "ho\u{7f}st:22", wildcard: false, why: "DEL in host"),
        Invalid(input: "hôst:22", wildcard: false, why: "non-ASCII host"),
        Invalid(input: "::1:22", wildcard: false, why: "IPv6 without brackets"),
        Invalid(input: "fe80::1:22", wildcard: false, why: "IPv6 without brackets"),
        Invalid(input: "[::1:22", wildcard: false, why: "unclosed bracket"),
        Invalid(input: "::1]:22", wildcard: false, why: "unopened bracket"),
        Invalid(input: "[::1]", wildcard: false, why: "bracketed host without port"),
        Invalid(input: "[::1]22", wildcard: false, why: "no colon after bracket"),
        Invalid(input: "[a]b]:22", wildcard: false, why: "bracket inside host"),
        Invalid(input: "a[b:22", wildcard: false, why: "bracket inside host"),
        Invalid(input: "host:*", wildcard: false, why: "wildcard where not allowed"),
        Invalid(input: "[::1]:*", wildcard: false, why: "wildcard where not allowed"),
        Invalid(input: "host:**", wildcard: true, why: "double wildcard"),
        Invalid(input: "host:2*", wildcard: true, why: "partial wildcard"),
        Invalid(input: "*", wildcard: true, why: "wildcard alone"),
        Invalid(input: ":*", wildcard: true, why: "wildcard with empty host"),
        Invalid(input: String(repeating: "h", count: 254) + ":1", wildcard: false, why: "host of 254 bytes"),
    ]

    @Test(arguments: invalid)
    func rejectsInvalidInput(_ row: Invalid) {
        #expect(HostPort.parse(row.input, allowWildcard: row.wildcard) == nil)
    }

    @Test func textOfConstructedValues() {
        #expect(HostPort(host: "::1", port: 22).text == "[::1]:22")
        #expect(HostPort(host: "10.0.0.1", port: nil).text == "10.0.0.1:*")
        #expect(HostPort(host: "example.com", port: 65535).text == "example.com:65535")
    }

    @Test func equalityAndHashing() {
        let a = HostPort.parse("localhost:22")
        let b = HostPort(host: "localhost", port: 22)
        #expect(a == b)
        #expect(HostPort(host: "localhost", port: nil) != b)
        #expect(Set([b, HostPort(host: "localhost", port: 22), HostPort(host: "localhost", port: 23)]).count == 2)
    }
}
