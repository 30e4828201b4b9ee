import Crypto
import Loop
import Mux
import Wire

/// The relay's loop: one thread, epoll, and work proportional to what happened.
///
///     repeat:
///       turn(now)     -- accepts; tunnels in the work queue driven until it is empty
///                        (a join moving bytes queues its partner); tunnels whose timer
///                        is due; public SNI connections and scrapes; retired tunnels
///                        forgotten; drain
///       interests     -- each driven tunnel's epoll interest updated if it changed
///       epoll_wait    -- until the earliest timer (at once if work is queued)
///       ready(token)  -- socket I/O only, then the tunnel is queued
///
/// A tunnel with nothing to do costs nothing per turn: it is registered with the kernel
/// once and sits in the timer heap at its next deadline (heartbeat, dead-peer check,
/// handshake or open timeout). Public SNI connections (at most
/// `Limits.sniMaxConnections`) and scrapes (`Limits.metricsMaxConnections`) are few and
/// are still walked each turn.
extension Relay {
    /// Runs until the relay has stopped; returns its exit status.
    public func run() -> Int32 {
        do throws(SysError) {
            if Signals.wakeFd >= 0 { try epoll.add(Signals.wakeFd, .read, token: Token.make(TokenKind.signal.rawValue, 0)) }
        } catch {
            Log.error("epoll_failed", "error=" + Log.quote(error.message))
            return 1
        }
        while true {
            var now = EventLoop.now()
            turn(now: now)
            if finished { return exitCode }
            let canAccept = acceptRate.tokens(now: now) > 0
            updateListeners(canAccept: canAccept)
            var dm = DeadlineMin()
            if !work.items.isEmpty { dm.consider(now.ms) }
            if !canAccept { dm.consider(now.ms + max(1, 1000 / Int64(Limits.relayAcceptPerSecond))) }
            dm.consider(timers.earliest)
            dm.consider(drainDeadline?.ms)
            for m in metricsConns { dm.consider(m.deadline.ms) }
            for (_, s) in sniConns {
                if s.splice.dirty { dm.consider(now.ms) }
                dm.consider(s.deadline?.ms)
            }
            do throws(SysError) {
                try epoll.wait(timeoutMs: dm.timeout(now: now.ms, cap: 60_000))
            } catch {
                Log.error("epoll_failed", "error=" + Log.quote(error.message))
                return 1
            }
            now = EventLoop.now()
            for i in 0..<epoll.count {
                ready(token: epoll.token(i), events: epoll.ready(i), now: now)
            }
        }
    }

    /// Listeners are watched only while a new connection could be taken.
    func updateListeners(canAccept: Bool = true) {
        let accepting = drainDeadline == nil
        watch(&listenerReg, listener, accepting && canAccept && pending.isOpen && conns.count < maxTunnels, .listener)
        watch(&sniListenerReg, sniListener, accepting && sniPending.isOpen && sniOpen.isOpen, .sniListener)
        watch(&metricsListenerReg, metricsListener, metricsGate.isOpen, .metricsListener)
    }

    private func watch(_ reg: inout Registration, _ fd: Int32, _ on: Bool, _ kind: TokenKind) {
        guard fd >= 0 else { return reg.remove(epoll) }
        do throws(SysError) {
            try reg.update(epoll, fd: fd, interest: on ? .read : [], token: Token.make(kind.rawValue, 0))
        } catch {
            Log.error("epoll_failed", "fd=listener error=" + Log.quote(error.message))
        }
    }

    func ready(token: UInt64, events: PollEvents, now: Instant) {
        switch TokenKind(rawValue: Token.kind(token)) {
        case .listener:
            listenerReady = true
        case .conn:
            guard let c = conns[Token.serial(token)] else { return }
            if events.contains(.read) { c.link.receive() }
            if events.contains(.write) { c.link.writable() }
            c.dirty = true
        case .sniListener:
            sniListenerReady = true
        case .sni:
            sniConns[Token.serial(token)]?.splice.ready(events)
        case .metricsListener:
            metricsListenerReady = true
        case .metrics:
            guard let m = metricsConns.first(where: { $0.serial == Token.serial(token) }) else { return }
            if m.reply.isEmpty {
                if m.read() {
                    m.reply = m.done ? [] : (m.wantsMetrics ? MetricsConn.response("200 OK", renderMetrics())
                                                           : MetricsConn.response("404 Not Found", "try /metrics\n"))
                    if !m.reply.isEmpty { m.write() }
                }
            } else {
                m.write()
            }
        case .signal:
            for k in Signals.take() { signal(k, now: now) }
        case nil:
            break
        }
    }

    func signal(_ kind: Signals.Kind, now: Instant) {
        switch kind {
        case .terminate:
            if drainDeadline == nil { startDrain(now: now) } else { drainDeadline = now }
        case .reload:
            reload()
        }
    }

