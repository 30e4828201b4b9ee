import CShims
import Glibc
import Loop
import Testing

/// Sockets, addresses and poll readiness. Real sockets only on 127.0.0.1 (and ::1 where
/// the host has it); waits are poll() calls that return as soon as the socket is ready,
/// bounded so a broken build fails instead of hanging.
@Suite struct SocketTests {
    /// Polls `fd` until one of `events` (or an error/hang-up, folded in by `ready`) is
    /// reported, at most `limitMs`. Returns the readiness, empty on timeout.
    static func waitFor(_ fd: Int32, _ events: PollEvents, limitMs: Int64 = 5000) -> PollEvents {
        let start = Clock.monotonicMs()
        while Clock.monotonicMs() - start < limitMs {
            var ps = PollSet()
            ps.add(fd: fd, interest: events, token: 7)
            guard let n = try? ps.wait(timeoutMs: 100) else { return [] }
            if n > 0 {
                let r = ps.ready(0)
                if !r.intersection(events).isEmpty { return r }
            }
        }
        return []
    }

    static func write(_ fd: Int32, _ bytes: [UInt8]) -> IOResult {
        bytes.withUnsafeBytes { Socket.write(fd, $0) }
    }

    /// Reads what is there (one call).
    static func read(_ fd: Int32, max: Int = 4096) -> (IOResult, [UInt8]) {
        var buf = [UInt8](repeating: 0, count: max)
        let r = buf.withUnsafeMutableBytes { Socket.read(fd, into: $0) }
        if case .done(let n) = r { return (r, Array(buf[0..<n])) }
        return (r, [])
    }

    /// Waits for readability, then reads.
    static func readWhenReady(_ fd: Int32) -> (IOResult, [UInt8]) {
        _ = waitFor(fd, .read)
        return read(fd)
    }

    static func isNonblocking(_ fd: Int32) -> Bool { fcntl(fd, F_GETFL) & O_NONBLOCK != 0 }
    static func isCloseOnExec(_ fd: Int32) -> Bool { fcntl(fd, F_GETFD) & FD_CLOEXEC != 0 }

    static let ipv6LoopbackAvailable: Bool = {
        guard let a = SocketAddress.numeric("::1", port: 0), let fd = try? Socket.listen(a) else { return false }
        Socket.close(fd)
        return true
    }()

    // MARK: socketpair

    @Test func pairReadWriteWouldBlockEOF() throws {
        let (a, b) = try Socket.pair()
        defer {
            Socket.close(a)
            Socket.close(b)
        }
        #expect(Self.isNonblocking(a) && Self.isNonblocking(b))
        #expect(Self.isCloseOnExec(a) && Self.isCloseOnExec(b))
        #expect(Self.read(b).0 == .wouldBlock)
        #expect(Self.write(a, Array("hello".utf8)) == .done(5))
        let (r, got) = Self.read(b)
        #expect(r == .done(5))
        #expect(got == Array("hello".utf8))
        #expect(Self.read(b).0 == .wouldBlock)
        // Empty buffers move nothing and do not block.
        #expect(Self.write(a, []) == .done(0))
        var none: [UInt8] = []
        #expect(none.withUnsafeMutableBytes { Socket.read(b, into: $0) } == .done(0))
        // Half-close: b reads EOF, the other direction still works.
        Socket.shutdownWrite(a)
        #expect(Self.read(b).0 == .eof)
        #expect(Self.read(b).0 == .eof)
        #expect(Self.write(b, [1, 2, 3]) == .done(3))
        #expect(Self.read(a).1 == [1, 2, 3])
    }

    @Test func writingToAClosedPeerFailsWithoutSIGPIPE() throws {
        let (a, b) = try Socket.pair()
        defer { Socket.close(b) }
        Socket.close(a)
        // MSG_NOSIGNAL: EPIPE as a value, the process is not killed.
        #expect(Self.write(b, [1]) == .failed(EPIPE))
        #expect(Self.read(b).0 == .eof)
    }

