import CShims

/// Process signals as values the loop polls for. The C handler only sets a flag
/// and writes a byte to a pipe whose read end is in every poll set, so a signal
/// wakes the loop at once and all handling happens in ordinary code.
public enum Signals {
    public enum Kind {
        case terminate   // SIGTERM or SIGINT: graceful stop
        case reload      // SIGHUP: reload keys and allow lists
    }

    /// Installs the handlers (and ignores SIGPIPE). Call once at start.
    public static func install() throws(SysError) {
        if shim_install_signals() != 0 { throw SysError.last("sigaction") }
    }

    /// The fd to add to every poll set (read interest).
    public static var wakeFd: Int32 { shim_signal_pipe_fd() }

    /// The signals that arrived since the last call.
    public static func take() -> [Kind] {
        shim_drain_signal_pipe()
        var out: [Kind] = []
        if shim_take_signal(shim_sigterm()) != 0 || shim_take_signal(shim_sigint()) != 0 {
            out.append(.terminate)
        }
        if shim_take_signal(shim_sighup()) != 0 { out.append(.reload) }
        return out
    }
}
