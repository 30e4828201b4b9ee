import Wire

/// Device side: a stream whose end-to-end session has not yet authorized its forward.
///
/// Every OPEN makes the device run a TLS server flight (ECDHE and a signature) before it
/// knows who is asking, so what an unauthorized forward can make a device hold and spend is
/// bounded here (review finding 4): streams before authorization hold a place in a `Gate`
/// (in all, and per forward ID: the OPEN's origin, which the relay sets from the forward's
/// authenticated tunnel), for at most `Limits.reverseAuthTimeoutMs`; and every stream that
/// ends before authorization (refused, failed, timed out, reset) is a strike against its
/// forward (`ForwardStrikes`), so one that keeps failing is refused before any TLS work.
/// A forward the device authorized recently (`ForwardStrikes.isKnown`) is not held to the
/// gate (an operator's browser opens many streams at once); a failure makes it unknown again.
final class PreAuth {
    /// nil for a known forward.
    let ticket: Gate.Ticket?
    let origin: UInt64
    let strikes: ForwardStrikes
    private var authorized = false

    init(ticket: Gate.Ticket?, origin: UInt64, strikes: ForwardStrikes) {
        self.ticket = ticket
        self.origin = origin
        self.strikes = strikes
    }

    /// The session authorized its forward: the place is given back, no strike.
    func authorize() {
        authorized = true
        ticket?.leave()
    }

    // However the stream ends before authorization, the place goes back (the ticket's own
    // deinit) and the forward gets a strike, counted at the next OPEN (`settle`).
    deinit { if !authorized { strikes.pending.append(origin) } }

    /// A forward ID as a gate's source key (its first 8 bytes: IDs are hashes).
    static func key(origin: [UInt8]) -> UInt64 {
        var k: UInt64 = 0
        for b in origin.prefix(8) { k = k << 8 | UInt64(b) }
        return k
    }
}

/// What the device remembers of forwards (at most `Limits.reverseTrackedForwards`, one
/// short list): strikes in a token bucket each (`Limits.reverseStrikeBurst`, refilled at
/// `Limits.reverseStrikesPerSecond`: a forward whose bucket is empty is refused at once),
/// and when it was last authorized (`Limits.reverseKnownForwardMs`). When the list is full,
/// the forward with the most strikes left goes first.
final class ForwardStrikes {
    struct Forward {
        let origin: UInt64
        var bucket = TokenBucket(burst: Limits.reverseStrikeBurst, perSecond: Limits.reverseStrikesPerSecond)
        var trustedAt: Instant? = nil
    }

    var pending: [UInt64] = []
    private(set) var forwards: [Forward] = []

    private func index(_ origin: UInt64, now: Instant) -> Int {
        if let i = forwards.firstIndex(where: { $0.origin == origin }) { return i }
        if forwards.count >= Limits.reverseTrackedForwards {
            var best = 0
            for j in 1..<forwards.count where forwards[j].bucket.tokens(now: now) > forwards[best].bucket.tokens(now: now) {
                best = j
            }
            forwards.remove(at: best)
        }
        forwards.append(Forward(origin: origin))
        return forwards.count - 1
    }

    /// `origin` was just authorized.
    func trust(_ origin: UInt64, now: Instant) { forwards[index(origin, now: now)].trustedAt = now }

    func isKnown(_ origin: UInt64, now: Instant) -> Bool {
        guard let t = forwards.first(where: { $0.origin == origin })?.trustedAt else { return false }
        return now.since(t) < Limits.reverseKnownForwardMs
    }

    /// Counts the strikes of streams that ended since the last call (a struck forward is known no more).
    func settle(now: Instant) {
        for o in pending {
            let i = index(o, now: now)
            forwards[i].trustedAt = nil
            _ = forwards[i].bucket.take(now: now)
        }
        pending.removeAll()
    }

    /// True if `origin` has used up its strikes.
    func isHeld(_ origin: UInt64, now: Instant) -> Bool {
        guard let i = forwards.firstIndex(where: { $0.origin == origin }) else { return false }
        return forwards[i].bucket.tokens(now: now) < 1
    }
}
