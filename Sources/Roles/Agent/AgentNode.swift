import Crypto
import E2E
import Loop
import Mux
import Wire

/// What reverse and forward share: the tunnel to the relay, the table of
/// spliced streams, the per-turn work order and teardown. Subclasses decide
/// what a stream is for (`opened`, `sessionEvent`) and add their own sockets.
public class AgentNode: LoopDriver {
    enum TokenKind: UInt8 {
        case tunnel = 1
        case splice = 2
        case listener = 3
        case raw = 4
    }

    let client: RelayClient
    let rng: Rng
    let pool: BufferPool
    var splices: [UInt32: Splice] = [:]
    /// Streams spliced without an end-to-end session (SNI routing to the device's HTTPS service).
    var raws: [UInt32: RawSplice] = [:]
    var stopping = false
    /// Work was left when the last turn ended (poll must not wait).
    var moreWork = false
    /// Lines a peer causes per stream (refusals, resets): rate-limited.
    var peerLog = RateLimit()
    var downLog = RateLimit(burst: Limits.unreachableLogBurst, windowMs: Limits.unreachableLogWindowMs)
    public private(set) var finished = false
    public private(set) var exitCode: Int32 = 0
    var roleName: String { "agent" }
    /// Work rounds per loop turn before poll() is asked again (with a zero timeout).
    static let roundsPerTurn = 16

    /// Stream windows start at `window` and grow to `maxWindow` while a path needs it,
    /// within `settings.memoryBudget` (default: `maxStreams` x `window`, the worst case of
    /// fixed windows).
    init(settings: TunnelSettings, rng: Rng, window: Int, maxWindow: Int, maxStreams: Int, now: Instant) throws(CryptoError) {
        self.rng = rng
        pool = BufferPool(bufferSize: window, limit: maxStreams, maxBufferSize: maxWindow, budget: settings.memoryBudget)
        client = try RelayClient(settings: settings, rng: rng, pool: pool, now: now)
    }

    // MARK: hooks for subclasses

    /// The peer opened a stream.
    func opened(_ id: UInt32, _ open: OpenPayload, mux: Mux, now: Instant) { mux.refuse(id, .notAuthorized) }
    /// An end-to-end session event of a splice.
    func sessionEvent(_ s: Splice, _ ev: E2EEvent, mux: Mux, now: Instant) {}
    /// Per-splice work before pumping (reverse: target connects).
    func prepare(_ s: Splice, mux: Mux, now: Instant) {}
    func prepareRaw(_ r: RawSplice, mux: Mux, now: Instant) {}
    func collectExtra(into set: inout PollSet) {}
    func readyExtra(kind: UInt8, serial: UInt64, events: PollEvents, now: Instant) {}
    func workExtra(now: Instant) {}
    func tunnelUp(_ id: AgentID, now: Instant) {}
    func reload() {}

    // MARK: LoopDriver

    public func collect(into set: inout PollSet, now: Instant) {
        client.collect(into: &set, token: Token.make(TokenKind.tunnel.rawValue, 0))
        for (id, s) in splices where s.fd >= 0 {
            set.add(fd: s.fd, interest: s.interest, token: Token.make(TokenKind.splice.rawValue, UInt64(id)))
        }
        for (id, r) in raws where r.fd >= 0 {
            set.add(fd: r.fd, interest: r.interest, token: Token.make(TokenKind.raw.rawValue, UInt64(id)))
        }
        collectExtra(into: &set)
    }

    public func ready(token: UInt64, events: PollEvents, now: Instant) {
        let kind = Token.kind(token)
        switch kind {
        case TokenKind.tunnel.rawValue:
            client.ready(events)
        case TokenKind.splice.rawValue:
            splices[UInt32(truncatingIfNeeded: Token.serial(token))]?.ready(events)
        case TokenKind.raw.rawValue:
            raws[UInt32(truncatingIfNeeded: Token.serial(token))]?.ready(events)
        default:
            readyExtra(kind: kind, serial: Token.serial(token), events: events, now: now)
        }
    }

