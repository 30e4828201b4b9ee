import Crypto
import Loop
import Mux
import Wire

/// The hello's AUTH checked, and the admission decision applied.
extension Relay {
    func handleAuth(_ c: RelayConn, _ payload: [UInt8], now: Instant) {
        switch HelloAuth.verify(payload, nonce: c.nonce, relayPinDigest: pinDigest) {
        case .failure(let r):
            deny(c, reason: r.text, now: now)
        case .success(let v):
            admit(c, v, now: now)
        }
    }

    func admit(_ c: RelayConn, _ v: VerifiedAuth, now: Instant) {
        if drainDeadline != nil { return deny(c, reason: "draining", now: now) }
        let m = v.message
        let claimed = m.hostnames.map { Registry.canonicalHostname($0) }
        var entry = registry.entry(v.id)
        var newlyEnrolled = false
        var granted: [String] = entry?.hostnames ?? []
        var via = entry?.via ?? ""
        // A valid token also extends a known key's hostnames.
        if !m.token.isEmpty {
            if let secret = enrollSecret {
                switch EnrollmentToken.verify(m.token, secret: secret, now: Clock.wallSeconds(), device: v.id) {
                case .success(let t):
                    for h in t.hostnames.map({ Registry.canonicalHostname($0) }) where !Text.contains(granted, h) {
                        granted.append(h)
                    }
                    if entry == nil { via = "token" }
                case .failure(let f):
                    if entry == nil { return deny(c, reason: f.text, now: now) }
                }
            } else if entry == nil {
                return deny(c, reason: "token_without_enroll_secret", now: now)
            }
        }
        // A certificate from the session CA admits the key and grants the host names it lists.
        let caValid = clientCA.map { v.chain.verify(trustedBy: $0) == 0 } ?? false
        if caValid {
            for h in v.chain.dnsNames.map({ Registry.canonicalHostname($0) }) where !Text.contains(granted, h) {
                granted.append(h)
            }
        }
        if entry == nil && via.isEmpty {
            if caValid {
                via = "ca"
            } else if config.openEnrollment {
                via = "open"
                granted = claimed
            } else {
                return deny(c, reason: clientCA != nil ? "not_enrolled_or_bad_ca" : "not_enrolled", now: now)
            }
        }
        for h in claimed where !Text.contains(granted, h) {
            return deny(c, reason: "hostname_not_granted", now: now)
        }
        for h in claimed {
            if let owner = registry.owner(ofHostname: h), owner != v.id { return deny(c, reason: "hostname_taken", now: now) }
        }
        if entry == nil && !enrollRate.take(now: now) {
            return deny(c, reason: "enrollment_rate", now: now)
        }
        if entry == nil || !Text.equal(entry!.hostnames, granted) || entry!.role != m.role {
            let e = Registry.Entry(id: v.id, role: m.role, enrolledAt: entry?.enrolledAt ?? Clock.wallSeconds(),
                                   via: via, hostnames: granted)
            do throws(SysError) { try registry.put(e) } catch {
                failLog.log(.error, "registry_write_failed", "error=" + Log.quote(error.message), now: now)
                return deny(c, reason: "registry_write_failed", now: now)
            }
            newlyEnrolled = entry == nil
            entry = e
        }
        let share = keyShares.of(v.id)
        if m.role == .forward && share.tunnels >= Limits.relayMaxTunnelsPerKey {
            keyShares.tidy(v.id)
            return deny(c, reason: "tunnels_per_key", now: now)
        }
        share.tunnels += 1
        c.share = share
        c.id = v.id
        c.role = m.role
        c.hostnames = claimed
        c.phase = .ready
        c.deadline = nil
        stats.admitted += 1
        _ = c.mux.sendHello(.welcome, WelcomeMessage(id: v.id, newlyEnrolled: newlyEnrolled).encode())
        c.mux.helloFinished(now: now)
        if m.role == .reverse {
            if let old = online[v.id], old !== c {
                close(old, reason: "replaced by a new connection", now: now)
            }
            online[v.id] = c
        }
        tunnelLog.log(.info, "agent_admitted", c.label + " via=" + via + (newlyEnrolled ? " enrolled=yes" : "") + " peer=" + c.peer.text
                      + (c.upgraded ? " transport=http-upgrade" : ""), now: now)
    }
}
