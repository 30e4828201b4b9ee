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
public final class Registry {
    public struct Entry {
        public var id: AgentID
        public var role: AgentRole?
        public var enrolledAt: Int64
        public var via: String
        public var hostnames: [String]

        public init(id: AgentID, role: AgentRole?, enrolledAt: Int64, via: String, hostnames: [String]) {
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
            guard f.count == 5, let id = AgentID(text: f[0]), let at = Int64(f[2]),
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
            if r.entries[id] == nil { r.order.append(id) }
            r.entries[id] = Entry(id: id, role: role, enrolledAt: at, via: f[3], hostnames: hosts)
        }
        return r
    }

    public func entry(_ id: AgentID) -> Entry? { entries[id] }

    /// The agent that holds `hostname` (case-insensitive), if any.
    public func owner(ofHostname hostname: String) -> AgentID? {
        let h = Registry.canonicalHostname(hostname)
        for id in order where Text.contains(entries[id]?.hostnames ?? [], h) { return id }
        return nil
    }

    /// Adds or replaces an entry and saves the file.
    public func put(_ e: Entry) throws(SysError) {
        let old = entries[e.id]
        entries[e.id] = e
        if old == nil { order.append(e.id) }
        do throws(SysError) {
            try save()
        } catch {
            entries[e.id] = old
            if old == nil { order.removeLast() }
            throw error
        }
    }

    func save() throws(SysError) {
        var text = Registry.header + "\n"
        for id in order {
            guard let e = entries[id] else { continue }
            text += e.id.text + " " + (e.role?.text ?? "-") + " " + String(e.enrolledAt) + " " + e.via + " "
            text += e.hostnames.isEmpty ? "-" : Text.join(e.hostnames, ",")
            text += "\n"
        }
        try Files.writeAtomically(path, Array(text.utf8), mode: 0o600)
    }

    /// Lowercase ASCII: hostnames match case-insensitively.
    public static func canonicalHostname(_ h: String) -> String { Text.lowercasedASCII(h) }
}
