@testable import Mux
import Testing
import Wire

/// Two multiplexers joined by a simulated path: a one-way delay and a rate per
/// direction, a 1 ms clock. The relay side (`b`) sends bulk data on streams it
/// opens; the device side (`a`) reads everything at once (a fast application).
final class LongPath {
    let a: Mux
    let b: Mux
    var now = Instant.zero
    let oneWayMs: Int64
    let bytesPerMs: Int
    /// Bytes in flight, per direction: (arrival time, bytes).
    var toA: [(Instant, [UInt8])] = []
    var toB: [(Instant, [UInt8])] = []
    /// Streams b sends on (as long as `sending`), and what a read of each.
    var bulk: [UInt32] = []
    var sending = true
    var received: [UInt32: Int] = [:]
    var turn = 0
    let zeros = [UInt8](repeating: 0, count: WireProtocol.maxPayload)

    init(rttMs: Int64, mbit: Int, poolA: BufferPool, poolB: BufferPool = BufferPool(bufferSize: 256 * 1024, limit: 16)) {
        oneWayMs = rttMs / 2
        bytesPerMs = mbit * 1_000_000 / 8 / 1000
        a = Mux(side: .agent, limits: MuxLimits(heartbeatMs: 600_000), pool: poolA, now: now)
        b = Mux(side: .relay, limits: MuxLimits(heartbeatMs: 600_000), pool: poolB, now: now)
        a.helloFinished(now: now)
        b.helloFinished(now: now)
    }

    /// b opens a stream; a accepts it (after a round trip).
    func openBulk() -> UInt32 {
        let id = b.open(.hostname("dev"), now: now)!
        bulk.append(id)
        return id
    }

    /// Moves what the rate allows from `from.tx` onto the path.
    func transmit(_ from: Mux, _ q: inout [(Instant, [UInt8])]) {
        let n = min(from.tx.count, bytesPerMs)
        if n == 0 { return }
        q.append((now.adding(ms: oneWayMs), Array(from.tx.readable[0..<n])))
        from.tx.consume(n)
    }

    /// Hands arrived bytes to `to.rx` as it has room, handling events in between.
    func arrive(_ to: Mux, _ q: inout [(Instant, [UInt8])]) {
        while let (t, bytes) = q.first, t <= now {
            let n = bytes.withUnsafeBytes { to.rx.append($0) }
            if n < bytes.count {
                q[0].1 = Array(bytes[n...])
            } else {
                q.removeFirst()
            }
            events(to)
            if n == 0 { break }
        }
        events(to)
    }

    func events(_ m: Mux) {
        while let e = m.poll(now: now) {
            switch e {
            case .opened(let id, _): m.accept(id)
            case .failed(let f): Issue.record("tunnel failed: \(f)")
            default: break
            }
        }
        if m === a {
            for id in m.streamIDs {
                guard let q = m.receiveBuffer(id), !q.isEmpty else { continue }
                received[id, default: 0] += q.count
                q.consume(q.count)
            }
        }
        m.produce()
    }

    func send() {
        guard sending else { return }
        turn += 1
        // Streams take turns going first.
        for k in 0..<bulk.count {
            let id = bulk[(k + turn) % bulk.count]
            zeros.withUnsafeBytes { _ = b.send(id, $0) }
        }
        b.produce()
    }

    func tick() {
        now = now.adding(ms: 1)
        arrive(a, &toA)
        arrive(b, &toB)
        send()
        events(a)
        events(b)
        transmit(a, &toB)
        transmit(b, &toA)
    }

    func run(ms: Int) {
        for _ in 0..<ms { tick() }
    }

    /// Bytes a reads on `id` in the next `ms` milliseconds.
    func measure(_ ids: [UInt32], ms: Int) -> [Int] {
        let before = ids.map { received[$0] ?? 0 }
        run(ms: ms)
        return zip(ids, before).map { (received[$0] ?? 0) - $1 }
    }

    func window(_ m: Mux, _ id: UInt32) -> Int { m.streams[id]!.window }
}

@Suite struct MuxWindowTests {
    static func devicePool(budget: Int? = nil) -> BufferPool {
        BufferPool(bufferSize: 64 * 1024, limit: 128, maxBufferSize: 512 * 1024, budget: budget)
    }

