import Crypto
import Loop
import Mux
import Wire

/// Where an agent finds its relay, and how it checks it.
public struct RelayEndpoint {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public var text: String { HostPort(host: host, port: port).text }
}

/// An agent's settings for its tunnel to the relay.
public struct TunnelSettings {
    public var relay: RelayEndpoint
    /// SHA-256 of the relay's key (--relay-pin), or nil with a CA.
    public var pin: [UInt8]?
    /// CA for the relay's TLS certificate (--ca), checked with the relay's host name.
    public var ca: Certificate?
    public var role: AgentRole
    public var identity: PrivateKey
    /// DER certificates presented in the hello, leaf first.
    public var certificates: [[UInt8]]
    public var token: [UInt8]
    public var hostnames: [String]
    public var heartbeatMs: Int64
    public var reconnectMaxMs: Int64
    public var muxLimits: MuxLimits

    public init(relay: RelayEndpoint, pin: [UInt8]?, ca: Certificate?, role: AgentRole, identity: PrivateKey,
                certificates: [[UInt8]], token: [UInt8], hostnames: [String], heartbeatMs: Int64,
                reconnectMaxMs: Int64, muxLimits: MuxLimits) {
        self.relay = relay
        self.pin = pin
        self.ca = ca
        self.role = role
        self.identity = identity
        self.certificates = certificates
        self.token = token
        self.hostnames = hostnames
        self.heartbeatMs = heartbeatMs
        self.reconnectMaxMs = reconnectMaxMs
        self.muxLimits = muxLimits
    }
}

/// An agent's tunnel to the relay: connect, TLS, hello, then the multiplexer;
/// reconnects with exponential backoff and jitter forever.
///
///     waiting --time--> connecting --writable--> tls --done--> hello --WELCOME--> ready
///        ^                  |                     |              |                  |
///        +------------------+---------------------+--------------+------------------+  any failure
///
/// The role drives it with `advance(now:)` (phase changes, reported as events)
/// and, while ready, takes stream events from `mux.poll(now:)`.
public final class RelayClient {
    public enum Event {
        case up(AgentID)
        /// The tunnel went away (or an attempt failed); `wasUp` if streams were lost.
        case down(reason: String, wasUp: Bool)
    }

    enum Phase {
        case waiting(until: Instant)
        case connecting(fd: Int32, deadline: Instant)
        case tls(link: TLSLink, deadline: Instant)
        case hello(link: TLSLink, mux: Mux, deadline: Instant)
        case ready(link: TLSLink, mux: Mux)
        case stopped
    }

    public let settings: TunnelSettings
    let rng: Rng
    let tlsConfig: TLSConfig
    let pool: BufferPool
    var phase: Phase
    var backoff: Backoff
    var connectReady = false
    var addressIndex = 0
    /// Set by a GOAWAY: reconnect no sooner than this after the tunnel closes.
    var retryAfterMs: Int64? = nil
    /// Why the tunnel's input ended; reported by `endIfInputEnded` once the frames
    /// received before the end have been handled.
    var inputEnded: String? = nil
    public private(set) var agentID: AgentID? = nil
    public private(set) var attempts = 0

    public init(settings: TunnelSettings, rng: Rng, pool: BufferPool, now: Instant) throws(CryptoError) {
        self.settings = settings
        self.rng = rng
        self.pool = pool
        let check: TLSConfig.PeerCheck
        if let ca = settings.ca { check = .required(trusted: ca) } else { check = .afterHandshake(trusted: nil) }
        tlsConfig = try TLSConfig(side: .client, rng: rng, certificate: nil, key: nil, peerCheck: check)
        backoff = Backoff(firstMs: Limits.reconnectFirstMs, capMs: settings.reconnectMaxMs)
        phase = .waiting(until: now)
    }

    /// The multiplexer while the tunnel is up.
    public var mux: Mux? {
        if case .ready(_, let m) = phase { return m }
        return nil
    }

    public var isUp: Bool { mux != nil }

    /// Ciphertext waiting for the socket (a progress measure for the role's work loop).
    public var outboundCount: Int { link?.tls.outbound.count ?? 0 }

    var link: TLSLink? {
        switch phase {
        case .tls(let l, _), .hello(let l, _, _), .ready(let l, _): return l
        default: return nil
        }
    }

    // MARK: loop hooks

