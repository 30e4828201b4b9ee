import Crypto
import Loop
import Mux
import Wire

/// The relay role: authenticates agents, keeps the registry, joins a forward's
/// stream to the right device's tunnel. It moves stream bytes between fixed
/// buffers and never has a key to read them (they are end-to-end encrypted).
public final class Relay: LoopDriver {
    enum TokenKind: UInt8 {
        case listener = 1
        case conn = 2
        case sniListener = 3
        case sni = 4
        case metricsListener = 5
        case metrics = 6
    }

    let config: RelayConfig
    let rng: Rng
    let key: PrivateKey
    let certificate: Certificate
    let pinDigest: [UInt8]
    /// "sha256:<hex>" of the relay key: what agents pass as --relay-pin.
    public let pin: String
    let tlsConfig: TLSConfig
    let registry: Registry
    var enrollSecret: [UInt8]?
    var clientCA: Certificate?
    let pool: BufferPool
    let muxLimits: MuxLimits
    var listener: Int32 = -1
    var listenerReady = false
    var sniListener: Int32 = -1
    var sniListenerReady = false
    var sniConns: [UInt64: SniConn] = [:]
    /// Public connections still sending their ClientHello, and all public connections.
    let sniPending = Gate(limit: Limits.sniMaxPending, perSource: Limits.sniMaxPendingPerSource)
    let sniOpen = Gate(limit: Limits.sniMaxConnections, perSource: Limits.sniMaxConnectionsPerSource)
    var sniLog = RateLimit()
    let stats = RelayStats()
    var metricsListener: Int32 = -1
    var metricsListenerReady = false
    var metricsConns: [MetricsConn] = []
    let metricsGate = Gate(limit: Limits.metricsMaxConnections, perSource: Limits.metricsMaxConnectionsPerSource)
    var conns: [UInt64: RelayConn] = [:]
    /// Connected devices (reverse role) by ID. A reconnect with the same key replaces the entry at once.
    var online: [AgentID: RelayConn] = [:]
    /// Tunnels and streams held by each key with a tunnel up.
    var keyShares = KeyShares()
    var nextSerial: UInt64 = 1
    /// Connections in TLS, preamble or hello (each holds a ticket until it leaves those phases).
    let pending = Gate(limit: Limits.relayMaxPendingHandshakes, perSource: Limits.relayMaxPendingPerSource)
    var dropLog = RateLimit()
    var drainDeadline: Instant? = nil
    /// Fault injection for tests (AGENT_FAULT_ROUTE=FROM_ID:TO_ID): the relay sends
    /// streams meant for FROM to TO, i.e. it lies about the device, as a compromised
    /// relay could. The end-to-end check in every forward must catch it
    /// (tests/integration/test_e2e.py). It can only make the relay misbehave, which
    /// the trust model assumes a relay may do anyway.
    var faultRoute: (AgentID, AgentID)? = nil
    // Every line a peer can cause is rate-limited (Limits.logBurst per Limits.logWindowMs;
    // tunnels up and down, which a fleet makes in bursts, Limits.tunnelLogBurst).
    var deniedLog = RateLimit()
    var failLog = RateLimit()
    var refusedLog = RateLimit()
    var tunnelLog = RateLimit(burst: Limits.tunnelLogBurst)
    public private(set) var finished = false
    public private(set) var exitCode: Int32 = 0


