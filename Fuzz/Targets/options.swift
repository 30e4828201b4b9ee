// Fuzz target `options`: the command-line parser and the `--config` file
// parser (Sources/Roles/Common/Options.swift).
//
// First byte: bit 0 selects the mode, bits 1-2 the option table, bits 3-4
// how many positional arguments are allowed.
//   mode 0: the rest is a command line, arguments separated by NUL bytes,
//           parsed with `ArgumentParser.parse`;
//   mode 1: the rest is a config file, written to a file under /tmp unique to
//           this process and read with `applyConfigFile` under a fixed command
//           line (`--listen 127.0.0.1:1 --allow a:1`).
// The option tables are copies of the ones in Sources/agent (RoleCommand.swift,
// Commands.swift): all role options, `agent token`'s, `agent keygen`'s.
// Checks: no trap; errors are `UsageError`s with a message; on success every
// option is in the table, a single-value option has one value, a flag has the
// value "", positional arguments stay within the allowance, values given on
// the command line win over the file, the file never sets `config`; and the
// seconds parser returns a value within its range.

#if canImport(Glibc)
import Glibc
#endif
import Roles
import Wire

let roleSpecs: [OptionSpec] = [
    .value("role"), .value("config"), .value("log-level"), .value("heartbeat"),
    .value("relay"), .value("relay-pin"), .value("ca"), .value("identity"), .value("cert"), .value("token"),
    .value("proxy"), .value("reconnect-max"),
    .value("listen"), .value("state"), .value("key"), .value("enroll-secret"), .flag("open-enrollment"),
    .value("client-ca"), .value("sni-listen"), .value("metrics"),
    .list("allow"), .value("authorized-keys"), .value("authorized-ca"), .flag("authorize-any"),
    .value("hostname"), .value("sni-target"),
    .value("device"), .value("target"), .list("map"),
]
let tokenSpecs: [OptionSpec] = [.value("secret"), .value("valid"), .value("device"), .list("hostname"), .value("log-level")]
let keygenSpecs: [OptionSpec] = [.value("identity"), .value("log-level")]
let configPath = scratchPath("options.conf")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOptions(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    let head = input.u8()
    let specs = [roleSpecs, tokenSpecs, keygenSpecs, roleSpecs][Int(head >> 1) & 3]
    let positional = Int(head >> 3) & 3
    let rest = input.rest()
    if head & 1 == 0 {
        let args = rest.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        do throws(UsageError) {
            let opts = try ArgumentParser.parse(args, specs: specs, allowPositional: positional)
            checkParsed(opts, specs)
            require(opts.positional.count <= positional, "too many positional arguments")
        } catch {
            require(!error.message.isEmpty, "empty usage message")
        }
    } else {
        writeScratch(configPath, rest)
        let cli = ["--listen", "127.0.0.1:1", "--allow", "a:1"]
        var opts: ParsedOptions
        do throws(UsageError) { opts = try ArgumentParser.parse(cli, specs: roleSpecs) } catch {
            require(false, "the fixed command line does not parse")
            return 0
        }
        do throws(UsageError) {
            try ArgumentParser.applyConfigFile(configPath, specs: roleSpecs, into: &opts)
            checkParsed(opts, roleSpecs)
            require(!opts.has("config"), "the config file set 'config'")
            require(opts.all("listen") == ["127.0.0.1:1"] && opts.source("listen") == "--listen", "the file overrode --listen")
            require(opts.all("allow") == ["a:1"], "the file added to --allow given on the command line")
            for e in opts.entries where !Text.equal(e.name, "listen") && !Text.equal(e.name, "allow") {
                require(Text.hasPrefix(e.origin, configPath + ":"), "origin of a file option: " + e.origin)
            }
        } catch {
            require(!error.message.isEmpty, "empty usage message")
        }
    }
    return 0
}

func checkParsed(_ opts: ParsedOptions, _ specs: [OptionSpec]) {
    for e in opts.entries {
        guard let spec = OptionSpec.find(specs, e.name) else {
            require(false, "parsed an option not in the table: " + e.name)
            return
        }
        require(!e.values.isEmpty, "option without a value list")
        if !spec.repeatable { require(e.values.count == 1, "single option with \(e.values.count) values: " + e.name) }
        if !spec.takesValue { require(e.values.allSatisfy { $0.isEmpty }, "flag with a value: " + e.name) }
        require(opts.has(e.name) && opts.value(e.name) == e.values.last, "entry lookup")
    }
    for name in ["heartbeat", "reconnect-max", "valid"] {
        do throws(UsageError) {
            let v = try ArgumentParser.seconds(opts, name, default: 15, max: 3600)
            require(v >= 1 && v <= 3600, "seconds out of range")
        } catch {
            require(opts.has(name), "seconds failed for an option that is not set")
        }
    }
}

// MARK: - Seeds

func fuzzSeeds() -> [(String, [UInt8])] {
    func cli(_ table: UInt8, _ positional: UInt8, _ args: [String]) -> [UInt8] {
        var b: [UInt8] = [table << 1 | positional << 3]
        for (i, a) in args.enumerated() {
            if i > 0 { b.append(0) }
            b += Array(a.utf8)
        }
        return b
    }
    func file(_ text: String) -> [UInt8] { [1] + Array(text.utf8) }
    return [
        ("cli-relay", cli(0, 0, ["--role", "relay", "--listen", "0.0.0.0:7443", "--state", "./relay-state",
                                  "--open-enrollment", "--heartbeat=15", "--log-level", "debug"])),
        ("cli-reverse", cli(0, 0, ["--role=reverse", "--relay", "relay.example:7443", "--relay-pin", "sha256:00",
                                    "--allow", "127.0.0.1:22", "--allow", "localhost:*", "--authorize-any"])),
        ("cli-forward-map", cli(0, 0, ["--role", "forward", "--relay", "https://relay.example/agent", "--ca", "ca.pem",
                                        "--map", "127.0.0.1:2222=abcdefghijklmnopqrstuvwxyz234567/127.0.0.1:22",
                                        "--reconnect-max", "30"])),
        ("cli-token", cli(1, 0, ["--secret", "s", "--valid", "3600", "--device", "x", "--hostname", "a", "--hostname", "b"])),
        ("cli-keygen-positional", cli(2, 2, ["ca", "--identity", "id.pem", "init"])),
        ("cli-errors", cli(0, 0, ["--listen", "--", "--unknown", "-x", "--open-enrollment=yes"])),
        ("config-relay", file("# relay\nrole = relay\nlisten = 0.0.0.0:7443\n\nopen-enrollment = true\nheartbeat=20\n")),
        ("config-reverse", file("role = reverse\r\nrelay = relay.example:7443\r\nallow = 127.0.0.1:22\nallow = h:*\nauthorize-any = false\n  # indented comment\n\tidentity = /var/lib/agent/id.pem \n")),
        ("config-errors", file("listen = 1.2.3.4:5\nconfig = other.conf\nnot a line\n= value\nrole =\n")),
    ]
}
