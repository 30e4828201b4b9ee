import Wire

/// The multiplexer of one tunnel, sans-IO: plaintext frames in (`rx`), frames
/// out (`tx`), events and commands in between. It never touches a socket or a
/// clock; `now` comes in with every call that needs time.
///
/// Calling convention for the owner, once per loop turn (quinn-proto style):
///   1. append plaintext from the tunnel's TLS to `rx` (two-phase: `rx.writable()`, `rx.commit(n)`);
///   2. `while let e = poll(now) { handle e }` -- decodes frames, runs timers;
///   3. move stream bytes: read `receiveBuffer(id)` and consume; `send(id, bytes)` within `sendAllowance(id)`;
///   4. `produce()` -- writes pending control frames (ACCEPT, WINDOW, FIN, RESET, PING, PONG...) into `tx`;
///   5. hand `tx.readable` to TLS and `tx.consume(n)`;
///   6. `nextDeadline` joins the poll() timeout.
///
/// Memory is fixed: `rx`, `tx`, and one pool buffer per stream; the stream
/// table is capped by `limits.maxStreams`. Control frames that do not fit in
/// `tx` stay as per-stream flags (never a growing queue); data only enters
/// `tx` while `MuxLimits.controlReserve` bytes stay free.
///
/// Failures are sticky: the first protocol violation is returned once as
/// `.failed` and after it `poll` returns nil; the owner closes the tunnel.
public final class Mux {
    public enum Side {
        /// Agents open odd stream ids.
        case agent
        /// The relay opens even stream ids.
        case relay
    }

    public let side: Side
    public let limits: MuxLimits
    public let pool: BufferPool
    /// Plaintext received from the peer, not yet decoded.
    public let rx: ByteQueue
    /// Encoded frames for the peer.
    public let tx: ByteQueue

    var streams: [UInt32: MuxStream] = [:]
    var nextLocalID: UInt32
    var highestPeerID: UInt32 = 0
    var failure: MuxFailure? = nil
    var failureReported = false
    /// Hello frames are allowed until the owner calls `helloFinished()`.
    public private(set) var helloDone = false

    var lastReceived: Instant
    var nextPing: Instant
    /// The peer announced it pings every this many ms (KEEPALIVE): we do not ping it
    /// (past the first round-trip probe) and it is dead after two missed PINGs.
    public private(set) var peerHeartbeatMs: Int64? = nil
    /// Our KEEPALIVE still has to be written.
    var keepalivePending = false
    var pingOutstanding: UInt64? = nil
    var pingSentAt: Instant = .zero
    var pingCounter: UInt64 = 0
    var pongPending: UInt64? = nil
    /// A PING to write at the next `produce()`.
    var pingPending: UInt64? = nil
    var goawayPending: (Reason, UInt32)? = nil
    /// RESET frames that did not fit in `tx` yet (bounded by maxStreams).
    var resetsPending: [(UInt32, Reason)] = []
    /// Our OPENs not yet written, oldest first: ids must reach the peer in increasing order.
    var opensPending: [UInt32] = []
    /// Streams that may have a frame to write (ACCEPT, WINDOW, FIN): `produce()` visits
    /// these, not every stream, so an idle stream costs nothing per turn.
    var attention: [MuxStream] = []
    var attentionVisiting: [MuxStream] = []
    /// Streams we opened, oldest first (all share one open timeout): the first still
    /// `.opening` is the next timer. Entries of streams no longer opening are skipped.
    var openingOrder: [MuxStream] = []
    var openingHead = 0
    /// Streams that received DATA since they last idled: `timers` looks at them every
    /// `MuxLimits.windowIdleMs` (not every turn) and shrinks the idle ones.
    var idleWatch: [MuxStream] = []
    var idleCheckAt: Instant? = nil
    public private(set) var goingAway = false
    public private(set) var peerGoingAway = false