    public init(config: RelayConfig, rng: Rng) throws(StartupError) {
        self.config = config
        self.rng = rng
        do throws(SysError) { try Files.makeDirectory(config.stateDir, mode: 0o700) } catch {
            throw StartupError("--state " + config.stateDir + ": " + error.message)
        }
        (key, certificate) = try Relay.loadKeyAndCertificate(config, rng: rng)
        let spki = key.publicKeyDER()
        pinDigest = Digest.sha256(spki)
        pin = Identity.pin(spki: spki)
        do throws(CryptoError) {
            tlsConfig = try TLSConfig(side: .server, rng: rng, certificate: certificate, key: key, peerCheck: .none)
        } catch {
            throw StartupError("TLS setup: " + error.message)
        }
        do throws(Registry.LoadError) {
            registry = try Registry.load(config.stateDir + "/registry")
        } catch {
            throw StartupError(error.message)
        }
        if let f = config.enrollSecretFile { enrollSecret = try SecretFile.load(f) }
        if let f = config.clientCAFile {
            do throws(IdentityError) { clientCA = try IdentityFile.certificate(f) } catch {
                throw StartupError("--client-ca " + error.message)
            }
        }
        if let f = Environment.get("AGENT_FAULT_ROUTE") {
            let parts = Text.split(f, UInt8(ascii: ":"))
            if parts.count == 2, let from = AgentID(text: parts[0]), let to = AgentID(text: parts[1]) {
                faultRoute = (from, to)
                Log.warn("fault_injection", "route_from=" + from.text + " route_to=" + to.text)
            }
        }
        muxLimits = MuxLimits(maxStreams: Limits.relayMaxStreamsPerTunnel, heartbeatMs: config.heartbeatMs,
                              openTimeoutMs: Limits.relayOpenTimeoutMs)
        // Two buffers per joined stream (one per leg), so the pool holds twice the stream limit.
        pool = BufferPool(bufferSize: Limits.relayWindow, limit: 2 * Limits.relayMaxStreams)
        do throws(SysError) {
            listener = try Socket.listen(config.listen, backlog: Limits.maxListenBacklog)
        } catch {
            throw StartupError("--listen " + config.listenText + ": " + error.message)
        }
        if let a = config.metrics {
            do throws(SysError) {
                metricsListener = try Socket.listen(a, backlog: 16)
            } catch {
                throw StartupError("--metrics " + (config.metricsText ?? "") + ": " + error.message)
            }
        }
        if let a = config.sniListen {
            do throws(SysError) {
                sniListener = try Socket.listen(a, backlog: Limits.maxListenBacklog)
            } catch {
                throw StartupError("--sni-listen " + (config.sniListenText ?? "") + ": " + error.message)
            }
        }
    }

    /// The relay's key and TLS certificate: --cert/--key if given, else a key and a
    /// self-signed certificate in --state (created on first start).
    static func loadKeyAndCertificate(_ config: RelayConfig, rng: Rng) throws(StartupError) -> (PrivateKey, Certificate) {
        if let cf = config.certFile, let kf = config.keyFile {
            let key: PrivateKey
            let cert: Certificate
            do throws(IdentityError) {
                key = try IdentityFile.load(kf)
                cert = try IdentityFile.certificate(cf)
            } catch {
                throw StartupError(error.message)
            }
            guard cert.leafPublicKeyDER == key.publicKeyDER() else {
                throw StartupError("--cert " + cf + ": certificate is not for the key in --key " + kf)
            }
            return (key, cert)
        }
        if config.certFile != nil || config.keyFile != nil {
            throw StartupError("--cert and --key go together")
        }
        let keyPath = config.stateDir + "/relay-key.pem"
        let certPath = config.stateDir + "/relay-cert.pem"
        let key: PrivateKey
        do throws(IdentityError) {
            let (k, created) = try IdentityFile.loadOrCreate(keyPath, rng: rng)
            key = k
            if created { Log.info("relay_key_created", "file=" + Log.quote(keyPath)) }
        } catch {
            throw StartupError("--state " + error.message)
        }
        if Files.exists(certPath), let c = try? IdentityFile.certificate(certPath), c.leafPublicKeyDER == key.publicKeyDER() {
            return (key, c)
        }
        let cert: Certificate
        do throws(CryptoError) {
            cert = try CertificateWriter.selfSigned(key: key, rng: rng, commonName: "agent relay")
        } catch {
            throw StartupError("relay certificate: " + error.message)
        }
        do throws(SysError) {
            try Files.writeAtomically(certPath, Certificate.pem(der: cert.leafDER), mode: 0o644)
        } catch {
            throw StartupError("--state " + certPath + ": " + error.message)
        }
        return (key, cert)
    }

