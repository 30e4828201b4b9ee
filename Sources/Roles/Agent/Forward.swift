import Crypto
import E2E
import Loop
import Mux
import Wire

/// One `--listen/--device/--target` or `--map` entry.
public struct ForwardMapping {
    public var listen: SocketAddress
    public var listenText: String
    public var device: AgentID
    public var target: HostPort

    public init(listen: SocketAddress, listenText: String, device: AgentID, target: HostPort) {
        self.listen = listen
        self.listenText = listenText
        self.device = device
        self.target = target
    }
}

/// The forward role (operator machine): listens locally; each accepted
/// connection becomes a stream to a device, with an end-to-end session that
/// checks the device's key against the ID asked for, carries the target, and
/// then splices bytes.
public final class Forward: AgentNode {
    final class Listener {
        let fd: Int32
        let mapping: ForwardMapping
        var ready = false
        init(fd: Int32, mapping: ForwardMapping) {
            self.fd = fd
            self.mapping = mapping
        }
    }

    let e2eClient: E2EClient
    var listeners: [Listener] = []
    var notConnectedLog = RateLimit()
    override var roleName: String { "forward" }

    public init(settings: TunnelSettings, certificate: Certificate, mappings: [ForwardMapping], rng: Rng,
                now: Instant) throws(StartupError) {
        do throws(CryptoError) {
            e2eClient = try E2EClient(rng: rng, key: settings.identity, certificate: certificate)
            try super.init(settings: settings, rng: rng, window: Limits.forwardWindow, maxWindow: Limits.forwardMaxWindow,
                           maxStreams: Limits.forwardMaxStreams,
                           now: now)
        } catch {
            throw StartupError("TLS setup: " + error.message)
        }
        for m in mappings {
            do throws(SysError) {
                listeners.append(Listener(fd: try Socket.listen(m.listen, backlog: Limits.maxListenBacklog), mapping: m))
            } catch {
                for l in listeners { Socket.close(l.fd) }
                throw StartupError("--listen " + m.listenText + ": " + error.message)
            }
        }
    }

    override func collectExtra(into set: inout PollSet) {
        for (i, l) in listeners.enumerated() {
            set.add(fd: l.fd, interest: .read, token: Token.make(TokenKind.listener.rawValue, UInt64(i)))
        }
    }

    override func readyExtra(kind: UInt8, serial: UInt64, events: PollEvents, now: Instant) {
        if kind == TokenKind.listener.rawValue && Int(serial) < listeners.count { listeners[Int(serial)].ready = true }
    }

    override func workExtra(now: Instant) {
        for l in listeners where l.ready {
            l.ready = false
            var n = 0
            while n < 64, let (fd, peer) = Socket.accept(l.fd) {
                n += 1
                accept(fd, peer, l.mapping, now: now)
            }
        }
    }

    func accept(_ fd: Int32, _ peer: SocketAddress, _ m: ForwardMapping, now: Instant) {
        guard let mux = client.mux else {
            notConnectedLog.log(.warn, "client_refused", "client=" + peer.text + " reason=relay_not_connected", now: now)
            Socket.close(fd)
            return
        }
        guard let id = mux.open(.device(m.device), caller: PeerAddress(ip: peer.ipBytes, port: peer.port), now: now) else {
            Log.warn("client_refused", "client=" + peer.text + " reason=" + (mux.peerGoingAway ? "relay_going_away" : "no_resources"))
            Socket.close(fd)
            return
        }
        let session: E2ESession
        do throws(CryptoError) {
            session = try E2ESession(client: e2eClient, device: m.device, target: m.target, now: now)
        } catch {
            mux.reset(id, .noResources)
            Socket.close(fd)
            return
        }
        let s = Splice(streamID: id, e2e: session, label: peer.text)
        s.fd = fd
        s.target = m.target
        splices[id] = s
        Log.debug("client_accepted", "client=" + peer.text + " stream=" + String(id) + " device=" + m.device.text
                  + " target=" + m.target.text)
    }

    override func sessionEvent(_ s: Splice, _ ev: E2EEvent, mux: Mux, now: Instant) {
        let what = "stream=" + String(s.streamID) + " client=" + s.label + " target=" + (s.target?.text ?? "-")
        switch ev {
        case .established:
            Log.info("stream_open", what + (s.e2e.resumed ? " resumed=yes" : ""))
        case .refused(let reason):
            Log.warn("stream_refused", what + " reason=" + reason.text)
            drop(s.streamID, mux: mux, reason: .closed, abort: false)
        case .failed(let f):
            Log.warn("stream_failed", what + " error=" + f.text)
            drop(s.streamID, mux: mux, reason: .closed, abort: s.established)
        case .targetRequested, .none:
            break
        }
    }

    public override func work(now: Instant) {
        if stopping {
            for l in listeners { Socket.close(l.fd) }
            listeners.removeAll()
        }
        super.work(now: now)
    }
}
