import Crypto
import Loop
import Mux
import Wire

/// Closing tunnels, draining on SIGTERM, reloading on SIGHUP.
extension Relay {
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
        if c.phase == .ready {
            c.link.tls.sendCloseNotify()
            c.link.flush()
            tunnelLog.log(.info, "tunnel_down", c.label + " reason=" + Log.quote(reason ?? "closed"), now: now)
        }
        c.reg.remove(epoll)  // before the fd is closed: its number may be reused at once
        c.link.close()
        retired.append(c)
        c.phase = .closing
    }

    // MARK: - Signals

    func startDrain(now: Instant) {
        drainDeadline = now.adding(ms: config.drainTimeoutMs)
        if listener >= 0 {
            listenerReg.remove(epoll)  // before the fd is closed: its number may be reused at once
            Socket.close(listener)
            listener = -1
        }
        for (_, c) in conns {
            if c.phase == .ready {
                c.mux.goaway(.goingAway, retryAfterMs: RelayConfig.goawayRetryAfterMs)
                c.dirty = true
            } else {
                close(c, reason: nil, now: now)
            }
        }
        Log.info("relay_draining", "tunnels=" + String(conns.count) + " timeout_ms=" + String(config.drainTimeoutMs))
    }

    func reload() {
        if let f = config.enrollSecretFile {
            do throws(StartupError) {
                enrollSecret = try SecretFile.load(f)
            } catch {
                Log.error("reload_failed", "what=enroll_secret error=" + Log.quote(error.message))
            }
        }
        if let f = config.clientCAFile {
            do throws(IdentityError) {
                clientCA = try IdentityFile.certificate(f)
            } catch {
                Log.error("reload_failed", "what=client_ca error=" + Log.quote(error.message))
            }
        }
        Log.info("reloaded", "tunnels=" + String(conns.count))
    }
}
