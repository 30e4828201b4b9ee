import Crypto
import E2E
import Loop
import Mux
import Wire

/// What can be reloaded with SIGHUP: allow list and operator authorization.
public struct ReversePolicy {
    public var allow: AllowList
    public var authorization: Authorization
    /// `--hostname NAME --sni-target ADDR:PORT`: public TLS for NAME, routed by the
    /// relay's SNI listener, goes to this local HTTPS service as is.
    public var sniHostname: String? = nil
    public var sniTarget: SocketAddress? = nil

    public init(allow: AllowList, authorization: Authorization) {
        self.allow = allow
        self.authorization = authorization
    }
}

/// The reverse role (on the device): keeps its tunnel to the relay and serves
/// streams: end-to-end session with the operator's forward, authorization of
/// the forward's key, target checked against the allow list, nonblocking
/// connect, bytes spliced with backpressure and half-close.
public final class Reverse: AgentNode {
    let server: E2EServer
    var policy: ReversePolicy
    let reloadPolicy: () -> Result<ReversePolicy, StartupError>
    var myID: AgentID? = nil
    var refusalLog = RateLimit()
    /// Streams whose forward is not yet authorized (in all and per forward), and the
    /// forwards whose streams keep ending before authorization (PreAuth.swift).
    let preAuthGate = Gate(limit: Limits.reverseMaxUnauthorizedStreams, perSource: Limits.reverseMaxUnauthorizedPerForward)
    let strikes = ForwardStrikes()
    /// Test hook (AGENT_FAULT_SLOW_DNS=MS): every name resolution waits this long first, to
    /// show that a slow name stalls nothing else (tests/integration/test_security_device.py).
    let slowDNSMs: Int
    override var roleName: String { "reverse" }

    public init(settings: TunnelSettings, certificate: Certificate, policy: ReversePolicy,
                reloadPolicy: @escaping () -> Result<ReversePolicy, StartupError>, rng: Rng, now: Instant) throws(CryptoError) {
        self.policy = policy
        self.reloadPolicy = reloadPolicy
        slowDNSMs = Environment.get("AGENT_FAULT_SLOW_DNS").flatMap { Int($0) } ?? 0
        if slowDNSMs > 0 { Log.warn("fault_injection", "slow_dns_ms=" + String(slowDNSMs)) }
        server = try E2EServer(rng: rng, key: settings.identity, certificate: certificate, authorization: policy.authorization)
        try super.init(settings: settings, rng: rng, window: Limits.reverseWindow, maxWindow: Limits.reverseMaxWindow,
                       maxStreams: Limits.reverseMaxStreams, now: now)
    }

    override func tunnelUp(_ id: AgentID, now: Instant) { myID = id }

    override func opened(_ id: UInt32, _ open: OpenPayload, mux: Mux, now: Instant) {
        if case .hostname(let h) = open.target {
            openSni(id, Registry.canonicalHostname(h), caller: open.caller, mux: mux, now: now)
            return
        }
        guard case .device(let d) = open.target, d == myID else {
            mux.refuse(id, .protocolError)
            return
        }
        // Before any TLS work: a forward that used up its strikes, or one (or all) holding
        // too many streams not yet authorized, is refused. The forward is told nothing more.
        let origin = PreAuth.key(origin: open.origin)
        strikes.settle(now: now)
        if strikes.isHeld(origin, now: now) {
            return refuseEarly(id, open, "forward_held", mux: mux, now: now)
        }
        var ticket: Gate.Ticket? = nil
        if !strikes.isKnown(origin, now: now) {
            switch preAuthGate.enter(origin) {
            case .success(let t): ticket = t
            case .failure(.full): return refuseEarly(id, open, "unauthorized_streams", mux: mux, now: now)
            case .failure(.sourceShare): return refuseEarly(id, open, "unauthorized_streams_per_forward", mux: mux, now: now)
            }
        }
        let session: E2ESession
        do throws(CryptoError) { session = try E2ESession(server: server, now: now) } catch {
            mux.refuse(id, .noResources)
            return
        }
        let s = Splice(streamID: id, e2e: session, label: "caller " + open.caller.text)
        s.preAuth = PreAuth(ticket: ticket, origin: origin, strikes: strikes)
        s.authDeadline = now.adding(ms: Limits.reverseAuthTimeoutMs)
        splices[id] = s
        mux.accept(id)
    }