    /// 100 ms, 20 Mbit/s: a fixed 64 KiB window carries 64 KiB per round trip (26 % of
    /// the link); the device's window grows to fill the path.
    @Test func windowGrowsToFillALongFatPath() {
        let p = LongPath(rttMs: 100, mbit: 20, poolA: Self.devicePool())
        p.run(ms: 300)
        #expect(p.a.lastRttMs >= 100 && p.a.lastRttMs <= 102)
        let id = p.openBulk()
        p.run(ms: 2_000)
        let got = p.measure([id], ms: 2_000)[0]
        let link = p.bytesPerMs * 2_000
        #expect(got * 100 >= link * 90, "\(got) of \(link) bytes")
        // It settles at about 1.5 x the path's bytes in flight (250 KB), not at the most
        // it may have: the rest would only queue.
        let w = p.window(p.a, id)
        #expect(w >= 300 * 1024 && w <= 512 * 1024)
        #expect(p.a.pool.committed == p.a.streams[id]!.receive.capacity)
        #expect(p.a.failures.isEmpty)
    }

    /// The same path with a fixed window (a pool that may not grow): the old figure.
    @Test func aFixedWindowCapsTheRate() {
        let p = LongPath(rttMs: 100, mbit: 20, poolA: BufferPool(bufferSize: 64 * 1024, limit: 128))
        p.run(ms: 300)
        let id = p.openBulk()
        p.run(ms: 1_000)
        let got = p.measure([id], ms: 2_000)[0]
        #expect(got * 100 <= p.bytesPerMs * 2_000 * 35)
        #expect(p.window(p.a, id) == 64 * 1024)
    }

    /// On a fast local hop the window grows no further than the round trip calls for
    /// (here a few milliseconds: 100 KB per millisecond, far below the largest window).
    @Test func noGrowthPastWhatTheRoundTripNeeds() {
        let p = LongPath(rttMs: 0, mbit: 400, poolA: BufferPool(bufferSize: 256 * 1024, limit: 8, maxBufferSize: 4 << 20))
        p.run(ms: 10)
        #expect(p.a.lastRttMs >= 0 && p.a.lastRttMs < 10)
        let id = p.openBulk()
        p.run(ms: 500)
        #expect((p.received[id] ?? 0) > 5_000_000)
        #expect(p.window(p.a, id) <= max(256 * 1024, p.a.rttCredit))
        #expect(p.a.pool.committed == p.window(p.a, id))
    }

    /// A budget of four base windows: growth takes at most half of what is free (and
    /// leaves one base window), so the window stops at 128 KiB and the budget is never
    /// exceeded.
    @Test func growthStopsAtTheBudget() {
        let budget = 4 * 64 * 1024
        let p = LongPath(rttMs: 100, mbit: 20, poolA: Self.devicePool(budget: budget))
        p.run(ms: 300)
        let id = p.openBulk()
        for _ in 0..<30 {
            p.run(ms: 100)
            #expect(p.a.pool.committed <= budget)
        }
        let w = p.window(p.a, id)
        #expect(w > 64 * 1024 && w <= 128 * 1024)
        // New streams still get their base window: two more fit, a fourth does not.
        let id2 = p.openBulk()
        p.run(ms: 300)
        #expect(p.a.exists(id2))
        #expect(p.a.pool.committed == p.a.streams[id]!.receive.capacity + 64 * 1024)
        let extra = p.a.pool.take()
        #expect(extra != nil)
        #expect(p.a.pool.take() == nil)
        if let q = extra { p.a.pool.give(q) }
    }

