import CShims
import Wire

/// The result of one nonblocking read or write. "Would block" is a value, not an error.
public enum IOResult: Equatable {
    case done(Int)       // bytes moved (> 0)
    case wouldBlock
    case eof             // read returned 0 (peer finished sending)
    case failed(Int32)   // errno
}

/// An IPv4 or IPv6 socket address.
public struct SocketAddress {
    public var storage = sockaddr_storage()
    public var length: socklen_t = 0

    public init() {}

    public var family: Int32 { Int32(storage.ss_family) }

    /// Parses a numeric address and port ("127.0.0.1", "::1"); nil if not numeric.
    public static func numeric(_ host: String, port: UInt16) -> SocketAddress? {
        var a = SocketAddress()
        var ok = false
        host.withCString { cs in
            withUnsafeMutablePointer(to: &a.storage) { sp in
                sp.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { p in
                    if inet_pton(AF_INET, cs, &p.pointee.sin_addr) == 1 {
                        p.pointee.sin_family = sa_family_t(AF_INET)
                        p.pointee.sin_port = port.bigEndian
                        a.length = socklen_t(MemoryLayout<sockaddr_in>.size)
                        ok = true
                    }
                }
                if !ok {
                    sp.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                        if inet_pton(AF_INET6, cs, &p.pointee.sin6_addr) == 1 {
                            p.pointee.sin6_family = sa_family_t(AF_INET6)
                            p.pointee.sin6_port = port.bigEndian
                            a.length = socklen_t(MemoryLayout<sockaddr_in6>.size)
                            ok = true
                        }
                    }
                }
            }
        }
        return ok ? a : nil
    }

    /// Resolves a host name or numeric address (getaddrinfo; blocking, so callers use it
    /// for names from configuration only). Returns every address, IPv4 first.
    public static func resolve(_ host: String, port: UInt16) -> [SocketAddress] {
        if let a = numeric(host, port: port) { return [a] }
        var hints = addrinfo()
        hints.ai_socktype = shim_sock_stream()
        hints.ai_family = AF_UNSPEC
        var res: UnsafeMutablePointer<addrinfo>? = nil
        let rc = host.withCString { getaddrinfo($0, nil, &hints, &res) }
        guard rc == 0 else { return [] }
        defer { freeaddrinfo(res) }
        var v4: [SocketAddress] = []
        var v6: [SocketAddress] = []
        var p = res
        while let ai = p {
            if let sa = ai.pointee.ai_addr {
                var a = SocketAddress()
                let fam = Int32(sa.pointee.sa_family)
                if fam == AF_INET || fam == AF_INET6 {
                    let len = Int(ai.pointee.ai_addrlen)
                    withUnsafeMutableBytes(of: &a.storage) { dst in
                        dst.copyMemory(from: UnsafeRawBufferPointer(start: sa, count: min(len, dst.count)))
                    }
                    a.length = socklen_t(len)
                    a.setPort(port)
                    if fam == AF_INET { v4.append(a) } else { v6.append(a) }
                }
            }
            p = ai.pointee.ai_next
        }
        return v4 + v6
    }

    public var port: UInt16 {
        withUnsafeBytes(of: storage) { raw in
            // sin_port and sin6_port are both at offset 2, network order.
            UInt16(raw[2]) << 8 | UInt16(raw[3])
        }
    }

    public mutating func setPort(_ port: UInt16) {
        withUnsafeMutableBytes(of: &storage) { raw in
            raw[2] = UInt8(port >> 8)
            raw[3] = UInt8(port & 0xff)
        }
    }

    /// The IP address bytes: 4 for IPv4, 16 for IPv6.
    public var ipBytes: [UInt8] {
        withUnsafeBytes(of: storage) { raw in
            if family == AF_INET { return Array(raw[4..<8]) }
            if family == AF_INET6 { return Array(raw[8..<24]) }
            return []
        }
    }

    /// True for 127.0.0.0/8, ::1 and IPv4-mapped loopback.
    public var isLoopback: Bool {
        let b = ipBytes
        if b.count == 4 { return b[0] == 127 }
        if b.count == 16 {
            if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return true }
            if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff { return b[12] == 127 }
        }
        return false
    }

    /// The address without the port: "127.0.0.1" or "::1" (RFC 5952). Formatted here
    /// rather than with inet_ntop, whose musl version pulls printf into the binary.
    public var hostText: String {
        let t = PeerAddress(ip: ipBytes, port: 0).text
        if family == AF_INET6 { return Text.slice(t, 1, Text.length(t) - 3) }  // "[...]:0"
        if family == AF_INET { return Text.slice(t, 0, Text.length(t) - 2) }   // "...:0"
        return "?"
    }

    /// "127.0.0.1:22" or "[::1]:22".
    public var text: String {
        family == AF_INET6 ? "[" + hostText + "]:" + String(port) : hostText + ":" + String(port)
    }

    fileprivate func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var s = storage
        return withUnsafePointer(to: &s) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }
}

