import Crypto
import Loop
import Mux
import Wire

/// An accepted connection's way to a tunnel: TLS, the preamble (raw or HTTP Upgrade),
/// the hello; refusals and their log lines.
extension RelayCore {
    /// Whether a connection may be taken from the listener now (the accept rate).
    func mayAccept(now: Instant) -> Bool { acceptRate.tokens(now: now) > 0 }

    /// A connection accepted on the agent listener: a tunnel in its TLS phase, queued
    /// for this turn; or nil, the stream closed, when a limit drops it (tunnels,
    /// pending handshakes in all and per source, draining).
    @discardableResult
    func accept(_ stream: ByteStream, peer: SocketAddress, now: Instant) -> RelayConn? {
        _ = acceptRate.take(now: now)
        if conns.count >= maxTunnels || drainDeadline != nil {
            drop(stream, peer, drainDeadline != nil ? "draining" : "tunnel_limit", now: now)
            return nil
        }
        let ticket: Gate.Ticket
        switch pending.enter(SourceKey(source: peer)) {
        case .success(let t): ticket = t
        case .failure(.full):
            drop(stream, peer, "pending_limit", now: now)
            return nil
        case .failure(.sourceShare):
            drop(stream, peer, "pending_per_source", now: now)
            return nil
        }
        let tls: TLSSession
        do throws(CryptoError) { tls = try TLSSession(config: tlsConfig, cache: blocks) } catch {
            stream.close(abort: false)
            return nil
        }
        let serial = nextSerial
        nextSerial += 1
        let mux = Mux(side: .relay, limits: muxLimits, pool: pool, now: now, cache: blocks)
        let c = RelayConn(serial: serial, link: TLSLink(stream: stream, tls: tls), peer: peer, mux: mux, pendingTicket: ticket,
                          work: work, now: now)
        conns[serial] = c
        Log.debug("connection_accepted", "peer=" + peer.text)
        return c
    }

    func drive(_ c: RelayConn, now: Instant) {
        switch c.phase {
        case .tls(let deadline):
            switch c.link.tls.handshake() {
            case .done:
                c.phase = .preamble(deadline: deadline, resumed: c.link.tls.resumeClaim)
                drive(c, now: now)
                return
            case .failed(let e):
                logFailure(c, "tls_failed", "mbedtls=-0x" + String(-Int(e), radix: 16), now: now)
                close(c, reason: nil, now: now)
                return
            case .needIO:
                c.link.flush()
            }
            if c.link.socketEOF || c.link.socketError != nil { close(c, reason: nil, now: now); return }
            if now >= deadline {
                logFailure(c, "handshake_timeout", "phase=tls", now: now)
                close(c, reason: nil, now: now)
            }
        case .preamble(let deadline, let resumed):
            let inputOK = TunnelPipe.pullInput(c.link.tls, c.mux)
            switch Preamble.classify(c.mux.rx.readable) {
            case .raw(let n):
                c.mux.rx.consume(n)
                startHello(c, resumed: resumed, deadline: deadline, now: now)
            case .http(let n, let upgrade):
                c.mux.rx.consume(n)
                if upgrade {
                    c.upgraded = true
                    _ = c.link.tls.write(Preamble.switching)
                    startHello(c, resumed: resumed, deadline: deadline, now: now)
                } else {
                    // A health check or a browser: say what this port speaks, then close.
                    _ = c.link.tls.write(Preamble.upgradeRequired)
                    c.link.tls.sendCloseNotify()
                    c.link.flush()
                    c.phase = .closing(deadline: now.adding(ms: 2_000))
                }
            case .garbage:
                logFailure(c, "preamble_failed", "error=not_an_agent", now: now)
                close(c, reason: nil, now: now)
            case .needMore:
                if !inputOK || c.link.socketEOF || c.link.socketError != nil {
                    close(c, reason: nil, now: now)
                } else if now >= deadline {
                    logFailure(c, "handshake_timeout", "phase=preamble", now: now)
                    close(c, reason: nil, now: now)
                }
            }
        case .hello(let nonce, let resumed, let deadline):
            if !TunnelPipe.pullInput(c.link.tls, c.mux) { close(c, reason: nil, now: now); return }
            while c.phase.isHello, let ev = c.mux.poll(now: now) {
                switch ev {
                case .hello(.auth, let payload):
                    handleAuth(c, payload, nonce: nonce, resumed: resumed, now: now)
                case .failed(let f):
                    logFailure(c, "hello_failed", "error=" + f.text, now: now)
                    close(c, reason: nil, now: now)
                    return
                default:
                    logFailure(c, "hello_failed", "error=unexpected_frame", now: now)
                    close(c, reason: nil, now: now)
                    return
                }
            }
            if c.link.isClosed { return }
            if !TunnelPipe.pushOutput(c.link, c.mux) { close(c, reason: nil, now: now); return }
            if c.phase.isHello {
                if c.link.socketEOF { close(c, reason: nil, now: now); return }
                if now >= deadline {
                    logFailure(c, "handshake_timeout", "phase=hello", now: now)
                    close(c, reason: nil, now: now)
                }
            } else if c.phase.isReady {
                drive(c, now: now)
            }
        case .ready:
            driveReady(c, now: now)
        case .closing(let deadline):
            c.link.flush()
            if c.link.isFlushed || now >= deadline || c.link.socketError != nil {
                close(c, reason: nil, now: now)
            }
        }
    }

    /// Sends CHALLENGE (the relay speaks first once it knows the agent's transport).
    func startHello(_ c: RelayConn, resumed: ResumeClaim?, deadline: Instant, now: Instant) {
        do throws(CryptoError) {
            let (payload, nonce) = try HelloAuth.challenge(relayKey: key, rng: rng, resumed: resumed != nil,
                                                           tlsKey: c.link.tls.tlsKeyHello)
            c.phase = .hello(nonce: nonce, resumed: resumed, deadline: deadline)
            _ = c.mux.sendHello(.challenge, payload)
        } catch {
            close(c, reason: "challenge: " + error.message, now: now)
            return
        }
        if !TunnelPipe.pushOutput(c.link, c.mux) {
            close(c, reason: "write failed", now: now)
            return
        }
        drive(c, now: now)
    }

    /// Closes a connection refused at a limit; counted, and logged at a bounded rate.
    func drop(_ stream: ByteStream, _ peer: SocketAddress, _ reason: String, now: Instant) {
        stream.close(abort: false)
        RelayStats.bump(&stats.drops, reason)
        dropLog.log(.warn, "connection_dropped", "peer=" + peer.text + " reason=" + reason, now: now)
    }


    /// Tells the agent nothing but DENIED; the reason goes to our log only.
    func deny(_ c: RelayConn, reason: String, now: Instant) {
        RelayStats.bump(&stats.handshakeFailures, reason)
        deniedLog.log(.warn, "agent_denied", "peer=" + c.peer.text + " reason=" + reason, now: now)
        _ = c.mux.sendHello(.denied, [])
        _ = TunnelPipe.pushOutput(c.link, c.mux)
        c.link.tls.sendCloseNotify()
        c.link.flush()
        c.phase = .closing(deadline: now.adding(ms: 2_000))
    }

    func logFailure(_ c: RelayConn, _ what: StaticString, _ detail: String, now: Instant) {
        RelayStats.bump(&stats.handshakeFailures, what.description)
        failLog.log(.info, what, "peer=" + c.peer.text + " " + detail, now: now)
    }
}