    /// Two bulk streams under a budget: both grow, and each gets a fair part of the link.
    @Test func twoStreamsShareABudget() {
        let p = LongPath(rttMs: 100, mbit: 20, poolA: Self.devicePool(budget: 1024 * 1024))
        p.run(ms: 300)
        let s1 = p.openBulk()
        let s2 = p.openBulk()
        p.run(ms: 3_000)
        let got = p.measure([s1, s2], ms: 2_000)
        let link = p.bytesPerMs * 2_000
        #expect((got[0] + got[1]) * 100 >= link * 85, "\(got) of \(link)")
        for g in got { #expect(g * 100 >= link * 35, "\(got) of \(link)") }
        #expect(p.window(p.a, s1) > 64 * 1024 && p.window(p.a, s2) > 64 * 1024)
        #expect(p.a.pool.committed <= 1024 * 1024)
    }

    /// A stream that idles goes back to the base window and its buffer holds no memory;
    /// the credit the sender still holds is honoured, then the buffer shrinks.
    @Test func windowShrinksWhenTheStreamIdles() {
        let p = LongPath(rttMs: 100, mbit: 20, poolA: Self.devicePool())
        p.run(ms: 300)
        let id = p.openBulk()
        p.run(ms: 3_000)
        #expect(p.window(p.a, id) > 64 * 1024)
        p.sending = false
        p.run(ms: Int(MuxLimits.windowIdleMs) + 1_000)
        let s = p.a.streams[id]!
        #expect(s.window == 64 * 1024)
        #expect(s.receive.isParked)
        // The sender holds credit granted for the big window: it may still send all of it
        // (credit is never revoked; the budget still counts it).
        let held = p.b.info(id)!.sendCredit
        #expect(held == s.recvCredit)
        #expect(s.receive.capacity >= held)
        #expect(p.a.pool.committed == s.receive.capacity)
        // The stream ends: the pool has all of its budget back.
        p.a.reset(id, .closed)
        #expect(p.a.pool.committed == 0 && p.a.pool.inUse == 0)
        #expect(p.a.failures.isEmpty && p.b.failures.isEmpty)
    }

    /// A window that shrank while the peer held little credit gives its memory back at once.
    @Test func idleWindowShrinksAtOnceWhenLittleCreditIsOut() {
        let p = LongPath(rttMs: 100, mbit: 20, poolA: Self.devicePool())
        p.run(ms: 300)
        let id = p.openBulk()
        p.run(ms: 3_000)
        let s = p.a.streams[id]!
        #expect(s.window > 64 * 1024)
        // The reader stops reading: the sender uses up its credit and the buffer fills ...
        p.sending = true
        var full = false
        for _ in 0..<3_000 where !full {
            p.now = p.now.adding(ms: 1)
            p.transmit(p.b, &p.toA)
            while let (t, bytes) = p.toA.first, t <= p.now {
                let n = bytes.withUnsafeBytes { p.a.rx.append($0) }
                if n < bytes.count { p.toA[0].1 = Array(bytes[n...]) } else { p.toA.removeFirst() }
                while p.a.poll(now: p.now) != nil {}
                if n == 0 { break }
            }
            p.a.produce()
            p.transmit(p.a, &p.toB)
            p.arrive(p.b, &p.toB)
            p.send()
            full = s.recvCredit == 0 && p.toA.isEmpty && p.b.tx.isEmpty
        }
        #expect(full)
        p.sending = false
        // ... the stream idles with its buffer full ...
        for _ in 0..<(Int(MuxLimits.windowIdleMs) + 1_000) {
            p.now = p.now.adding(ms: 1)
            while p.a.poll(now: p.now) != nil {}
            p.a.produce()
        }
        #expect(s.window == 64 * 1024)
        #expect(s.receive.count > 64 * 1024)
        // ... then the reader takes it all: the window is back to 64 KiB, budget returned.
        p.run(ms: 1_000)
        #expect(s.window == 64 * 1024)
        #expect(s.receive.capacity == 64 * 1024)
        #expect(s.receive.isParked)
        #expect(p.a.pool.committed == 64 * 1024)
        #expect(p.b.info(id)!.sendCredit <= 64 * 1024)
        #expect(p.a.failures.isEmpty && p.b.failures.isEmpty)
    }

    /// A reader that does not keep up does not make its window grow.
    @Test func aSlowReaderDoesNotGrow() {
        let p = LongPath(rttMs: 100, mbit: 20, poolA: Self.devicePool())
        p.run(ms: 300)
        let id = p.openBulk()
        // a reads 8 KiB every 100 ms (a round trip): far less than its window.
        var reads = 0
        for ms in 0..<3_000 {
            p.now = p.now.adding(ms: 1)
            if ms % 100 == 0, let q = p.a.receiveBuffer(id) { q.consume(min(q.count, 8 * 1024)) }
            p.transmit(p.b, &p.toA)
            while let (t, bytes) = p.toA.first, t <= p.now {
                let n = bytes.withUnsafeBytes { p.a.rx.append($0) }
                if n < bytes.count { p.toA[0].1 = Array(bytes[n...]) } else { p.toA.removeFirst() }
                while let e = p.a.poll(now: p.now) {
                    if case .data = e { reads += 1 }
                    if case .opened(let oid, _) = e { p.a.accept(oid) }
                }
                if n == 0 { break }
            }
            p.a.produce()
            p.transmit(p.a, &p.toB)
            p.arrive(p.b, &p.toB)
            p.send()
        }
        #expect(reads > 0)
        #expect(p.window(p.a, id) == 64 * 1024)
    }
}

extension Mux {
    /// Failures are reported once as an event; tests look at the sticky state.
    var failures: [MuxFailure] { failure.map { [$0] } ?? [] }
}