    // Counters for logs and metrics.
    public private(set) var bytesIn: UInt64 = 0
    public private(set) var bytesOut: UInt64 = 0
    public private(set) var unknownFrames: UInt64 = 0
    public private(set) var lastRttMs: Int64 = -1

    /// With `cache`, the frame queues give their storage back while empty (`park()`).
    public init(side: Side, limits: MuxLimits, pool: BufferPool, now: Instant, cache: BlockCache? = nil) {
        self.side = side
        self.limits = limits
        self.pool = pool
        rx = ByteQueue(capacity: limits.rxCapacity, cache: cache)
        tx = ByteQueue(capacity: limits.txCapacity, cache: cache)
        nextLocalID = side == .agent ? 1 : 2
        lastReceived = now
        nextPing = now.adding(ms: limits.heartbeatMs)
    }

    deinit {
        for (_, s) in streams { pool.give(s.receive) }
    }

    public var streamCount: Int { streams.count }

    /// Gives the frame queues' storage back to the cache while they are empty (taken
    /// again when frames arrive or are written). True if both are parked.
    @discardableResult
    public func park() -> Bool { rx.park() && tx.park() }
    public var isFailed: Bool { failure != nil }

    /// Called by the owner once the hello exchange is over; from then on only mux frames are allowed.
    public func helloFinished(now: Instant) {
        helloDone = true
        lastReceived = now
        keepalivePending = limits.announceHeartbeat
        // A first PING at once measures the round trip, which sizes stream credit.
        startPing(now: now)
    }

    // MARK: - Input

    /// The next event: a timer firing, or the next complete frame in `rx`. nil when
    /// neither is due.
    public func poll(now: Instant) -> MuxEvent? {
        if let f = failure {
            if failureReported { return nil }
            failureReported = true
            return .failed(f)
        }
        // Frames already received come first: a peer whose frames arrived in time is
        // not declared dead because this loop was late to read them.
        while true {
            let header: FrameHeader?
            do throws(WireError) {
                header = try FrameCodec.decodeHeader(rx.readable)
            } catch {
                if case .oversized(let n) = error { return fail(.oversized(n)) }
                return fail(.malformed(0))
            }
            guard let h = header, rx.count >= WireProtocol.headerSize + h.length else { return timers(now: now) }
            lastReceived = now
            let payload = UnsafeRawBufferPointer(rebasing: rx.readable[WireProtocol.headerSize..<(WireProtocol.headerSize + h.length)])
            let event = handle(h, payload, now: now)
            rx.consume(WireProtocol.headerSize + h.length)
            if let e = event { return e }
            if failure != nil { return poll(now: now) }
        }
    }

    func fail(_ f: MuxFailure) -> MuxEvent? {
        if failure == nil { failure = f }
        if failureReported { return nil }
        failureReported = true
        return .failed(failure!)
    }

    func timers(now: Instant) -> MuxEvent? {
        if helloDone {
            if now.since(lastReceived) >= deadAfterMs { return fail(.peerTimeout) }
            if pingOutstanding != nil && now.since(pingSentAt) >= limits.pongTimeoutMs { return fail(.peerTimeout) }
            if peerHeartbeatMs == nil && now >= nextPing { startPing(now: now) }
        }
        if let t = idleCheckAt, now >= t { shrinkIdle(now: now) }
        if let s = firstOpening(), now.since(s.openedAt) >= limits.openTimeoutMs {
            remove(s.id)
            queueReset(s.id, .timeout)
            return .refused(s.id, .timeout)
        }
        return nil
    }

    /// The oldest stream we opened that is still waiting for ACCEPT (drops the others
    /// from the front of `openingOrder`).
    func firstOpening() -> MuxStream? {
        while openingHead < openingOrder.count {
            let s = openingOrder[openingHead]
            if !s.gone && s.phase == .opening { return s }
            openingHead += 1
        }
        openingOrder.removeAll(keepingCapacity: true)
        openingHead = 0
        return nil
    }

