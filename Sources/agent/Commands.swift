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
