import Loop

/// A usage or configuration error: exit status 2 with one line naming the flag or file.
struct UsageError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// One accepted option: `--name VALUE` (or `--name=VALUE`) when it takes a value, `--name` otherwise.
struct OptionSpec {
    let name: String
    let takesValue: Bool
    let repeatable: Bool

    static func value(_ name: String) -> OptionSpec { OptionSpec(name: name, takesValue: true, repeatable: false) }
    static func list(_ name: String) -> OptionSpec { OptionSpec(name: name, takesValue: true, repeatable: true) }
    static func flag(_ name: String) -> OptionSpec { OptionSpec(name: name, takesValue: false, repeatable: false) }
}

/// Options as parsed from the command line and, under them, a `--config` file.
struct ParsedOptions {
    /// Values by option name; flags have one empty-string value.
    var values: [String: [String]] = [:]
    /// Where each value came from (for error messages): "--name" or "FILE:line".
    var origin: [String: String] = [:]
    var positional: [String] = []

    func value(_ name: String) -> String? { values[name]?.last }
    func all(_ name: String) -> [String] { values[name] ?? [] }
    func has(_ name: String) -> Bool { values[name] != nil }

    /// "--listen" or "agent.conf:3 (listen)", to name the source of a bad value.
    func source(_ name: String) -> String { origin[name] ?? ("--" + name) }
}

enum ArgumentParser {
    /// Parses `args` against `specs`. Unknown options, missing values and repeated
    /// single options are usage errors.
    static func parse(_ args: [String], specs: [OptionSpec], allowPositional: Int = 0) throws(UsageError) -> ParsedOptions {
        var out = ParsedOptions()
        var i = 0
        while i < args.count {
            let a = args[i]
            i += 1
            guard a.hasPrefix("--") else {
                if out.positional.count < allowPositional {
                    out.positional.append(a)
                    continue
                }
                throw UsageError("unexpected argument '" + a + "'")
            }
            var name = String(a.dropFirst(2))
            var inline: String? = nil
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let spec = specs.first(where: { $0.name == name }) else {
                throw UsageError("unknown option --" + name + " (see agent --help)")
            }
            var v = ""
            if spec.takesValue {
                if let iv = inline {
                    v = iv
                } else {
                    guard i < args.count, !(args[i].hasPrefix("--") && args[i].count > 2) else {
                        throw UsageError("--" + name + " needs a value")
                    }
                    v = args[i]
                    i += 1
                }
            } else if inline != nil {
                throw UsageError("--" + name + " takes no value")
            }
            if !spec.repeatable && out.values[name] != nil {
                throw UsageError("--" + name + " given more than once")
            }
            out.values[name, default: []].append(v)
            out.origin[name] = "--" + name
        }
        return out
    }

    /// Reads `name = value` lines (long option names without dashes; `#` comments,
    /// blank lines) into `options` for every option the command line did not set.
    static func applyConfigFile(_ path: String, specs: [OptionSpec], into options: inout ParsedOptions) throws(UsageError) {
        let text: String
        do throws(SysError) {
            text = try Files.readText(path)
        } catch {
            throw UsageError("--config " + path + ": " + error.message)
        }
        var fromFile: [String: [String]] = [:]
        var lineNo = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            let line = trim(String(raw))
            if line.isEmpty || line.hasPrefix("#") { continue }
            let where_ = path + ":" + String(lineNo)
            guard let eq = line.firstIndex(of: "=") else {
                throw UsageError(where_ + ": expected 'name = value'")
            }
            let name = trim(String(line[..<eq]))
            let value = trim(String(line[line.index(after: eq)...]))
            guard let spec = specs.first(where: { $0.name == name }), name != "config" else {
                throw UsageError(where_ + ": unknown option '" + name + "'")
            }
            if !spec.takesValue {
                guard value == "true" || value == "false" || value.isEmpty else {
                    throw UsageError(where_ + ": " + name + " is a flag: use true or false")
                }
                if value == "false" { continue }
            } else if value.isEmpty {
                throw UsageError(where_ + ": " + name + " needs a value")
            }
            if !spec.repeatable && fromFile[name] != nil {
                throw UsageError(where_ + ": " + name + " given more than once")
            }
            fromFile[name, default: []].append(spec.takesValue ? value : "")
            if options.values[name] == nil { options.origin[name] = where_ + " (" + name + ")" }
        }
        for (name, vals) in fromFile where options.values[name] == nil {
            options.values[name] = vals
        }
    }

    static func trim(_ s: String) -> String {
        var u = Array(s.utf8)
        while let f = u.first, f == 0x20 || f == 0x09 || f == 0x0d { u.removeFirst() }
        while let l = u.last, l == 0x20 || l == 0x09 || l == 0x0d { u.removeLast() }
        return String(decoding: u, as: UTF8.self)
    }

    /// Parses a whole number of seconds in 1...max.
    static func seconds(_ options: ParsedOptions, _ name: String, default def: Int, max: Int) throws(UsageError) -> Int {
        guard let v = options.value(name) else { return def }
        guard let n = Int(v), n >= 1, n <= max else {
            throw UsageError(options.source(name) + ": expected whole seconds from 1 to " + String(max) + ", got '" + v + "'")
        }
        return n
    }
}
