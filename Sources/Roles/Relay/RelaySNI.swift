import Crypto
import Loop
import Mux
import Wire

/// Public TLS connections routed by the SNI hostname to the device that claimed it.
extension RelayCore {
    /// A connection accepted on the SNI listener: waits for its ClientHello; or nil, the
    /// stream closed, when a limit drops it (connections and pending ones, in all and per
    /// source, draining).
    @discardableResult
    func acceptSni(_ stream: ByteStream, peer: SocketAddress, now: Instant) -> SniConn? {
        if drainDeadline != nil {
            drop(stream, peer, "sni_draining", now: now)
            return nil
        }
        let source = SourceKey(source: peer)
        let open: Gate.Ticket
        let pend: Gate.Ticket
        switch sniOpen.enter(source) {
        case .success(let t): open = t
        case .failure(let r):
            drop(stream, peer, r == .full ? "sni_limit" : "sni_per_source", now: now)
            return nil
        }
        switch sniPending.enter(source) {
        case .success(let t): pend = t
        case .failure(let r):
            open.leave()
            drop(stream, peer, r == .full ? "sni_pending_limit" : "sni_pending_per_source", now: now)
            return nil
        }
        let serial = nextSerial
        nextSerial += 1
        let s = SniConn(serial: serial, stream: stream, peer: peer, pendingTicket: pend, connectionTicket: open, now: now)
        sniConns[serial] = s
        return s
    }

    func driveSni(_ s: SniConn, now: Instant) {
        if s.closed { return }
        switch s.phase {
        case .hello(let deadline):
            switch ClientHelloSNI.parse(s.splice.fromLocal.readable) {
            case .needMore:
                if s.splice.localEOF || s.splice.localError != nil {
                    sniRefuse(s, reason: "closed_before_hello", now: now)
                } else if now >= deadline {
                    sniRefuse(s, reason: "hello_timeout", now: now)
                }
            case .noSNI:
                sniRefuse(s, reason: "no_sni", now: now)
            case .malformed:
                sniRefuse(s, reason: "not_tls", now: now)
            case .hostname(let h):
                routeSni(s, Registry.canonicalHostname(h), now: now)
            }
        case .opening:
            break
        case .open:
            guard let dev = s.dev else { return }
            if s.splice.pump(dev.mux) { dev.dirty = true }
            if s.idleExpired(now: now) {
                Log.debug("sni_idle", "host=" + s.hostname + " client=" + s.peer.text)
                RelayStats.bump(&stats.drops, "sni_idle")
                dev.mux.reset(s.splice.streamID, .timeout)
                dev.sniStreams.removeValue(forKey: s.splice.streamID)
                dev.dirty = true
                closeSni(s, abort: true)
                return
            }
            if let e = s.splice.localError {
                Log.debug("sni_reset", "host=" + s.hostname + " client=" + s.peer.text + " error=" + Log.quote(SysError.describe(e)))
                dev.mux.reset(s.splice.streamID, .closed)
                dev.sniStreams.removeValue(forKey: s.splice.streamID)
                dev.dirty = true
                closeSni(s, abort: true)
            } else if s.splice.isComplete(dev.mux) {
                dev.mux.release(s.splice.streamID)
                dev.sniStreams.removeValue(forKey: s.splice.streamID)
                dev.dirty = true
                Log.debug("sni_closed", "host=" + s.hostname + " client=" + s.peer.text + " in=" + String(s.splice.bytesIn)
                          + " out=" + String(s.splice.bytesOut))
                closeSni(s, abort: false)
            }
        }
    }

    /// Finds the device that claimed `host` and opens a stream to it for the client.
    func routeSni(_ s: SniConn, _ host: String, now: Instant) {
        s.hostname = host
        guard let owner = registry.owner(ofHostname: host), let dev = online[owner], dev.phase.isReady,
              Text.contains(dev.hostnames, host) else {
            sniRefuse(s, reason: "unknown_hostname", now: now)
            return
        }
        guard dev.sniStreams.count < Limits.sniMaxStreamsPerDevice else {
            sniRefuse(s, reason: "device_share", now: now)
            return
        }
        let caller = PeerAddress(ip: s.peer.ipBytes, port: s.peer.port)
        guard let sid = dev.mux.open(.hostname(host), caller: caller, now: now) else {
            sniRefuse(s, reason: "no_resources", now: now)
            return
        }
        s.phase = .opening
        s.lastActive = now
        s.dev = dev
        s.splice.streamID = sid
        dev.sniStreams[sid] = s
        dev.dirty = true
        Log.debug("sni_open", "host=" + host + " device=" + owner.text + " client=" + s.peer.text)
    }

    /// Closes a public connection that could not be routed; the reason is counted and logged (rate-limited).
    func sniRefuse(_ s: SniConn, reason: String, now: Instant) {
        RelayStats.bump(&stats.drops, "sni_" + reason)
        sniLog.log(.info, "sni_refused", "client=" + s.peer.text + (s.hostname.utf8.isEmpty ? "" : " host=" + s.hostname)
                   + " reason=" + reason, now: now)
        closeSni(s, abort: false)
    }

    func closeSni(_ s: SniConn, abort: Bool) {
        if s.closed { return }
        stats.sniBytesIn += s.splice.bytesIn
        stats.sniBytesOut += s.splice.bytesOut
        s.pendingTicket.leave()
        s.connectionTicket.leave()
        s.closed = true
        s.splice.closeLocal(abort: abort)
        s.dev = nil
    }
}