    /// Everything that changes state happens here (never in `ready`), so no token is
    /// stale within a turn.
    func turn(now: Instant) {
        if listenerReady {
            listenerReady = false
            acceptAll(now: now)
        }
        if sniListenerReady {
            sniListenerReady = false
            acceptSni(now: now)
        }
        tendMetrics(now: now)
        // Tunnels whose timer is due join the work queue.
        while let serial = timers.popDue(now: now.ms) {
            guard let c = conns[serial] else { continue }
            if let t = c.timerAt, t <= now.ms { c.timerAt = nil }
            c.dirty = true
        }
        // Drive queued tunnels until nothing changes (a join moving bytes queues its partner).
        // TLS handshakes with input wait for the next turn beyond a budget (they stay queued).
        var rounds = 0
        var handshakes = 0
        var deferred: [RelayConn] = []
        while !work.items.isEmpty && rounds < 16 {
            rounds += 1
            let batch = work.items
            work.items.removeAll(keepingCapacity: true)
            for c in batch {
                if c.phase == .tls && !c.link.tls.inbound.isEmpty {
                    if handshakes >= Limits.relayHandshakesPerTurn {
                        deferred.append(c)
                        continue
                    }
                    handshakes += 1
                }
                c.dirty = false
                if !c.link.isClosed { drive(c, now: now) }
                settle(c, now: now)
            }
            var again = true
            var sniRounds = 0
            while again && sniRounds < 16 {
                again = false
                sniRounds += 1
                for (_, s) in sniConns where s.splice.dirty {
                    s.splice.dirty = false
                    driveSni(s, now: now)
                    again = again || s.splice.dirty
                }
            }
        }
        for c in deferred { work.items.append(c) }  // still dirty: driven first thing next turn
        for (_, s) in sniConns where s.splice.dirty || (s.deadline.map { now >= $0 } ?? false) {
            s.splice.dirty = false
            driveSni(s, now: now)
        }
        for (serial, s) in sniConns {
            if s.closed {
                s.reg.remove(epoll)
                sniConns.removeValue(forKey: serial)
            } else if s.splice.fd >= 0 {
                do throws(SysError) {
                    try s.reg.update(epoll, fd: s.splice.fd, interest: s.splice.interest,
                                     token: Token.make(TokenKind.sni.rawValue, serial))
                } catch {
                    closeSni(s, abort: true)
                }
            }
        }
        for c in retired {
            if let cur = conns[c.serial], cur === c { conns.removeValue(forKey: c.serial) }
        }
        retired.removeAll(keepingCapacity: true)
        if let d = drainDeadline { drainStep(deadline: d, now: now) }
    }

    /// After a tunnel was driven: its epoll interest and its timer follow its new state.
    func settle(_ c: RelayConn, now: Instant) {
        if c.link.isClosed {
            c.reg.remove(epoll)
            return
        }
        do throws(SysError) {
            try c.reg.update(epoll, fd: c.link.fd, interest: c.link.interest,
                             token: Token.make(TokenKind.conn.rawValue, c.serial))
        } catch {
            close(c, reason: "epoll: " + error.message, now: now)
            return
        }
        // A tunnel without streams gives its buffers back until bytes move again.
        if c.joins.isEmpty && c.sniStreams.isEmpty {
            c.link.tls.park()
            c.mux.park()
        }
        var next = c.deadline?.ms
        if c.phase == .ready, let m = c.mux.nextDeadline?.ms, next == nil || m < next! { next = m }
        if let n = next, c.timerAt == nil || n < c.timerAt! {
            timers.schedule(c.serial, at: n)
            c.timerAt = n
        }
    }

    func tendMetrics(now: Instant) {
        for m in metricsConns where m.done || now >= m.deadline { m.reg.remove(epoll) }
        metricsConns.removeAll { $0.done || now >= $0.deadline }
        if metricsListenerReady {
            metricsListenerReady = false
            while metricsGate.isOpen, let (fd, peer) = Socket.accept(metricsListener) {
                switch metricsGate.enter(SourceKey(source: peer)) {
                case .success(let t):
                    let m = MetricsConn(fd: fd, ticket: t, now: now)
                    m.serial = nextSerial
                    nextSerial += 1
                    metricsConns.append(m)
                case .failure: drop(fd, peer, "metrics_per_source", now: now)
                }
            }
        }
        for m in metricsConns {
            do throws(SysError) {
                try m.reg.update(epoll, fd: m.fd, interest: m.reply.isEmpty ? .read : .write,
                                 token: Token.make(TokenKind.metrics.rawValue, m.serial))
            } catch {
                m.done = true
            }
        }
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
        listenerReg.remove(epoll)
        sniListenerReg.remove(epoll)
        Socket.close(listener)
        listener = -1
        Socket.close(sniListener)
        sniListener = -1
        Log.info("relay_stopped", "streams_reset=" + String(streams))
        finished = true
    }
}

/// Tunnels with something to do this turn, each once (`RelayConn.dirty` queues it).
final class WorkQueue {
    var items: [RelayConn] = []
}