    /// The earliest time `poll` has timer work to do.
    public var nextDeadline: Instant? {
        if failure != nil { return nil }
        var d: Instant? = nil
        if helloDone {
            d = lastReceived.adding(ms: deadAfterMs)
            if peerHeartbeatMs == nil { d = min(d!, nextPing) }
            if pingOutstanding != nil { d = min(d!, pingSentAt.adding(ms: limits.pongTimeoutMs)) }
        }
        if let t = idleCheckAt, d == nil || t < d! { d = t }
        var i = openingHead
        while i < openingOrder.count {
            let s = openingOrder[i]
            i += 1
            if s.gone || s.phase != .opening { continue }
            let t = s.openedAt.adding(ms: limits.openTimeoutMs)
            if d == nil || t < d! { d = t }
            break
        }
        return d
    }

    func handle(_ h: FrameHeader, _ p: UnsafeRawBufferPointer, now: Instant) -> MuxEvent? {
        guard let type = h.type else {
            unknownFrames += 1
            return nil
        }
        switch type {
        case .challenge, .auth, .welcome, .denied:
            guard !helloDone, h.stream == 0 else { return fail(.unexpected(type.rawValue)) }
            return .hello(type, Array(p))
        default:
            guard helloDone else { return fail(.unexpected(type.rawValue)) }
        }
        switch type {
        case .ping, .pong, .goaway, .keepalive, .resume:
            guard h.stream == 0 else { return fail(.malformed(type.rawValue)) }
        default:
            guard h.stream != 0 else { return fail(.malformed(type.rawValue)) }
        }
        do throws(WireError) {
            switch type {
            case .challenge, .auth, .welcome, .denied:
                return nil  // handled above
            case .ping:
                pongPending = try ControlPayload.decodePing(p, .ping)
                return nil
            case .pong:
                let v = try ControlPayload.decodePing(p, .pong)
                if let o = pingOutstanding, o == v {
                    pingOutstanding = nil
                    lastRttMs = now.since(pingSentAt)
                    // The credit target follows the round trip: once per heartbeat, every
                    // open stream is looked at again.
                    for (_, s) in streams where s.phase == .open { notice(s) }
                    return .pong(rttMs: lastRttMs)
                }
                return nil
            case .keepalive:
                let ms = Int64(try ControlPayload.decodeU32(p, .keepalive))
                peerHeartbeatMs = min(max(ms, MuxLimits.keepaliveMinMs), MuxLimits.keepaliveMaxMs)
                return nil
            case .resume:
                guard side == .agent else { return fail(.unexpected(type.rawValue)) }
                return .resume(Array(p))
            case .goaway:
                let (r, ms) = try ControlPayload.decodeGoaway(p)
                peerGoingAway = true
                return .goaway(r, retryAfterMs: ms)
            case .open:
                return try handleOpen(h.stream, p, now: now)
            case .accept:
                let w = try ControlPayload.decodeU32(p, .accept)
                guard let s = streams[h.stream] else { return nil }  // we already gave up on it
                guard s.phase == .opening else { return fail(.unexpected(type.rawValue)) }
                s.phase = .open
                s.sendCredit = Mux.credit(w)
                if s.finRequested { notice(s) }   // its FIN waited for the ACCEPT
                return .accepted(h.stream)
            case .refuse:
                let r = try ControlPayload.decodeReason(p, .refuse)
                guard let s = streams[h.stream] else { return nil }
                guard s.phase == .opening else { return fail(.unexpected(type.rawValue)) }
                remove(h.stream)
                return .refused(h.stream, r)
            case .data:
                guard p.count > 0 else { return fail(.malformed(type.rawValue)) }
                guard let s = streams[h.stream] else { return nil }  // reset by us; data was in flight
                guard s.phase == .open, !s.finReceived else { return fail(.unexpected(type.rawValue)) }
                guard p.count <= s.recvCredit else { return fail(.creditViolation(h.stream)) }
                tune(s, now: now)
                s.recvCredit -= p.count
                let n = s.receive.append(p)
                precondition(n == p.count, "credit invariant")
                s.countAfterData = s.receive.count
                s.lastDataAt = now
                if !s.watched {
                    s.watched = true
                    idleWatch.append(s)
                    if idleCheckAt == nil { idleCheckAt = now.adding(ms: MuxLimits.windowIdleMs) }
                }
                notice(s)   // credit goes back once the owner has read
                bytesIn += UInt64(n)
                return .data(h.stream)
            case .fin:
                guard p.count == 0 else { return fail(.malformed(type.rawValue)) }
                guard let s = streams[h.stream] else { return nil }
                guard s.phase == .open, !s.finReceived else { return fail(.unexpected(type.rawValue)) }
                s.finReceived = true
                return .finished(h.stream)
            case .reset:
                let r = try ControlPayload.decodeReason(p, .reset)
                guard streams[h.stream] != nil else { return nil }
                remove(h.stream)
                return .reset(h.stream, r)
            case .window:
                let inc = try ControlPayload.decodeU32(p, .window)
                guard inc > 0 else { return fail(.malformed(type.rawValue)) }
                guard let s = streams[h.stream], s.phase == .open else { return nil }
                let total = Int64(s.sendCredit) + Int64(inc)
                guard total <= Int64(Int32.max) else { return fail(.creditViolation(h.stream)) }
                s.sendCredit = Int(total)
                return .credit(h.stream)
            }
        } catch {
            if case .malformed(let t) = error { return fail(.malformed(t.rawValue)) }
            return fail(.malformed(type.rawValue))
        }
    }

