import Crypto
import Loop
import Mux
import Roles
import Wire

/// `agent --role relay|reverse|forward ...`: options, validation, start.
enum RoleCommand {
    static let common: [OptionSpec] = [.value("role"), .value("config"), .value("log-level"), .value("heartbeat")]
    static let agentCommon: [OptionSpec] = [
        .value("relay"), .value("relay-pin"), .value("ca"), .value("identity"), .value("cert"), .value("token"),
        .value("proxy"), .value("reconnect-max"),
        .value("token-file"), .value("memory-budget"),
    ]
    static let relayOnly: [OptionSpec] = [
        .value("listen"), .value("state"), .value("cert"), .value("key"), .value("enroll-secret"), .flag("open-enrollment"),
        .value("client-ca"), .value("sni-listen"), .value("metrics"), .value("max-tunnels"),
    ]
    static let reverseOnly: [OptionSpec] = [
        .list("allow"), .value("authorized-keys"), .value("authorized-ca"), .flag("authorize-any"),
        .value("hostname"), .value("sni-target"),
    ]
    static let forwardOnly: [OptionSpec] = [.value("listen"), .value("device"), .value("target"), .list("map")]

    static func specs(for role: String) -> [OptionSpec] {
        if Text.equal(role, "relay") { return common + relayOnly }
        if Text.equal(role, "reverse") { return common + agentCommon + reverseOnly }
        if Text.equal(role, "forward") { return common + agentCommon + forwardOnly }
        return common
    }

    static func run(_ args: [String]) throws(UsageError) -> Int32 {
        // Every option any role knows, so that --config can name the role too.
        var all = common
        for s in agentCommon + relayOnly + reverseOnly + forwardOnly where OptionSpec.find(all, s.name) == nil {
            all.append(s)
        }
        var opts = try ArgumentParser.parse(args, specs: all)
        if let cfg = opts.value("config") { try ArgumentParser.applyConfigFile(cfg, specs: all, into: &opts) }
        guard let role = opts.value("role") else { throw UsageError("--role is required (relay, reverse or forward)") }
        guard Text.equal(role, "relay") || Text.equal(role, "reverse") || Text.equal(role, "forward") else {
            throw UsageError(opts.source("role") + ": unknown role '" + role + "' (relay, reverse or forward)")
        }
        let allowed = specs(for: role)
        for name in opts.names where OptionSpec.find(allowed, name) == nil {
            throw UsageError(opts.source(name) + " is not an option of --role " + role)
        }
        if let l = opts.value("log-level") {
            guard let level = LogLevel.parse(l) else {
                throw UsageError(opts.source("log-level") + ": expected error, warn, info or debug, got '" + l + "'")
            }
            Log.level = level
        }
        // A device pings on its own schedule, announced to the relay (metered links): a
        // longer default than the relay's and the operators' tunnels.
        let heartbeat = try ArgumentParser.seconds(
            opts, "heartbeat", default: Text.equal(role, "reverse") ? Limits.reverseHeartbeatSeconds : Limits.heartbeatSeconds,
            max: 3600)
        do throws(SysError) { try Signals.install() } catch {
            Log.writeStderr("agent: " + error.message + "\n")
            return ExitCode.failure
        }
        let rng: Rng
        do throws(CryptoError) { rng = try Rng() } catch {
            Log.writeStderr("agent: random generator: " + error.message + "\n")
            return ExitCode.failure
        }
        if Text.equal(role, "relay") { return try runRelay(opts, heartbeatMs: Int64(heartbeat) * 1000, rng: rng) }
        if Text.equal(role, "reverse") {
            return try AgentCommand.runReverse(opts, heartbeatMs: Int64(heartbeat) * 1000, rng: rng)
        }
        return try AgentCommand.runForward(opts, heartbeatMs: Int64(heartbeat) * 1000, rng: rng)
    }

    /// Parses ADDR:PORT for a socket we listen on (numeric addresses, or "localhost").
    static func listenAddress(_ opts: ParsedOptions, _ name: String, default def: String?) throws(UsageError) -> (SocketAddress, String)? {
        guard let text = opts.value(name) ?? def else { return nil }
        guard let hp = HostPort.parse(text), let port = hp.port else {
            throw UsageError(opts.source(name) + ": expected ADDR:PORT, got '" + text + "'")
        }
        let host = Text.equal(hp.host, "localhost") ? "127.0.0.1" : hp.host
        guard let a = SocketAddress.numeric(host, port: port) else {
            throw UsageError(opts.source(name) + ": '" + hp.host + "' is not a numeric IPv4 or IPv6 address")
        }
        return (a, text)
    }

    static func runRelay(_ opts: ParsedOptions, heartbeatMs: Int64, rng: Rng) throws(UsageError) -> Int32 {
        let (listen, listenText) = try listenAddress(opts, "listen", default: RelayConfig.defaultListen)!
        let metrics = try listenAddress(opts, "metrics", default: nil)
        let sni = try listenAddress(opts, "sni-listen", default: nil)
        let config = RelayConfig(listen: listen, listenText: listenText,
                                 stateDir: opts.value("state") ?? RelayConfig.defaultStateDir,
                                 certFile: opts.value("cert"), keyFile: opts.value("key"),
                                 enrollSecretFile: opts.value("enroll-secret"),
                                 openEnrollment: opts.has("open-enrollment"),
                                 clientCAFile: opts.value("client-ca"), heartbeatMs: heartbeatMs,
                                 sniListen: sni?.0, sniListenText: sni?.1,
                                 metrics: metrics?.0, metricsText: metrics?.1,
                                 maxTunnels: try ArgumentParser.count(opts, "max-tunnels", default: Limits.relayMaxTunnels,
                                                                      max: Limits.relayMaxTunnelsCeiling))
        let relay: Relay
        do throws(StartupError) {
            relay = try Relay(config: config, rng: rng)
        } catch {
            throw UsageError(error.message)
        }
        Log.writeStdout("pin " + relay.pin + "\n")
        relay.start()
        return relay.run()
    }
}