    @Test func aFullSocketSaysWouldBlock() throws {
        let (a, b) = try Socket.pair()
        defer {
            Socket.close(a)
            Socket.close(b)
        }
        let chunk = [UInt8](repeating: 0x5a, count: 65536)
        var total = 0
        var blocked = false
        for _ in 0..<10_000 {
            let r = Self.write(a, chunk)
            if case .done(let n) = r {
                #expect(n > 0 && n <= chunk.count)
                total += n
            } else {
                #expect(r == .wouldBlock)
                blocked = true
                break
            }
        }
        #expect(blocked)
        // Draining makes it writable again.
        var drained = 0
        while case (.done(let n), _) = Self.read(b, max: 65536) { drained += n }
        #expect(drained == total)
        #expect(Self.write(a, [1]) == .done(1))
    }

    // MARK: TCP on loopback

    @Test func tcpConnectAcceptDataAndHalfClose() throws {
        let listener = try Socket.listen(#require(SocketAddress.numeric("127.0.0.1", port: 0)))
        defer { Socket.close(listener) }
        #expect(Self.isNonblocking(listener) && Self.isCloseOnExec(listener))
        let bound = try #require(Socket.localAddress(listener))
        #expect(bound.port != 0)
        #expect(bound.hostText == "127.0.0.1")
        #expect(Socket.accept(listener) == nil)  // nothing pending: nil, not a block

        let client = try Socket.connect(bound)
        defer { Socket.close(client) }
        #expect(Self.isNonblocking(client))
        #expect(Self.waitFor(client, .write).contains(.write))
        #expect(Socket.connectError(client) == 0)

        #expect(Self.waitFor(listener, .read).contains(.read))
        let (server, peer) = try #require(Socket.accept(listener))
        defer { Socket.close(server) }
        #expect(Self.isNonblocking(server) && Self.isCloseOnExec(server))
        #expect(peer.isLoopback)
        #expect(peer.hostText == "127.0.0.1")
        #expect(peer.port == Socket.localAddress(client)?.port)

        // Data both ways.
        #expect(Self.write(client, Array("ping".utf8)) == .done(4))
        #expect(Self.readWhenReady(server).1 == Array("ping".utf8))
        #expect(Self.write(server, Array("pong".utf8)) == .done(4))
        #expect(Self.readWhenReady(client).1 == Array("pong".utf8))

        // The client half-closes: the server reads EOF and can still answer.
        Socket.shutdownWrite(client)
        #expect(Self.readWhenReady(server).0 == .eof)
        #expect(Self.write(server, Array("still here".utf8)) == .done(10))
        #expect(Self.readWhenReady(client).1 == Array("still here".utf8))
        #expect(Self.read(client).0 == .wouldBlock)
        Socket.shutdownWrite(server)
        #expect(Self.readWhenReady(client).0 == .eof)
    }

    @Test(.enabled(if: SocketTests.ipv6LoopbackAvailable))
    func tcpOverIPv6Loopback() throws {
        let listener = try Socket.listen(#require(SocketAddress.numeric("::1", port: 0)))
        defer { Socket.close(listener) }
        let bound = try #require(Socket.localAddress(listener))
        #expect(bound.text == "[::1]:" + String(bound.port))
        let client = try Socket.connect(bound)
        defer { Socket.close(client) }
        #expect(Self.waitFor(client, .write).contains(.write))
        #expect(Socket.connectError(client) == 0)
        #expect(Self.waitFor(listener, .read).contains(.read))
        let (server, peer) = try #require(Socket.accept(listener))
        defer { Socket.close(server) }
        #expect(peer.isLoopback)
        #expect(Self.write(client, [9]) == .done(1))
        #expect(Self.readWhenReady(server).1 == [9])
    }

    @Test func connectToAClosedPortIsRefused() throws {
        // A port that was just free: bind, note it, close.
        let l = try Socket.listen(#require(SocketAddress.numeric("127.0.0.1", port: 0)))
        let addr = try #require(Socket.localAddress(l))
        Socket.close(l)
        do throws(SysError) {
            let fd = try Socket.connect(addr)
            defer { Socket.close(fd) }
            // The failure shows as readiness (error/hang-up folded into read and write) ...
            let r = Self.waitFor(fd, .write)
            #expect(r.contains(.write))
            #expect(r.contains(.read))
            // ... and connectError tells which.
            #expect(Socket.connectError(fd) == ECONNREFUSED)
        } catch {
            // Linux may also refuse at once on loopback.
            #expect(error.code == ECONNREFUSED)
        }
    }

    @Test func listeningTwiceOnAPortFails() throws {
        let l = try Socket.listen(#require(SocketAddress.numeric("127.0.0.1", port: 0)))
        defer { Socket.close(l) }
        let addr = try #require(Socket.localAddress(l))
        let e = #expect(throws: SysError.self) { try Socket.listen(addr) }
        #expect(e?.code == EADDRINUSE)
    }

    // MARK: PollSet

    @Test func pollWithZeroTimeout() throws {
        let (a, b) = try Socket.pair()
        defer {
            Socket.close(a)
            Socket.close(b)
        }
        var ps = PollSet()
        ps.add(fd: b, interest: .read, token: 42)
        #expect(ps.count == 1)
        #expect(try ps.wait(timeoutMs: 0) == 0)
        #expect(ps.ready(0) == [])
        #expect(Self.write(a, [1]) == .done(1))
        #expect(try ps.wait(timeoutMs: 0) == 1)
        #expect(ps.ready(0).contains(.read))
        #expect(!ps.ready(0).contains(.write))  // not asked for
        #expect(ps.token(0) == 42)
        #expect(ps.fd(0) == b)
        ps.removeAll()
        #expect(ps.count == 0)
    }

    @Test func pollWaitsForItsTimeout() throws {
        let (a, b) = try Socket.pair()
        defer {
            Socket.close(a)
            Socket.close(b)
        }
        var ps = PollSet()
        ps.add(fd: b, interest: .read, token: 1)
        let start = Clock.monotonicNs()
        #expect(try ps.wait(timeoutMs: 5) == 0)
        let elapsedMs = (Clock.monotonicNs() - start) / 1_000_000
        #expect(elapsedMs >= 4)
        #expect(elapsedMs < 1000)
        #expect(ps.ready(0) == [])
    }

    @Test func pollReportsOnlyTheReadyEntries() throws {
        let (a, b) = try Socket.pair()
        let (c, d) = try Socket.pair()
        defer {
            for fd in [a, b, c, d] { Socket.close(fd) }
        }
        var ps = PollSet()
        ps.add(fd: b, interest: .read, token: 1)
        ps.add(fd: d, interest: .read, token: 2)
        ps.add(fd: c, interest: .write, token: 3)
        #expect(Self.write(a, [1]) == .done(1))
        #expect(try ps.wait(timeoutMs: 100) == 2)
        #expect(ps.ready(0).contains(.read))
        #expect(ps.ready(1) == [])
        #expect(ps.ready(2).contains(.write))
        #expect(ps.token(2) == 3)
    }

    @Test func readyFoldsHangUpIntoReadAndWrite() throws {
        let (a, b) = try Socket.pair()
        defer { Socket.close(b) }
        Socket.close(a)
        var ps = PollSet()
        // No interest at all: hang-up is still reported, as read and write.
        ps.add(fd: b, interest: [], token: 5)
        #expect(try ps.wait(timeoutMs: 0) == 1)
        let r = ps.ready(0)
        #expect(r.contains(.hangup))
        #expect(r.contains(.read))
        #expect(r.contains(.write))
    }

    @Test func readyFoldsAnInvalidFdIntoReadAndWrite() throws {
        var ps = PollSet()
        ps.add(fd: 999_999, interest: .read, token: 6)  // never open in this process
        #expect(try ps.wait(timeoutMs: 0) == 1)
        let r = ps.ready(0)
        #expect(r.contains(.invalid))
        #expect(r.contains([.read, .write]))
    }

    // MARK: DeadlineMin

    @Test func deadlineMin() {
        var d = DeadlineMin()
        #expect(d.timeout(now: 100) == -1)
        #expect(d.timeout(now: 100, cap: 250) == 250)
        d.consider(nil)
        #expect(d.timeout(now: 100) == -1)
        d.consider(150)
        d.consider(120)
        d.consider(130)
        #expect(d.earliest == 120)
        #expect(d.timeout(now: 100) == 20)
        #expect(d.timeout(now: 100, cap: 10) == 10)
        #expect(d.timeout(now: 120) == 0)
        #expect(d.timeout(now: 500) == 0)  // overdue: do not wait
        var far = DeadlineMin()
        far.consider(Int64(Int32.max) * 4)
        #expect(far.timeout(now: 0) == Int32.max)  // capped at what poll() takes
    }

    // MARK: SocketAddress (parsing only: no traffic)

    @Test func numericIPv4() throws {
        let a = try #require(SocketAddress.numeric("127.0.0.1", port: 22))
        #expect(a.family == AF_INET)
        #expect(Int(a.length) == MemoryLayout<sockaddr_in>.size)
        #expect(a.port == 22)
        #expect(a.ipBytes == [127, 0, 0, 1])
        #expect(a.hostText == "127.0.0.1")
        #expect(a.text == "127.0.0.1:22")
        var b = a
        b.setPort(65535)
        #expect(b.port == 65535)
        #expect(b.text == "127.0.0.1:65535")
    }

    @Test func numericIPv6() throws {
        let a = try #require(SocketAddress.numeric("::1", port: 443))
        #expect(a.family == AF_INET6)
        #expect(Int(a.length) == MemoryLayout<sockaddr_in6>.size)
        #expect(a.port == 443)
        #expect(a.ipBytes == [UInt8](repeating: 0, count: 15) + [1])
        #expect(a.hostText == "::1")
        #expect(a.text == "[::1]:443")
        let b = try #require(SocketAddress.numeric("2001:DB8::A", port: 1))
        #expect(b.text == "[2001:db8::a]:1")
        let m = try #require(SocketAddress.numeric("::ffff:127.0.0.1", port: 80))
        #expect(m.family == AF_INET6)
        #expect(Array(m.ipBytes[10..<16]) == [0xff, 0xff, 127, 0, 0, 1])
        #expect(m.text == "[::ffff:127.0.0.1]:80")
    }

    @Test(arguments: ["localhost", "", "1.2.3", "256.0.0.1", "[::1]", "127.0.0.1:22", " 127.0.0.1",
                      "127.0.0.1 ", "::1%lo", "example.com", ":::"])
    func numericRejectsNonNumeric(host: String) {
        #expect(SocketAddress.numeric(host, port: 1) == nil)
    }

    @Test(arguments: [
        ("127.0.0.1", true), ("127.255.0.1", true), ("127.0.0.0", true), ("127.255.255.255", true),
        ("::1", true), ("::ffff:127.0.0.1", true), ("::ffff:127.1.2.3", true),
        ("10.0.0.1", false), ("0.0.0.0", false), ("128.0.0.1", false), ("126.255.255.255", false),
        ("192.168.1.1", false), ("::", false), ("::2", false), ("::ffff:10.0.0.1", false),
        ("fe80::1", false), ("::127.0.0.1", false), ("1::1", false),
    ])
    func isLoopback(host: String, loopback: Bool) throws {
        let a = try #require(SocketAddress.numeric(host, port: 1))
        #expect(a.isLoopback == loopback)
    }

    @Test func resolveOfANumericAddressNeedsNoLookup() {
        let v4 = SocketAddress.resolve("127.0.0.1", port: 8080)
        #expect(v4.count == 1)
        #expect(v4.first?.text == "127.0.0.1:8080")
        let v6 = SocketAddress.resolve("::1", port: 22)
        #expect(v6.count == 1)
        #expect(v6.first?.text == "[::1]:22")
    }

    // MARK: SysError

    @Test func sysErrorMessage() {
        #expect(SysError("connect", ECONNREFUSED).message == "connect: Connection refused")
        #expect(SysError("open", ENOENT).message == "open: No such file or directory")
        #expect(SysError.describe(EADDRINUSE) == "Address in use")   // musl's words, on every build
        #expect(SysError.describe(EDOM) == "errno " + String(EDOM))   // not a tunnel's error: its number
        #expect(SysError.describe(EPIPE) == "Broken pipe")
    }
}