    public func nextDeadline(now: Instant) -> Instant? {
        if moreWork { return now }
        var d = client.nextDeadline
        for (_, r) in raws {
            if let t = r.connectDeadline, d == nil || t < d! { d = t }
        }
        for (_, s) in splices {
            for t in [s.e2e.deadline, s.connectDeadline, s.lingerDeadline, s.authDeadline] {
                if let t = t, d == nil || t < d! { d = t }
            }
        }
        return d
    }

    public func signal(_ kind: Signals.Kind, now: Instant) {
        switch kind {
        case .terminate:
            stopping = true
        case .reload:
            reload()
        }
    }

    public func work(now: Instant) {
        if stopping {
            for (id, s) in splices {
                client.mux?.reset(id, .goingAway)
                s.closeLocal(abort: true)
            }
            splices.removeAll()
            for (id, r) in raws {
                client.mux?.reset(id, .goingAway)
                r.closeLocal(abort: true)
            }
            raws.removeAll()
            _ = client.flush()
            client.stop()
            Log.info("agent_stopped", "role=" + roleName)
            finished = true
            return
        }
        workExtra(now: now)
        moreWork = false
        // Rounds until nothing moves: bytes freed in one place let others move.
        var rounds = 0
        while true {
            rounds += 1
            if let ev = client.advance(now: now) { tunnelEvent(ev, now: now) }
            guard let mux = client.mux else { return }
            let txBefore = mux.tx.count
            let outBefore = client.outboundCount
            var progress = false
            while let ev = mux.poll(now: now) {
                progress = true
                muxEvent(ev, mux: mux, now: now)
                if client.mux == nil { return }
            }
            // Streams with little queued go first, so a small message is not stuck
            // behind a bulk stream that would fill the tunnel's send queue.
            for light in [true, false] {
                for (id, s) in splices where s.isLight == light && s.needsPump(now) {
                    if pumpSplice(id, s, mux: mux, now: now) { progress = true }
                }
            }
            for (id, r) in raws {
                prepareRaw(r, mux: mux, now: now)
                if raws[id] == nil { continue }
                if r.pump(mux) { progress = true }
                if let e = r.localError {
                    Log.info("stream_reset", "stream=" + String(id) + " local=" + Log.quote(r.label) + " error="
                             + Log.quote(SysError.describe(e)))
                    mux.reset(id, .closed)
                    raws.removeValue(forKey: id)?.closeLocal(abort: true)
                    progress = true
                } else if r.isComplete(mux) {
                    mux.release(id)
                    raws.removeValue(forKey: id)?.closeLocal()
                    progress = true
                }
            }
            if let ev = client.endIfInputEnded(now: now) ?? client.flush() {
                tunnelEvent(ev, now: now)
                return
            }
            if mux.tx.count != txBefore || client.outboundCount != outBefore { progress = true }
            if !progress { break }
            // Back to poll() often: input that arrived meanwhile (a small message on
            // another stream) is read and served before more bulk work.
            if rounds >= AgentNode.roundsPerTurn {
                moreWork = true
                break
            }
        }
    }

    /// Moves one splice's bytes and retires it when done or failed. True if anything changed.
    func pumpSplice(_ id: UInt32, _ s: Splice, mux: Mux, now: Instant) -> Bool {
        guard splices[id] != nil else { return false }
        s.dirty = false
        prepare(s, mux: mux, now: now)
        var progress = s.pump(mux, now: now, onEvent: { ev in sessionEvent(s, ev, mux: mux, now: now) })
        if progress { s.dirty = true }  // look again next round
        if let e = s.localError, splices[id] != nil {
            Log.info("stream_reset", "stream=" + String(id) + " local=" + Log.quote(s.label) + " error="
                     + Log.quote(SysError.describe(e)))
            drop(id, mux: mux, reason: .closed, abort: true)
            progress = true
        } else if s.isComplete(mux) {
            mux.release(id)
            Log.debug("stream_closed", "stream=" + String(id) + " local=" + Log.quote(s.label) + " in="
                      + String(s.bytesFromLocal) + " out=" + String(s.bytesToLocal))
            splices.removeValue(forKey: id)
            progress = true
        } else if let l = s.lingerDeadline, now >= l {
            drop(id, mux: mux, reason: .timeout, abort: false)
            progress = true
        }
        return progress
    }

