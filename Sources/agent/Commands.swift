import Crypto
import Loop
import Roles
import Wire

/// The small commands: keygen, id.
enum Commands {
    static let defaultIdentity = "./agent-identity.pem"

    /// `agent keygen [--identity FILE]`: create a key if missing, print its ID.
    static func keygen(_ args: [String]) throws(UsageError) -> Int32 {
        let opts = try ArgumentParser.parse(args, specs: [.value("identity"), .value("log-level")])
        let path = opts.value("identity") ?? defaultIdentity
        let rng: Rng
        do throws(CryptoError) { rng = try Rng() } catch {
            Log.writeStderr("agent: random generator: " + error.message + "\n")
            return ExitCode.failure
        }
        do throws(IdentityError) {
            let (key, created) = try IdentityFile.loadOrCreate(path, rng: rng)
            if created { Log.writeStderr("agent: created " + path + " (mode 0600)\n") }
            Log.writeStdout(key.id.text + "\n")
            return ExitCode.ok
        } catch {
            throw UsageError("--identity " + error.message)
        }
    }

    /// `agent id [--identity FILE]`: the ID of a key or certificate file.
    static func id(_ args: [String]) throws(UsageError) -> Int32 {
        let opts = try ArgumentParser.parse(args, specs: [.value("identity"), .value("log-level")])
        let path = opts.value("identity") ?? defaultIdentity
        do throws(IdentityError) {
            let id = try IdentityFile.idOf(path)
            Log.writeStdout(id.text + "\n")
            return ExitCode.ok
        } catch {
            throw UsageError("--identity " + error.message)
        }
    }
}

extension Commands {
    /// `agent token --secret FILE [--valid SECONDS] [--device ID] [--hostname NAME]... [--role device|operator] [--uses N]`
    static func token(_ args: [String]) throws(UsageError) -> Int32 {
        let opts = try ArgumentParser.parse(args, specs: [.value("secret"), .value("valid"), .value("device"),
                                                          .list("hostname"), .value("role"), .value("uses"),
                                                          .value("log-level")])
        guard let path = opts.value("secret") else { throw UsageError("--secret FILE is required") }
        let valid = try ArgumentParser.seconds(opts, "valid", default: defaultTokenValidity, max: 10 * 365 * 86400)
        var device: AgentID? = nil
        if let d = opts.value("device") {
            guard let id = AgentID(text: d) else { throw UsageError("--device: '" + d + "' is not an agent ID") }
            device = id
        }
        // What the enrolled key may be: a device (the default) or an operator.
        var role = AgentRole.reverse
        if let r = opts.value("role") {
            if Text.equal(r, "operator") {
                role = .forward
            } else if !Text.equal(r, "device") {
                throw UsageError("--role: '" + r + "' is not device or operator")
            }
        }
        let hosts = opts.all("hostname")
        if role == .forward && !hosts.isEmpty { throw UsageError("--hostname: only for --role device tokens") }
        guard hosts.count <= 8 else { throw UsageError("--hostname: at most 8 per token") }
        for h in hosts where !HostnameRules.isValid(h) {
            throw UsageError("--hostname: '" + h + "' is not a valid host name")
        }
        // How many distinct keys a token not bound to a device may enrol.
        var uses = Limits.tokenDefaultUses
        if let u = opts.value("uses") {
            if device != nil { throw UsageError("--uses: not with --device (a bound token enrols that key only)") }
            guard let n = Int(u), n >= 1, n <= Limits.tokenMaxUses else {
                throw UsageError("--uses: expected a count from 1 to " + String(Limits.tokenMaxUses) + ", got '" + u + "'")
            }
            uses = n
        }
        let rng: Rng
        do throws(CryptoError) { rng = try Rng() } catch {
            Log.writeStderr("agent: random generator: " + error.message + "\n")
            return ExitCode.failure
        }
        let secret: [UInt8]
        do throws(StartupError) {
            let (s, created) = try SecretFile.loadOrCreate(path, rng: rng)
            if created { Log.writeStderr("agent: created secret " + path + " (mode 0600); give it to the relay with --enroll-secret\n") }
            secret = s
        } catch {
            throw UsageError("--secret " + error.message)
        }
        let t = EnrollmentToken(expires: Clock.wallSeconds() + Int64(valid), device: device, hostnames: hosts,
                                nonce: rng.bytes(EnrollmentToken.nonceSize), role: role, uses: uses)
        let text = t.sign(secret: secret)
        if text.utf8.count > EnrollmentToken.maxLength { throw UsageError("--hostname: too long for one token (a relay would refuse it)") }
        Log.writeStdout(text + "\n")
        return ExitCode.ok
    }

    /// One hour: long enough to provision a device, short enough that a leaked token soon stops working.
    static let defaultTokenValidity = 3600
}
