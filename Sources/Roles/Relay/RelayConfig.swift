import Crypto
import Loop
import Wire

/// The relay's validated configuration.
public struct RelayConfig {
    public var listen: SocketAddress
    public var listenText: String
    public var stateDir: String
    public var certFile: String?
    public var keyFile: String?
    public var enrollSecretFile: String?
    public var openEnrollment: Bool
    public var clientCAFile: String?
    /// `--sni-listen`: public TLS routed by SNI hostname to devices.
    public var sniListen: SocketAddress?
    public var sniListenText: String?
    /// `--metrics`: Prometheus text format at /metrics.
    public var metrics: SocketAddress?
    public var metricsText: String?
    public var heartbeatMs: Int64
    public var drainTimeoutMs: Int64
    /// `--max-tunnels`: agents with a tunnel (or a handshake) at once.
    public var maxTunnels: Int

    public static let defaultListen = "0.0.0.0:7443"
    public static let defaultStateDir = "./relay-state"
    /// On SIGTERM, streams get this long to finish before they are reset.
    public static let defaultDrainTimeoutMs: Int64 = 10_000
    /// The retry hint sent in GOAWAY.
    public static let goawayRetryAfterMs: UInt32 = 1_000

    public init(listen: SocketAddress, listenText: String, stateDir: String, certFile: String?, keyFile: String?,
                enrollSecretFile: String?, openEnrollment: Bool, clientCAFile: String?, heartbeatMs: Int64,
                sniListen: SocketAddress? = nil, sniListenText: String? = nil,
                metrics: SocketAddress? = nil, metricsText: String? = nil,
                drainTimeoutMs: Int64 = RelayConfig.defaultDrainTimeoutMs, maxTunnels: Int = Limits.relayMaxTunnels) {
        self.maxTunnels = maxTunnels
        self.metrics = metrics
        self.metricsText = metricsText
        self.sniListen = sniListen
        self.sniListenText = sniListenText
        self.listen = listen
        self.listenText = listenText
        self.stateDir = stateDir
        self.certFile = certFile
        self.keyFile = keyFile
        self.enrollSecretFile = enrollSecretFile
        self.openEnrollment = openEnrollment
        self.clientCAFile = clientCAFile
        self.heartbeatMs = heartbeatMs
        self.drainTimeoutMs = drainTimeoutMs
    }
}

/// A problem with configuration or state found at start: exit status 2, one line.
public struct StartupError: Error {
    public let message: String
    public init(_ m: String) { message = m }
}

/// Secret files (the enrollment secret): at least 16 bytes; trailing newlines are not part of it.
public enum SecretFile {
    public static let minimumBytes = 16

    public static func load(_ path: String) throws(StartupError) -> [UInt8] {
        var data: [UInt8]
        do throws(SysError) { data = try Files.read(path, limit: 4096) } catch {
            throw StartupError(path + ": " + error.message)
        }
        while let l = data.last, l == 0x0a || l == 0x0d { data.removeLast() }
        guard data.count >= minimumBytes else {
            throw StartupError(path + ": secret too short (need at least " + String(minimumBytes) + " bytes)")
        }
        if let mode = Files.mode(path), mode & 0o077 != 0 {
            Log.warn("secret_file_permissions", "file=" + Log.quote(path) + " mode=0" + String(mode, radix: 8) + " want=0600")
        }
        return data
    }

    /// Creates a random secret (32 bytes, hex, mode 0600) at `path` if it does not exist.
    public static func loadOrCreate(_ path: String, rng: Rng) throws(StartupError) -> (secret: [UInt8], created: Bool) {
        if Files.exists(path) { return (try load(path), false) }
        let text = Array((Hex.encode(rng.bytes(32)) + "\n").utf8)
        do throws(SysError) { try Files.writeAtomically(path, text, mode: 0o600) } catch {
            throw StartupError(path + ": " + error.message)
        }
        return (try load(path), true)
    }
}