    func handleOpen(_ id: UInt32, _ p: UnsafeRawBufferPointer, now: Instant) throws(WireError) -> MuxEvent? {
        let open = try OpenPayload.decode(p)
        let peerParityOdd = side == .relay
        guard (id % 2 == 1) == peerParityOdd, id > highestPeerID else { return fail(.badStreamID(id)) }
        highestPeerID = id
        if goingAway {
            queueRefuse(id, .goingAway)
            return nil
        }
        guard streams.count < limits.maxStreams, let buf = pool.take() else {
            queueRefuse(id, .noResources)
            return nil
        }
        let s = MuxStream(id: id, phase: .pendingAccept, receive: buf, sendCredit: Mux.credit(open.window), recvCredit: 0, now: now)
        streams[id] = s
        return .opened(id, open)
    }

    /// A window from the peer (u32 on the wire) as send credit. Credit never exceeds
    /// Int32.max, so it fits `Int` on 32-bit targets (armv7), where `Int(UInt32)` of a
    /// larger value traps; a sender cannot use more than a buffer's worth anyway.
    static func credit(_ window: UInt32) -> Int { Int(min(window, UInt32(Int32.max))) }

    // MARK: - Commands

    /// Opens a stream. nil if the stream limit or the buffer pool is exhausted, or
    /// either side is going away.
    public func open(_ target: OpenPayload.Target, origin: [UInt8] = [UInt8](repeating: 0, count: 20),
                     caller: PeerAddress = .none, now: Instant) -> UInt32? {
        guard helloDone, failure == nil, !goingAway, !peerGoingAway, streams.count < limits.maxStreams,
              let buf = pool.take() else { return nil }
        let id = nextLocalID
        nextLocalID &+= 2
        let s = MuxStream(id: id, phase: .opening, receive: buf, sendCredit: 0, recvCredit: 0, now: now)
        s.recvCredit = creditTarget(s)
        s.openPending = OpenPayload(target: target, window: UInt32(s.recvCredit), origin: origin, caller: caller).encode()
        streams[id] = s
        opensPending.append(id)
        openingOrder.append(s)
        writeOpens()
        return id
    }

