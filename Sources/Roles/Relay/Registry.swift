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
    public struct Entry: Equatable {
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
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            let line = String(raw)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let f = line.split(separator: " ", omittingEmptySubsequences: false).map { String($0) }
            guard f.count == 5, let id = AgentID(text: f[0]), let at = Int64(f[2]),
                  f[3] == "open" || f[3] == "token" || f[3] == "ca"
            else { throw LoadError(message: path + ":" + String(lineNo) + ": not a registry entry") }
            let role: AgentRole?
            switch f[1] {
            case "reverse": role = .reverse
            case "forward": role = .forward
            case "-": role = nil
            default: throw LoadError(message: path + ":" + String(lineNo) + ": bad role '" + f[1] + "'")
            }
            var hosts: [String] = []
            if f[4] != "-" {
                for h in f[4].split(separator: ",") {
                    guard OpenPayload.isHostnameBytes(Array(h.utf8)) else {
                        throw LoadError(message: path + ":" + String(lineNo) + ": bad hostname")
                    }
                    hosts.append(Registry.canonicalHostname(String(h)))
                }
            }
            r.entries[id] = Entry(id: id, role: role, enrolledAt: at, via: f[3], hostnames: hosts)
        }
        return r
    }

    public func entry(_ id: AgentID) -> Entry? { entries[id] }

    /// The agent that holds `hostname` (case-insensitive), if any.
    public func owner(ofHostname hostname: String) -> AgentID? {
        let h = Registry.canonicalHostname(hostname)
        for (id, e) in entries where e.hostnames.contains(h) { return id }
        return nil
    }

    /// Adds or replaces an entry and saves the file.
    public func put(_ e: Entry) throws(SysError) {
        let old = entries[e.id]
        entries[e.id] = e
        do throws(SysError) {
            try save()
        } catch {
            entries[e.id] = old
            throw error
        }
    }

    func save() throws(SysError) {
        var text = Registry.header + "\n"
        for e in entries.values.sorted(by: { $0.enrolledAt < $1.enrolledAt || ($0.enrolledAt == $1.enrolledAt && $0.id.text < $1.id.text) }) {
            text += e.id.text + " " + (e.role?.text ?? "-") + " " + String(e.enrolledAt) + " " + e.via + " "
            text += e.hostnames.isEmpty ? "-" : e.hostnames.joined(separator: ",")
            text += "\n"
        }
        try Files.writeAtomically(path, Array(text.utf8), mode: 0o600)
    }

    /// Lowercase ASCII: hostnames match case-insensitively.
    public static func canonicalHostname(_ h: String) -> String {
        var b = Array(h.utf8)
        for i in 0..<b.count where b[i] >= 0x41 && b[i] <= 0x5a { b[i] += 0x20 }
        return String(decoding: b, as: UTF8.self)
    }
}
