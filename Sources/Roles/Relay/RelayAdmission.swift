import Crypto
import Loop
import Mux
import Wire

/// The hello's AUTH checked, and the admission decision (Admission.swift) applied:
/// the per-key and enrollment-rate limits, the registry write, the tunnel marked up.
extension RelayCore {
    func handleAuth(_ c: RelayConn, _ payload: [UInt8], nonce: [UInt8], resumed: ResumeClaim?, now: Instant) {
        switch HelloAuth.verify(payload, nonce: nonce, relayPinDigest: pinDigest, resumed: resumed) {
        case .failure(let r):
            deny(c, reason: r.text, now: now)
        case .success(let v):
            admit(c, v, now: now)
        }
    }

    func admit(_ c: RelayConn, _ v: VerifiedAuth, now: Instant) {
        if drainDeadline != nil { return deny(c, reason: "draining", now: now) }
        let m = v.message
        let request = Admission.Request(id: v.id, role: m.role, hostnames: m.hostnames, token: m.token, chain: v.chain)
        let policy = Admission.Policy(enrollSecret: enrollSecret, clientCA: clientCA, openEnrollment: openEnrollment)
        let entry: Registry.Entry
        let write: Bool
        let enrolled: Bool
        switch Admission.decide(request, registry: registry, policy: policy, wallSeconds: wallSeconds) {
        case .deny(let reason):
            return deny(c, reason: reason, now: now)
        case .admit(let e, let w, let n):
            (entry, write, enrolled) = (e, w, n)
        }
        let share = keyShares.of(v.id)
        if m.role == .forward && share.tunnels >= Limits.relayMaxTunnelsPerKey {
            keyShares.tidy(v.id)
            return deny(c, reason: "tunnels_per_key", now: now)
        }
        if enrolled && !enrollRate.take(now: now) {
            keyShares.tidy(v.id)
            return deny(c, reason: "enrollment_rate", now: now)
        }
        if write {
            do throws(Registry.WriteError) { try registry.put(entry) } catch {
                failLog.log(.error, "registry_write_failed", "error=" + Log.quote(error.message), now: now)
                keyShares.tidy(v.id)
                return deny(c, reason: "registry_write_failed", now: now)
            }
        }
        share.tunnels += 1
        c.share = share
        c.id = v.id
        c.role = m.role
        c.hostnames = m.hostnames.map { Registry.canonicalHostname($0) }
        c.phase = .ready
        stats.admitted += 1
        if v.resumed { stats.admittedResumed += 1 }
        _ = c.mux.sendHello(.welcome, WelcomeMessage(id: v.id, newlyEnrolled: enrolled).encode())
        c.mux.helloFinished(now: now)
        // A resume credential for its next connection: agents that speak version 2, with
        // TLS ending here (behind a TLS-terminating front the agent's TLS is the front's).
        if m.version >= WireProtocol.resumeVersion && !c.upgraded {
            c.resumeRefreshAt = now
            sendCredential(c, now: now)
        }
        if m.role == .reverse {
            if let old = online[v.id], old !== c {
                close(old, reason: "replaced by a new connection", now: now)
            }
            online[v.id] = c
        }
        tunnelLog.log(.info, "agent_admitted", c.label + " via=" + entry.via + (enrolled ? " enrolled=yes" : "")
                      + " peer=" + c.peer.text + (c.upgraded ? " transport=http-upgrade" : "")
                      + (v.resumed ? " resumed=yes" : ""), now: now)
    }

    /// Sends the agent a fresh resume credential if one is due (`resumeRefreshAt`); the
    /// next one is due `Limits.relayResumeRefreshSeconds` later (or at once if it did not fit).
    func sendCredential(_ c: RelayConn, now: Instant) {
        guard let due = c.resumeRefreshAt, now >= due, let id = c.id, let role = c.role else { return }
        guard let m = resumeKeys.issue(id: id, role: role, now: wallSeconds) else {
            c.resumeRefreshAt = nil  // sealing failed: no credentials for this tunnel
            return
        }
        if c.mux.sendResume(m) {
            c.resumeRefreshAt = now.adding(ms: Limits.relayResumeRefreshSeconds * 1000)
        }
    }
}