    public func collect(into set: inout PollSet, token: UInt64) {
        switch phase {
        case .connecting(let fd, _):
            set.add(fd: fd, interest: .write, token: token)
        case .tls(let l, _), .hello(let l, _, _), .ready(let l, _):
            set.add(fd: l.fd, interest: l.interest, token: token)
        default:
            break
        }
    }

    public func ready(_ events: PollEvents) {
        switch phase {
        case .connecting:
            connectReady = true
        case .tls(let l, _), .hello(let l, _, _), .ready(let l, _):
            if events.contains(.read) { l.receive() }
            if events.contains(.write) { l.flush() }
        default:
            break
        }
    }

    public var nextDeadline: Instant? {
        switch phase {
        case .waiting(let t): return t
        case .connecting(_, let d), .tls(_, let d), .hello(_, _, let d): return d
        case .ready(_, let m): return m.nextDeadline
        case .stopped: return nil
        }
    }

    /// Pushes the tunnel's output to the socket (call after stream work).
    public func flush() -> Event? {
        guard case .ready(let l, let m) = phase else { return nil }
        if !TunnelPipe.pushOutput(l, m) { return fail("write failed", now: nil) }
        return nil
    }

    /// Moves phases forward. Call every turn (and after `ready`).
    public func advance(now: Instant) -> Event? {
        switch phase {
        case .stopped:
            return nil
        case .waiting(let t):
            if now >= t { startConnect(now: now) }
            return nil
        case .connecting(let fd, let deadline):
            if connectReady {
                connectReady = false
                let err = Socket.connectError(fd)
                if err == 0 {
                    let tls: TLSSession
                    do throws(CryptoError) {
                        tls = try TLSSession(config: tlsConfig, serverName: settings.ca != nil ? settings.relay.host : nil)
                    } catch {
                        Socket.close(fd)
                        return fail("tls setup: " + error.message, now: now)
                    }
                    phase = .tls(link: TLSLink(fd: fd, tls: tls), deadline: now.adding(ms: Limits.tlsHandshakeTimeoutMs))
                    return advance(now: now)
                }
                // Writable with SO_ERROR set: the connect failed for good.
                Socket.close(fd)
                return fail("connect to " + settings.relay.text + ": " + SysError.describe(err), now: now)
            }
            if now >= deadline {
                Socket.close(fd)
                return fail("connect to " + settings.relay.text + ": timed out", now: now)
            }
            return nil
        case .tls(let link, let deadline):
            switch link.tls.handshake() {
            case .done:
                if let problem = checkRelayTLS(link.tls) { return fail(problem, now: now) }
                let mux = Mux(side: .agent, limits: settings.muxLimits, pool: pool, now: now)
                phase = .hello(link: link, mux: mux, deadline: now.adding(ms: Limits.helloTimeoutMs))
                return advance(now: now)
            case .failed(let e):
                return fail("TLS handshake with " + settings.relay.text + " failed (mbedtls -0x" + String(-Int(e), radix: 16) + ")",
                            now: now)
            case .needIO:
                link.flush()
                if link.socketEOF || link.socketError != nil { return fail("relay closed the connection during TLS", now: now) }
                if now >= deadline { return fail("TLS handshake timed out", now: now) }
                return nil
            }
        case .hello(let link, let mux, let deadline):
            return advanceHello(link, mux, deadline, now: now)
        case .ready(let link, let mux):
            if inputEnded == nil {
                if !TunnelPipe.pullInput(link.tls, mux) {
                    inputEnded = link.tls.peerClosed ? "relay closed the tunnel" : "tunnel read failed"
                } else if link.socketEOF && !link.tls.hasBufferedInput {
                    inputEnded = "relay closed the connection"
                } else if link.socketError != nil {
                    inputEnded = "tunnel socket error"
                }
            }
            return nil
        }
    }

    /// After the role has handled the frames in `mux.rx`: if the relay's side ended,
    /// the tunnel goes down now.
    public func endIfInputEnded(now: Instant) -> Event? {
        guard let r = inputEnded, case .ready = phase else { return nil }
        inputEnded = nil
        return fail(r, now: now)
    }

