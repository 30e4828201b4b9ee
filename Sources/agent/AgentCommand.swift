import Crypto
import E2E
import Loop
import Mux
import Roles
import Wire

/// Reverse and forward: the options they share and their start.
enum AgentCommand {
    static let defaultIdentity = "./agent-identity.pem"

    /// Identity key, certificate chain and tunnel settings from the options both agent roles take.
    static func tunnelSettings(_ opts: ParsedOptions, role: AgentRole, heartbeatMs: Int64, rng: Rng,
                               muxLimits: MuxLimits) throws(UsageError) -> (TunnelSettings, Certificate) {
        guard let relayText = opts.value("relay") else { throw UsageError("--relay HOST:PORT is required") }
        guard var endpoint = RelayEndpoint.parse(relayText) else {
            throw UsageError(opts.source("relay") + ": expected HOST:PORT or https://HOST[:PORT]/PATH, got '" + relayText + "'")
        }
        if let p = opts.value("proxy") {
            guard let hp = RelayEndpoint.parseProxy(p) else {
                throw UsageError(opts.source("proxy") + ": expected http://HOST:PORT, got '" + p + "'")
            }
            endpoint.proxy = hp
        }
        // At least one way to authenticate the relay. Both together: --ca checks the TLS
        // server (the relay, or a front that terminates TLS), the pin the relay's own key.
        var pin: [UInt8]? = nil
        var ca: Certificate? = nil
        if let p = opts.value("relay-pin") {
            guard let digest = Identity.parsePin(p) else {
                throw UsageError(opts.source("relay-pin") + ": expected sha256:<64 hex digits>, got '" + p + "'")
            }
            pin = digest
        }
        if let f = opts.value("ca") {
            do throws(IdentityError) { ca = try IdentityFile.certificate(f) } catch {
                throw UsageError(opts.source("ca") + " " + error.message)
            }
        }
        if pin == nil && ca == nil {
            throw UsageError("--relay-pin PIN or --ca FILE is required (the relay prints its pin at start)")
        }
        // Before the identity file is created: a usage error has no side effect.
        let token = try enrollmentToken(opts)
        let identityPath = opts.value("identity") ?? defaultIdentity
        let key: PrivateKey
        do throws(IdentityError) {
            let (k, created) = try IdentityFile.loadOrCreate(identityPath, rng: rng)
            key = k
            if created { Log.info("identity_created", "file=" + Log.quote(identityPath) + " id=" + k.id.text) }
        } catch {
            throw UsageError(opts.source("identity") + " " + error.message)
        }
        let cert: Certificate
        var chain: [[UInt8]] = []
        if let cf = opts.value("cert") {
            do throws(IdentityError) { cert = try IdentityFile.certificate(cf) } catch {
                throw UsageError(opts.source("cert") + " " + error.message)
            }
            guard cert.leafPublicKeyDER == key.publicKeyDER() else {
                throw UsageError(opts.source("cert") + " " + cf + ": certificate is not for the key in " + identityPath)
            }
            chain = cert.chainDER
            // The hello (certificates, token, signature) must fit in one frame.
            if chain.reduce(0, { $0 + $1.count }) > WireProtocol.maxPayload - 2048 {
                throw UsageError(opts.source("cert") + " " + cf + ": certificate chain too large (the hello must fit in 16 KB)")
            }
            if chain.count > AuthMessage.maxCertificates {
                throw UsageError(opts.source("cert") + " " + cf + ": more than " + String(AuthMessage.maxCertificates) + " certificates")
            }
        } else {
            do throws(CryptoError) { cert = try CertificateWriter.selfSigned(key: key, rng: rng) } catch {
                throw UsageError("certificate: " + error.message)
            }
            chain = [cert.leafDER]
        }
        let reconnectMax = try ArgumentParser.seconds(opts, "reconnect-max", default: Limits.reconnectMaxSeconds, max: 86400)
        let settings = TunnelSettings(relay: endpoint, pin: pin, ca: ca, role: role,
                                      identity: key, certificates: chain, token: token,
                                      hostnames: [], heartbeatMs: heartbeatMs,
                                      reconnectMaxMs: Int64(reconnectMax) * 1000, muxLimits: muxLimits)
        return (settings, cert)
    }

