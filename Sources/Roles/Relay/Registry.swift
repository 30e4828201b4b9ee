import Loop
import Wire

/// The relay's registry of admitted agent keys, persisted in `--state`.
///
/// A key is registered once (with a token, a session-CA certificate or open
/// enrollment); later connections are admitted by the key alone. Lookups by ID and by
/// hostname are dictionary lookups.
///
/// On disk: a snapshot `registry` (rewritten atomically: temp file, fsync, rename) and
/// a journal `registry.journal` that each change appends one line to (fdatasync'd
/// before the agent is admitted): O(1) work per enrollment. When the journal has grown
/// past the snapshot's size (`Limits.registryJournalMinLines` at least) the registry is
/// compacted: a new snapshot, then an empty journal. Journal lines hold whole entries,
/// so replaying one over a snapshot that already has it changes nothing: a crash
/// between the two steps loses nothing. A kill -9 or a power loss can tear only the
/// journal's last line, which carries a checksum: loading stops at the first line that
/// does not check, says so, and cuts it off before appending again.
///
/// Snapshot format (text, one agent per line, fields separated by one space):
///
///     # agent relay registry v1
///     <id> <role: reverse|forward|-> <enrolled: Unix seconds> <via: open|token|ca> <hostnames: a,b or ->
///          [<token: the hex id of the enrollment token that enrolled it, when one did>]
///
/// Journal lines: `+ <snapshot fields> #<FNV-1a 32 of what precedes " #", hex>` (a key
/// added or changed) and `- <id> #<checksum>` (a key removed).
public final class Registry {
    public struct Entry {
        public var id: AgentID
        public var role: AgentRole?
        public var enrolledAt: Int64
        public var via: String
        public var hostnames: [String]
        /// The id (`EnrollmentToken.idText`) of the token that enrolled this key, if one did.
        public var token: String?

        public init(id: AgentID, role: AgentRole?, enrolledAt: Int64, via: String, hostnames: [String],
                    token: String? = nil) {
            self.token = token
            self.id = id
            self.role = role
            self.enrolledAt = enrolledAt
            self.via = via
            self.hostnames = hostnames
        }

        /// The snapshot line's fields.
        var line: String {
            var t = id.text + " " + (role?.text ?? "-") + " " + String(enrolledAt) + " " + via + " "
            t += hostnames.isEmpty ? "-" : Text.join(hostnames, ",")
            if let tk = token { t += " " + tk }
            return t
        }

        /// Parses a snapshot line's fields; nil if they are not an entry.
        static func parse(_ f: [String]) -> Entry? {
            guard f.count == 5 || f.count == 6, let id = AgentID(text: f[0]), let at = Int64(f[2]),
                  Text.equal(f[3], "open") || Text.equal(f[3], "token") || Text.equal(f[3], "ca")
            else { return nil }
            let role: AgentRole?
            if Text.equal(f[1], "reverse") {
                role = .reverse
            } else if Text.equal(f[1], "forward") {
                role = .forward
            } else if Text.equal(f[1], "-") {
                role = nil
            } else {
                return nil
            }
            var hosts: [String] = []
            if !Text.equal(f[4], "-") {
                for h in Text.split(f[4], UInt8(ascii: ","), omittingEmpty: true) {
                    guard OpenPayload.isHostnameBytes(Array(h.utf8)) else { return nil }
                    hosts.append(Registry.canonicalHostname(h))
                }
            }
            var token: String? = nil
            if f.count == 6 {
                guard Registry.tokenKey(f[5]) != nil else { return nil }
                token = f[5]
            }
            return Entry(id: id, role: role, enrolledAt: at, via: f[3], hostnames: hosts, token: token)
        }
    }

    public struct LoadError: Error {
        public let message: String
    }

    public struct WriteError: Error {
        public let message: String
    }

    public static let header = "# agent relay registry v1"
    public let path: String
    var journalPath: String { path + ".journal" }
    public private(set) var entries: [AgentID: Entry] = [:]
    /// Enrollment order (the snapshot's order).
    var order: [AgentID] = []
    /// Who holds each hostname, and how many keys each token enrolled (kept in step with `entries`).
    /// Keyed by the text's bytes: hashing a String would link Swift's Unicode tables
    /// into the release binary (tests/sizes.sh checks).
    var owners: [TextKey: AgentID] = [:]
    var tokenUses: [UInt64: Int] = [:]
    /// The journal, opened at the first change; its lines since the last compaction.
    var journal: AppendFile? = nil
    public private(set) var journalLines = 0
    /// Bytes of a torn or corrupt journal tail found at load, cut off before the next append.
    public private(set) var ignoredJournalBytes = 0
    var validJournalBytes = 0

