import CShims

/// The relay's readiness source: each fd is registered once with its interest and a
/// token, and changed only when its interest changes, so a turn of the loop costs
/// what became ready, not how many connections exist (poll() walks them all).
/// Level-triggered: readiness not consumed is reported again, as with poll().
/// Errors and hang-ups are reported as `.read` and `.write` too, like `PollSet`.
public final class Epoll {
    public let fd: Int32
    /// Events of the last `wait` (tokens and readiness), at most `batch` per wait.
    public private(set) var count = 0
    var tokens: [UInt64]
    var events: [UInt32]
    public static let batch = 256

    public init() throws(SysError) {
        fd = shim_epoll_create()
        if fd < 0 { throw SysError("epoll_create1", shim_errno()) }
        tokens = [UInt64](repeating: 0, count: Epoll.batch)
        events = [UInt32](repeating: 0, count: Epoll.batch)
    }

    deinit { Socket.close(fd) }

    /// Starts watching `fd`.
    public func add(_ fd: Int32, _ interest: PollEvents, token: UInt64) throws(SysError) {
        if shim_epoll_ctl(self.fd, 1 /* EPOLL_CTL_ADD */, fd, UInt32(UInt16(bitPattern: interest.rawValue)), token) != 0 {
            throw SysError("epoll_ctl add", shim_errno())
        }
    }

    /// Changes what `fd` is watched for.
    public func modify(_ fd: Int32, _ interest: PollEvents, token: UInt64) throws(SysError) {
        if shim_epoll_ctl(self.fd, 3 /* EPOLL_CTL_MOD */, fd, UInt32(UInt16(bitPattern: interest.rawValue)), token) != 0 {
            throw SysError("epoll_ctl mod", shim_errno())
        }
    }

    /// Stops watching `fd` (closing an fd also does, once no other descriptor refers to it).
    public func remove(_ fd: Int32) {
        _ = shim_epoll_ctl(self.fd, 2 /* EPOLL_CTL_DEL */, fd, 0, 0)
    }

    /// Waits up to `timeoutMs` (-1: forever). EINTR counts as a timeout with nothing ready.
    @discardableResult
    public func wait(timeoutMs: Int32) throws(SysError) -> Int {
        let n = tokens.withUnsafeMutableBufferPointer { t in
            events.withUnsafeMutableBufferPointer { e in
                shim_epoll_wait(fd, t.baseAddress, e.baseAddress, Int32(Epoll.batch), timeoutMs)
            }
        }
        if n < 0 {
            count = 0
            throw SysError("epoll_wait", shim_errno())
        }
        count = Int(n)
        return count
    }

    public func token(_ i: Int) -> UInt64 { tokens[i] }

    /// Readiness of event `i`, with errors folded into read and write.
    public func ready(_ i: Int) -> PollEvents {
        let r = PollEvents(rawValue: Int16(truncatingIfNeeded: events[i]))
        var out = r.intersection([.read, .write])
        if !r.intersection([.error, .hangup]).isEmpty { out.formUnion([.read, .write]) }
        return out
    }
}

/// One fd's registration with an `Epoll`: remembers the interest the kernel has, so a
/// change costs one epoll_ctl and no change costs nothing.
public struct Registration {
    public private(set) var fd: Int32 = -1
    var interest: PollEvents = []

    public init() {}

    public var isRegistered: Bool { fd >= 0 }

    /// Registers `fd` or updates its interest. A failure leaves it unregistered.
    public mutating func update(_ ep: Epoll, fd: Int32, interest: PollEvents, token: UInt64) throws(SysError) {
        if self.fd == fd {
            if interest == self.interest { return }
            try ep.modify(fd, interest, token: token)
        } else {
            if self.fd >= 0 { ep.remove(self.fd) }
            self.fd = -1
            try ep.add(fd, interest, token: token)
            self.fd = fd
        }
        self.interest = interest
    }

    /// Stops watching (before the fd is closed).
    public mutating func remove(_ ep: Epoll) {
        if fd >= 0 { ep.remove(fd) }
        fd = -1
        interest = []
    }
}