    /// The enrollment token: --token TEXT, or --token-file FILE (read once, here at start, so
    /// the token is not in /proc/PID/cmdline). Never both. The file holds one token; trailing
    /// whitespace and newlines are dropped; its content is never printed.
    static func enrollmentToken(_ opts: ParsedOptions) throws(UsageError) -> [UInt8] {
        guard let f = opts.value("token-file") else { return Array((opts.value("token") ?? "").utf8) }
        if opts.has("token") {
            throw UsageError(opts.source("token-file") + " and " + opts.source("token")
                             + " cannot be given together (keep --token-file: a --token is visible in the process list)")
        }
        var bytes: [UInt8]
        do throws(SysError) { bytes = try Files.read(f, limit: EnrollmentToken.maxLength + 64) } catch {
            throw UsageError(opts.source("token-file") + " " + f + ": " + error.message)
        }
        while let last = bytes.last, last == 0x20 || last == 0x09 || last == 0x0a || last == 0x0d { bytes.removeLast() }
        guard !bytes.isEmpty else { throw UsageError(opts.source("token-file") + " " + f + ": the file is empty") }
        guard looksLikeToken(bytes) else {
            throw UsageError(opts.source("token-file") + " " + f + ": not an enrollment token (expected one line at2...., as printed by agent token)")
        }
        if let mode = Files.mode(f), mode & 0o077 != 0 {
            Log.warn("token_file_permissions", "file=" + Log.quote(f) + " mode=0" + String(mode, radix: 8) + " want=0600")
        }
        return bytes
    }

