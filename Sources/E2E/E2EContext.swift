import Crypto
import Wire

/// Limits and defaults of the end-to-end layer, named once.
public enum E2ELimits {
    /// How long a forward resumes a device's saved session before a full handshake
    /// renews the keys (the "keys renewed on session expiry" of the design).
    public static let defaultResumptionLifetimeMs: Int64 = 3_600_000
    /// How long a reverse's session tickets stay valid (the server side of the same rule).
    public static let defaultTicketLifetimeSeconds: UInt32 = 3600
    /// Handshake, target request and answer together must finish within this.
    public static let defaultHandshakeTimeoutMs: Int64 = 10_000
    /// Saved sessions a forward keeps (one per device, least recently used goes first).
    public static let defaultSessionCacheEntries = 64
    /// Ciphertext queues of one session: room for one full TLS record in, two out
    /// (the same sizes as `TLSSession`'s defaults).
    public static let defaultInboundCapacity = 16384 + 512
    public static let defaultOutboundCapacity = 2 * (16384 + 512)
}

/// The forward's side of end-to-end sessions: one per process, shared by all
/// streams. Holds the TLS client configuration and a bounded cache of saved
/// sessions (device ID -> session and when its full handshake happened).
///
/// Cache rules: a session is saved after a full handshake whose server proved the
/// device's key; it is offered on the next session to the same device until it is
/// `resumptionLifetimeMs` old (measured from that full handshake: resuming does not
/// extend it, so keys are renewed at least that often); when the cache is full the
/// least recently used entry goes; a failed handshake that offered a saved session
/// drops it. `cacheCapacity` 0 or a lifetime <= 0 turns resumption off.
public final class E2EClient {
    public let config: TLSConfig
    public let resumptionLifetimeMs: Int64
    public let handshakeTimeoutMs: Int64
    public let inboundCapacity: Int
    public let outboundCapacity: Int
    var cache: SessionCache

    public init(rng: Rng, key: PrivateKey, certificate: Certificate, maxFragment: TLSConfig.MaxFragment = .full,
                resumptionLifetimeMs: Int64 = E2ELimits.defaultResumptionLifetimeMs,
                handshakeTimeoutMs: Int64 = E2ELimits.defaultHandshakeTimeoutMs,
                cacheCapacity: Int = E2ELimits.defaultSessionCacheEntries,
                inboundCapacity: Int = E2ELimits.defaultInboundCapacity,
                outboundCapacity: Int = E2ELimits.defaultOutboundCapacity) throws(CryptoError) {
        precondition(cacheCapacity >= 0 && handshakeTimeoutMs > 0 && inboundCapacity > 0 && outboundCapacity > 0)
        // The server is checked by key (its ID must be the device asked for), not by
        // a CA: `afterHandshake` without trust anchors, and E2ESession checks the key.
        config = try TLSConfig(side: .client, rng: rng, certificate: certificate, key: key,
                               peerCheck: .afterHandshake(trusted: nil), maxFragment: maxFragment)
        self.resumptionLifetimeMs = resumptionLifetimeMs
        self.handshakeTimeoutMs = handshakeTimeoutMs
        self.inboundCapacity = inboundCapacity
        self.outboundCapacity = outboundCapacity
        cache = SessionCache(capacity: resumptionLifetimeMs > 0 ? cacheCapacity : 0)
    }

    /// Saved sessions held now (expired ones may still count until the next lookup or save).
    public var cachedSessionCount: Int { cache.entries.count }

    /// Forgets the saved session for `device` (the next session does a full handshake).
    public func forgetSession(device: AgentID) { cache.remove(device) }

    public func forgetAllSessions() { cache.entries.removeAll(keepingCapacity: true) }

    func savedSession(for device: AgentID, now: Instant) -> SavedSession? {
        cache.lookup(device, now: now, lifetimeMs: resumptionLifetimeMs)
    }

    func save(_ session: SavedSession, for device: AgentID, now: Instant) {
        cache.store(device, session, now: now, lifetimeMs: resumptionLifetimeMs)
    }
}

/// Fixed-capacity cache of saved TLS sessions, least recently used out. Linear
/// scans: the capacity is tens of entries and it is touched once per stream.
struct SessionCache {
    struct Entry {
        let device: AgentID
        let session: SavedSession
        /// When the full handshake that made `session` happened.
        let savedAt: Instant
        var lastUse: UInt64
    }

    let capacity: Int
    /// 0 <= entries.count <= capacity; at most one entry per device.
    var entries: [Entry] = []
    var clock: UInt64 = 0

    init(capacity: Int) {
        self.capacity = capacity
        entries.reserveCapacity(capacity)
    }

    mutating func lookup(_ device: AgentID, now: Instant, lifetimeMs: Int64) -> SavedSession? {
        guard let i = entries.firstIndex(where: { $0.device == device }) else { return nil }
        if SessionCache.isExpired(entries[i], now: now, lifetimeMs: lifetimeMs) {
            entries.remove(at: i)
            return nil
        }
        clock &+= 1
        entries[i].lastUse = clock
        return entries[i].session
    }

