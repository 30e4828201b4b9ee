import Crypto
import Loop
import Mux
import Wire

/// The relay's protocol, without sockets, poller or clock: every tunnel's TLS ->
/// preamble -> hello -> ready phase machine (RelayHandshake.swift), the admission
/// decision applied (RelayAdmission.swift), a forward's streams joined to a device's
/// (RelayStreams.swift), public connections routed by SNI hostname (RelaySNI.swift),
/// closing, takeover and drain (RelayDrain.swift), the counters (Metrics.swift takes a
/// snapshot). The driver (`Relay`, RelayLoop.swift) owns the listeners, the epoll
/// registrations, the signals and the clock; tests (Tests/RolesTests/RelayCore*.swift)
/// drive it in memory with a simulated clock.
///
/// Calling order, one turn of the driver:
///
///     accept(stream, peer, now)      -- a new agent connection (nil: dropped at a limit)
///     acceptSni(stream, peer, now)   -- a new public connection on the SNI listener
///     connReady / sniReady           -- readiness: the stream is read into the session's
///                                       fixed inbound queue, the connection queued
///     turn(now, wallSeconds)         -- every state change: queued tunnels driven, timers,
///                                       joins, SNI, drain; writes go out through each
///                                       connection's `ByteStream`
///     touched, sniConns              -- what to re-register with the poller (interest)
///     nextDeadline(now)              -- when to call `turn` again at the latest
///     stopped                        -- drained: the driver closes its listeners and exits
///
/// Bytes reach a peer only through its `ByteStream` (a socket in the process, an
/// in-memory pipe in tests), so the core's writes keep today's order and flow control:
/// a TLS queue that fills is written out at once, not after the turn.
final class RelayCore {
    let rng: Rng
    let key: PrivateKey
    let pinDigest: [UInt8]
    let tlsConfig: TLSConfig
    /// Resume credentials: the keys that seal and open them.
    let resumeKeys: ResumeKeyStore
    let registry: Registry
    var enrollSecret: [UInt8]?
    var clientCA: Certificate?
    let openEnrollment: Bool
    let drainTimeoutMs: Int64
    let pool: BufferPool
    /// Record buffers and frame queues of tunnels that have something to move.
    let blocks = BlockCache(keepPerSize: Limits.relaySpareBlocks)
    let muxLimits: MuxLimits
    var sniConns: [UInt64: SniConn] = [:]
    /// Public connections still sending their ClientHello, and all public connections.
    let sniPending = Gate(limit: Limits.sniMaxPending, perSource: Limits.sniMaxPendingPerSource)
    let sniOpen = Gate(limit: Limits.sniMaxConnections, perSource: Limits.sniMaxConnectionsPerSource)
    var sniLog = RateLimit()
    let stats = RelayStats()
    let work = WorkQueue()
    var timers = TimerHeap()
    /// Tunnels closed this turn, forgotten at its end.
    var retired: [RelayConn] = []
    /// Tunnels driven this turn (each once): the driver updates their poller interest.
    var touched: [RelayConn] = []
    /// `--max-tunnels`, or fewer if the open-file limit could not be raised that far.
    let maxTunnels: Int
    var conns: [UInt64: RelayConn] = [:]
    /// Connected devices (reverse role) by ID. A reconnect with the same key replaces the entry at once.
    var online: [AgentID: RelayConn] = [:]
    /// Tunnels and streams held by each key with a tunnel up.
    var keyShares = KeyShares()
    /// New keys enrolled: a bounded rate (each is a registry write, and under
    /// --open-enrollment anyone can ask).
    var enrollRate = TokenBucket(burst: Limits.relayEnrollBurst, perSecond: Limits.relayEnrollPerSecond)
    /// New connections accepted: a bounded rate (a reconnect storm waits in the backlog).
    var acceptRate = TokenBucket(burst: Limits.relayAcceptBurst, perSecond: Limits.relayAcceptPerSecond)
    var nextSerial: UInt64 = 1
    /// Connections in TLS, preamble or hello (each holds a ticket until it leaves those phases).
    let pending = Gate(limit: Limits.relayMaxPendingHandshakes, perSource: Limits.relayMaxPendingPerSource)
    var dropLog = RateLimit()
    var drainDeadline: Instant? = nil
    /// Drained: every tunnel closed; the driver stops.
    var stopped = false
    /// The wall-clock time (UNIX seconds) of this turn, for tokens and resume credentials.
    var wallSeconds: Int64 = 0
    /// Fault injection for tests (AGENT_FAULT_ROUTE=FROM_ID:TO_ID): the relay sends
    /// streams meant for FROM to TO, i.e. it lies about the device, as a compromised
    /// relay could. The end-to-end check in every forward must catch it
    /// (tests/integration/test_e2e.py). It can only make the relay misbehave, which
    /// the trust model assumes a relay may do anyway.
    var faultRoute: (AgentID, AgentID)? = nil
    // Every line a peer can cause is rate-limited (Limits.logBurst per Limits.logWindowMs;
    // tunnels up and down, which a fleet makes in bursts, Limits.tunnelLogBurst).
    var deniedLog = RateLimit()
    var failLog = RateLimit()
    var refusedLog = RateLimit()
    var tunnelLog = RateLimit(burst: Limits.tunnelLogBurst)