    /// `at2.` base64url `.` base64url, at most `EnrollmentToken.maxLength` bytes: the shape
    /// `agent token` prints (the relay checks the rest).
    static func looksLikeToken(_ t: [UInt8]) -> Bool {
        let prefix = Array(EnrollmentToken.prefix.utf8)
        guard t.count <= EnrollmentToken.maxLength, t.count > prefix.count, t.starts(with: prefix) else { return false }
        var dots = 0
        var run = 0
        for b in t[prefix.count...] {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                run += 1
            case UInt8(ascii: "."):
                if run == 0 { return false }
                dots += 1
                run = 0
            default:
                return false
            }
        }
        return dots == 1 && run > 0
    }

    static func runReverse(_ opts: ParsedOptions, heartbeatMs: Int64, rng: Rng) throws(UsageError) -> Int32 {
        var limits = MuxLimits(maxStreams: Limits.reverseMaxStreams, heartbeatMs: heartbeatMs)
        limits.announceHeartbeat = true
        var (settings, cert) = try tunnelSettings(opts, role: .reverse, heartbeatMs: heartbeatMs, rng: rng, muxLimits: limits)
        settings.memoryBudget = try ArgumentParser.bytes(opts, "memory-budget", min: Limits.reverseWindow,
                                                         max: Limits.memoryBudgetMax)
        let policy = try reversePolicy(opts)
        if let h = policy.sniHostname { settings.hostnames = [h] }
        if !policy.authorization.any && policy.authorization.keys == nil && policy.authorization.ca == nil {
            Log.warn("no_operators_authorized", "hint=\"give --authorized-keys FILE, --authorized-ca FILE or --authorize-any\"")
        }
        let reverse: Reverse
        do throws(CryptoError) {
            reverse = try Reverse(settings: settings, certificate: cert, policy: policy, reloadPolicy: {
                // SIGHUP: the same options, read again (files and --config).
                var fresh = opts
                if let cfg = opts.value("config") {
                    fresh = ParsedOptions()
                    for e in opts.entries where Text.hasPrefix(e.origin, "--") {
                        fresh.set(e.name, e.values, origin: e.origin)
                    }
                    var all = RoleCommand.specs(for: "reverse")
                    all.append(.value("config"))
                    do throws(UsageError) { try ArgumentParser.applyConfigFile(cfg, specs: all, into: &fresh) } catch {
                        return .failure(StartupError(error.message))
                    }
                }
                do throws(UsageError) { return .success(try reversePolicy(fresh)) } catch {
                    return .failure(StartupError(error.message))
                }
            }, rng: rng, now: EventLoop.now())
        } catch {
            Log.writeStderr("agent: TLS setup: " + error.message + "\n")
            return ExitCode.failure
        }
        Log.info("agent_started", "role=reverse id=" + settings.identity.id.text + " relay=" + settings.relay.text
                 + " allow=" + policy.allow.text)
        return EventLoop.run(reverse)
    }

    static func reversePolicy(_ opts: ParsedOptions) throws(UsageError) -> ReversePolicy {
        var rules: [HostPort] = []
        for a in opts.all("allow") {
            guard let r = HostPort.parse(a, allowWildcard: true) else {
                throw UsageError(opts.source("allow") + ": expected HOST:PORT or HOST:*, got '" + a + "'")
            }
            rules.append(r)
        }
        var keys: AuthorizedKeys? = nil
        if let f = opts.value("authorized-keys") {
            let text: String
            do throws(SysError) { text = try Files.readText(f) } catch {
                throw UsageError(opts.source("authorized-keys") + " " + f + ": " + error.message)
            }
            switch AuthorizedKeys.parse(text) {
            case .success(let k): keys = k
            case .failure(let e): throw UsageError(opts.source("authorized-keys") + " " + f + ": " + e.message)
            }
        }
        var ca: Certificate? = nil
        if let f = opts.value("authorized-ca") {
            do throws(IdentityError) { ca = try IdentityFile.certificate(f) } catch {
                throw UsageError(opts.source("authorized-ca") + " " + error.message)
            }
        }
        var policy = ReversePolicy(allow: AllowList(rules: rules),
                                   authorization: Authorization(keys: keys, ca: ca, any: opts.has("authorize-any")))
        switch (opts.value("hostname"), opts.value("sni-target")) {
        case (nil, nil):
            break
        case (.some(let h), .some(let t)):
            guard HostnameRules.isValid(h) else {
                throw UsageError(opts.source("hostname") + ": '" + h + "' is not a valid host name")
            }
            guard let (addr, _) = try RoleCommand.listenAddress(opts, "sni-target", default: nil) else {
                throw UsageError(opts.source("sni-target") + ": expected ADDR:PORT, got '" + t + "'")
            }
            policy.sniHostname = Registry.canonicalHostname(h)
            policy.sniTarget = addr
        default:
            throw UsageError("--hostname and --sni-target go together")
        }
        return policy
    }

    static func runForward(_ opts: ParsedOptions, heartbeatMs: Int64, rng: Rng) throws(UsageError) -> Int32 {
        var mappings: [ForwardMapping] = []
        let single = ["listen", "device", "target"].filter { opts.has($0) }
        if !single.isEmpty {
            guard single.count == 3 else {
                throw UsageError("--listen, --device and --target go together (or use --map)")
            }
            let (addr, text) = try RoleCommand.listenAddress(opts, "listen", default: nil)!
            mappings.append(try mapping(addr, text, opts.value("device")!, opts.value("target")!, source: opts.source("device")))
        }
        for m in opts.all("map") {
            // LISTEN_ADDR:PORT=DEVICE_ID/TARGET_HOST:PORT
            guard let eq = Text.firstIndex(m, UInt8(ascii: "=")),
                  let slashAfter = Text.firstIndex(Text.dropFirst(m, eq + 1), UInt8(ascii: "/")) else {
                throw UsageError(opts.source("map") + ": expected LISTEN_ADDR:PORT=DEVICE_ID/TARGET_HOST:PORT, got '" + m + "'")
            }
            let slash = eq + 1 + slashAfter
            let l = Text.slice(m, 0, eq)
            let d = Text.slice(m, eq + 1, slash)
            let t = Text.dropFirst(m, slash + 1)
            var one = ParsedOptions()
            one.set("listen", [l], origin: opts.source("map"))
            let (addr, text) = try RoleCommand.listenAddress(one, "listen", default: nil)!
            mappings.append(try mapping(addr, text, d, t, source: opts.source("map")))
        }
        guard !mappings.isEmpty else {
            throw UsageError("forward needs --listen ADDR:PORT --device ID --target HOST:PORT, or --map")
        }
        let limits = MuxLimits(maxStreams: Limits.forwardMaxStreams, heartbeatMs: heartbeatMs)
        var (settings, cert) = try tunnelSettings(opts, role: .forward, heartbeatMs: heartbeatMs, rng: rng, muxLimits: limits)
        settings.memoryBudget = try ArgumentParser.bytes(opts, "memory-budget", min: Limits.forwardWindow,
                                                         max: Limits.memoryBudgetMax)
        let forward: Forward
        do throws(StartupError) {
            forward = try Forward(settings: settings, certificate: cert, mappings: mappings, rng: rng, now: EventLoop.now())
        } catch {
            throw UsageError(error.message)
        }
        for m in mappings {
            Log.info("forward_listening", "listen=" + m.listenText + " device=" + m.device.text + " target=" + m.target.text)
        }
        Log.info("agent_started", "role=forward id=" + settings.identity.id.text + " relay=" + settings.relay.text)
        return EventLoop.run(forward)
    }

    static func mapping(_ addr: SocketAddress, _ text: String, _ device: String, _ target: String,
                        source: String) throws(UsageError) -> ForwardMapping {
        guard let id = AgentID(text: device) else {
            throw UsageError(source + ": '" + device + "' is not a device ID (32 base32 characters)")
        }
        guard let t = HostPort.parse(target), t.port != nil else {
            throw UsageError(source + ": target '" + target + "' is not HOST:PORT")
        }
        return ForwardMapping(listen: addr, listenText: text, device: id, target: t)
    }
}
