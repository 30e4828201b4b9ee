import Crypto
import Loop
import Mux
import Wire

/// Closing tunnels (a stale session taken over closes here too: RelayAdmission.swift),
/// and draining on SIGTERM.
extension RelayCore {
    /// Closes a connection and resets every stream joined to it.
    func close(_ c: RelayConn, reason: String?, now: Instant) {
        if c.link.isClosed { return }
        for (_, j) in c.joins {
            if j.fwd === c {
                j.dev.mux.reset(j.devStream, .closed)
                j.dev.dirty = true
            } else if j.accepted {
                j.fwd.mux.reset(j.fwdStream, .closed)
                j.fwd.dirty = true
            } else {
                j.fwd.mux.refuse(j.fwdStream, .noSuchDevice)
                j.fwd.dirty = true
            }
            j.detach()
        }
        for (_, s) in c.sniStreams { closeSni(s, abort: true) }
        c.sniStreams.removeAll()
        if let id = c.id, let o = online[id], o === c { online.removeValue(forKey: id) }
        if let share = c.share, let id = c.id {
            share.tunnels -= 1
            c.share = nil
            keyShares.tidy(id)
        }
        if c.phase.isReady {
            c.link.tls.sendCloseNotify()
            c.link.flush()
            tunnelLog.log(.info, "tunnel_down", c.label + " reason=" + Log.quote(reason ?? "closed"), now: now)
        }
        c.link.close()
        retired.append(c)
        c.phase = .closing(deadline: now)
    }

    // MARK: - Drain

    func startDrain(now: Instant) {
        drainDeadline = now.adding(ms: drainTimeoutMs)
        for (_, c) in conns {
            if c.phase.isReady {
                c.mux.goaway(.goingAway, retryAfterMs: RelayConfig.goawayRetryAfterMs)
                c.dirty = true
            } else {
                close(c, reason: nil, now: now)
            }
        }
        Log.info("relay_draining", "tunnels=" + String(conns.count) + " timeout_ms=" + String(drainTimeoutMs))
    }
}