    func tunnelEvent(_ ev: RelayClient.Event, now: Instant) {
        switch ev {
        case .up(let id):
            Log.info("tunnel_up", "role=" + roleName + " id=" + id.text + " relay=" + client.settings.relay.text
                     + (client.resumed ? " resumed=yes" : ""))
            tunnelUp(id, now: now)
        case .down(let reason, let wasUp):
            for (_, s) in splices { s.closeLocal(abort: true) }
            for (_, r) in raws { r.closeLocal(abort: true) }
            let lost = splices.count + raws.count
            splices.removeAll()
            raws.removeAll()
            if wasUp {
                Log.warn("tunnel_down", "role=" + roleName + " streams_lost=" + String(lost) + " reason=" + Log.quote(reason))
            } else {
                downLog.log(.warn, "relay_unreachable", "relay=" + client.settings.relay.text + " reason=" + Log.quote(reason),
                            now: now)
            }
        }
    }

    func muxEvent(_ ev: MuxEvent, mux: Mux, now: Instant) {
        switch ev {
        case .opened(let id, let open):
            opened(id, open, mux: mux, now: now)
        case .accepted(let id):
            splices[id]?.dirty = true
        case .refused(let id, let reason):
            if let s = splices.removeValue(forKey: id) {
                peerLog.log(.info, "stream_refused", "stream=" + String(id) + " local=" + Log.quote(s.label) + " reason="
                            + reason.text, now: now)
                s.closeLocal()
            }
        case .reset(let id, let reason):
            if let r = raws.removeValue(forKey: id) {
                Log.debug("stream_reset", "stream=" + String(id) + " local=" + Log.quote(r.label) + " reason=" + reason.text)
                r.closeLocal(abort: true)
            }
            if let s = splices.removeValue(forKey: id) {
                if s.established {
                    // Mid-stream: a reset, so the local end does not take a cut stream for a clean end.
                    peerLog.log(.info, "stream_reset", "stream=" + String(id) + " local=" + Log.quote(s.label) + " reason="
                                + reason.text, now: now)
                    s.closeLocal(abort: true)
                } else {
                    // During setup: the device refused without telling why (authorization
                    // failures say nothing to the peer), or the relay gave up. A clean close.
                    peerLog.log(.warn, "stream_refused", "stream=" + String(id) + " local=" + Log.quote(s.label) + " reason="
                                + (reason == .unspecified ? "refused_by_device" : reason.text)
                                + " hint=\"is this operator's ID in the device's --authorized-keys?\"", now: now)
                    s.closeLocal()
                }
            }
        case .data(let id), .finished(let id), .credit(let id):
            splices[id]?.dirty = true
            raws[id]?.dirty = true
        case .pong(let rtt):
            Log.debug("pong", "rtt_ms=" + String(rtt))
        case .goaway(let reason, let ms):
            client.noteGoaway(retryAfterMs: ms)
            Log.info("relay_goaway", "reason=" + reason.text + " retry_after_ms=" + String(ms))
        case .resume(let payload):
            client.takeCredential(payload, now: now)
        case .hello:
            break
        case .failed(let f):
            tunnelEvent(client.close(reason: "protocol error: " + f.text, now: now), now: now)
        }
        if mux.peerGoingAway && splices.isEmpty && client.isUp {
            tunnelEvent(client.close(reason: "relay is going away", now: now), now: now)
        }
    }

    /// Resets a stream and forgets its splice.
    func drop(_ id: UInt32, mux: Mux, reason: Reason, abort: Bool) {
        mux.reset(id, reason)
        if let s = splices.removeValue(forKey: id) { s.closeLocal(abort: abort) }
    }
}
