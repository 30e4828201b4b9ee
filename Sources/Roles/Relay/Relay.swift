import Crypto
import Loop
import Mux
import Wire

/// The relay role: authenticates agents, keeps the registry, joins a forward's
/// stream to the right device's tunnel. It moves stream bytes between fixed
/// buffers and never has a key to read them (they are end-to-end encrypted).
///
/// This class is the driver: start-up (files in --state, listeners), the epoll loop,
/// signals, the clock and the metrics endpoint (RelayLoop.swift, Metrics.swift). The
/// protocol itself is `RelayCore` (RelayCore.swift), which has no socket, poller or clock.
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
    /// "sha256:<hex>" of the relay key: what agents pass as --relay-pin.
    public let pin: String
    /// Tunnels, joins, SNI routing, admission, drain: the protocol (RelayCore.swift).
    let core: RelayCore
    var listener: Int32 = -1
    var listenerReady = false
    var sniListener: Int32 = -1
    var sniListenerReady = false
    var metricsListener: Int32 = -1
    var metricsListenerReady = false
    var metricsConns: [MetricsConn] = []
    /// The loop (RelayLoop.swift): readiness by registration, tunnels with work, timers.
    let epoll: Epoll
    var listenerReg = Registration()
    var sniListenerReg = Registration()
    var metricsListenerReg = Registration()
    let metricsGate = Gate(limit: Limits.metricsMaxConnections, perSource: Limits.metricsMaxConnectionsPerSource)
    var nextMetricsSerial: UInt64 = 1
    public internal(set) var finished = false
    public internal(set) var exitCode: Int32 = 0

    public init(config: RelayConfig, rng: Rng) throws(StartupError) {
        self.config = config
        do throws(SysError) { try Files.makeDirectory(config.stateDir, mode: 0o700) } catch {
            throw StartupError("--state " + config.stateDir + ": " + error.message)
        }
        let (key, certificate) = try Relay.loadKeyAndCertificate(config, rng: rng)
        pin = Identity.pin(spki: key.publicKeyDER())
        let resumeKeys = try ResumeKeyStore(path: config.stateDir + "/resume-keys", now: Clock.wallSeconds())
        let tlsConfig: TLSConfig
        do throws(CryptoError) {
            tlsConfig = try TLSConfig(side: .server, rng: rng, certificate: certificate, key: key, peerCheck: .none,
                                      resume: resumeKeys.sealer, tlsKeyHello: true)
        } catch {
            throw StartupError("TLS setup: " + error.message)
        }
        let registry: Registry
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
        var enrollSecret: [UInt8]? = nil
        var clientCA: Certificate? = nil
        if let f = config.enrollSecretFile { enrollSecret = try SecretFile.load(f) }
        if let f = config.clientCAFile {
            do throws(IdentityError) { clientCA = try IdentityFile.certificate(f) } catch {
                throw StartupError("--client-ca " + error.message)
            }
        }
        let files = Files.raiseOpenFileLimit(config.maxTunnels + Limits.relayReservedFiles)
        let maxTunnels = min(config.maxTunnels, max(16, files - Limits.relayReservedFiles))
        if maxTunnels < config.maxTunnels {
            Log.warn("open_file_limit", "limit=" + String(files) + " max_tunnels=" + String(maxTunnels) + " wanted="
                     + String(config.maxTunnels) + " hint=" + Log.quote("raise LimitNOFILE or ulimit -n"))
        }
        do throws(SysError) { epoll = try Epoll() } catch {
            throw StartupError("epoll: " + error.message)
        }
        core = RelayCore(rng: rng, key: key, tlsConfig: tlsConfig, resumeKeys: resumeKeys, registry: registry,
                         enrollSecret: enrollSecret, clientCA: clientCA, openEnrollment: config.openEnrollment,
                         heartbeatMs: config.heartbeatMs, drainTimeoutMs: config.drainTimeoutMs, maxTunnels: maxTunnels)
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
        if let f = Environment.get("AGENT_FAULT_ROUTE") {
            let parts = Text.split(f, UInt8(ascii: ":"))
            if parts.count == 2, let from = AgentID(text: parts[0]), let to = AgentID(text: parts[1]) {
                core.faultRoute = (from, to)
                Log.warn("fault_injection", "route_from=" + from.text + " route_to=" + to.text)
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
        Log.info("relay_started", "max_tunnels=" + String(core.maxTunnels) + " listen=" + config.listenText + " pin=" + pin + " state=" + Log.quote(config.stateDir)
                 + " registered=" + String(core.registry.count))
    }
}
