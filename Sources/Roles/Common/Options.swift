import Loop
import Wire

/// A usage or configuration error: exit status 2 with one line naming the flag or file.
public struct UsageError: Error {
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// One accepted option: `--name VALUE` (or `--name=VALUE`) when it takes a value, `--name` otherwise.
public struct OptionSpec {
    public let name: String
    public let takesValue: Bool
    public let repeatable: Bool

    public static func value(_ name: String) -> OptionSpec { OptionSpec(name: name, takesValue: true, repeatable: false) }
    public static func list(_ name: String) -> OptionSpec { OptionSpec(name: name, takesValue: true, repeatable: true) }
    public static func flag(_ name: String) -> OptionSpec { OptionSpec(name: name, takesValue: false, repeatable: false) }

    public static func find(_ specs: [OptionSpec], _ name: String) -> OptionSpec? {
        for s in specs where Text.equal(s.name, name) { return s }
        return nil
    }
}

/// Options as parsed from the command line and, under them, a `--config` file.
/// (A short list searched by name: a handful of entries, and no String hashing.)
public struct ParsedOptions {
    public struct Entry {
        public let name: String
        /// Flags have one empty-string value.
        public var values: [String]
        /// Where the value came from, for error messages: "--name" or "FILE:line (name)".
        public var origin: String
    }

    public var entries: [Entry] = []
    public var positional: [String] = []

    public init() {}

    public func entry(_ name: String) -> Entry? {
        for e in entries where Text.equal(e.name, name) { return e }
        return nil
    }

    public func value(_ name: String) -> String? { entry(name)?.values.last }
    public func all(_ name: String) -> [String] { entry(name)?.values ?? [] }
    public func has(_ name: String) -> Bool { entry(name) != nil }
    public var names: [String] { entries.map { $0.name } }

    /// "--listen" or "agent.conf:3 (listen)", to name the source of a bad value.
    public func source(_ name: String) -> String { entry(name)?.origin ?? ("--" + name) }

    public mutating func append(_ name: String, _ value: String, origin: String) {
        for i in 0..<entries.count where Text.equal(entries[i].name, name) {
            entries[i].values.append(value)
            return
        }
        entries.append(Entry(name: name, values: [value], origin: origin))
    }

    public mutating func set(_ name: String, _ values: [String], origin: String) {
        for i in 0..<entries.count where Text.equal(entries[i].name, name) {
            entries[i].values = values
            entries[i].origin = origin
            return
        }
        entries.append(Entry(name: name, values: values, origin: origin))
    }
}

public enum ArgumentParser {
    /// Parses `args` against `specs`. Unknown options, missing values and repeated
    /// single options are usage errors.
    public static func parse(_ args: [String], specs: [OptionSpec], allowPositional: Int = 0) throws(UsageError) -> ParsedOptions {
        var out = ParsedOptions()
        var i = 0
        while i < args.count {
            let a = args[i]
            i += 1
            guard Text.hasPrefix(a, "--") else {
                if out.positional.count < allowPositional {
                    out.positional.append(a)
                    continue
                }
                throw UsageError("unexpected argument '" + a + "'")
            }
            var name = Text.dropFirst(a, 2)
            var inline: String? = nil
            if let eq = Text.firstIndex(name, UInt8(ascii: "=")) {
                inline = Text.dropFirst(name, eq + 1)
                name = Text.slice(name, 0, eq)
            }
            guard let spec = OptionSpec.find(specs, name) else {
                throw UsageError("unknown option --" + name + " (see agent --help)")
            }
            var v = ""
            if spec.takesValue {
                if let iv = inline {
                    v = iv
                } else {
                    guard i < args.count, !(Text.hasPrefix(args[i], "--") && Text.length(args[i]) > 2) else {
                        throw UsageError("--" + name + " needs a value")
                    }
                    v = args[i]
                    i += 1
                }
            } else if inline != nil {
                throw UsageError("--" + name + " takes no value")
            }
            if !spec.repeatable && out.has(name) {
                throw UsageError("--" + name + " given more than once")
            }
            out.append(name, v, origin: "--" + name)
        }
        return out
    }

    /// Reads `name = value` lines (long option names without dashes; `#` comments,
    /// blank lines) into `options` for every option the command line did not set.
    public static func applyConfigFile(_ path: String, specs: [OptionSpec], into options: inout ParsedOptions) throws(UsageError) {
        let text: String
        do throws(SysError) {
            text = try Files.readText(path)
        } catch {
            throw UsageError("--config " + path + ": " + error.message)
        }
        var fromFile = ParsedOptions()
        var lineNo = 0
        for raw in Text.split(text, UInt8(ascii: "\n")) {
            lineNo += 1
            let line = Text.trim(raw)
            if line.utf8.isEmpty || Text.hasPrefix(line, "#") { continue }
            let where_ = path + ":" + String(lineNo)
            guard let eq = Text.firstIndex(line, UInt8(ascii: "=")) else {
                throw UsageError(where_ + ": expected 'name = value'")
            }
            let name = Text.trim(Text.slice(line, 0, eq))
            let value = Text.trim(Text.dropFirst(line, eq + 1))
            guard let spec = OptionSpec.find(specs, name), !Text.equal(name, "config") else {
                throw UsageError(where_ + ": unknown option '" + name + "'")
            }
            if !spec.takesValue {
                let t = Text.equal(value, "true"), f = Text.equal(value, "false")
                guard t || f || value.utf8.isEmpty else {
                    throw UsageError(where_ + ": " + name + " is a flag: use true or false")
                }
                if f { continue }
            } else if value.utf8.isEmpty {
                throw UsageError(where_ + ": " + name + " needs a value")
            }
            if !spec.repeatable && fromFile.has(name) {
                throw UsageError(where_ + ": " + name + " given more than once")
            }
            fromFile.append(name, spec.takesValue ? value : "", origin: where_ + " (" + name + ")")
        }
        for e in fromFile.entries where !options.has(e.name) {
            options.set(e.name, e.values, origin: e.origin)
        }
    }

    /// Parses a whole number in 1...max.
    public static func count(_ options: ParsedOptions, _ name: String, default def: Int, max: Int) throws(UsageError) -> Int {
        guard let v = options.value(name) else { return def }
        guard let n = Int(v), n >= 1, n <= max else {
            throw UsageError(options.source(name) + ": expected a whole number from 1 to " + String(max) + ", got '" + v + "'")
        }
        return n
    }

    /// Parses a size in bytes, with an optional KiB, MiB or GiB suffix, in min...max
    /// (nil when the option is not given).
    public static func bytes(_ options: ParsedOptions, _ name: String, min: Int, max: Int) throws(UsageError) -> Int? {
        guard let v = options.value(name) else { return nil }
        var digits = v
        var unit = 1
        for (suffix, u) in [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)] where Text.hasSuffix(v, suffix) {
            digits = Text.slice(v, 0, Text.length(v) - 3)
            unit = u
        }
        guard let n = Int(digits), n >= 0, n <= max / unit, n * unit >= min else {
            throw UsageError(options.source(name) + ": expected bytes (or KiB, MiB, GiB) from " + String(min) + " to "
                             + String(max) + ", got '" + v + "'")
        }
        return n * unit
    }

    /// Parses a whole number of seconds in 1...max.
    public static func seconds(_ options: ParsedOptions, _ name: String, default def: Int, max: Int) throws(UsageError) -> Int {
        guard let v = options.value(name) else { return def }
        guard let n = Int(v), n >= 1, n <= max else {
            throw UsageError(options.source(name) + ": expected whole seconds from 1 to " + String(max) + ", got '" + v + "'")
        }
        return n
    }
}
