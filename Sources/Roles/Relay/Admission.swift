import Crypto
import Wire

/// The relay's admission decision, as a pure function: an agent that proved its key
/// in the hello, the registry, the relay's enrollment policy and the wall-clock time
/// in; admit (with the registry entry to keep) or deny (with the reason for the local
/// log: the agent is told nothing) out. No socket, no clock, no file: the relay applies
/// the decision (writes the registry entry, marks the tunnel up).
///
/// Rules (docs/SECURITY.md, sections 3 and 7):
/// - a known key is admitted by its key alone, in the role it enrolled in; never in the other;
/// - a new key needs a token, a session-CA certificate or open enrollment;
/// - a token grants one role; one not bound to a device enrols at most `uses` keys, and its
///   hostnames go to the first key it enrolled only;
/// - a session-CA certificate admits only in the role it names (`Certificate.agentRole`);
/// - a hostname is claimed only if granted, and never if another key holds it.
enum Admission {
    struct Request {
        var id: AgentID
        var role: AgentRole
        var hostnames: [String]
        var token: [UInt8]
        /// The agent's certificate chain, as verified in the hello (its leaf is the agent's key).
        var chain: Certificate
    }

    struct Policy {
        var enrollSecret: [UInt8]?
        var clientCA: Certificate?
        var openEnrollment: Bool
    }

    enum Decision {
        /// `entry` is what the registry must hold for this key (`write`: it changed);
        /// `enrolled`: the key is new.
        case admit(entry: Registry.Entry, write: Bool, enrolled: Bool)
        case deny(String)
    }

    static func decide(_ r: Request, registry: Registry, policy: Policy, wallSeconds: Int64) -> Decision {
        let known = registry.entry(r.id)
        if let k = known, let role = k.role, role != r.role { return .deny("role_mismatch") }
        let claimed = r.hostnames.map { Registry.canonicalHostname($0) }
        if r.role != .reverse && !claimed.isEmpty { return .deny("hostname_not_granted") }
        var granted: [String] = known?.hostnames ?? []
        var via = known?.via ?? ""
        var tokenID = known?.token

        if !r.token.isEmpty {
            guard let secret = policy.enrollSecret else {
                if known == nil { return .deny("token_without_enroll_secret") }
                return finish(r, known, granted: granted, via: via, token: tokenID, claimed: claimed,
                              registry: registry, now: wallSeconds)
            }
            switch EnrollmentToken.verify(r.token, secret: secret, now: wallSeconds, device: r.id) {
            case .failure(let f):
                if known == nil { return .deny(f.text) }
            case .success(let t):
                if t.role != r.role {
                    if known == nil { return .deny("token_wrong_role") }
                } else {
                    let bound = t.device != nil
                    let used = registry.keys(enrolledByToken: t.idText)
                    if known == nil && !bound && used >= t.uses { return .deny("token_used_up") }
                    // Hostnames go to the key the token names, or to the first key it enrolled.
                    let first = bound || (known == nil && used == 0) || (known?.token.map { Text.equal($0, t.idText) } ?? false)
                    if first {
                        for h in t.hostnames.map({ Registry.canonicalHostname($0) }) where !Text.contains(granted, h) {
                            granted.append(h)
                        }
                    }
                    if known == nil {
                        via = "token"
                        tokenID = t.idText
                    }
                }
            }
        }

        // A certificate from the session CA admits the key in the role it names and grants its hostnames.
        var caRoleMismatch = false
        if let ca = policy.clientCA, r.chain.verify(trustedBy: ca) == 0 {
            if r.chain.agentRole == r.role {
                if r.role == .reverse {
                    for h in r.chain.dnsNames.map({ Registry.canonicalHostname($0) }) where !Text.contains(granted, h) {
                        granted.append(h)
                    }
                }
                if known == nil && via.isEmpty { via = "ca" }
            } else {
                caRoleMismatch = true
            }
        }
        if known == nil && via.isEmpty {
            if policy.openEnrollment {
                via = "open"
                granted = claimed
            } else if caRoleMismatch {
                return .deny("certificate_wrong_role")
            } else {
                return .deny(policy.clientCA != nil ? "not_enrolled_or_bad_ca" : "not_enrolled")
            }
        }
        return finish(r, known, granted: granted, via: via, token: tokenID, claimed: claimed, registry: registry,
                      now: wallSeconds)
    }

    private static func finish(_ r: Request, _ known: Registry.Entry?, granted: [String], via: String, token: String?,
                               claimed: [String], registry: Registry, now: Int64) -> Decision {
        for h in claimed where !Text.contains(granted, h) { return .deny("hostname_not_granted") }
        for h in claimed {
            if let owner = registry.owner(ofHostname: h), owner != r.id { return .deny("hostname_taken") }
        }
        // A granted name another key already holds stays with that key (never two owners).
        let mine = granted.filter { registry.owner(ofHostname: $0).map { $0 == r.id } ?? true }
        let e = Registry.Entry(id: r.id, role: r.role, enrolledAt: known?.enrolledAt ?? now, via: via,
                               hostnames: mine, token: token)
        let changed = known == nil || !Text.equal(known!.hostnames, mine) || known!.role != r.role
        return .admit(entry: e, write: changed, enrolled: known == nil)
    }
}