    init(path: String) { self.path = path }

    public var count: Int { entries.count }

    /// Loads the snapshot at `path` and replays its journal; a missing file is an empty
    /// registry. A snapshot that does not parse is an error (never silently replaced); a
    /// journal is read up to its first line that does not check.
    public static func load(_ path: String) throws(LoadError) -> Registry {
        let r = Registry(path: path)
        if Files.exists(path) {
            let bytes: [UInt8]
            do throws(SysError) { bytes = try Files.read(path, limit: Limits.registryMaxFileBytes) } catch {
                throw LoadError(message: path + ": " + error.message)
            }
            var lineNo = 0
            for line in Text.split(String(decoding: bytes, as: UTF8.self), UInt8(ascii: "\n")) {
                lineNo += 1
                if line.utf8.isEmpty || Text.hasPrefix(line, "#") { continue }
                guard let e = Entry.parse(Text.split(line, UInt8(ascii: " "))) else {
                    throw LoadError(message: path + ":" + String(lineNo) + ": not a registry entry")
                }
                if r.entries[e.id] == nil { r.order.append(e.id) }
                r.index(e)
            }
        }
        if Files.exists(r.journalPath) {
            let bytes: [UInt8]
            do throws(SysError) { bytes = try Files.read(r.journalPath, limit: Limits.registryMaxFileBytes) } catch {
                throw LoadError(message: r.journalPath + ": " + error.message)
            }
            r.replay(bytes)
        }
        return r
    }

    /// Applies every journal line that checks, in order, up to the first that does not.
    func replay(_ bytes: [UInt8]) {
        var start = 0
        while start < bytes.count {
            guard let nl = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else { break }  // torn: no newline
            let line = String(decoding: bytes[start..<nl], as: UTF8.self)
            guard apply(journalLine: line) else { break }
            start = nl + 1
            journalLines += 1
        }
        validJournalBytes = start
        ignoredJournalBytes = bytes.count - start
    }

    /// One journal line: checked, then applied. False if it does not check.
    func apply(journalLine line: String) -> Bool {
        let b = Array(line.utf8)
        guard b.count > 11, b[b.count - 10] == UInt8(ascii: " "), b[b.count - 9] == UInt8(ascii: "#") else { return false }
        let body = Array(b[0..<(b.count - 10)])
        guard Array(Registry.checksum(body).utf8) == Array(b[(b.count - 8)...]) else { return false }  // bytes: no String ==
        let f = Text.split(String(decoding: body, as: UTF8.self), UInt8(ascii: " "))
        guard f.count >= 2 else { return false }
        if Text.equal(f[0], "+"), let e = Entry.parse(Array(f[1...])) {
            if entries[e.id] == nil { order.append(e.id) }
            index(e)
            return true
        }
        if Text.equal(f[0], "-"), f.count == 2, let id = AgentID(text: f[1]) {
            unindex(id)
            return true
        }
        return false
    }

    /// FNV-1a 32 of `bytes`, 8 lowercase hex digits.
    static func checksum(_ bytes: [UInt8]) -> String {
        var h: UInt32 = 0x811c_9dc5
        for x in bytes { h = (h ^ UInt32(x)) &* 0x0100_0193 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 8 - Text.length(hex)) + hex
    }

    static func journalLine(_ body: String) -> [UInt8] {
        let b = Array(body.utf8)
        return b + Array((" #" + checksum(b) + "\n").utf8)
    }