    mutating func store(_ device: AgentID, _ session: SavedSession, now: Instant, lifetimeMs: Int64) {
        guard capacity > 0 else { return }
        entries.removeAll { $0.device == device || SessionCache.isExpired($0, now: now, lifetimeMs: lifetimeMs) }
        if entries.count >= capacity {
            var oldest = 0
            for i in 1..<entries.count where entries[i].lastUse < entries[oldest].lastUse { oldest = i }
            entries.remove(at: oldest)
        }
        clock &+= 1
        entries.append(Entry(device: device, session: session, savedAt: now, lastUse: clock))
    }

    mutating func remove(_ device: AgentID) {
        entries.removeAll { $0.device == device }
    }

    static func isExpired(_ e: Entry, now: Instant, lifetimeMs: Int64) -> Bool {
        let age = now.since(e.savedAt)
        return age >= lifetimeMs || age < 0
    }
}

/// The reverse's side of end-to-end sessions: one per process, shared by all
/// streams. Asks every forward for its certificate and admits it by
/// `authorization` (see `Authorization` and `PeerCheck.authorize`). Issues session
/// tickets so later streams from the same forward resume without public-key work.
public final class E2EServer {
    public private(set) var config: TLSConfig
    public private(set) var authorization: Authorization
    public let ticketLifetimeSeconds: UInt32
    public let handshakeTimeoutMs: Int64
    public let inboundCapacity: Int
    public let outboundCapacity: Int
    let rng: Rng
    let key: PrivateKey
    let certificate: Certificate
    let maxFragment: TLSConfig.MaxFragment

    /// `maxFragment`: the largest record this device sends (TLS 1.3 negotiates none:
    /// a forward that must get small records sets the same on its side for the
    /// records it sends).
    public init(rng: Rng, key: PrivateKey, certificate: Certificate, authorization: Authorization,
                maxFragment: TLSConfig.MaxFragment = .full,
                ticketLifetimeSeconds: UInt32 = E2ELimits.defaultTicketLifetimeSeconds,
                handshakeTimeoutMs: Int64 = E2ELimits.defaultHandshakeTimeoutMs,
                inboundCapacity: Int = E2ELimits.defaultInboundCapacity,
                outboundCapacity: Int = E2ELimits.defaultOutboundCapacity) throws(CryptoError) {
        precondition(handshakeTimeoutMs > 0 && inboundCapacity > 0 && outboundCapacity > 0)
        config = try E2EServer.makeConfig(rng: rng, key: key, certificate: certificate, ca: authorization.ca,
                                          maxFragment: maxFragment, ticketLifetimeSeconds: ticketLifetimeSeconds)
        self.maxFragment = maxFragment
        self.authorization = authorization
        self.ticketLifetimeSeconds = ticketLifetimeSeconds
        self.handshakeTimeoutMs = handshakeTimeoutMs
        self.inboundCapacity = inboundCapacity
        self.outboundCapacity = outboundCapacity
        self.rng = rng
        self.key = key
        self.certificate = certificate
    }

    /// Replaces the authorization (SIGHUP). Every session whose forward is checked from
    /// now on uses it, resumed sessions included (they are checked again by ID and
    /// CA). When the CA changes (a different `Certificate` object, or one of old/new
    /// is nil) the TLS configuration is rebuilt so certificate requests name the new
    /// CA; that also retires the old session tickets, so every forward's next stream
    /// does one full handshake. On a thrown error nothing changed.
    public func reload(authorization: Authorization) throws(CryptoError) {
        let old = self.authorization.ca
        let new = authorization.ca
        let caChanged: Bool
        if let o = old, let n = new { caChanged = o !== n } else { caChanged = (old == nil) != (new == nil) }
        if caChanged {
            config = try E2EServer.makeConfig(rng: rng, key: key, certificate: certificate, ca: new,
                                              maxFragment: maxFragment, ticketLifetimeSeconds: ticketLifetimeSeconds)
        }
        self.authorization = authorization
    }

    static func makeConfig(rng: Rng, key: PrivateKey, certificate: Certificate, ca: Certificate?,
                           maxFragment: TLSConfig.MaxFragment, ticketLifetimeSeconds: UInt32) throws(CryptoError) -> TLSConfig {
        // `afterHandshake`: the handshake asks for a certificate and completes either
        // way; E2ESession then admits or rejects the forward (PeerCheck.authorize),
        // so a rejected forward learns nothing from a handshake alert.
        try TLSConfig(side: .server, rng: rng, certificate: certificate, key: key,
                      peerCheck: .afterHandshake(trusted: ca), maxFragment: maxFragment,
                      ticketLifetimeSeconds: ticketLifetimeSeconds)
    }
}
