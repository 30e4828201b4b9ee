import Loop
import Wire

/// Which targets a reverse may connect to (`--allow HOST:PORT|HOST:*`, repeatable).
/// With no rule, loopback addresses on any port (127.0.0.0/8, ::1, and names
/// that resolve only to them). Rules replace the default; a rule matches a
/// target by its host name (case-insensitive) or, for a numeric rule, by the
/// address the target resolves to; the port must match unless the rule says `*`.
/// The address checked is the one connected to (no second lookup).
public struct AllowList {
    public var rules: [HostPort]

    public init(rules: [HostPort]) { self.rules = rules }

    public var isDefault: Bool { rules.isEmpty }

    /// "loopback:*" or the rules as given.
    public var text: String { rules.isEmpty ? "loopback:*" : Text.join(rules.map { $0.text }, ",") }

    public enum Precheck {
        /// A rule names this host: allowed whatever it resolves to.
        case allowedByName
        /// Only the address it resolves to can tell (a numeric rule, or the default list).
        case dependsOnAddress
        /// No rule can allow it: refused without a DNS query.
        case denied
    }

    /// Before any DNS query for the host name of `target`: can a rule allow it at all?
    public func precheck(target: HostPort) -> Precheck {
        if rules.isEmpty { return .dependsOnAddress }
        let host = Registry.canonicalHostname(target.host)
        var numeric = false
        for r in rules {
            if let p = r.port, p != target.port { continue }
            if Text.equal(Registry.canonicalHostname(r.host), host) { return .allowedByName }
            if SocketAddress.numeric(r.host, port: 0) != nil { numeric = true }
        }
        return numeric ? .dependsOnAddress : .denied
    }

    /// Whether connecting to `address` for the requested `target` is allowed.
    public func allows(target: HostPort, address: SocketAddress) -> Bool {
        if rules.isEmpty { return address.isLoopback }
        let host = Registry.canonicalHostname(target.host)
        for r in rules {
            if let p = r.port, p != target.port { continue }
            if Text.equal(Registry.canonicalHostname(r.host), host) { return true }
            if let ra = SocketAddress.numeric(r.host, port: address.port), ra.ipBytes == address.ipBytes { return true }
        }
        return false
    }
}