    /// Accepts a stream the peer opened (after `.opened`).
    public func accept(_ id: UInt32) {
        guard let s = streams[id], s.phase == .pendingAccept else { return }
        s.phase = .open
        s.recvCredit = creditTarget(s)
        s.acceptPending = true
        writeAccept(s)
        if s.acceptPending { notice(s) }
    }

    /// Refuses a stream the peer opened; it is gone.
    public func refuse(_ id: UInt32, _ reason: Reason) {
        guard let s = streams[id], s.phase == .pendingAccept else { return }
        remove(id)
        queueRefuse(id, reason)
    }

    /// Resets a stream in any phase; it is gone (its buffer returns to the pool).
    public func reset(_ id: UInt32, _ reason: Reason) {
        guard let s = streams[id] else { return }
        if s.phase == .pendingAccept {
            remove(id)
            queueRefuse(id, reason)
            return
        }
        let unsent = s.openPending != nil
        remove(id)
        if !unsent { queueReset(id, reason) }
    }

    /// Ends our direction of the stream after everything sent so far.
    /// On a stream we opened that is not accepted yet, the FIN waits for the ACCEPT.
    public func finish(_ id: UInt32) {
        guard let s = streams[id], s.phase != .pendingAccept, !s.finRequested else { return }
        s.finRequested = true
        writeFin(s)
        if !s.finSent { notice(s) }
    }

    /// Forgets a stream whose both directions ended (FIN sent and received); if
    /// they did not, the stream is reset with `reason` instead.
    public func release(_ id: UInt32, otherwise reason: Reason = .closed) {
        guard let s = streams[id] else { return }
        if s.finSent && s.finReceived {
            remove(id)
        } else {
            reset(id, reason)
        }
    }

    /// How many payload bytes `send` would take now for this stream (credit, and
    /// room in `tx` for the frames with their headers).
    public func sendAllowance(_ id: UInt32) -> Int {
        guard let s = streams[id], s.phase == .open, !s.acceptPending, !s.finRequested, failure == nil else { return 0 }
        let room = min(tx.freeSpace - MuxLimits.controlReserve, MuxLimits.dataHighWater - tx.count)
        if room <= WireProtocol.headerSize { return 0 }
        let frame = WireProtocol.headerSize + WireProtocol.maxPayload
        let full = room / frame
        let rest = room - full * frame
        let payload = full * WireProtocol.maxPayload + max(0, rest - WireProtocol.headerSize)
        return min(s.sendCredit, payload)
    }

    /// Queues DATA frames with as much of `bytes` as credit and `tx` allow; returns
    /// the number of bytes taken.
    @discardableResult
    public func send(_ id: UInt32, _ bytes: UnsafeRawBufferPointer) -> Int {
        guard let s = streams[id] else { return 0 }
        var taken = 0
        while taken < bytes.count {
            let allowance = sendAllowance(id)
            if allowance <= 0 { break }
            let n = min(allowance, bytes.count - taken, WireProtocol.maxPayload)
            FrameCodec.append(.data, stream: id, payload: UnsafeRawBufferPointer(rebasing: bytes[taken..<(taken + n)]), to: tx)
            s.sendCredit -= n
            taken += n
        }
        bytesOut += UInt64(taken)
        return taken
    }

    /// The stream's receive buffer: the owner reads and consumes from it; the space it
    /// frees becomes credit for the peer at the next `produce()`.
    public func receiveBuffer(_ id: UInt32) -> ByteQueue? { streams[id]?.receive }

    public func info(_ id: UInt32) -> StreamInfo? {
        guard let s = streams[id] else { return nil }
        return StreamInfo(isOpen: s.phase == .open, sendCredit: s.sendCredit, finSent: s.finSent,
                          finReceived: s.finReceived, buffered: s.receive.count)
    }

    public func exists(_ id: UInt32) -> Bool { streams[id] != nil }

