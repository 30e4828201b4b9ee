import Crypto
import Loop
import Mux
import Wire

/// Tunnels that passed the hello: their mux events, a forward's opens joined to a
/// device's stream, bytes moved between the joined legs.
extension RelayCore {
    func moveJoin(_ j: Join) {
        if j.move() {
            j.fwd.dirty = true
            j.dev.dirty = true
        }
        if j.finishedBothWays() {
            j.fwd.mux.release(j.fwdStream)
            j.dev.mux.release(j.devStream)
            j.detach()
            j.fwd.dirty = true
            j.dev.dirty = true
            Log.debug("stream_closed", "device=" + (j.dev.id?.text ?? "-") + " up=" + String(j.bytesUp)
                      + " down=" + String(j.bytesDown))
        }
    }

    func driveReady(_ c: RelayConn, now: Instant) {
        // Frames received before the agent's side ended are handled before closing.
        let inputOK = TunnelPipe.pullInput(c.link.tls, c.mux)
        while let ev = c.mux.poll(now: now) {
            handle(ev, on: c, now: now)
            if c.link.isClosed { return }
        }
        if c.resumeRefreshAt != nil { sendCredential(c, now: now) }
        for (_, s) in c.sniStreams where s.splice.pump(c.mux) { s.splice.dirty = true }
        // Joins with little buffered go first (see AgentNode.work).
        for light in [true, false] {
            for (_, j) in c.joins where j.isLight == light && j.needsMove {
                moveJoin(j)
            }
        }
        if !inputOK {
            close(c, reason: c.link.tls.peerClosed ? "closed by agent" : "tunnel read failed", now: now)
            return
        }
        if !TunnelPipe.pushOutput(c.link, c.mux) {
            close(c, reason: "tunnel write failed", now: now)
            return
        }
        if c.link.socketEOF && !c.link.tls.hasBufferedInput {
            close(c, reason: "connection closed by agent", now: now)
        }
    }

    func handle(_ ev: MuxEvent, on c: RelayConn, now: Instant) {
        switch ev {
        case .opened(let sid, let open):
            handleOpen(c, sid, open, now: now)
        case .accepted(let sid):
            if let s = c.sniStreams[sid] {
                s.phase = .open
                s.splice.canSend = true
                s.splice.dirty = true
                return
            }
            guard let j = c.joins[sid], j.dev === c else { return }
            j.accepted = true
            j.fwd.mux.accept(j.fwdStream)
            j.fwd.dirty = true
        case .refused(let sid, let reason):
            if let s = c.sniStreams.removeValue(forKey: sid) {
                sniRefuse(s, reason: "device_" + reason.text, now: now)
                return
            }
            guard let j = c.joins[sid], j.dev === c else { return }
            j.fwd.mux.refuse(j.fwdStream, reason)
            j.detach()
            j.fwd.dirty = true
            RelayStats.bump(&stats.refusals, reason.text)
            refusedLog.log(.info, "stream_refused", "device=" + (c.id?.text ?? "-") + " reason=" + reason.text, now: now)
        case .reset(let sid, let reason):
            if let s = c.sniStreams.removeValue(forKey: sid) {
                Log.debug("sni_reset", "host=" + s.hostname + " client=" + s.peer.text + " reason=" + reason.text)
                closeSni(s, abort: true)
                return
            }
            guard let j = c.joins[sid] else { return }
            if j.fwd === c {
                j.dev.mux.reset(j.devStream, reason)
                j.dev.dirty = true
            } else {
                if j.accepted { j.fwd.mux.reset(j.fwdStream, reason) } else { j.fwd.mux.refuse(j.fwdStream, reason) }
                j.fwd.dirty = true
            }
            j.detach()
        case .data(let sid), .finished(let sid), .credit(let sid):
            c.sniStreams[sid]?.splice.dirty = true  // joins move their bytes in the join pass
        case .pong(let rtt):
            Log.debug("pong", c.label + " rtt_ms=" + String(rtt))
        case .goaway, .resume:  // RESUME from an agent already failed the mux
            break
        case .hello:
            break
        case .failed(let f):
            close(c, reason: "protocol error: " + f.text, now: now)
        }
    }

    func handleOpen(_ c: RelayConn, _ sid: UInt32, _ open: OpenPayload, now: Instant) {
        guard c.role == .forward else {
            refuseOpen(c, sid, .notAuthorized)
            return
        }
        guard drainDeadline == nil else {
            refuseOpen(c, sid, .goingAway)
            return
        }
        switch open.target {
        case .device(let askedID):
            var devID = askedID
            if let (from, to) = faultRoute, from == askedID { devID = to }
            guard let d = online[devID], d.phase.isReady, !d.link.isClosed else {
                refuseOpen(c, sid, .noSuchDevice)
                refusedLog.log(.info, "stream_refused", "from=" + (c.id?.text ?? "-") + " device=" + devID.text
                               + " reason=no_such_device", now: now)
                return
            }
            if let share = c.share, !KeyShare.mayOpen(streams: share.streams, poolAvailable: pool.available) {
                refuseOpen(c, sid, .noResources)
                refusedLog.log(.warn, "stream_refused", "from=" + (c.id?.text ?? "-") + " device=" + devID.text
                               + " reason=key_share streams=" + String(share.streams), now: now)
                return
            }
            guard let dsid = d.mux.open(.device(devID), origin: c.id?.bytes ?? [UInt8](repeating: 0, count: 20),
                                        caller: open.caller, now: now) else {
                refuseOpen(c, sid, .noResources)
                refusedLog.log(.warn, "stream_refused", "from=" + (c.id?.text ?? "-") + " device=" + devID.text
                               + " reason=no_resources", now: now)
                return
            }
            let j = Join(fwd: c, fwdStream: sid, dev: d, devStream: dsid, stats: stats)
            stats.streamsOpened += 1
            c.joins[sid] = j
            d.joins[dsid] = j
            d.dirty = true
            Log.debug("stream_open", "from=" + (c.id?.text ?? "-") + " device=" + devID.text + " caller=" + open.caller.text)
        case .hostname:
            refuseOpen(c, sid, .unknownHostname)
        }
    }

    /// Refuses a forward's open and counts the reason.
    func refuseOpen(_ c: RelayConn, _ sid: UInt32, _ reason: Reason) {
        RelayStats.bump(&stats.refusals, reason.text)
        c.mux.refuse(sid, reason)
    }
}
