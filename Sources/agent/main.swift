import Roles
import CShims
import Loop
import Wire

/// Process entry. Embedded Swift has no CommandLine, so take argv from C's main.
/// (SwiftPM's host build links executables through a symbol named after the
/// module, `agent_main`, so that tests can link the module; the release build
/// defines `main` itself.)
#if hasFeature(Embedded)
@_cdecl("main")
func cMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    entry(argc, argv)
}
#else
@_cdecl("agent_main")
func cMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    entry(argc, argv)
}
#endif

func entry(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    var args: [String] = []
    var i = 1
    while i < Int(argc) {
        if let p = argv[i] { args.append(String(cString: p)) }
        i += 1
    }
    return Main.run(args)
}

enum ExitCode {
    static let ok: Int32 = 0
    static let failure: Int32 = 1
    static let usage: Int32 = 2
}

enum Main {
    static func run(_ args: [String]) -> Int32 {
        guard let first = args.first else {
            Log.writeStderr("agent: no command given (see agent --help)\n")
            return ExitCode.usage
        }
        let rest = Array(args.dropFirst())
        do throws(UsageError) {
            // First: `token` and `ca issue` take a --role of their own (what the token or certificate grants).
            if Text.equal(first, "token") { return try Commands.token(rest) }
            if Text.equal(first, "ca") { return try CACommand.run(rest) }
            if args.contains(where: { Text.equal($0, "--role") || Text.hasPrefix($0, "--role=") })
                || Text.equal(first, "--config") {
                return try RoleCommand.run(args)
            }
            if Text.equal(first, "--help") || Text.equal(first, "-h") || Text.equal(first, "help") {
                Log.writeStdout(Usage.text + "\n")
                return ExitCode.ok
            }
            if Text.equal(first, "--version") {
                Log.writeStdout("agent " + Usage.version + " (commit " + buildCommit() + ", mbedTLS "
                    + String(cString: shim_mbedtls_version()) + ")\n")
                return ExitCode.ok
            }
            if Text.equal(first, "keygen") { return try Commands.keygen(rest) }
            if Text.equal(first, "id") { return try Commands.id(rest) }
            if Text.equal(first, "selftest") { return try SelfTest.run(rest) }
            throw UsageError("unknown command '" + first + "' (see agent --help)")
        } catch {
            Log.writeStderr("agent: " + error.message + "\n")
            return ExitCode.usage
        }
    }
}

/// The git commit this binary was built from. The release build (cross/release.mk)
/// links a one-line C object defining `agent_build_commit` (so a new commit only
/// relinks, nothing recompiles) and passes -D AGENT_BUILD_COMMIT; the host build
/// (swift build) says "unknown".
#if AGENT_BUILD_COMMIT
@_extern(c, "agent_build_commit")
func agentBuildCommit() -> UnsafePointer<CChar>

func buildCommit() -> String { String(cString: agentBuildCommit()) }
#else
func buildCommit() -> String { "unknown" }
#endif
