import Crypto
import Loop
import Mux
import Wire

/// Where an agent finds its relay, and how it checks it.
public struct RelayEndpoint {
    public var host: String
    public var port: UInt16
    /// `https://host[:port]/path`: an HTTP/1.1 Upgrade to `path` after TLS (a front
    /// such as nginx or a load balancer may terminate TLS). nil: raw.
    public var upgradePath: String?
    /// An HTTP CONNECT proxy to reach the relay through.
    public var proxy: HostPort?

    public init(host: String, port: UInt16, upgradePath: String? = nil, proxy: HostPort? = nil) {
        self.host = host
        self.port = port
        self.upgradePath = upgradePath
        self.proxy = proxy
    }

    public var text: String {
        if let p = upgradePath { return "https://" + HostPort(host: host, port: port).text + p }
        return HostPort(host: host, port: port).text
    }

    /// Parses `HOST:PORT` or `https://HOST[:PORT]/PATH` (port 443 by default).
    public static func parse(_ s: String) -> RelayEndpoint? {
        if Text.hasPrefix(s, "https://") {
            let rest = Text.dropFirst(s, 8)
            let slash = Text.firstIndex(rest, UInt8(ascii: "/"))
            let authority = slash.map { Text.slice(rest, 0, $0) } ?? rest
            let path = slash.map { Text.dropFirst(rest, $0) } ?? "/"
            for b in path.utf8 where b <= 0x20 || b >= 0x7f { return nil }
            if let hp = HostPort.parse(authority), let port = hp.port {
                return RelayEndpoint(host: hp.host, port: port, upgradePath: path)
            }
            guard let hp = HostPort.parse(authority + ":443"), let port = hp.port else { return nil }
            return RelayEndpoint(host: hp.host, port: port, upgradePath: path)
        }
        guard let hp = HostPort.parse(s), let port = hp.port else { return nil }
        return RelayEndpoint(host: hp.host, port: port)
    }

    /// Parses `http://HOST[:PORT]` (port 80 by default) for --proxy.
    public static func parseProxy(_ s: String) -> HostPort? {
        guard Text.hasPrefix(s, "http://") else { return nil }
        var rest = Text.dropFirst(s, 7)
        if Text.hasSuffix(rest, "/") { rest = Text.slice(rest, 0, Text.length(rest) - 1) }
        if let hp = HostPort.parse(rest), hp.port != nil { return hp }
        return HostPort.parse(rest + ":80")
    }
}