    /// Refuses an OPEN with `no_resources` before any TLS work; logged at a bounded rate.
    func refuseEarly(_ id: UInt32, _ open: OpenPayload, _ why: String, mux: Mux, now: Instant) {
        mux.refuse(id, .noResources)
        let forward = AgentID(bytes: open.origin)?.text ?? "-"
        refusalLog.log(.warn, "stream_refused", "stream=" + String(id) + " forward=" + forward + " reason=" + why, now: now)
    }

    /// A public TLS connection routed by SNI: spliced as is to the --sni-target service.
    func openSni(_ id: UInt32, _ host: String, caller: PeerAddress, mux: Mux, now: Instant) {
        guard let mine = policy.sniHostname, Text.equal(Registry.canonicalHostname(mine), host),
              let target = policy.sniTarget else {
            mux.refuse(id, .unknownHostname)
            return
        }
        let fd: Int32
        do throws(SysError) { fd = try Socket.connect(target) } catch {
            Log.warn("sni_target_failed", "host=" + host + " target=" + target.text + " error=" + Log.quote(error.message))
            mux.refuse(id, .connectFailed)
            return
        }
        let r = RawSplice(streamID: id, fd: fd, label: "sni " + host + " caller " + caller.text,
                          buffer: ByteQueue(capacity: Limits.spliceBuffer))
        r.connectDeadline = now.adding(ms: Limits.targetConnectTimeoutMs)
        raws[id] = r
        mux.accept(id)
    }

    override func prepareRaw(_ r: RawSplice, mux: Mux, now: Instant) {
        guard let deadline = r.connectDeadline else { return }
        var failed: String? = nil
        if r.connectReady {
            r.connectReady = false
            let err = Socket.connectError(r.fd)
            if err == 0 {
                r.connectDeadline = nil
                r.canSend = true
                Log.debug("sni_open", "stream=" + String(r.streamID) + " " + r.label)
                return
            }
            failed = SysError.describe(err)
        } else if now >= deadline {
            failed = "connect timed out"
        }
        if let f = failed {
            Log.warn("sni_target_failed", "stream=" + String(r.streamID) + " " + r.label + " error=" + Log.quote(f))
            mux.reset(r.streamID, .connectFailed)
            raws.removeValue(forKey: r.streamID)?.closeLocal()
        }
    }

    override func sessionEvent(_ s: Splice, _ ev: E2EEvent, mux: Mux, now: Instant) {
        let who = "forward=" + (s.e2e.peerID?.text ?? "-")
        switch ev {
        case .targetRequested(let target):
            // Only an authorized forward gets here (PeerProof): its place goes back.
            if let p = s.preAuth {
                p.authorize()
                strikes.trust(p.origin, now: now)
            }
            s.preAuth = nil
            s.authDeadline = nil
            s.target = target
            s.label = target.text
            startConnect(s, target, who: who, now: now)
        case .established:
            Log.info("stream_open", "stream=" + String(s.streamID) + " " + who + " target=" + (s.target?.text ?? "-")
                     + (s.e2e.resumed ? " resumed=yes" : ""))
        case .failed(let f):
            switch f {
            case .unauthorized(let id):
                // The forward is told nothing; the reason stays in our log.
                refusalLog.log(.warn, "stream_unauthorized",
                               "stream=" + String(s.streamID) + " forward=" + (id?.text ?? "no_certificate"), now: now)
                drop(s.streamID, mux: mux, reason: .unspecified, abort: true)
            default:
                refusalLog.log(.info, "stream_failed", "stream=" + String(s.streamID) + " " + who + " error=" + f.text,
                               now: now)
                drop(s.streamID, mux: mux, reason: .closed, abort: true)
            }
        case .refused, .none:
            break
        }
    }

    func refuse(_ s: Splice, _ reason: Reason, detail: String, now: Instant) {
        s.e2e.answer(reason)
        s.abandoned = true
        s.closeLocal()
        s.connectDeadline = nil
        s.lingerDeadline = now.adding(ms: Limits.targetConnectTimeoutMs)
        refusalLog.log(.warn, "target_refused", "stream=" + String(s.streamID) + " target=" + (s.target?.text ?? "-")
                       + " reason=" + reason.text + " " + detail, now: now)
    }

