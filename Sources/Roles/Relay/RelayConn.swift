import Crypto
import Loop
import Mux
import Wire

/// One agent's connection to the relay: TLS, the hello, then a multiplexed
/// tunnel whose streams are joined to streams of other tunnels.
///
///     tls --done--> preamble --raw or Upgrade--> hello --AUTH admitted--> ready
///                      |                           |
///                      +--plain HTTP: 426--+       +--denied: DENIED--+
///                                          v                          v
///                                          closing --flushed or deadline--> closed
///
/// A failure, EOF or the deadline in tls, preamble or hello closes at once; so does
/// `RelayCore.close` in any phase (takeover, drain, a protocol error).
final class RelayConn {
    /// Each phase carries what only it needs. TLS, preamble and hello share the deadline
    /// set at accept (`Limits.relayHandshakeTimeoutMs`); closing has its own; a ready
    /// tunnel's timers are its multiplexer's.
    enum Phase {
        /// The TLS handshake.
        case tls(deadline: Instant)
        /// Reading the agent's first bytes: the raw preamble or an HTTP Upgrade request.
        /// `resumed`: the resume credential the TLS handshake used (psk_ke), if any.
        case preamble(deadline: Instant, resumed: ResumeClaim?)
        /// CHALLENGE sent with `nonce`; the AUTH must answer it (unsigned only if `resumed`,
        /// and then for that credential's key and role).
        case hello(nonce: [UInt8], resumed: ResumeClaim?, deadline: Instant)
        case ready
        /// Sending DENIED (or the last frames); closed once flushed or at the deadline.
        case closing(deadline: Instant)

        /// TLS, preamble and hello: the connection holds a place among the pending handshakes.
        var isPending: Bool {
            switch self {
            case .tls, .preamble, .hello: return true
            case .ready, .closing: return false
            }
        }

        var isTLS: Bool { if case .tls = self { return true } else { return false } }
        var isHello: Bool { if case .hello = self { return true } else { return false } }
        var isReady: Bool { if case .ready = self { return true } else { return false } }
        var isClosing: Bool { if case .closing = self { return true } else { return false } }

        /// When this phase gives up (nil: ready).
        var deadline: Instant? {
            switch self {
            case .tls(let d), .preamble(let d, _), .hello(_, _, let d), .closing(let d): return d
            case .ready: return nil
            }
        }
    }

    let serial: UInt64
    let link: TLSLink
    let peer: SocketAddress
    let mux: Mux
    /// Leaving the pending phases, by whatever path (admitted, denied, answered
    /// with 426, closed), gives back the place among the pending handshakes: the
    /// count cannot drift from the phases.
    var phase: Phase {
        didSet { if !phase.isPending { pendingTicket?.leave() } }
    }
    /// The place this connection holds among the pending handshakes (global and per source).
    let pendingTicket: Gate.Ticket?
    /// TLS + hello must finish by then; while closing, when to give up flushing.
    var deadline: Instant? { phase.deadline }
    /// When the admitted agent gets its next resume credential (nil: it takes none).
    var resumeRefreshAt: Instant? = nil
    var id: AgentID? = nil
    var role: AgentRole? = nil
    var hostnames: [String] = []
    /// What this tunnel's key holds in all (set when admitted).
    var share: KeyShare? = nil
    /// Streams of this tunnel joined to another tunnel, by this tunnel's stream id.
    var joins: [UInt32: Join] = [:]
    /// Streams of this (device's) tunnel carrying public connections routed by SNI.
    var sniStreams: [UInt32: SniConn] = [:]
    /// Something may have changed: the tunnel is queued to be driven this turn.
    var dirty = true {
        didSet { if dirty && !oldValue { work.items.append(self) } }
    }
    let work: WorkQueue
    /// Driven this turn (in `RelayCore.touched`): its poller interest may have changed.
    var touched = false
    /// The deadline it has in the relay's timer heap (ms), if any.
    var timerAt: Int64? = nil
    var closeReason: String? = nil
    let connectedAt: Instant

    init(serial: UInt64, link: TLSLink, peer: SocketAddress, mux: Mux, pendingTicket: Gate.Ticket?, work: WorkQueue,
         now: Instant) {
        self.serial = serial
        self.work = work
        self.pendingTicket = pendingTicket
        self.link = link
        self.peer = peer
        self.mux = mux
        self.connectedAt = now
        phase = .tls(deadline: now.adding(ms: Limits.relayHandshakeTimeoutMs))
        work.items.append(self)  // new: driven in the turn it was accepted
    }

