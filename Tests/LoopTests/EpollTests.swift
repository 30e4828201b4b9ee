import CShims
import Glibc
import Loop
import Testing

/// The relay's epoll registration and its timer heap.
@Suite struct EpollTests {
    static func write(_ fd: Int32, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Socket.write(fd, $0) }
    }

    @Test func readinessFollowsRegisteredInterest() throws {
        let ep = try Epoll()
        let (a, b) = try Socket.pair()
        defer {
            Socket.close(a)
            Socket.close(b)
        }
        var reg = Registration()
        try reg.update(ep, fd: a, interest: .read, token: 42)
        #expect(try ep.wait(timeoutMs: 0) == 0, "nothing to read yet")
        Self.write(b, [1, 2, 3])
        #expect(try ep.wait(timeoutMs: 1000) == 1)
        #expect(ep.token(0) == 42)
        #expect(ep.ready(0) == .read)
        // Level-triggered: unread bytes are reported again.
        #expect(try ep.wait(timeoutMs: 0) == 1)
        // No interest: nothing reported, although bytes wait.
        try reg.update(ep, fd: a, interest: [], token: 42)
        #expect(try ep.wait(timeoutMs: 0) == 0)
        // Write interest on a socket with room: writable at once.
        try reg.update(ep, fd: a, interest: .write, token: 43)
        #expect(try ep.wait(timeoutMs: 1000) == 1)
        #expect(ep.token(0) == 43)
        #expect(ep.ready(0) == .write)
        reg.remove(ep)
        #expect(try ep.wait(timeoutMs: 0) == 0)
        #expect(!reg.isRegistered)
    }

    @Test func hangUpIsReportedAsReadAndWrite() throws {
        let ep = try Epoll()
        let (a, b) = try Socket.pair()
        defer { Socket.close(a) }
        var reg = Registration()
        try reg.update(ep, fd: a, interest: [], token: 7)
        Socket.close(b)
        #expect(try ep.wait(timeoutMs: 1000) == 1)
        #expect(ep.ready(0).contains(.read))
        #expect(ep.ready(0).contains(.write))
    }

    @Test func manyRegistrationsOneReady() throws {
        let ep = try Epoll()
        var pairs: [(Int32, Int32)] = []
        var regs = [Registration](repeating: Registration(), count: 200)
        for i in 0..<200 {
            let p = try Socket.pair()
            pairs.append(p)
            try regs[i].update(ep, fd: p.0, interest: .read, token: UInt64(i))
        }
        defer { for (a, b) in pairs { Socket.close(a); Socket.close(b) } }
        Self.write(pairs[137].1, [9])
        #expect(try ep.wait(timeoutMs: 1000) == 1)
        #expect(ep.token(0) == 137)
    }
}

@Suite struct TimerHeapTests {
    @Test func popsInTimeOrderOnlyWhenDue() {
        var h = TimerHeap()
        var rng: UInt64 = 0x9e37_79b9_7f4a_7c15
        var times: [Int64] = []
        for i in 0..<1000 {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            let t = Int64(rng >> 40) % 100_000
            times.append(t)
            h.schedule(UInt64(i), at: t)
        }
        #expect(h.earliest == times.min())
        #expect(h.popDue(now: times.min()! - 1) == nil)
        var last: Int64 = -1
        var n = 0
        while let s = h.popDue(now: 100_000) {
            let t = times[Int(s)]
            #expect(t >= last)
            last = t
            n += 1
        }
        #expect(n == 1000)
        #expect(h.isEmpty)
    }

    @Test func dueEntriesOnly() {
        var h = TimerHeap()
        h.schedule(1, at: 50)
        h.schedule(2, at: 10)
        h.schedule(3, at: 30)
        #expect(h.popDue(now: 30) == 2)
        #expect(h.popDue(now: 30) == 3)
        #expect(h.popDue(now: 30) == nil)
        #expect(h.earliest == 50)
    }
}

/// Names resolved off the loop (review finding 10): a thread per name, the answer through a pipe.
@Suite(.serialized) struct ResolverTests {
    static func wait(_ fd: Int32, ms: Int64) -> Bool {
        var ps = PollSet()
        ps.add(fd: fd, interest: .read, token: 1)
        return ((try? ps.wait(timeoutMs: Int32(ms))) ?? 0) > 0
    }

    @Test func localhostResolvesWithoutBlockingTheCaller() throws {
        guard case .started(let fd) = Resolver.start("localhost", maxActive: 4, delayMs: 300) else {
            Issue.record("not started"); return
        }
        defer { Socket.close(fd) }
        // The thread waits 300 ms: the caller is not blocked, and there is no answer yet.
        #expect(Resolver.finish(fd, port: 22) == nil)
        #expect(Self.wait(fd, ms: 5000))
        let addrs = try #require(Resolver.finish(fd, port: 22))
        #expect(!addrs.isEmpty)
        #expect(addrs.allSatisfy { $0.isLoopback && $0.port == 22 })
    }

    @Test func resolutionsAtOnceAreBounded() {
        guard case .started(let a) = Resolver.start("localhost", maxActive: 1, delayMs: 500) else {
            Issue.record("not started"); return
        }
        defer { Socket.close(a) }
        guard case .busy = Resolver.start("localhost", maxActive: 1, delayMs: 0) else {
            Issue.record("a second resolution while one runs"); return
        }
        #expect(Self.wait(a, ms: 5000))
        _ = Resolver.finish(a, port: 1)
    }

    @Test func anUnknownNameGivesNoAddress() {
        guard case .started(let fd) = Resolver.start("no-such-host.invalid", maxActive: 4) else {
            Issue.record("not started"); return
        }
        defer { Socket.close(fd) }
        #expect(Self.wait(fd, ms: 10000))
        #expect(Resolver.finish(fd, port: 1)?.isEmpty == true)
    }
}
