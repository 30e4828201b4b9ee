import Crypto
import Wire

/// A configuration file or value that E2E cannot use. `message` names the line
/// and the reason; it never repeats the offending text (a misplaced private key
/// pasted into the file must not end up in a log).
public struct E2EConfigError: Error, Equatable {
    public let message: String

    public init(_ message: String) { self.message = message }
}

/// The parsed `--authorized-keys` file: the IDs of the forwards a reverse admits.
///
/// Format: one agent ID per line (32 base32 characters, any case, '-' allowed for
/// grouping, as printed by `agent id`); '#' starts a comment that runs to the end
/// of the line; blank lines and surrounding spaces, tabs and CRs are ignored; a
/// UTF-8 byte order mark at the start is skipped. Anything else on a line is an
/// error that names the line: a file that does not say exactly what it means is
/// refused at start (and on SIGHUP the old list stays).
public struct AuthorizedKeys: Equatable {
    /// Each ID once, in file order (an array, not a Set: lists are short, and a Set of
    /// AgentID costs the aarch64 build 4 KB of generic code).
    public var ids: [AgentID]

    public init(ids: [AgentID]) { self.ids = ids }

    public static func parse(_ text: String) -> Result<AuthorizedKeys, E2EConfigError> {
        var ids: [AgentID] = []
        var line: [UInt8] = []
        var lineNumber = 1
        var bytes = Array(text.utf8)
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { bytes.removeFirst(3) }
        var i = 0
        while i <= bytes.count {
            if i == bytes.count || bytes[i] == UInt8(ascii: "\n") {
                switch parseLine(line) {
                case .empty: break
                case .id(let id): if !ids.contains(id) { ids.append(id) }
                case .bad(let why):
                    return .failure(E2EConfigError("line " + String(lineNumber) + ": " + why))
                }
                line.removeAll(keepingCapacity: true)
                lineNumber += 1
            } else {
                line.append(bytes[i])
            }
            i += 1
        }
        return .success(AuthorizedKeys(ids: ids))
    }

    enum Line {
        case empty
        case id(AgentID)
        case bad(String)
    }

    static func parseLine(_ raw: [UInt8]) -> Line {
        var end = raw.firstIndex(of: UInt8(ascii: "#")) ?? raw.count
        var start = 0
        while start < end && isBlank(raw[start]) { start += 1 }
        while end > start && isBlank(raw[end - 1]) { end -= 1 }
        if start == end { return .empty }
        let word = Array(raw[start..<end])
        if word.contains(where: isBlank) { return .bad("expected one agent ID, found several words") }
        var digits = 0
        for c in word where c != UInt8(ascii: "-") {
            let lower = c | 0x20
            let ok = (lower >= UInt8(ascii: "a") && lower <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "2") && c <= UInt8(ascii: "7"))
            if !ok { return .bad("not an agent ID (only letters a-z and digits 2-7 are allowed)") }
            digits += 1
        }
        if digits != AgentID.textLength {
            return .bad("not an agent ID (expected " + String(AgentID.textLength) + " characters, found "
                        + String(digits) + ")")
        }
        // 32 characters x 5 bits = exactly 20 bytes: no padding bits to get wrong, so
        // this only fails if AgentID's text rules change.
        guard let id = AgentID(text: String(decoding: word, as: UTF8.self)) else { return .bad("not an agent ID") }
        return .id(id)
    }

    static func isBlank(_ c: UInt8) -> Bool {
        c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r")
    }
}

/// Which forwards a reverse admits to an end-to-end session. Default deny: with
/// no keys, no CA and `any` false nobody is admitted.
///
/// A forward is admitted when any one of these holds (checked in this order):
///   1. `any` (`--authorize-any`);
///   2. its key's ID is in `keys` (`--authorized-keys`);
///   3. `ca` is set (`--authorized-ca`) and its certificate verifies against `ca`
///      now (signature chain, validity dates, key usage). mbedTLS treats every
///      certificate in `ca` as a trust anchor, so a CA file may hold several. A
///      resumed session keeps only the forward's leaf certificate, so the issuing
///      CA itself must be in the file (a session CA issues directly: `agent ca issue`).
public struct Authorization {
    public var keys: AuthorizedKeys?
    public var ca: Certificate?
    public var any: Bool

    public init(keys: AuthorizedKeys?, ca: Certificate?, any: Bool) {
        self.keys = keys
        self.ca = ca
        self.any = any
    }

    public static let denyAll = Authorization(keys: nil, ca: nil, any: false)
}
