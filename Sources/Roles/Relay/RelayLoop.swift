import Crypto
import Loop
import Mux
import Wire

/// The relay's driver loop: one thread, epoll, and work proportional to what happened.
/// It owns the sockets, the registrations, the signals and the clock; every protocol
/// decision is the core's (RelayCore.swift).
///
///     repeat:
///       turn(now)     -- accepts handed to the core; scrapes; core.turn (tunnels in the
///                        work queue, due timers, joins, SNI, drain); then each touched
///                        tunnel's and each public connection's epoll interest updated
///       epoll_wait    -- until the core's next deadline (at once if work is queued)
///       ready(token)  -- socket I/O only (the core reads into its fixed queues), then
///                        the tunnel is queued
///
/// A tunnel with nothing to do costs nothing per turn: it is registered with the kernel
/// once and sits in the core's timer heap at its next deadline (heartbeat, dead-peer
/// check, handshake or open timeout). Public SNI connections (at most
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
            let canAccept = core.mayAccept(now: now)
            updateListeners(canAccept: canAccept)
            var dm = DeadlineMin()
            if !canAccept { dm.consider(now.ms + max(1, 1000 / Int64(Limits.relayAcceptPerSecond))) }
            dm.consider(core.nextDeadline(now: now))
            for m in metricsConns { dm.consider(m.deadline.ms) }
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
        watch(&listenerReg, listener, canAccept && core.acceptingTunnels, .listener)
        watch(&sniListenerReg, sniListener, core.acceptingSni, .sniListener)
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
            core.connReady(Token.serial(token), read: events.contains(.read), write: events.contains(.write))
        case .sniListener:
            sniListenerReady = true
        case .sni:
            core.sniReady(Token.serial(token), events)
        case .metricsListener:
            metricsListenerReady = true
        case .metrics:
            guard let m = metricsConns.first(where: { $0.serial == Token.serial(token) }) else { return }
            if m.reply.isEmpty {
                if m.read() {
                    m.reply = m.done ? [] : (m.wantsMetrics ? MetricsConn.response("200 OK", Relay.renderMetrics(core.snapshot()))
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
            if core.drainDeadline == nil {
                closeListener(&listenerReg, &listener)
                core.startDrain(now: now)
            } else {
                core.drainDeadline = now
            }
        case .reload:
            reload()
        }
    }

    func turn(now: Instant) {
        if listenerReady {
            listenerReady = false
            var n = 0
            while n < Limits.relayAcceptPerTurn, core.mayAccept(now: now), let (fd, peer) = Socket.accept(listener) {
                n += 1
                Socket.setNotSentLowWater(fd, Limits.tunnelNotSentLowWater)
                core.accept(EpollStream(fd: fd, epoll: epoll), peer: peer, now: now)
            }
        }
        if sniListenerReady {
            sniListenerReady = false
            var n = 0
            while n < 64, let (fd, peer) = Socket.accept(sniListener) {
                n += 1
                core.acceptSni(EpollStream(fd: fd, epoll: epoll), peer: peer, now: now)
            }
        }
        tendMetrics(now: now)
        core.turn(now: now, wallSeconds: Clock.wallSeconds())
        // Interest follows each driven tunnel's new state (closed ones left epoll as they closed).
        for c in core.touched {
            c.touched = false
            guard !c.link.isClosed, let s = c.link.stream as? EpollStream else { continue }
            do throws(SysError) {
                try s.reg.update(epoll, fd: s.fd, interest: c.link.interest, token: Token.make(TokenKind.conn.rawValue, c.serial))
            } catch {
                core.close(c, reason: "epoll: " + error.message, now: now)
            }
        }
        core.touched.removeAll(keepingCapacity: true)
        for (serial, s) in core.sniConns {
            guard s.splice.fd >= 0, let st = s.splice.stream as? EpollStream else { continue }
            do throws(SysError) {
                try st.reg.update(epoll, fd: st.fd, interest: s.splice.interest, token: Token.make(TokenKind.sni.rawValue, serial))
            } catch {
                core.closeSni(s, abort: true)
            }
        }
        if core.stopped && !finished {
            closeListener(&listenerReg, &listener)
            closeListener(&sniListenerReg, &sniListener)
            finished = true
        }
    }

    private func closeListener(_ reg: inout Registration, _ fd: inout Int32) {
        reg.remove(epoll)  // before the fd is closed: its number may be reused at once
        Socket.close(fd)
        fd = -1
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
                    m.serial = nextMetricsSerial
                    nextMetricsSerial += 1
                    metricsConns.append(m)
                case .failure: core.drop(SocketStream(fd: fd), peer, "metrics_per_source", now: now)
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

    /// SIGHUP: the enrollment secret and the session CA read again; tunnels stay.
    func reload() {
        if let f = config.enrollSecretFile {
            do throws(StartupError) {
                core.enrollSecret = try SecretFile.load(f)
            } catch {
                Log.error("reload_failed", "what=enroll_secret error=" + Log.quote(error.message))
            }
        }
        if let f = config.clientCAFile {
            do throws(IdentityError) {
                core.clientCA = try IdentityFile.certificate(f)
            } catch {
                Log.error("reload_failed", "what=client_ca error=" + Log.quote(error.message))
            }
        }
        Log.info("reloaded", "tunnels=" + String(core.conns.count))
    }
}

/// A relay connection's socket, registered with the relay's epoll: closing it leaves
/// epoll first (the fd number may be reused at once).
final class EpollStream: ByteStream {
    private(set) var fd: Int32
    var reg = Registration()
    unowned(unsafe) let epoll: Epoll

    init(fd: Int32, epoll: Epoll) {
        self.fd = fd
        self.epoll = epoll
    }

    func fill(_ q: ByteQueue) -> (bytes: Int, end: SocketQueue.End) { SocketQueue.fill(fd, q) }
    func drain(_ q: ByteQueue) -> (bytes: Int, end: SocketQueue.End) { SocketQueue.drain(fd, q) }
    func shutdownWrite() { Socket.shutdownWrite(fd) }

    func close(abort: Bool) {
        guard fd >= 0 else { return }
        reg.remove(epoll)
        if abort { Socket.abort(fd) } else { Socket.close(fd) }
        fd = -1
    }

    deinit { close(abort: false) }
}
