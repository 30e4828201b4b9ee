import Crypto
import Loop
import Roles
import Wire

/// `agent ca init` and `agent ca issue`: a session CA (the ParaQ model) that signs
/// agents' certificates. The relay trusts it with `--client-ca DIR/ca.pem` (admission
/// without a token), a reverse with `--authorized-ca DIR/ca.pem` (operators it admits).
/// The CA key never leaves DIR and is never overwritten.
/// (Written for size: the release binary has a budget, so messages are built by one helper.)
enum CACommand {
    static func run(_ args: [String]) throws(UsageError) -> Int32 {
        let sub = args.first ?? ""
        let rest = Array(args.dropFirst())
        if Text.equal(sub, "init") { return try initCA(rest) }
        if Text.equal(sub, "issue") { return try issue(rest) }
        throw UsageError("ca: expected 'init' or 'issue' (see agent --help)")
    }

    /// "FLAG FILE: WHAT", the one-line message of every failure here.
    @inline(never)
    static func fail(_ flag: String, _ file: String, _ what: String) -> UsageError {
        UsageError(flag + " " + file + ": " + what)
    }

    static let exists = "already exists (a session CA is never overwritten)"

    @inline(never)
    static func required(_ opts: ParsedOptions, _ name: String) throws(UsageError) -> String {
        guard let v = opts.value(name) else { throw UsageError("--" + name + " is required (see agent --help)") }
        return v
    }

    /// `agent ca init --dir DIR [--name NAME]`
    static func initCA(_ args: [String]) throws(UsageError) -> Int32 {
        let opts = try ArgumentParser.parse(args, specs: [.value("dir"), .value("name"), .value("log-level")])
        let dir = try required(opts, "dir")
        let cn = try checkedName(opts.value("name") ?? CertificateAuthority.defaultName)
        let keyPath = dir + "/ca-key.pem", certPath = dir + "/ca.pem"
        if Files.exists(keyPath) { throw fail("--dir", keyPath, exists) }
        if Files.exists(certPath) { throw fail("--dir", certPath, exists) }
        do throws(SysError) { try Files.makeDirectory(dir, mode: 0o700) } catch { throw fail("--dir", dir, error.message) }
        guard let rng = makeRng() else { return ExitCode.failure }
        let key: PrivateKey
        var created = false
        do throws(IdentityError) { (key, created) = try IdentityFile.loadOrCreate(keyPath, rng: rng) } catch {
            throw UsageError("--dir " + error.message)
        }
        // Someone else made one between the check and now: leave theirs alone.
        guard created else { throw fail("--dir", keyPath, exists) }
        do throws(UsageError) {
            let der: [UInt8]
            do throws(CryptoError) { der = try CertificateAuthority.makeCA(key: key, name: cn, now: Clock.wallSeconds(), rng: rng) } catch {
                throw fail("--dir", certPath, error.message)
            }
            try writePEM("--dir", certPath, der)
        } catch {
            Files.remove(keyPath)  // just made and never used: leave no half-made CA behind
            throw error
        }
        Log.writeStderr("agent: created " + keyPath + " (mode 0600, keep it secret) and " + certPath + "\n")
        Log.writeStdout(key.id.text + "\n")
        return ExitCode.ok
    }

    /// `agent ca issue --dir DIR --identity FILE --name NAME --role operator|device --out FILE [--hostname NAME]... [--days N]`
    static func issue(_ args: [String]) throws(UsageError) -> Int32 {
        let opts = try ArgumentParser.parse(args, specs: [.value("dir"), .value("identity"), .value("name"), .value("out"),
                                                          .list("hostname"), .value("days"), .value("role"), .value("log-level")])
        let role = try grantedRole(opts)
        let dir = try required(opts, "dir")
        let identity = try required(opts, "identity")
        let cn = try checkedName(try required(opts, "name"))
        let out = try required(opts, "out")
        let hosts = try hostnames(opts)
        if role == .forward && !hosts.isEmpty { throw UsageError("--hostname: only for --role device (an operator claims no hostname)") }
        let days = try validityDays(opts)
        let (caKey, caCert) = try loadCA(dir)
        let subject = try subjectKey(identity)
        if subject.der() == caKey.publicKeyDER() { throw fail("--identity", identity, "the CA's own key (give each agent its own)") }
        if !mayWrite(out) { throw fail("--out", out, "exists and is not an agent certificate (not overwritten)") }
        guard let rng = makeRng() else { return ExitCode.failure }
        let der: [UInt8]
        do throws(CryptoError) {
            der = try CertificateAuthority.issue(subject: subject, name: cn, role: role, dnsNames: hosts, days: days,
                                                 now: Clock.wallSeconds(), caKey: caKey, caCert: caCert, rng: rng)
        } catch {
            throw fail("--dir", dir, error.message)
        }
        try writePEM("--out", out, der)
        Log.writeStderr("agent: wrote " + out + "; the agent presents it with --cert\n")
        Log.writeStdout(subject.id.text + "\n")
        return ExitCode.ok
    }