/// An agent's settings for its tunnel to the relay.
public struct TunnelSettings {
    public var relay: RelayEndpoint
    /// SHA-256 of the relay's key (--relay-pin), or nil with a CA.
    public var pin: [UInt8]?
    /// CA for the relay's TLS certificate (--ca), checked with the relay's host name (an IP
    /// literal: against the certificate's iPAddress subjectAltNames, unless a pin is given).
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
    /// Bytes all stream buffers may use at once (`--memory-budget`); nil: the role's default.
    public var memoryBudget: Int? = nil

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
        /// CONNECT sent to the proxy; its answer is read into `proxyReply`.
        case proxy(fd: Int32, deadline: Instant)
        case tls(link: TLSLink, deadline: Instant)
        /// Upgrade request sent; waiting for "101 Switching Protocols".
        case upgrade(link: TLSLink, mux: Mux, deadline: Instant)
        case hello(link: TLSLink, mux: Mux, deadline: Instant)
        case ready(link: TLSLink, mux: Mux)
        case stopped
    }

    public let settings: TunnelSettings
    let rng: Rng
    let tlsConfig: TLSConfig
    let peerCheck: TLSConfig.PeerCheck
    /// The relay's last resume credential (RESUME), offered as a TLS 1.3 external PSK on
    /// the next connection: the relay then admits this agent without public-key work.
    /// Kept in memory only. Dropped when the relay answers with a full handshake, or a
    /// resumed attempt fails before the tunnel is up (the next attempt is a full one).
    var credential: (payload: [UInt8], expires: Instant)? = nil
    /// This attempt's TLS offered `credential`.
    var offeredCredential = false
    /// The tunnel (or the attempt under way) runs on a TLS session authenticated by the credential.
    public private(set) var resumed = false
    let pool: BufferPool
    var phase: Phase
    var backoff: Backoff
    var connectReady = false
    var proxyReply: [UInt8] = []
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
        peerCheck = check
        // Without a CA, TLS ends at the relay and its key is checked against the hello's:
        // the relay's CHALLENGE then needs no signature (ALPN agent-tls-key).
        tlsConfig = try TLSConfig(side: .client, rng: rng, certificate: nil, key: nil, peerCheck: check,
                                  tlsKeyHello: settings.ca == nil)
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
        case .tls(let l, _), .upgrade(let l, _, _), .hello(let l, _, _), .ready(let l, _): return l
        default: return nil
        }
    }

    // MARK: loop hooks

    public func collect(into set: inout PollSet, token: UInt64) {
        switch phase {
        case .connecting(let fd, _):
            set.add(fd: fd, interest: .write, token: token)
        case .proxy(let fd, _):
            set.add(fd: fd, interest: .read, token: token)
        case .tls(let l, _), .upgrade(let l, _, _), .hello(let l, _, _), .ready(let l, _):
            set.add(fd: l.fd, interest: l.interest, token: token)
        default:
            break
        }
    }

    public func ready(_ events: PollEvents) {
        switch phase {
        case .connecting:
            connectReady = true
        case .proxy(let fd, _):
            readProxyReply(fd)
        case .tls(let l, _), .upgrade(let l, _, _), .hello(let l, _, _), .ready(let l, _):
            if events.contains(.read) { l.receive() }
            if events.contains(.write) { l.writable() }
        default:
            break
        }
    }

    public var nextDeadline: Instant? {
        switch phase {
        case .waiting(let t): return t
        case .connecting(_, let d), .proxy(_, let d), .tls(_, let d), .upgrade(_, _, let d), .hello(_, _, let d): return d
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
                    if let p = settings.relay.proxy {
                        // Ask the proxy for a TCP path to the relay (the request fits any socket buffer).
                        let req = Preamble.connectRequest(host: settings.relay.host, port: settings.relay.port)
                        guard case .done(let n) = req.withUnsafeBytes({ Socket.write(fd, $0) }), n == req.count else {
                            Socket.close(fd)
                            return fail("proxy " + p.text + ": could not send CONNECT", now: now)
                        }
                        proxyReply.removeAll()
                        phase = .proxy(fd: fd, deadline: deadline)
                        return advance(now: now)
                    }
                    return startTLS(fd, now: now)
                }
                // Writable with SO_ERROR set: the connect failed for good.
                Socket.close(fd)
                return fail("connect to " + (settings.relay.proxy?.text ?? settings.relay.text) + ": " + SysError.describe(err), now: now)
            }
            if now >= deadline {
                Socket.close(fd)
                return fail("connect to " + settings.relay.text + ": timed out", now: now)
            }
            return nil
        case .proxy(let fd, let deadline):
            let r = proxyReply.withUnsafeBytes { b -> (Int?, Int?) in
                guard let end = Preamble.headEnd(b) else { return (nil, nil) }
                return (end, Preamble.status(b, end: end))
            }
            if let end = r.0 {
                guard let code = r.1, code / 100 == 2, end == proxyReply.count else {
                    Socket.close(fd)
                    return fail("proxy " + (settings.relay.proxy?.text ?? "") + " refused CONNECT (HTTP "
                                + (r.1.map { String($0) } ?? "?") + ")", now: now)
                }
                return startTLS(fd, now: now)
            }
            if proxyReply.count >= Preamble.maxHead || proxyEOF {
                Socket.close(fd)
                return fail("proxy " + (settings.relay.proxy?.text ?? "") + " closed or answered garbage", now: now)
            }
            if now >= deadline {
                Socket.close(fd)
                return fail("proxy " + (settings.relay.proxy?.text ?? "") + ": CONNECT timed out", now: now)
            }
            return nil
        case .upgrade(let link, let mux, let deadline):
            let inputOK = TunnelPipe.pullInput(link.tls, mux)
            let r = mux.rx.readable
            if let end = Preamble.headEnd(r) {
                let code = Preamble.status(r, end: end)
                guard code == 101 else {
                    return fail("relay front answered HTTP " + (code.map { String($0) } ?? "?")
                                + " instead of 101 (is the path right, and does the proxy pass Upgrade?)", now: now)
                }
                mux.rx.consume(end)
                phase = .hello(link: link, mux: mux, deadline: deadline)
                return advance(now: now)
            }
            if !inputOK || link.socketEOF { return fail("relay front closed the connection during the upgrade", now: now) }
            if mux.rx.count >= Preamble.maxHead { return fail("relay front sent an oversized HTTP answer", now: now) }
            if now >= deadline { return fail("HTTP upgrade timed out", now: now) }
            return nil
        case .tls(let link, let deadline):
            switch link.tls.handshake() {
            case .done:
                resumed = link.tls.resumedWithPSK
                if offeredCredential && !resumed {
                    // The relay did not take it (restarted without its keys, expired...): this
                    // was a full handshake, checked as always, and the credential is spent.
                    credential = nil
                    offeredCredential = false
                }
                if let problem = checkRelayTLS(link.tls) { return fail(problem, now: now) }
                let mux = Mux(side: .agent, limits: settings.muxLimits, pool: pool, now: now)
                let helloDeadline = now.adding(ms: Limits.helloTimeoutMs)
                if let path = settings.relay.upgradePath {
                    _ = link.tls.write(Preamble.upgradeRequest(host: settings.relay.host, port: settings.relay.port, path: path))
                    link.flush()
                    phase = .upgrade(link: link, mux: mux, deadline: helloDeadline)
                } else {
                    _ = link.tls.write(Preamble.raw)
                    link.flush()
                    phase = .hello(link: link, mux: mux, deadline: helloDeadline)
                }
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
                // With a CA, TLS may end at a front (nginx, a load balancer): the relay's
                // own key is then checked only in the hello (pin and signature). In raw mode
                // with a pin, `checkRelayTLS` already tied the TLS key to the pin.
                // On a session resumed with the credential there is no TLS key: the PSK itself
                // proves the relay (it came from the relay this agent checked when it got it).
                let peerKey: [UInt8]? = settings.ca == nil && !resumed ? link.tls.peerPublicKeyDER : nil
                let r = HelloAuth.answer(challenge: payload, pinDigest: settings.pin, tlsPeerKey: peerKey,
                                         identity: settings.identity, certificates: settings.certificates,
                                         role: settings.role, token: settings.token, hostnames: settings.hostnames, rng: rng,
                                         resumed: resumed, tlsKeyHello: link.tls.tlsKeyHello)
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
                offeredCredential = false
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

    /// The relay's TLS certificate, checked before a byte of the hello is read:
    /// - with a pin in raw mode (no HTTP Upgrade front), TLS ends at the relay itself, so
    ///   the TLS key must hash to the pin whatever --ca says: a CA-issued certificate for the
    ///   relay's name in an interceptor's hands is not enough (issue 12, finding 7). Behind a
    ///   front (https:// URL) the TLS key is the front's; the pin is checked in the hello.
    /// - with a CA, mbedTLS already checked the chain (.required) and, for a DNS name, the
    ///   name (`startTLS` sets it). mbedTLS 2.28 checks no name for an IP literal
    ///   (CVE-2025-27809), so without a pin the certificate must list that address as an
    ///   iPAddress subjectAltName (finding 6).
    func checkRelayTLS(_ tls: TLSSession) -> String? {
        // A session authenticated by this agent's resume credential has no certificate:
        // the relay proved it holds the PSK it handed out over a checked session.
        if tls.resumedWithPSK { return nil }
        guard tls.peerCertificateDER != nil else { return "relay presented no certificate" }
        if let pin = settings.pin, settings.ca == nil || settings.relay.upgradePath == nil {
            guard let key = tls.peerPublicKeyDER, Digest.constantTimeEqual(Digest.sha256(key), pin) else {
                return "relay key does not match --relay-pin (its TLS certificate's key is "
                    + (tls.peerPublicKeyDER.map { Identity.pin(spki: $0) } ?? "missing") + ")"
            }
        } else if settings.ca != nil, let ip = SocketAddress.numeric(settings.relay.host, port: 0) {
            guard let der = tls.peerCertificateDER, SubjectAltName.contains(ip: ip.ipBytes, certificateDER: der) else {
                return "relay certificate does not name " + settings.relay.host
                    + " (with --ca and an IP address, the certificate must list that IP address in its subjectAltName;"
                    + " use the relay's DNS name, or give --relay-pin too)"
            }
        }
        return nil
    }

    func startTLS(_ fd: Int32, now: Instant) -> Event? {
        let tls: TLSSession
        // Name the server (SNI; with a CA also the name checked): fronts with several
        // names pick their certificate by it. IP literals are not sent as SNI.
        let host = settings.relay.host
        let named = SocketAddress.numeric(host, port: 0) == nil
        // A resume credential goes on a config of its own (mbedTLS 3.6 holds one static
        // PSK per config); a full handshake follows in the same connection if the relay
        // does not take it.
        var config = tlsConfig
        offeredCredential = false
        resumed = false
        if let c = credential {
            if now < c.expires, settings.relay.upgradePath == nil,
               let rc = try? TLSConfig(side: .client, rng: rng, certificate: nil, key: nil, peerCheck: peerCheck,
                                       resumeCredential: c.payload, tlsKeyHello: settings.ca == nil) {
                config = rc
                offeredCredential = true
            } else {
                credential = nil
            }
        }
        do throws(CryptoError) {
            tls = try TLSSession(config: config, serverName: named ? host : nil)
        } catch {
            Socket.close(fd)
            return fail("tls setup: " + error.message, now: now)
        }
        phase = .tls(link: TLSLink(fd: fd, tls: tls), deadline: now.adding(ms: Limits.tlsHandshakeTimeoutMs))
        return advance(now: now)
    }

    var proxyEOF = false

    func readProxyReply(_ fd: Int32) {
        var buf = [UInt8](repeating: 0, count: 1024)
        while proxyReply.count < Preamble.maxHead {
            // Byte by byte up to the blank line would be exact; reading a chunk is fine
            // because a proxy sends nothing after its answer until we speak TLS.
            let r = buf.withUnsafeMutableBytes { Socket.read(fd, into: $0) }
            switch r {
            case .done(let n): proxyReply += buf[0..<n]
            case .eof, .failed:
                proxyEOF = true
                return
            case .wouldBlock: return
            }
        }
    }

    func startConnect(now: Instant) {
        attempts += 1
        proxyEOF = false
        let dial = settings.relay.proxy ?? HostPort(host: settings.relay.host, port: settings.relay.port)
        let addrs = SocketAddress.resolve(dial.host, port: dial.port ?? 80)
        guard !addrs.isEmpty else {
            _ = fail("cannot resolve " + Log.quote(dial.host), now: now)
            return
        }
        let a = addrs[addressIndex % addrs.count]
        addressIndex += 1
        do throws(SysError) {
            let fd = try Socket.connect(a)
            Socket.setNotSentLowWater(fd, Limits.tunnelNotSentLowWater)
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
        case .connecting(let fd, _), .proxy(let fd, _):
            Socket.close(fd)
        case .tls(let l, _), .upgrade(let l, _, _), .hello(let l, _, _):
            l.close()
            // A resumed attempt that failed before the tunnel was up: the next one is full (no loop).
            if offeredCredential { credential = nil }
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

    /// A RESUME frame from the relay: the credential for the next connection. Ignored
    /// behind an HTTP Upgrade front (TLS may end there) and if malformed.
    public func takeCredential(_ payload: [UInt8], now: Instant) {
        // Its layout is checked when it is offered (a malformed one fails that TLS setup and
        // is dropped); here only its lifetime is read.
        guard settings.relay.upgradePath == nil, isUp, payload.count > 4 else { return }
        // Not offered in its last moments: the relay must still find it valid when it reads
        // the ClientHello, which comes within a TLS handshake timeout.
        let seconds = Int64(payload[0]) << 24 | Int64(payload[1]) << 16 | Int64(payload[2]) << 8 | Int64(payload[3])
        let life = seconds * 1000 - Limits.tlsHandshakeTimeoutMs
        guard life > 0 else { return }
        credential = (payload, now.adding(ms: life))
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
        if case .proxy(let fd, _) = phase { Socket.close(fd) }
        phase = .stopped
    }
}