    /// A token id (16 lowercase hex digits: `EnrollmentToken.idText`) as a number.
    static func tokenKey(_ hex: String) -> UInt64? {
        let b = Array(hex.utf8)
        guard b.count == 16 else { return nil }
        var k: UInt64 = 0
        for c in b {
            if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                k = k << 4 | UInt64(c - UInt8(ascii: "0"))
            } else if c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f") {
                k = k << 4 | UInt64(c - UInt8(ascii: "a") + 10)
            } else {
                return nil
            }
        }
        return k
    }

    public func entry(_ id: AgentID) -> Entry? { entries[id] }

    /// The agent that holds `hostname` (case-insensitive), if any.
    public func owner(ofHostname hostname: String) -> AgentID? { owners[TextKey(Registry.canonicalHostname(hostname))] }

    /// How many keys the token with this id enrolled.
    public func keys(enrolledByToken token: String) -> Int { Registry.tokenKey(token).map { tokenUses[$0] ?? 0 } ?? 0 }

    /// Sets `e` in the tables and indexes (the first holder of a hostname keeps it).
    func index(_ e: Entry) {
        unindexFields(e.id)
        entries[e.id] = e
        for h in e.hostnames where owners[TextKey(h)] == nil { owners[TextKey(h)] = e.id }
        if let t = e.token.flatMap(Registry.tokenKey) { tokenUses[t] = (tokenUses[t] ?? 0) + 1 }
    }

    private func unindexFields(_ id: AgentID) {
        guard let old = entries[id] else { return }
        for h in old.hostnames where owners[TextKey(h)] == id { owners.removeValue(forKey: TextKey(h)) }
        if let t = old.token.flatMap(Registry.tokenKey) {
            let n = (tokenUses[t] ?? 1) - 1
            if n <= 0 { tokenUses.removeValue(forKey: t) } else { tokenUses[t] = n }
        }
    }

    func unindex(_ id: AgentID) {
        guard entries[id] != nil else { return }
        unindexFields(id)
        entries.removeValue(forKey: id)
        if let i = order.firstIndex(of: id) { order.remove(at: i) }  // rare (a revocation): O(n) is fine
    }

    /// Adds or replaces an entry: one journal line, on disk before this returns. A new
    /// key beyond `Limits.registryMaxEntries` is refused.
    public func put(_ e: Entry) throws(WriteError) {
        let old = entries[e.id]
        if old == nil && entries.count >= Limits.registryMaxEntries {
            throw WriteError(message: "registry full (" + String(Limits.registryMaxEntries) + " keys)")
        }
        try append(Registry.journalLine("+ " + e.line))
        if old == nil { order.append(e.id) }
        index(e)
        compactIfDue()
    }

    /// Forgets a key (it must enrol again): one journal line.
    public func remove(_ id: AgentID) throws(WriteError) {
        guard entries[id] != nil else { return }
        try append(Registry.journalLine("- " + id.text))
        unindex(id)
        compactIfDue()
    }

    private func append(_ line: [UInt8]) throws(WriteError) {
        do throws(SysError) {
            if journal == nil {
                let j = try AppendFile(journalPath, mode: 0o600)
                if ignoredJournalBytes > 0 {
                    try j.truncate(to: validJournalBytes)
                    ignoredJournalBytes = 0
                }
                journal = j
            }
            try journal!.append(line)
        } catch {
            throw WriteError(message: journalPath + ": " + error.message)
        }
        journalLines += 1
    }

    /// Compacts once the journal has more lines than the snapshot has entries (and at
    /// least `Limits.registryJournalMinLines`): amortised O(1) per change. A failure
    /// leaves snapshot and journal as they were (both still load to the same registry).
    func compactIfDue() {
        guard journalLines >= max(Limits.registryJournalMinLines, entries.count) else { return }
        do throws(WriteError) { try compact() } catch {
            Log.warn("registry_compaction_failed", "error=" + Log.quote(error.message))
        }
    }

    /// Writes a new snapshot, then empties the journal.
    public func compact() throws(WriteError) {
        var text = Registry.header + "\n"
        for id in order {
            guard let e = entries[id] else { continue }
            text += e.line
            text += "\n"
        }
        do throws(SysError) {
            try Files.writeAtomically(path, Array(text.utf8), mode: 0o600)
            if journal == nil { journal = try AppendFile(journalPath, mode: 0o600) }
            try journal!.truncate(to: 0)
        } catch {
            throw WriteError(message: error.message)
        }
        ignoredJournalBytes = 0
        validJournalBytes = 0
        journalLines = 0
    }

    /// Lowercase ASCII: hostnames match case-insensitively.
    public static func canonicalHostname(_ h: String) -> String { Text.lowercasedASCII(h) }
}

/// A dictionary key made of a text's UTF-8 bytes (compared and hashed as bytes).
struct TextKey: Hashable {
    let bytes: [UInt8]
    init(_ s: String) { bytes = Array(s.utf8) }
}
