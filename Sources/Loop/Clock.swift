import CShims

/// The only place in agent that reads a clock. Cores take `now` as an argument.
public enum Clock {
    /// Monotonic milliseconds since an arbitrary origin; never goes back.
    public static func monotonicMs() -> Int64 { Int64(shim_monotonic_ms()) }
    /// Monotonic nanoseconds, for benchmarks and latency figures.
    public static func monotonicNs() -> Int64 { Int64(shim_monotonic_ns()) }
    /// Wall-clock milliseconds since the Unix epoch (log stamps, token expiry).
    public static func wallMs() -> Int64 { Int64(shim_wall_ms()) }
    /// Wall-clock seconds since the Unix epoch.
    public static func wallSeconds() -> Int64 { Int64(shim_wall_ms()) / 1000 }
}

/// Environment variables (read at start only).
public enum Environment {
    public static func get(_ name: String) -> String? {
        guard let p = name.withCString({ getenv($0) }) else { return nil }
        return String(cString: p)
    }
}