    var isPending: Bool { phase.isPending }
    /// The agent came through an HTTP Upgrade (a proxy or load balancer in front).
    var upgraded = false

    /// "id=... role=..." or "peer=..." for logs.
    var label: String {
        if let id = id { return "id=" + id.text + " role=" + (role?.text ?? "-") }
        return "peer=" + peer.text
    }
}

/// A stream from a forward joined to a stream to a device. The relay owns one
/// fixed receive buffer per leg (the muxes' pool buffers) and forwards credit
/// as it frees room: hop-by-hop flow control, the bytes stay opaque.
final class Join {
    let stats: RelayStats
    let fwd: RelayConn
    let fwdStream: UInt32
    let dev: RelayConn
    let devStream: UInt32
    /// The forward's key: this join counts among its streams until detached.
    let share: KeyShare?
    var accepted = false
    var detached = false
    var fwdFinPassed = false
    var devFinPassed = false
    var bytesUp: UInt64 = 0     // forward -> device
    var bytesDown: UInt64 = 0   // device -> forward

    init(fwd: RelayConn, fwdStream: UInt32, dev: RelayConn, devStream: UInt32, stats: RelayStats) {
        self.stats = stats
        share = fwd.share
        share?.streams += 1
        self.fwd = fwd
        self.fwdStream = fwdStream
        self.dev = dev
        self.devStream = devStream
    }

    /// Whether `move` could do anything: bytes or a FIN waiting on a leg, or both
    /// directions done. Idle joins are skipped.
    var needsMove: Bool {
        guard accepted else { return false }
        if fwd.mux.receiveBuffer(fwdStream)?.isEmpty == false || dev.mux.receiveBuffer(devStream)?.isEmpty == false {
            return true
        }
        if fwdFinPassed && devFinPassed { return true }
        if !fwdFinPassed && fwd.mux.info(fwdStream)?.finReceived == true { return true }
        if !devFinPassed && dev.mux.info(devStream)?.finReceived == true { return true }
        return false
    }

    /// Little buffered on either leg (less than one record): moved before bulk joins.
    var isLight: Bool {
        (fwd.mux.receiveBuffer(fwdStream)?.count ?? 0) + (dev.mux.receiveBuffer(devStream)?.count ?? 0) < 4096
    }

    func detach() {
        if !detached {
            detached = true
            share?.streams -= 1
        }
        fwd.joins.removeValue(forKey: fwdStream)
        dev.joins.removeValue(forKey: devStream)
    }

    /// Moves what both legs can take. Returns true if anything moved.
    func move() -> Bool {
        guard accepted else { return false }
        var moved = false
        if pass(from: fwd, fwdStream, to: dev, devStream, finPassed: &fwdFinPassed, counter: &bytesUp, total: &stats.bytesUp) {
            moved = true
        }
        if pass(from: dev, devStream, to: fwd, fwdStream, finPassed: &devFinPassed, counter: &bytesDown, total: &stats.bytesDown) {
            moved = true
        }
        return moved
    }

    private func pass(from a: RelayConn, _ aID: UInt32, to b: RelayConn, _ bID: UInt32, finPassed: inout Bool,
                      counter: inout UInt64, total: inout UInt64) -> Bool {
        guard let buf = a.mux.receiveBuffer(aID), b.mux.exists(bID) else { return false }
        var moved = false
        if !buf.isEmpty {
            let n = b.mux.send(bID, buf.readable)
            if n > 0 {
                buf.consume(n)
                counter += UInt64(n)
                total += UInt64(n)
                moved = true
            }
        }
        if buf.isEmpty && !finPassed, let info = a.mux.info(aID), info.finReceived {
            b.mux.finish(bID)
            finPassed = true
            moved = true
        }
        return moved
    }

    /// Both directions ended on both legs (FINs written): forget the streams.
    func finishedBothWays() -> Bool {
        guard fwdFinPassed && devFinPassed, let f = fwd.mux.info(fwdStream), let d = dev.mux.info(devStream) else { return false }
        return f.finSent && f.finReceived && d.finSent && d.finReceived
    }
}