    /// The ids of all streams (for teardown and sweeps).
    public var streamIDs: [UInt32] { Array(streams.keys) }

    /// Sends a hello-phase frame (before `helloFinished`).
    public func sendHello(_ type: FrameType, _ payload: [UInt8]) -> Bool {
        guard !helloDone, payload.count <= WireProtocol.maxPayload,
              tx.freeSpace >= WireProtocol.headerSize + payload.count else { return false }
        FrameCodec.append(type, stream: 0, payload: payload, to: tx)
        return true
    }

    /// Sends a RESUME frame now (relay, after the hello) if `tx` has room; false if not.
    public func sendResume(_ payload: [UInt8]) -> Bool {
        guard helloDone, failure == nil, payload.count <= WireProtocol.maxPayload, fits(payload.count) else { return false }
        FrameCodec.append(.resume, stream: 0, payload: payload, to: tx)
        return true
    }

    /// Tells the peer we are going away; new opens are refused from now on.
    public func goaway(_ reason: Reason, retryAfterMs: UInt32) {
        goingAway = true
        goawayPending = (reason, retryAfterMs)
        produce()
    }

    /// Writes every pending control frame that fits into `tx`. Call before draining `tx`.
    public func produce() {
        guard failure == nil else { return }
        if helloDone {
            if let v = pongPending, fits(8) {
                FrameCodec.append(.pong, stream: 0, payload: ControlPayload.ping(v), to: tx)
                pongPending = nil
            }
            if keepalivePending, fits(4) {
                let ms = min(max(limits.heartbeatMs, MuxLimits.keepaliveMinMs), MuxLimits.keepaliveMaxMs)
                FrameCodec.append(.keepalive, stream: 0, payload: ControlPayload.window(UInt32(ms)), to: tx)
                keepalivePending = false
            }
            if let v = pingPending, fits(8) {
                FrameCodec.append(.ping, stream: 0, payload: ControlPayload.ping(v), to: tx)
                pingPending = nil
            }
            if let (r, ms) = goawayPending, fits(5) {
                FrameCodec.append(.goaway, stream: 0, payload: ControlPayload.goaway(r, retryAfterMs: ms), to: tx)
                goawayPending = nil
            }
        }
        while let (id, r) = resetsPending.first, fits(1) {
            FrameCodec.append(.reset, stream: id, payload: ControlPayload.reason(r), to: tx)
            resetsPending.removeFirst()
        }
        writeOpens()
        // Only streams with something that may be due: an idle stream is not visited.
        swap(&attention, &attentionVisiting)
        defer { attentionVisiting.removeAll(keepingCapacity: true) }
        for s in attentionVisiting {
            s.noticed = false
            if s.gone { continue }
            if s.acceptPending { writeAccept(s) }
            var more = s.acceptPending
            if s.phase == .open && !s.finReceived && !s.acceptPending {
                // Credit is topped up once a quarter of the window has been used and
                // freed, not after every small message: a request/response stream then
                // sends no WINDOW frames at all (each one would cost a record and a
                // wake-up on every hop).
                let target = creditTarget(s)
                var grantable = min(s.receive.freeSpace, target) - s.recvCredit
                let threshold = max(1, target / 4)
                if grantable >= threshold, fits(4) {
                    FrameCodec.append(.window, stream: s.id, payload: ControlPayload.window(UInt32(grantable)), to: tx)
                    s.recvCredit += grantable
                    grantable = 0
                }
                // Looked at again while the owner still has bytes to read (reading frees
                // credit) or a grant did not fit; otherwise new DATA brings it back.
                more = more || !s.receive.isEmpty || grantable >= threshold
            }
            if s.receive.isEmpty && !s.acceptPending {
                // A window that shrank (idle) gives its memory back once the credit
                // already granted fits the smaller one ...
                if s.receive.capacity > s.window && s.recvCredit <= s.window { pool.shrink(s.receive, to: s.window) }
                // ... and an idle stream (no DATA since the last look), or one the peer
                // finished, holds no buffer memory while it is empty.
                if !s.watched || s.finReceived { s.receive.park() }
            }
            if s.finRequested && !s.finSent {
                writeFin(s)
                more = more || (!s.finSent && s.phase == .open)
            }
            if more { notice(s) }
        }
    }