    func startConnect(_ s: Splice, _ target: HostPort, who: String, now: Instant) {
        guard let port = target.port else {
            refuse(s, .protocolError, detail: who, now: now)
            return
        }
        if let addr = SocketAddress.numeric(target.host, port: port) {
            return connect(s, target, addr, who: who, now: now)
        }
        // A name: the allow list first (a name no rule can allow causes no DNS query), then
        // the name resolved off the loop (a slow DNS stalls this stream only).
        if case .denied = policy.allow.precheck(target: target) {
            refuse(s, .targetNotAllowed, detail: who + " allow=" + policy.allow.text, now: now)
            return
        }
        switch Resolver.start(target.host, maxActive: Limits.reverseMaxResolving, delayMs: slowDNSMs) {
        case .busy:
            refuse(s, .noResources, detail: who + " error=resolver_busy", now: now)
        case .failed:
            refuse(s, .connectFailed, detail: who + " error=\"cannot resolve\"", now: now)
        case .started(let fd):
            s.fd = fd
            s.resolving = true
            s.connectReady = false
            s.connectDeadline = now.adding(ms: Limits.targetConnectTimeoutMs)
        }
    }

    /// A name's answer is there (or its time is up): connect to its first address if allowed.
    func resolved(_ s: Splice, now: Instant) {
        guard let target = s.target, let port = target.port else { return }
        let who = "forward=" + (s.e2e.peerID?.text ?? "-")
        let ready = s.connectReady
        s.connectReady = false
        guard ready, let addrs = Resolver.finish(s.fd, port: port) else {
            if let d = s.connectDeadline, now >= d {
                refuse(s, .timeout, detail: who + " error=resolve_timeout", now: now)
                s.resolving = false
            }
            return
        }
        s.resolving = false
        Socket.close(s.fd)
        s.fd = -1
        guard let addr = addrs.first else {
            refuse(s, .connectFailed, detail: who + " error=\"cannot resolve\"", now: now)
            return
        }
        connect(s, target, addr, who: who, now: now)
    }

    func connect(_ s: Splice, _ target: HostPort, _ addr: SocketAddress, who: String, now: Instant) {
        guard policy.allow.allows(target: target, address: addr) else {
            refuse(s, .targetNotAllowed, detail: who + " address=" + addr.text + " allow=" + policy.allow.text, now: now)
            return
        }
        do throws(SysError) {
            s.fd = try Socket.connect(addr)
            s.connectDeadline = now.adding(ms: Limits.targetConnectTimeoutMs)
            s.connectReady = false
        } catch {
            refuse(s, .connectFailed, detail: who + " error=" + Log.quote(error.message), now: now)
        }
    }

    override func prepare(_ s: Splice, mux: Mux, now: Instant) {
        if let d = s.authDeadline, now >= d {
            refusalLog.log(.warn, "stream_unauthorized", "stream=" + String(s.streamID) + " reason=auth_timeout", now: now)
            drop(s.streamID, mux: mux, reason: .timeout, abort: true)
            return
        }
        if s.resolving { resolved(s, now: now) }
        if let deadline = s.connectDeadline, !s.resolving {
            if s.connectReady {
                s.connectReady = false
                let err = Socket.connectError(s.fd)
                s.connectDeadline = nil
                if err == 0 {
                    s.e2e.answer(nil)
                } else {
                    refuse(s, .connectFailed, detail: "error=" + Log.quote(SysError.describe(err)), now: now)
                }
            } else if now >= deadline {
                refuse(s, .timeout, detail: "error=connect_timeout", now: now)
            }
        }
        if s.abandoned && s.e2e.outbound.isEmpty && !s.finQueued {
            mux.finish(s.streamID)
            s.finQueued = true
        }
        if s.abandoned, let info = mux.info(s.streamID), info.finSent && info.finReceived {
            mux.release(s.streamID)
            splices.removeValue(forKey: s.streamID)
        }
    }

    override func reload() {
        switch reloadPolicy() {
        case .success(let p):
            policy = p
            do throws(CryptoError) {
                try server.reload(authorization: p.authorization)
                Log.info("reloaded", "allow=" + p.allow.text)
            } catch {
                Log.error("reload_failed", "error=" + Log.quote(error.message))
            }
        case .failure(let e):
            Log.error("reload_failed", "error=" + Log.quote(e.message) + " kept=previous")
        }
    }
}