    init(rng: Rng, key: PrivateKey, tlsConfig: TLSConfig, resumeKeys: ResumeKeyStore, registry: Registry,
         enrollSecret: [UInt8]?, clientCA: Certificate?, openEnrollment: Bool, heartbeatMs: Int64,
         drainTimeoutMs: Int64, maxTunnels: Int) {
        self.rng = rng
        self.key = key
        pinDigest = Digest.sha256(key.publicKeyDER())
        self.tlsConfig = tlsConfig
        self.resumeKeys = resumeKeys
        self.registry = registry
        self.enrollSecret = enrollSecret
        self.clientCA = clientCA
        self.openEnrollment = openEnrollment
        self.drainTimeoutMs = drainTimeoutMs
        self.maxTunnels = maxTunnels
        muxLimits = MuxLimits(maxStreams: Limits.relayMaxStreamsPerTunnel, heartbeatMs: heartbeatMs,
                              openTimeoutMs: Limits.relayOpenTimeoutMs)
        // Two buffers per joined stream (one per leg), so the pool holds twice the stream limit.
        pool = BufferPool(bufferSize: Limits.relayWindow, limit: 2 * Limits.relayMaxStreams, maxBufferSize: Limits.relayMaxWindow)
    }

    // MARK: - Events

    /// Whether the agent listener may be watched: room for a tunnel and a pending handshake.
    var acceptingTunnels: Bool { drainDeadline == nil && pending.isOpen && conns.count < maxTunnels }
    /// Whether the SNI listener may be watched.
    var acceptingSni: Bool { drainDeadline == nil && sniPending.isOpen && sniOpen.isOpen }

    /// A readable or writable tunnel: its stream is read into the TLS session's inbound
    /// queue (or its queued ciphertext written), and it is queued for this turn.
    func connReady(_ serial: UInt64, read: Bool, write: Bool) {
        guard let c = conns[serial] else { return }
        if read { c.link.receive() }
        if write { c.link.writable() }
        c.dirty = true
    }

    /// A public connection's readiness.
    func sniReady(_ serial: UInt64, _ events: PollEvents) {
        sniConns[serial]?.splice.ready(events)
    }

    /// When `turn` must run again at the latest (now, if work is queued).
    func nextDeadline(now: Instant) -> Int64? {
        var dm = DeadlineMin()
        if !work.items.isEmpty { dm.consider(now.ms) }
        dm.consider(timers.earliest)
        dm.consider(drainDeadline?.ms)
        for (_, s) in sniConns {
            if s.splice.dirty { dm.consider(now.ms) }
            dm.consider(s.deadline?.ms)
        }
        return dm.earliest == Int64.max ? nil : dm.earliest
    }

    // MARK: - The turn

    /// Everything that changes state happens here (never in the readiness calls), so no
    /// serial is stale within a turn.
    func turn(now: Instant, wallSeconds: Int64) {
        self.wallSeconds = wallSeconds
        // Tunnels whose timer is due join the work queue.
        while let serial = timers.popDue(now: now.ms) {
            guard let c = conns[serial] else { continue }
            if let t = c.timerAt, t <= now.ms { c.timerAt = nil }
            c.dirty = true
        }
        // Drive queued tunnels until nothing changes (a join moving bytes queues its partner).
        // TLS handshakes with input wait for the next turn beyond a budget (they stay queued).
        var rounds = 0
        var handshakes = 0
        var deferred: [RelayConn] = []
        while !work.items.isEmpty && rounds < 16 {
            rounds += 1
            let batch = work.items
            work.items.removeAll(keepingCapacity: true)
            for c in batch {
                if c.phase.isTLS && !c.link.tls.inbound.isEmpty {
                    if handshakes >= Limits.relayHandshakesPerTurn {
                        deferred.append(c)
                        continue
                    }
                    handshakes += 1
                }
                c.dirty = false
                if !c.link.isClosed { drive(c, now: now) }
                settle(c, now: now)
            }
            var again = true
            var sniRounds = 0
            while again && sniRounds < 16 {
                again = false
                sniRounds += 1
                for (_, s) in sniConns where s.splice.dirty {
                    s.splice.dirty = false
                    driveSni(s, now: now)
                    again = again || s.splice.dirty
                }
            }
        }
        for c in deferred { work.items.append(c) }  // still dirty: driven first thing next turn
        for (_, s) in sniConns where s.splice.dirty || (s.deadline.map { now >= $0 } ?? false) {
            s.splice.dirty = false
            driveSni(s, now: now)
        }
        for (serial, s) in sniConns where s.closed { sniConns.removeValue(forKey: serial) }
        for c in retired {
            if let cur = conns[c.serial], cur === c { conns.removeValue(forKey: c.serial) }
        }
        retired.removeAll(keepingCapacity: true)
        if let d = drainDeadline { drainStep(deadline: d, now: now) }
    }

    /// After a tunnel was driven: its buffers and its timer follow its new state (the
    /// driver updates its poller interest: `touched`).
    func settle(_ c: RelayConn, now: Instant) {
        if !c.touched {
            c.touched = true
            touched.append(c)
        }
        if c.link.isClosed { return }
        // A tunnel without streams gives its buffers back until bytes move again.
        if c.joins.isEmpty && c.sniStreams.isEmpty {
            c.link.tls.park()
            c.mux.park()
        }
        var next = c.deadline?.ms
        if c.phase.isReady, let m = c.mux.nextDeadline?.ms, next == nil || m < next! { next = m }
        if let n = next, c.timerAt == nil || n < c.timerAt! {
            timers.schedule(c.serial, at: n)
            c.timerAt = n
        }
    }
}

/// Tunnels with something to do this turn, each once (`RelayConn.dirty` queues it).
final class WorkQueue {
    var items: [RelayConn] = []
}