    func advanceHello(_ link: TLSLink, _ mux: Mux, _ deadline: Instant, now: Instant) -> Event? {
        // Frames that arrived before the relay closed (DENIED, typically) are handled first.
        let inputOK = TunnelPipe.pullInput(link.tls, mux)
        while let ev = mux.poll(now: now) {
            switch ev {
            case .hello(.challenge, let payload):
                let peerKey: [UInt8]? = link.tls.peerPublicKeyDER
                let r = HelloAuth.answer(challenge: payload, pinDigest: settings.pin, tlsPeerKey: peerKey,
                                         identity: settings.identity, certificates: settings.certificates,
                                         role: settings.role, token: settings.token, hostnames: settings.hostnames, rng: rng)
                switch r {
                case .success(let auth):
                    if !mux.sendHello(.auth, auth) {
                        return fail("hello too large (" + String(auth.count) + " bytes): the certificate chain and token must fit in "
                                    + String(WireProtocol.maxPayload) + " bytes", now: now)
                    }
                case .failure(let refusal):
                    return fail(refusal.text, now: now)
                }
            case .hello(.welcome, let payload):
                guard let w = try? decodeBytes(payload, { (p) throws(WireError) in try WelcomeMessage.decode(p) }) else {
                    return fail("relay sent a malformed welcome", now: now)
                }
                mux.helloFinished(now: now)
                agentID = w.id
                backoff.reset()
                retryAfterMs = nil
                phase = .ready(link: link, mux: mux)
                if !TunnelPipe.pushOutput(link, mux) { return fail("write failed", now: now) }
                return .up(w.id)
            case .hello(.denied, _):
                return fail("relay refused this agent (key not enrolled, and no valid --token or certificate)", now: now)
            case .failed(let f):
                return fail("protocol error during hello: " + f.text, now: now)
            default:
                return fail("unexpected frame during hello", now: now)
            }
        }
        if !inputOK || link.socketEOF { return fail("relay closed the connection during hello", now: now) }
        if !TunnelPipe.pushOutput(link, mux) { return fail("write failed", now: now) }
        if now >= deadline { return fail("hello timed out", now: now) }
        return nil
    }

    /// The relay's TLS certificate: with a CA, mbedTLS already checked the chain and
    /// name (.required); with a pin, the key must hash to it.
    func checkRelayTLS(_ tls: TLSSession) -> String? {
        if let pin = settings.pin, settings.ca == nil {
            guard let key = tls.peerPublicKeyDER, Digest.constantTimeEqual(Digest.sha256(key), pin) else {
                return "relay key does not match --relay-pin (presented " + (tls.peerPublicKeyDER.map { Identity.pin(spki: $0) } ?? "no key") + ")"
            }
        }
        return nil
    }

    func startConnect(now: Instant) {
        attempts += 1
        let addrs = SocketAddress.resolve(settings.relay.host, port: settings.relay.port)
        guard !addrs.isEmpty else {
            _ = fail("cannot resolve " + Log.quote(settings.relay.host), now: now)
            return
        }
        let a = addrs[addressIndex % addrs.count]
        addressIndex += 1
        do throws(SysError) {
            let fd = try Socket.connect(a)
            connectReady = false
            phase = .connecting(fd: fd, deadline: now.adding(ms: Limits.tcpConnectTimeoutMs))
            Log.debug("relay_connecting", "relay=" + settings.relay.text + " address=" + a.text)
        } catch {
            _ = fail("connect to " + settings.relay.text + ": " + error.message, now: now)
        }
    }

    /// Closes whatever is open and schedules the next attempt.
    func fail(_ reason: String, now: Instant?) -> Event {
        inputEnded = nil
        var wasUp = false
        switch phase {
        case .connecting(let fd, _):
            Socket.close(fd)
        case .tls(let l, _), .hello(let l, _, _):
            l.close()
        case .ready(let l, _):
            l.close()
            wasUp = true
        default:
            break
        }
        let t = now ?? Instant(ms: Clock.monotonicMs())
        var delay = backoff.next(random: rng.below(1_000_000))
        if let r = retryAfterMs {
            delay = max(delay, r)
            retryAfterMs = nil
        }
        phase = .waiting(until: t.adding(ms: delay))
        return .down(reason: reason + " (retry in " + String(delay) + " ms)", wasUp: wasUp)
    }

    /// After a GOAWAY: come back no sooner than `ms` after the tunnel closes.
    public func noteGoaway(retryAfterMs ms: UInt32) { retryAfterMs = Int64(ms) }

    /// Closes the tunnel now (e.g. after a goaway once streams are done) and reconnects later.
    public func close(reason: String, now: Instant) -> Event { fail(reason, now: now) }

    /// Stops for good (process exit): sends close_notify if possible.
    public func stop() {
        if let l = link {
            l.tls.sendCloseNotify()
            l.flush()
            l.close()
        }
        if case .connecting(let fd, _) = phase { Socket.close(fd) }
        phase = .stopped
    }
}
