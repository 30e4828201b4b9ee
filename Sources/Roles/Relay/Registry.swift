import Loop
import Wire

/// The relay's registry of admitted agent keys, persisted in `--state`.
///
/// A key is registered once (with a token, a session-CA certificate or open
/// enrollment); later connections are admitted by the key alone. The file is
/// rewritten atomically on every change (temp file, fsync, rename), so a kill -9
/// or a power loss leaves the old or the new registry, never a torn one.
///
/// Format (text, one agent per line, fields separated by one space):
///
///     # agent relay registry v1
///     <id> <role: reverse|forward|-> <enrolled: Unix seconds> <via: open|token|ca> <hostnames: a,b or ->
///          [<token: the hex id of the enrollment token that enrolled it, when one did>]
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
    }

    public struct LoadError: Error {
        public let message: String
    }

    public static let header = "# agent relay registry v1"
    public let path: String
    public private(set) var entries: [AgentID: Entry] = [:]
    /// Enrollment order (the file's order).
    var order: [AgentID] = []
    /// Who holds each hostname, and how many keys each token enrolled (kept in step with `entries`).
    var owners: [String: AgentID] = [:]
    var tokenUses: [String: Int] = [:]

    init(path: String) { self.path = path }

    public var count: Int { entries.count }

    /// Loads the registry at `path`; a missing file is an empty registry. A file
    /// that does not parse is an error (never silently replaced).
    public static func load(_ path: String) throws(LoadError) -> Registry {
        let r = Registry(path: path)
        guard Files.exists(path) else { return r }
        let text: String
        do throws(SysError) { text = try Files.readText(path) } catch {
            throw LoadError(message: path + ": " + error.message)
        }
        var lineNo = 0
        for line in Text.split(text, UInt8(ascii: "\n")) {
            lineNo += 1
            if line.utf8.isEmpty || Text.hasPrefix(line, "#") { continue }
            let f = Text.split(line, UInt8(ascii: " "))
            guard f.count == 5 || f.count == 6, let id = AgentID(text: f[0]), let at = Int64(f[2]),
                  Text.equal(f[3], "open") || Text.equal(f[3], "token") || Text.equal(f[3], "ca")
            else { throw LoadError(message: path + ":" + String(lineNo) + ": not a registry entry") }
            let role: AgentRole?
            if Text.equal(f[1], "reverse") {
                role = .reverse
            } else if Text.equal(f[1], "forward") {
                role = .forward
            } else if Text.equal(f[1], "-") {
                role = nil
            } else {
                throw LoadError(message: path + ":" + String(lineNo) + ": bad role '" + f[1] + "'")
            }
            var hosts: [String] = []
            if !Text.equal(f[4], "-") {
                for h in Text.split(f[4], UInt8(ascii: ","), omittingEmpty: true) {
                    guard OpenPayload.isHostnameBytes(Array(h.utf8)) else {
                        throw LoadError(message: path + ":" + String(lineNo) + ": bad hostname")
                    }
                    hosts.append(Registry.canonicalHostname(h))
                }
            }
            var token: String? = nil
            if f.count == 6 && !Text.equal(f[5], "-") {
                guard Text.length(f[5]) <= 64 else { throw LoadError(message: path + ":" + String(lineNo) + ": bad token id") }
                token = f[5]
            }
            if r.entries[id] == nil { r.order.append(id) }
            r.index(Entry(id: id, role: role, enrolledAt: at, via: f[3], hostnames: hosts, token: token))
        }
        return r
    }

    public func entry(_ id: AgentID) -> Entry? { entries[id] }

    /// The agent that holds `hostname` (case-insensitive), if any.
    public func owner(ofHostname hostname: String) -> AgentID? { owners[Registry.canonicalHostname(hostname)] }

    /// How many keys the token with this id enrolled.
    public func keys(enrolledByToken token: String) -> Int { tokenUses[token] ?? 0 }

    /// Sets `e` in the tables and indexes (the first holder of a hostname keeps it).
    func index(_ e: Entry) {
        if let old = entries[e.id] {
            for h in old.hostnames where owners[h] == e.id { owners.removeValue(forKey: h) }
            if let t = old.token { tokenUses[t] = (tokenUses[t] ?? 1) - 1 }
        }
        entries[e.id] = e
        for h in e.hostnames where owners[h] == nil { owners[h] = e.id }
        if let t = e.token { tokenUses[t] = (tokenUses[t] ?? 0) + 1 }
    }

    /// Adds or replaces an entry and saves the file. A new key beyond
    /// `Limits.registryMaxEntries` is refused.
    public func put(_ e: Entry) throws(WriteError) {
        let old = entries[e.id]
        if old == nil && entries.count >= Limits.registryMaxEntries {
            throw WriteError(message: "registry full (" + String(Limits.registryMaxEntries) + " keys)")
        }
        index(e)
        if old == nil { order.append(e.id) }
        do throws(SysError) {
            try save()
        } catch {
            if let o = old { index(o) } else {
                for h in e.hostnames where owners[h] == e.id { owners.removeValue(forKey: h) }
                if let t = e.token { tokenUses[t] = (tokenUses[t] ?? 1) - 1 }
                entries.removeValue(forKey: e.id)
                order.removeLast()
            }
            throw WriteError(message: error.message)
        }
    }

    public struct WriteError: Error {
        public let message: String
    }

    func save() throws(SysError) {
        var text = Registry.header + "\n"
        for id in order {
            guard let e = entries[id] else { continue }
            text += e.id.text + " " + (e.role?.text ?? "-") + " " + String(e.enrolledAt) + " " + e.via + " "
            text += e.hostnames.isEmpty ? "-" : Text.join(e.hostnames, ",")
            if let t = e.token { text += " " + t }
            text += "\n"
        }
        try Files.writeAtomically(path, Array(text.utf8), mode: 0o600)
    }

    /// Lowercase ASCII: hostnames match case-insensitively.
    public static func canonicalHostname(_ h: String) -> String { Text.lowercasedASCII(h) }
}