    // MARK: - LoopDriver

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

    // MARK: - Connections

    func acceptAll(now: Instant) {
        var n = 0
        while n < 64, let (fd, peer) = Socket.accept(listener) {
            n += 1
            if conns.count >= Limits.relayMaxTunnels || drainDeadline != nil {
                drop(fd, peer, drainDeadline != nil ? "draining" : "tunnel_limit", now: now)
                continue
            }
            let ticket: Gate.Ticket
            switch pending.enter(SourceKey(peer)) {
            case .success(let t): ticket = t
            case .failure(.full):
                drop(fd, peer, "pending_limit", now: now)
                continue
            case .failure(.sourceShare):
                drop(fd, peer, "pending_per_source", now: now)
                continue
            }
            Socket.setNotSentLowWater(fd, Limits.tunnelNotSentLowWater)
            let tls: TLSSession
            do throws(CryptoError) { tls = try TLSSession(config: tlsConfig) } catch {
                Socket.close(fd)
                continue
            }
            let serial = nextSerial
            nextSerial += 1
            let mux = Mux(side: .relay, limits: muxLimits, pool: pool, now: now)
            let c = RelayConn(serial: serial, link: TLSLink(fd: fd, tls: tls), peer: peer, mux: mux, pendingTicket: ticket,
                              now: now)
            conns[serial] = c
            Log.debug("connection_accepted", "peer=" + peer.text)
        }
    }