/// Nonblocking TCP socket calls. Every fd they return is nonblocking and close-on-exec.
public enum Socket {
    /// A listening socket on `address` (SO_REUSEADDR, nonblocking).
    public static func listen(_ address: SocketAddress, backlog: Int32 = 128) throws(SysError) -> Int32 {
        let fd = socket(address.family, shim_sock_stream(), 0)
        if fd < 0 { throw SysError.last("socket") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = shim_set_nonblock(fd)
        _ = shim_set_cloexec(fd)
        let rc = address.withSockaddr { bind(fd, $0, $1) }
        if rc != 0 {
            let e = SysError.last("bind")
            close(fd)
            throw e
        }
        if CShims.listen(fd, backlog) != 0 {
            let e = SysError.last("listen")
            close(fd)
            throw e
        }
        return fd
    }

    /// Accepts one connection. nil when none is pending (or on a transient error
    /// such as ECONNABORTED or EMFILE, which must not stop a server).
    public static func accept(_ listener: Int32) -> (fd: Int32, peer: SocketAddress)? {
        var peer = SocketAddress()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = withUnsafeMutablePointer(to: &peer.storage) { sp in
            sp.withMemoryRebound(to: sockaddr.self, capacity: 1) { CShims.accept(listener, $0, &len) }
        }
        if fd < 0 { return nil }
        peer.length = len
        _ = shim_set_nonblock(fd)
        _ = shim_set_cloexec(fd)
        setNoDelay(fd)
        return (fd, peer)
    }

    /// Starts a nonblocking connect. The caller waits for writability, then calls `connectError`.
    public static func connect(_ address: SocketAddress) throws(SysError) -> Int32 {
        let fd = socket(address.family, shim_sock_stream(), 0)
        if fd < 0 { throw SysError.last("socket") }
        _ = shim_set_nonblock(fd)
        _ = shim_set_cloexec(fd)
        setNoDelay(fd)
        let rc = address.withSockaddr { CShims.connect(fd, $0, $1) }
        if rc != 0 {
            let e = shim_errno()
            if e != EINPROGRESS && e != EINTR {
                close(fd)
                throw SysError("connect", e)
            }
        }
        return fd
    }

    /// 0 when a nonblocking connect has succeeded, else its errno.
    public static func connectError(_ fd: Int32) -> Int32 {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 { return shim_errno() }
        return err
    }

    public static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Keeps at most `bytes` of unsent data queued in the kernel (TCP_NOTSENT_LOWAT):
    /// the socket reports writable only below it, so bulk data waits in our own
    /// queues, where a latency-sensitive frame can still get ahead of it.
    public static func setNotSentLowWater(_ fd: Int32, _ bytes: Int32) {
        var v = bytes
        _ = setsockopt(fd, Int32(IPPROTO_TCP), shim_tcp_notsent_lowat(), &v, socklen_t(MemoryLayout<Int32>.size))
    }

    public static func setBufferSizes(_ fd: Int32, send: Int32, receive: Int32) {
        var s = send
        var r = receive
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &s, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &r, socklen_t(MemoryLayout<Int32>.size))
    }

    public static func read(_ fd: Int32, into buf: UnsafeMutableRawBufferPointer) -> IOResult {
        if buf.count == 0 { return .done(0) }
        while true {
            let n = recv(fd, buf.baseAddress, buf.count, 0)
            if n > 0 { return .done(n) }
            if n == 0 { return .eof }
            let e = shim_errno()
            if e == EINTR { continue }
            if e == shim_eagain() || e == shim_ewouldblock() { return .wouldBlock }
            return .failed(e)
        }
    }

    public static func write(_ fd: Int32, _ buf: UnsafeRawBufferPointer) -> IOResult {
        if buf.count == 0 { return .done(0) }
        while true {
            let n = send(fd, buf.baseAddress, buf.count, shim_msg_nosignal())
            if n >= 0 { return .done(n) }
            let e = shim_errno()
            if e == EINTR { continue }
            if e == shim_eagain() || e == shim_ewouldblock() { return .wouldBlock }
            return .failed(e)
        }
    }