    /// The CA in DIR: its key and the certificate of that key.
    @inline(never)
    static func loadCA(_ dir: String) throws(UsageError) -> (PrivateKey, Certificate) {
        let keyPath = dir + "/ca-key.pem", certPath = dir + "/ca.pem"
        let caKey: PrivateKey
        let caCert: Certificate
        do throws(IdentityError) {
            caKey = try IdentityFile.load(keyPath)
            caCert = try IdentityFile.certificate(certPath)
        } catch {
            throw UsageError("--dir " + error.message + " (agent ca init --dir DIR creates a CA)")
        }
        guard caCert.isCA, caCert.leafPublicKeyDER == caKey.publicKeyDER() else {
            throw fail("--dir", certPath, "not the CA certificate of ca-key.pem")
        }
        return (caKey, caCert)
    }

    /// The agent's public key, from its key file or a certificate of it (never created here).
    @inline(never)
    static func subjectKey(_ path: String) throws(UsageError) -> PublicKey {
        var data: [UInt8]
        do throws(SysError) { data = try Files.read(path) } catch { throw fail("--identity", path, error.message) }
        defer { wipe(&data) }
        do throws(CryptoError) {
            if Certificate.looksLikeCertificate(data) { return try Certificate.parse(data).leafPublicKey() }
            return try PublicKey.parse(spki: PrivateKey.parse(data).publicKeyDER())
        } catch {
            throw fail("--identity", path, "not a P-256 key or certificate")
        }
    }

    /// Never replace a key, a CA certificate or anything else that is not an agent's certificate.
    @inline(never)
    static func mayWrite(_ out: String) -> Bool {
        if !Files.exists(out) { return true }
        do throws(SysError) {
            let old = try Files.read(out)
            if !Certificate.looksLikeCertificate(old) { return false }
            do throws(CryptoError) { return !(try Certificate.parse(old).isCA) } catch { return false }
        } catch {
            return false
        }
    }

    @inline(never)
    static func writePEM(_ flag: String, _ path: String, _ der: [UInt8]) throws(UsageError) {
        do throws(SysError) { try Files.writeAtomically(path, Certificate.pem(der: der), mode: 0o644) } catch {
            throw fail(flag, path, error.message)
        }
    }

    /// `--role operator|device` (required): what the certificate lets its holder be.
    /// An operator certificate opens streams to devices that trust the CA
    /// (`--authorized-ca`); a device certificate never does.
    @inline(never)
    static func grantedRole(_ opts: ParsedOptions) throws(UsageError) -> AgentRole {
        let r = try required(opts, "role")
        if Text.equal(r, "operator") { return .forward }
        if Text.equal(r, "device") { return .reverse }
        throw fail("--role", "'" + r + "'", "expected operator or device")
    }

    /// `--hostname NAME`...: the hostnames the agent may claim for SNI routing.
    @inline(never)
    static func hostnames(_ opts: ParsedOptions) throws(UsageError) -> [String] {
        let hosts = opts.all("hostname")
        if hosts.count > CertificateAuthority.maxDNSNames { throw UsageError("--hostname: at most 8 per certificate") }
        for h in hosts where !HostnameRules.isValid(h) { throw fail("--hostname", "'" + h + "'", "not a valid host name") }
        return hosts
    }

    /// `--days N`, 1...36500 (default 365).
    @inline(never)
    static func validityDays(_ opts: ParsedOptions) throws(UsageError) -> Int {
        guard let d = opts.value("days") else { return CertificateAuthority.defaultValidityDays }
        var days = 0
        for b in Array(d.utf8) where days <= CertificateAuthority.maxValidityDays {
            days = b >= 0x30 && b <= 0x39 ? days * 10 + Int(b - 0x30) : Int.max
        }
        if days < 1 || days > CertificateAuthority.maxValidityDays {
            throw fail("--days", "'" + d + "'", "expected whole days from 1 to 36500")
        }
        return days
    }

    static func checkedName(_ n: String) throws(UsageError) -> String {
        if !CertificateWriter.isSafeName(n) { throw fail("--name", "'" + n + "'", "use 1-64 letters, digits, '.', '-', '_', spaces") }
        return n
    }

    static func makeRng() -> Rng? {
        do throws(CryptoError) { return try Rng() } catch {
            Log.writeStderr("agent: random generator: " + error.message + "\n")
            return nil
        }
    }
}