    /// Sends a heartbeat now (e.g. to measure the round trip); the answer comes as `.pong`.
    public func ping(now: Instant) {
        guard helloDone else { return }
        startPing(now: now)
        produce()
    }

    func startPing(now: Instant) {
        pingCounter &+= 1
        pingPending = pingCounter
        pingOutstanding = pingCounter
        pingSentAt = now
        nextPing = now.adding(ms: limits.heartbeatMs)
    }

    // MARK: - Internals

    /// Silence after which the peer is dead: two of its announced PINGs (KEEPALIVE),
    /// else two of our heartbeats.
    var deadAfterMs: Int64 {
        if let p = peerHeartbeatMs { return 2 * p }
        return limits.deadAfterMs
    }

    func fits(_ payload: Int) -> Bool { tx.freeSpace >= WireProtocol.headerSize + payload }

    /// Credit a stream extends at most (see `MuxLimits.minCredit`). Before the first
    /// round trip is measured, only `minCredit`: a peer cannot make a relay fill
    /// whole buffers before it knows how much the path needs.
    func creditTarget(_ s: MuxStream) -> Int {
        min(s.window, s.receive.capacity, rttCredit)
    }

    /// Credit the round trip calls for (see `MuxLimits.minCredit`).
    var rttCredit: Int {
        if lastRttMs < 0 { return MuxLimits.minCredit }
        let ms = Int(min(lastRttMs + 1, Int64(Int32.max) / Int64(MuxLimits.creditBytesPerRttMs)))
        return max(MuxLimits.minCredit, ms * MuxLimits.creditBytesPerRttMs)
    }

    /// Window auto-tuning, at each DATA before it is appended (in the manner of Linux's
    /// tcp_rcv_space_adjust): counts the bytes the owner read since the last DATA, and
    /// once per round trip compares them with the window. If the reader took at least
    /// 3/4 of the window in that round trip, the window is what limits the stream: it
    /// doubles (up to the pool's `maxBufferSize`, while the pool's budget has room, and
    /// never past what the round trip calls for: on a fast local hop a bulk stream keeps
    /// little in flight). Otherwise the path's rate (or the reader) limits it, and a
    /// window above 2 x what was read comes down to 1.5 x: credit is topped up when a
    /// quarter of it is free, so 4/3 of the bytes in flight keep the path full, and the
    /// rest would only queue ahead of other streams. A stream that reads slowly does not
    /// grow: growth follows what is consumed.
    func tune(_ s: MuxStream, now: Instant) {
        s.copied += max(0, s.countAfterData - s.receive.count)
        guard lastRttMs >= 0 else { return }
        guard let start = s.sampleAt else {
            s.sampleAt = now
            s.copied = 0
            return
        }
        if now < start {   // the round trip after a change: credit takes that long to act
            s.copied = 0
            return
        }
        let rtt = max(lastRttMs, 1)
        let elapsed = now.since(start)
        // A reader that took 3/4 of the window in less than a round trip is limited by
        // the window already: no need to wait for the round trip to end.
        let early = 4 * s.copied >= 3 * s.window
        if elapsed < rtt && !early { return }
        let perRtt = elapsed < rtt ? s.copied : Int(min(Int64(s.copied) * rtt / elapsed, Int64(Int32.max / 4)))
        s.sampleAt = now
        s.copied = 0
        if 4 * perRtt >= 3 * s.window {
            guard s.window < pool.maxBufferSize, rttCredit > s.window else { return }
            let next = min(pool.maxBufferSize, 2 * s.window, rttCredit)
            if s.receive.capacity >= next || pool.grow(s.receive, to: next) {
                s.window = next
                s.sampleAt = now.adding(ms: rtt)
                notice(s)
            }
        } else {
            // The buffer follows once it is empty and the credit out fits (produce()).
            let next = max(pool.bufferSize, (perRtt + perRtt / 2 + 16383) & ~16383)
            if 2 * perRtt < s.window && next < s.window {
                s.window = next
                s.sampleAt = now.adding(ms: rtt)
            }
        }
    }

