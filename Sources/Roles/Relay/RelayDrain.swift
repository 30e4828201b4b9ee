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

    /// While draining: once no stream is left (or at the deadline), every tunnel is closed and the relay stops.
    func drainStep(deadline d: Instant, now: Instant) {
        let streams = conns.values.reduce(0) { $0 + $1.joins.count + $1.sniStreams.count }
        guard streams == 0 || now >= d else { return }
        for (_, c) in conns { close(c, reason: streams == 0 ? "relay stopping" : "drain timeout", now: now) }
        conns.removeAll()
        retired.removeAll()
        for (_, s) in sniConns { closeSni(s, abort: true) }
        sniConns.removeAll()
        Log.info("relay_stopped", "streams_reset=" + String(streams))
        stopped = true
    }
}
