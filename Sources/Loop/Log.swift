import CShims

/// Log levels, most severe first.
public enum LogLevel: Int, Comparable {
    case error = 0, warn, info, debug

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }

    public var name: String {
        switch self {
        case .error: return "error"
        case .warn: return "warn"
        case .info: return "info"
        case .debug: return "debug"
        }
    }

    public static func parse(_ s: String) -> LogLevel? {
        for l in [LogLevel.error, .warn, .info, .debug] where s.utf8.elementsEqual(l.name.utf8) { return l }
        return nil
    }
}

/// One line per event on stderr: `time level event key=value...`.
///
/// Callers pass the event name and already formatted `key=value` fields. Values
/// that may contain spaces go through `Log.quote`. Nothing secret is ever passed
/// here: keys, tokens and secrets have no formatting helper on purpose.
///
/// A repeated event from one source is rate-limited by the caller through
/// `RateLimit` (Roles), so a flood of bad connections cannot flood the log.
public enum Log {
    /// The process-wide threshold; set once from --log-level at start.
    nonisolated(unsafe) public static var level: LogLevel = .info

    @inline(__always)
    public static func enabled(_ l: LogLevel) -> Bool { l <= level }

    // The level check is inlined at each call site, so a disabled line costs no
    // formatting; the writer is one shared function (an autoclosure passed into
    // a shared emitter would be specialized, i.e. copied, at every call site).
    @inline(__always)
    public static func error(_ event: StaticString, _ fields: @autoclosure () -> String = "") {
        if LogLevel.error <= level { emit(.error, event, fields()) }
    }
    @inline(__always)
    public static func warn(_ event: StaticString, _ fields: @autoclosure () -> String = "") {
        if LogLevel.warn <= level { emit(.warn, event, fields()) }
    }
    @inline(__always)
    public static func info(_ event: StaticString, _ fields: @autoclosure () -> String = "") {
        if LogLevel.info <= level { emit(.info, event, fields()) }
    }
    @inline(__always)
    public static func debug(_ event: StaticString, _ fields: @autoclosure () -> String = "") {
        if LogLevel.debug <= level { emit(.debug, event, fields()) }
    }

    @inline(never)
    public static func emit(_ l: LogLevel, _ event: StaticString, _ f: String) {
        var line = timestamp(Clock.wallMs())
        line += " "
        line += l.name
        line += " "
        line += event.description
        if !f.isEmpty {
            line += " "
            line += f
        }
        line += "\n"
        writeStderr(line)
    }

    /// Writes a string to stderr with write(2), unbuffered.
    public static func writeStderr(_ s: String) {
        writeFd(2, s)
    }

    /// Writes a string to stdout with write(2), unbuffered (so nothing is lost on a crash).
    public static func writeStdout(_ s: String) {
        writeFd(1, s)
    }

    static func writeFd(_ fd: Int32, _ s: String) {
        var s = s
        s.withUTF8 { buf in
            var off = 0
            while off < buf.count {
                let n = write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 {
                    if shim_errno() == EINTR { continue }
                    return
                }
                off += n
            }
        }
    }

    /// Wraps a value in double quotes if it has spaces, quotes, '=' or control
    /// characters; escapes quotes and backslashes, and non-printable bytes as \xNN.
    public static func quote(_ s: String) -> String {
        var needs = s.utf8.isEmpty
        for b in s.utf8 where b <= 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "=") || b >= 0x7f {
            needs = true
            break
        }
        if !needs { return s }
        var out: [UInt8] = [UInt8(ascii: "\"")]
        for b in s.utf8 {
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                out.append(UInt8(ascii: "\\"))
                out.append(b)
            } else if b < 0x20 || b >= 0x7f {
                out.append(UInt8(ascii: "\\"))
                out.append(UInt8(ascii: "x"))
                out.append(hexDigit(b >> 4))
                out.append(hexDigit(b & 15))
            } else {
                out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
        return String(decoding: out, as: UTF8.self)
    }

    static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 + v : 0x61 + v - 10 }

    /// ISO 8601 UTC with milliseconds: 2026-11-22T05:20:00.123Z
    public static func timestamp(_ ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var tmv = tm()
        _ = gmtime_r(&t, &tmv)
        var s = String(Int(tmv.tm_year) + 1900)
        s += "-" + pad(Int(tmv.tm_mon) + 1, 2) + "-" + pad(Int(tmv.tm_mday), 2)
        s += "T" + pad(Int(tmv.tm_hour), 2) + ":" + pad(Int(tmv.tm_min), 2) + ":" + pad(Int(tmv.tm_sec), 2)
        s += "." + pad(Int(ms % 1000), 3) + "Z"
        return s
    }

    static func pad(_ v: Int, _ width: Int) -> String {
        var s = String(v)
        while s.utf8.count < width { s = "0" + s }
        return s
    }
}
