import CShims

/// Poll interest and readiness bits.
public struct PollEvents: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let read = PollEvents(rawValue: Int16(POLLIN))
    public static let write = PollEvents(rawValue: Int16(POLLOUT))
    public static let error = PollEvents(rawValue: Int16(POLLERR))
    public static let hangup = PollEvents(rawValue: Int16(POLLHUP))
    public static let invalid = PollEvents(rawValue: Int16(POLLNVAL))
}

/// One poll() turn. The set is rebuilt by its owner before every wait from the
/// current interests of every connection, so it can never disagree with them
/// (no registration to forget). Each entry carries a token the owner uses to
/// find the object that asked.
///
/// Error and hang-up readiness are reported as `.read` and `.write` too, so
/// the next read() or write() shows the real condition (BearSSL sslio.c).
public struct PollSet {
    public private(set) var fds: [pollfd] = []
    public private(set) var tokens: [UInt64] = []

    public init(capacity: Int = 64) {
        fds.reserveCapacity(capacity)
        tokens.reserveCapacity(capacity)
    }

    public var count: Int { fds.count }

    public mutating func removeAll() {
        fds.removeAll(keepingCapacity: true)
        tokens.removeAll(keepingCapacity: true)
    }

    /// Adds `fd` with `interest`. An fd with no interest still reports errors and hang-ups.
    public mutating func add(fd: Int32, interest: PollEvents, token: UInt64) {
        fds.append(pollfd(fd: fd, events: interest.rawValue, revents: 0))
        tokens.append(token)
    }

    /// Waits up to `timeoutMs` (-1: forever). Returns the number of ready entries;
    /// EINTR counts as a timeout with nothing ready (the caller checks signals).
    public mutating func wait(timeoutMs: Int32) throws(SysError) -> Int {
        let n = fds.withUnsafeMutableBufferPointer { buf in
            poll(buf.baseAddress, nfds_t(buf.count), timeoutMs)
        }
        if n < 0 {
            let e = shim_errno()
            if e == EINTR { return 0 }
            throw SysError("poll", e)
        }
        return Int(n)
    }

    /// Readiness of entry `i` after `wait`, with errors folded into read and write.
    public func ready(_ i: Int) -> PollEvents {
        let r = PollEvents(rawValue: fds[i].revents)
        if r.isEmpty { return [] }
        var out = r
        if !r.intersection([.error, .hangup, .invalid]).isEmpty {
            out.formUnion([.read, .write])
        }
        return out
    }

    public func token(_ i: Int) -> UInt64 { tokens[i] }
    public func fd(_ i: Int) -> Int32 { fds[i].fd }
}

/// Computes a poll() timeout from the earliest of some deadlines.
public struct DeadlineMin {
    public private(set) var earliest: Int64 = Int64.max

    public init() {}

    public mutating func consider(_ deadline: Int64?) {
        if let d = deadline, d < earliest { earliest = d }
    }

    /// Milliseconds to wait from `now`, capped at `cap`; -1 if nothing is due and cap is nil.
    public func timeout(now: Int64, cap: Int32? = nil) -> Int32 {
        if earliest == Int64.max { return cap ?? -1 }
        let wait = earliest - now
        if wait <= 0 { return 0 }
        let capped = min(wait, Int64(cap ?? Int32.max))
        return Int32(capped)
    }
}