    func drive(_ c: RelayConn, now: Instant) {
        switch c.phase {
        case .tls:
            switch c.link.tls.handshake() {
            case .done:
                c.phase = .preamble
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
            if let d = c.deadline, now >= d {
                logFailure(c, "handshake_timeout", "phase=tls", now: now)
                close(c, reason: nil, now: now)
            }
        case .preamble:
            let inputOK = TunnelPipe.pullInput(c.link.tls, c.mux)
            switch Preamble.classify(c.mux.rx.readable) {
            case .raw(let n):
                c.mux.rx.consume(n)
                startHello(c, now: now)
            case .http(let n, let upgrade):
                c.mux.rx.consume(n)
                if upgrade {
                    c.upgraded = true
                    _ = c.link.tls.write(Preamble.switching)
                    startHello(c, now: now)
                } else {
                    // A health check or a browser: say what this port speaks, then close.
                    _ = c.link.tls.write(Preamble.upgradeRequired)
                    c.link.tls.sendCloseNotify()
                    c.link.flush()
                    c.phase = .closing
                    c.deadline = now.adding(ms: 2_000)
                }
            case .garbage:
                logFailure(c, "preamble_failed", "error=not_an_agent", now: now)
                close(c, reason: nil, now: now)
            case .needMore:
                if !inputOK || c.link.socketEOF || c.link.socketError != nil {
                    close(c, reason: nil, now: now)
                } else if let d = c.deadline, now >= d {
                    logFailure(c, "handshake_timeout", "phase=preamble", now: now)
                    close(c, reason: nil, now: now)
                }
            }
        case .hello:
            if !TunnelPipe.pullInput(c.link.tls, c.mux) { close(c, reason: nil, now: now); return }
            while c.phase == .hello, let ev = c.mux.poll(now: now) {
                switch ev {
                case .hello(.auth, let payload):
                    handleAuth(c, payload, now: now)
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
            if c.phase == .hello {
                if c.link.socketEOF { close(c, reason: nil, now: now); return }
                if let d = c.deadline, now >= d {
                    logFailure(c, "handshake_timeout", "phase=hello", now: now)
                    close(c, reason: nil, now: now)
                }
            } else if c.phase == .ready {
                drive(c, now: now)
            }
        case .ready:
            driveReady(c, now: now)
        case .closing:
            c.link.flush()
            if c.link.isFlushed || (c.deadline.map { now >= $0 } ?? true) || c.link.socketError != nil {
                close(c, reason: nil, now: now)
            }
        }
    }

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

    /// Sends CHALLENGE (the relay speaks first once it knows the agent's transport).
    func startHello(_ c: RelayConn, now: Instant) {
        c.phase = .hello
        do throws(CryptoError) {
            let (payload, nonce) = try HelloAuth.challenge(relayKey: key, rng: rng)
            c.nonce = nonce
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

    func driveReady(_ c: RelayConn, now: Instant) {
        // Frames received before the agent's side ended are handled before closing.
        let inputOK = TunnelPipe.pullInput(c.link.tls, c.mux)
        while let ev = c.mux.poll(now: now) {
            handle(ev, on: c, now: now)
            if c.link.isClosed { return }
        }
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
        case .goaway:
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
            guard let d = online[devID], d.phase == .ready, !d.link.isClosed else {
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

    /// Closes a connection refused at a limit; counted, and logged at a bounded rate.
    func drop(_ fd: Int32, _ peer: SocketAddress, _ reason: String, now: Instant) {
        Socket.close(fd)
        RelayStats.bump(&stats.drops, reason)
        dropLog.log(.warn, "connection_dropped", "peer=" + peer.text + " reason=" + reason, now: now)
    }

    /// Refuses a forward's open and counts the reason.
    func refuseOpen(_ c: RelayConn, _ sid: UInt32, _ reason: Reason) {
        RelayStats.bump(&stats.refusals, reason.text)
        c.mux.refuse(sid, reason)
    }

    // MARK: - SNI routing

    func acceptSni(now: Instant) {
        var n = 0
        while n < 64, let (fd, peer) = Socket.accept(sniListener) {
            n += 1
            if drainDeadline != nil {
                drop(fd, peer, "sni_draining", now: now)
                continue
            }
            let source = SourceKey(peer)
            let open: Gate.Ticket
            let pend: Gate.Ticket
            switch sniOpen.enter(source) {
            case .success(let t): open = t
            case .failure(let r):
                drop(fd, peer, r == .full ? "sni_limit" : "sni_per_source", now: now)
                continue
            }
            switch sniPending.enter(source) {
            case .success(let t): pend = t
            case .failure(let r):
                open.leave()
                drop(fd, peer, r == .full ? "sni_pending_limit" : "sni_pending_per_source", now: now)
                continue
            }
            let serial = nextSerial
            nextSerial += 1
            sniConns[serial] = SniConn(serial: serial, fd: fd, peer: peer, pendingTicket: pend, connectionTicket: open, now: now)
        }
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
        guard let owner = registry.owner(ofHostname: host), let dev = online[owner], dev.phase == .ready,
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

    // MARK: - Admission

    func handleAuth(_ c: RelayConn, _ payload: [UInt8], now: Instant) {
        switch HelloAuth.verify(payload, nonce: c.nonce, relayPinDigest: pinDigest) {
        case .failure(let r):
            deny(c, reason: r.text, now: now)
        case .success(let v):
            admit(c, v, now: now)
        }
    }

    func admit(_ c: RelayConn, _ v: VerifiedAuth, now: Instant) {
        if drainDeadline != nil { return deny(c, reason: "draining", now: now) }
        let m = v.message
        let claimed = m.hostnames.map { Registry.canonicalHostname($0) }
        var entry = registry.entry(v.id)
        var newlyEnrolled = false
        var granted: [String] = entry?.hostnames ?? []
        var via = entry?.via ?? ""
        // A valid token also extends a known key's hostnames.
        if !m.token.isEmpty {
            if let secret = enrollSecret {
                switch EnrollmentToken.verify(m.token, secret: secret, now: Clock.wallSeconds(), device: v.id) {
                case .success(let t):
                    for h in t.hostnames.map({ Registry.canonicalHostname($0) }) where !Text.contains(granted, h) {
                        granted.append(h)
                    }
                    if entry == nil { via = "token" }
                case .failure(let f):
                    if entry == nil { return deny(c, reason: f.text, now: now) }
                }
            } else if entry == nil {
                return deny(c, reason: "token_without_enroll_secret", now: now)
            }
        }
        // A certificate from the session CA admits the key and grants the host names it lists.
        let caValid = clientCA.map { v.chain.verify(trustedBy: $0) == 0 } ?? false
        if caValid {
            for h in v.chain.dnsNames.map({ Registry.canonicalHostname($0) }) where !Text.contains(granted, h) {
                granted.append(h)
            }
        }
        if entry == nil && via.isEmpty {
            if caValid {
                via = "ca"
            } else if config.openEnrollment {
                via = "open"
                granted = claimed
            } else {
                return deny(c, reason: clientCA != nil ? "not_enrolled_or_bad_ca" : "not_enrolled", now: now)
            }
        }
        for h in claimed where !Text.contains(granted, h) {
            return deny(c, reason: "hostname_not_granted", now: now)
        }
        for h in claimed {
            if let owner = registry.owner(ofHostname: h), owner != v.id { return deny(c, reason: "hostname_taken", now: now) }
        }
        if entry == nil || !Text.equal(entry!.hostnames, granted) || entry!.role != m.role {
            let e = Registry.Entry(id: v.id, role: m.role, enrolledAt: entry?.enrolledAt ?? Clock.wallSeconds(),
                                   via: via, hostnames: granted)
            do throws(SysError) { try registry.put(e) } catch {
                failLog.log(.error, "registry_write_failed", "error=" + Log.quote(error.message), now: now)
                return deny(c, reason: "registry_write_failed", now: now)
            }
            newlyEnrolled = entry == nil
            entry = e
        }
        let share = keyShares.of(v.id)
        if m.role == .forward && share.tunnels >= Limits.relayMaxTunnelsPerKey {
            keyShares.tidy(v.id)
            return deny(c, reason: "tunnels_per_key", now: now)
        }
        share.tunnels += 1
        c.share = share
        c.id = v.id
        c.role = m.role
        c.hostnames = claimed
        c.phase = .ready
        c.deadline = nil
        stats.admitted += 1
        _ = c.mux.sendHello(.welcome, WelcomeMessage(id: v.id, newlyEnrolled: newlyEnrolled).encode())
        c.mux.helloFinished(now: now)
        if m.role == .reverse {
            if let old = online[v.id], old !== c {
                close(old, reason: "replaced by a new connection", now: now)
            }
            online[v.id] = c
        }
        tunnelLog.log(.info, "agent_admitted", c.label + " via=" + via + (newlyEnrolled ? " enrolled=yes" : "") + " peer=" + c.peer.text
                      + (c.upgraded ? " transport=http-upgrade" : ""), now: now)
    }

    /// Tells the agent nothing but DENIED; the reason goes to our log only.
    func deny(_ c: RelayConn, reason: String, now: Instant) {
        RelayStats.bump(&stats.handshakeFailures, reason)
        deniedLog.log(.warn, "agent_denied", "peer=" + c.peer.text + " reason=" + reason, now: now)
        _ = c.mux.sendHello(.denied, [])
        _ = TunnelPipe.pushOutput(c.link, c.mux)
        c.link.tls.sendCloseNotify()
        c.link.flush()
        c.phase = .closing
        c.deadline = now.adding(ms: 2_000)
    }

    func logFailure(_ c: RelayConn, _ what: StaticString, _ detail: String, now: Instant) {
        RelayStats.bump(&stats.handshakeFailures, what.description)
        failLog.log(.info, what, "peer=" + c.peer.text + " " + detail, now: now)
    }

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
        c.link.close()
        c.phase = .closing
    }

    // MARK: - Signals

    func startDrain(now: Instant) {
        drainDeadline = now.adding(ms: config.drainTimeoutMs)
        if listener >= 0 {
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

    public func start() {
        Log.info("relay_started", "listen=" + config.listenText + " pin=" + pin + " state=" + Log.quote(config.stateDir)
                 + " registered=" + String(registry.count))
    }
}
