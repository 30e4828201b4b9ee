import Crypto
import Loop
import Mux
import Wire

/// The relay's turn of the readiness loop: what to poll, what became ready, the next
/// deadline, and the work of a turn (accepts, connections driven until nothing changes, drain).
extension Relay {
    public func collect(into set: inout PollSet, now: Instant) {
        if listener >= 0 && drainDeadline == nil && pending.isOpen
            && conns.count < Limits.relayMaxTunnels {
            set.add(fd: listener, interest: .read, token: Token.make(TokenKind.listener.rawValue, 0))
        }
        for (serial, c) in conns where !c.link.isClosed {
            set.add(fd: c.link.fd, interest: c.link.interest, token: Token.make(TokenKind.conn.rawValue, serial))
        }
        if sniListener >= 0 && drainDeadline == nil && sniPending.isOpen && sniOpen.isOpen {
            set.add(fd: sniListener, interest: .read, token: Token.make(TokenKind.sniListener.rawValue, 0))
        }
        for (serial, s) in sniConns where s.splice.fd >= 0 {
            set.add(fd: s.splice.fd, interest: s.splice.interest, token: Token.make(TokenKind.sni.rawValue, serial))
        }
        if metricsListener >= 0 && metricsGate.isOpen {
            set.add(fd: metricsListener, interest: .read, token: Token.make(TokenKind.metricsListener.rawValue, 0))
        }
        for (i, m) in metricsConns.enumerated() {
            set.add(fd: m.fd, interest: m.reply.isEmpty ? .read : .write, token: Token.make(TokenKind.metrics.rawValue, UInt64(i)))
        }
    }

    public func ready(token: UInt64, events: PollEvents, now: Instant) {
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
            let i = Int(Token.serial(token))
            if i < metricsConns.count {
                let m = metricsConns[i]
                if m.reply.isEmpty {
                    if m.read() {
                        m.reply = m.done ? [] : (m.wantsMetrics ? MetricsConn.response("200 OK", renderMetrics())
                                                               : MetricsConn.response("404 Not Found", "try /metrics\n"))
                        if !m.reply.isEmpty { m.write() }
                    }
                } else {
                    m.write()
                }
            }
        case nil:
            break
        }
    }

    public func nextDeadline(now: Instant) -> Instant? {
        for (_, c) in conns where c.dirty { return now }
        var d: Instant? = drainDeadline
        for m in metricsConns where d == nil || m.deadline < d! { d = m.deadline }
        for (_, s) in sniConns {
            if s.splice.dirty { return now }
            if let t = s.deadline, d == nil || t < d! { d = t }
        }
        for (_, c) in conns {
            for t in [c.deadline, c.phase == .ready ? c.mux.nextDeadline : nil] {
                if let t = t, d == nil || t < d! { d = t }
            }
        }
        return d
    }

    public func signal(_ kind: Signals.Kind, now: Instant) {
        switch kind {
        case .terminate:
            if drainDeadline == nil { startDrain(now: now) } else { drainDeadline = now }
        case .reload:
            reload()
        }
    }

    public func work(now: Instant) {
        if listenerReady {
            listenerReady = false
            acceptAll(now: now)
        }
        if sniListenerReady {
            sniListenerReady = false
            acceptSni(now: now)
        }
        metricsConns.removeAll { $0.done || now >= $0.deadline }
        if metricsListenerReady {
            metricsListenerReady = false
            while metricsGate.isOpen, let (fd, peer) = Socket.accept(metricsListener) {
                switch metricsGate.enter(SourceKey(peer)) {
                case .success(let t): metricsConns.append(MetricsConn(fd: fd, ticket: t, now: now))
                case .failure: drop(fd, peer, "metrics_per_source", now: now)
                }
            }
        }
        // Drive connections until nothing changes (a join moving bytes marks its partner).
        var rounds = 0
        var again = true
        while again && rounds < 16 {
            again = false
            rounds += 1
            for (_, c) in conns {
                let due = (c.deadline.map { now >= $0 } ?? false)
                    || (c.phase == .ready && (c.mux.nextDeadline.map { now >= $0 } ?? false))
                if c.dirty || due {
                    c.dirty = false
                    drive(c, now: now)
                }
            }
            for (_, s) in sniConns where s.splice.dirty || (s.deadline.map { now >= $0 } ?? false) {
                s.splice.dirty = false
                driveSni(s, now: now)
            }
            for (_, c) in conns where c.dirty { again = true }
            for (_, s) in sniConns where s.splice.dirty { again = true }
        }
        for (serial, s) in sniConns where s.closed { sniConns.removeValue(forKey: serial) }
        for (serial, c) in conns where c.link.isClosed {
            conns.removeValue(forKey: serial)
        }
        if let d = drainDeadline {
            let streams = conns.values.reduce(0) { $0 + $1.joins.count + $1.sniStreams.count }
            if streams == 0 || now >= d {
                for (_, c) in conns { close(c, reason: streams == 0 ? "relay stopping" : "drain timeout", now: now) }
                conns.removeAll()
                for (_, s) in sniConns { closeSni(s, abort: true) }
                sniConns.removeAll()
                Socket.close(listener)
                listener = -1
                Socket.close(sniListener)
                sniListener = -1
                Log.info("relay_stopped", "streams_reset=" + String(streams))
                finished = true
            }
        }
    }
}