    /// Streams without DATA for `windowIdleMs` go back to the base window; an empty
    /// buffer gives its memory back (parked until data arrives again).
    func shrinkIdle(now: Instant) {
        var kept = 0
        var next: Instant? = nil
        var i = 0
        while i < idleWatch.count {
            let s = idleWatch[i]
            i += 1
            if s.gone { continue }
            if now.since(s.lastDataAt) >= MuxLimits.windowIdleMs {
                s.watched = false
                s.sampleAt = nil
                s.window = pool.bufferSize
                // produce() shrinks the buffer once the owner has read it and the credit
                // the peer holds fits the base window, and parks it while empty.
                notice(s)
            } else {
                idleWatch[kept] = s
                kept += 1
                let t = s.lastDataAt.adding(ms: MuxLimits.windowIdleMs)
                if next == nil || t < next! { next = t }
            }
        }
        idleWatch.removeLast(idleWatch.count - kept)
        // At the earliest idle time, but not more often than every quarter of it.
        idleCheckAt = next.map { max($0, now.adding(ms: MuxLimits.windowIdleMs / 4)) }
    }

    /// Writes pending OPENs in the order they were made, stopping at the first that does not fit.
    func writeOpens() {
        while let id = opensPending.first {
            guard let s = streams[id], let p = s.openPending else {
                opensPending.removeFirst()  // reset before it was sent
                continue
            }
            guard fits(p.count) else { return }
            FrameCodec.append(.open, stream: s.id, payload: p, to: tx)
            s.openPending = nil
            opensPending.removeFirst()
        }
    }

    func writeAccept(_ s: MuxStream) {
        guard s.acceptPending, fits(4) else { return }
        FrameCodec.append(.accept, stream: s.id, payload: ControlPayload.accept(window: UInt32(s.recvCredit)), to: tx)
        s.acceptPending = false
    }

    func writeFin(_ s: MuxStream) {
        guard s.finRequested, !s.finSent, s.phase == .open, !s.acceptPending, fits(0) else { return }
        FrameCodec.append(.fin, stream: s.id, payload: [], to: tx)
        s.finSent = true
    }

    func queueRefuse(_ id: UInt32, _ r: Reason) {
        if fits(1) {
            FrameCodec.append(.refuse, stream: id, payload: ControlPayload.reason(r), to: tx)
        } else if resetsPending.count < limits.maxStreams * 2 {
            // A REFUSE that does not fit goes out as RESET later: same effect for the opener.
            resetsPending.append((id, r))
        }
    }

    func queueReset(_ id: UInt32, _ r: Reason) {
        if resetsPending.isEmpty && fits(1) {
            FrameCodec.append(.reset, stream: id, payload: ControlPayload.reason(r), to: tx)
        } else if resetsPending.count < limits.maxStreams * 2 {
            resetsPending.append((id, r))
        }
    }

    func remove(_ id: UInt32) {
        guard let s = streams.removeValue(forKey: id) else { return }
        s.gone = true
        pool.give(s.receive)
    }

    /// Puts a stream on the `attention` list (once).
    func notice(_ s: MuxStream) {
        if s.noticed || s.gone { return }
        s.noticed = true
        attention.append(s)
    }

    /// Streams `produce()` will look at (an idle stream is not among them).
    public var streamsNeedingWork: Int { attention.count }
}
