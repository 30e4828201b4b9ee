import Crypto
import Loop
import Mux
import Wire

/// The relay role: authenticates agents, keeps the registry, joins a forward's
/// stream to the right device's tunnel. It moves stream bytes between fixed
/// buffers and never has a key to read them (they are end-to-end encrypted).
public final class Relay {
    enum TokenKind: UInt8 {
        case listener = 1
        case conn = 2
        case sniListener = 3
        case sni = 4
        case metricsListener = 5
        case metrics = 6
        case signal = 7
    }

    let config: RelayConfig
    let rng: Rng
    let key: PrivateKey
    let certificate: Certificate
    let pinDigest: [UInt8]
    /// "sha256:<hex>" of the relay key: what agents pass as --relay-pin.
    public let pin: String
    let tlsConfig: TLSConfig
    /// Resume credentials: the keys that seal and open them (in --state).
    let resumeKeys: ResumeKeyStore
    let registry: Registry
    var enrollSecret: [UInt8]?
    var clientCA: Certificate?
    let pool: BufferPool
    /// Record buffers and frame queues of tunnels that have something to move.
    let blocks = BlockCache(keepPerSize: Limits.relaySpareBlocks)
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
    /// The loop (RelayLoop.swift): readiness by registration, tunnels with work, timers.
    let epoll: Epoll
    var listenerReg = Registration()
    var sniListenerReg = Registration()
    var metricsListenerReg = Registration()
    let work = WorkQueue()
    var timers = TimerHeap()
    /// Tunnels closed this turn, forgotten at its end.
    var retired: [RelayConn] = []
    /// `--max-tunnels`, or fewer if the open-file limit could not be raised that far.
    let maxTunnels: Int
    let metricsGate = Gate(limit: Limits.metricsMaxConnections, perSource: Limits.metricsMaxConnectionsPerSource)
    var conns: [UInt64: RelayConn] = [:]
    /// Connected devices (reverse role) by ID. A reconnect with the same key replaces the entry at once.
    var online: [AgentID: RelayConn] = [:]
    /// Tunnels and streams held by each key with a tunnel up.
    var keyShares = KeyShares()
    /// New keys enrolled: a bounded rate (each is a registry write, and under
    /// --open-enrollment anyone can ask).
    var enrollRate = TokenBucket(burst: Limits.relayEnrollBurst, perSecond: Limits.relayEnrollPerSecond)
    /// New connections accepted: a bounded rate (a reconnect storm waits in the backlog).
    var acceptRate = TokenBucket(burst: Limits.relayAcceptBurst, perSecond: Limits.relayAcceptPerSecond)
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
    public internal(set) var finished = false
    public internal(set) var exitCode: Int32 = 0


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
        resumeKeys = try ResumeKeyStore(path: config.stateDir + "/resume-keys", now: Clock.wallSeconds())
        do throws(CryptoError) {
            tlsConfig = try TLSConfig(side: .server, rng: rng, certificate: certificate, key: key, peerCheck: .none,
                                      resume: resumeKeys.sealer)
        } catch {
            throw StartupError("TLS setup: " + error.message)
        }
        do throws(Registry.LoadError) {
            registry = try Registry.load(config.stateDir + "/registry")
        } catch {
            throw StartupError(error.message)
        }
        if registry.ignoredJournalBytes > 0 {
            // A crash while the last change was written: that change was never acknowledged.
            Log.warn("registry_journal_torn", "file=" + Log.quote(config.stateDir + "/registry.journal")
                     + " ignored_bytes=" + String(registry.ignoredJournalBytes))
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
        let files = Files.raiseOpenFileLimit(config.maxTunnels + Limits.relayReservedFiles)
        maxTunnels = min(config.maxTunnels, max(16, files - Limits.relayReservedFiles))
        if maxTunnels < config.maxTunnels {
            Log.warn("open_file_limit", "limit=" + String(files) + " max_tunnels=" + String(maxTunnels) + " wanted="
                     + String(config.maxTunnels) + " hint=" + Log.quote("raise LimitNOFILE or ulimit -n"))
        }
        do throws(SysError) { epoll = try Epoll() } catch {
            throw StartupError("epoll: " + error.message)
        }
        muxLimits = MuxLimits(maxStreams: Limits.relayMaxStreamsPerTunnel, heartbeatMs: config.heartbeatMs,
                              openTimeoutMs: Limits.relayOpenTimeoutMs)
        // Two buffers per joined stream (one per leg), so the pool holds twice the stream limit.
        pool = BufferPool(bufferSize: Limits.relayWindow, limit: 2 * Limits.relayMaxStreams, maxBufferSize: Limits.relayMaxWindow)
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

    public func start() {
        Log.info("relay_started", "max_tunnels=" + String(maxTunnels) + " listen=" + config.listenText + " pin=" + pin + " state=" + Log.quote(config.stateDir)
                 + " registered=" + String(registry.count))
    }
}