    /// Half-close: we will send no more; the peer reads EOF.
    public static func shutdownWrite(_ fd: Int32) { _ = shutdown(fd, Int32(SHUT_WR)) }

    public static func close(_ fd: Int32) {
        if fd >= 0 { _ = CShims.close(fd) }
    }

    /// Closes with an RST instead of a FIN (SO_LINGER 0): the peer sees a reset, not a clean end.
    public static func abort(_ fd: Int32) {
        var l = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        close(fd)
    }

    public static func localAddress(_ fd: Int32) -> SocketAddress? {
        var a = SocketAddress()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &a.storage) { sp in
            sp.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        if rc != 0 { return nil }
        a.length = len
        return a
    }

    /// A connected pair of nonblocking stream sockets (tests, in-process pipes).
    public static func pair() throws(SysError) -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        if socketpair(AF_UNIX, shim_sock_stream(), 0, &fds) != 0 { throw SysError.last("socketpair") }
        for fd in fds {
            _ = shim_set_nonblock(fd)
            _ = shim_set_cloexec(fd)
        }
        return (fds[0], fds[1])
    }
}

/// Moving bytes between a nonblocking socket and a `ByteQueue`.
public enum SocketQueue {
    /// How a fill or drain ended.
    public enum End: Equatable {
        /// The socket would block, or the queue is full (fill) / empty (drain).
        case wouldBlock
        case eof
        case failed(Int32)
    }

    /// Reads into `q` until it is full or the socket would block. Returns the bytes read
    /// and, if the socket ended or failed, how.
    public static func fill(_ fd: Int32, _ q: ByteQueue) -> (bytes: Int, end: End) {
        var total = 0
        while q.freeSpace > 0 {
            let room = q.writable()
            switch Socket.read(fd, into: room) {
            case .done(let n):
                q.commit(n)
                total += n
                if n < room.count { return (total, .wouldBlock) }
            case .wouldBlock:
                return (total, .wouldBlock)
            case .eof:
                return (total, .eof)
            case .failed(let e):
                return (total, .failed(e))
            }
        }
        return (total, .wouldBlock)
    }

    /// Writes from `q` until it is empty or the socket would block. Returns the bytes
    /// written and `.failed` if the socket failed.
    public static func drain(_ fd: Int32, _ q: ByteQueue) -> (bytes: Int, end: End) {
        var total = 0
        while !q.isEmpty {
            switch Socket.write(fd, q.readable) {
            case .done(let n):
                q.consume(n)
                total += n
            case .wouldBlock, .eof:
                return (total, .wouldBlock)
            case .failed(let e):
                return (total, .failed(e))
            }
        }
        return (total, .wouldBlock)
    }
}

/// Host names resolved off the loop: getaddrinfo runs in a detached thread of its own
/// (CShims), its answer comes through a pipe the loop polls like any socket.
public enum Resolver {
    public enum Start {
        case started(fd: Int32)
        /// `maxActive` resolutions are running already.
        case busy
        case failed
    }

    /// Starts resolving `host`. `delayMs` is a test hook (the thread waits first).
    public static func start(_ host: String, maxActive: Int, delayMs: Int = 0) -> Start {
        let fd = host.withCString { shim_resolve_start($0, Int32(maxActive), Int32(delayMs)) }
        if fd == -2 { return .busy }
        if fd < 0 { return .failed }
        return .started(fd: fd)
    }

    /// The addresses (IPv4 first) once the answer is there (empty: the name did not
    /// resolve); nil while it is not. The caller closes `fd` afterwards.
    public static func finish(_ fd: Int32, port: UInt16) -> [SocketAddress]? {
        var storage = [sockaddr_storage](repeating: sockaddr_storage(), count: Int(SHIM_RESOLVE_MAX_ADDRS))
        var lens = [socklen_t](repeating: 0, count: Int(SHIM_RESOLVE_MAX_ADDRS))
        let n = storage.withUnsafeMutableBufferPointer { s in
            lens.withUnsafeMutableBufferPointer { l in shim_resolve_finish(fd, s.baseAddress, l.baseAddress) }
        }
        if n < 0 { return nil }
        var out: [SocketAddress] = []
        for i in 0..<Int(n) {
            var a = SocketAddress()
            a.storage = storage[i]
            a.length = lens[i]
            a.setPort(port)
            out.append(a)
        }
        return out
    }

    /// Resolutions running now (threads alive).
    public static var active: Int { Int(shim_resolve_active()) }
}
