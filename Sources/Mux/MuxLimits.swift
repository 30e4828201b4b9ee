import Wire

/// Limits and timers of one tunnel's multiplexer. Every value has a named
/// default; roles pick server or device values (docs/LIMITS.md).
public struct MuxLimits {
    /// Concurrent streams on one tunnel; more opens are refused with `noResources`.
    public var maxStreams: Int
    /// Heartbeat: a PING this often; the peer is dead after `deadAfterMs` of silence.
    public var heartbeatMs: Int64
    /// A stream we opened that is neither accepted nor refused by then is dropped (`timeout`).
    public var openTimeoutMs: Int64
    /// Plaintext frame bytes received but not yet decoded (at least one whole frame).
    public var rxCapacity: Int
    /// Frames encoded but not yet handed to TLS.
    public var txCapacity: Int
    /// Agent: tell the relay our heartbeat (KEEPALIVE) so it stops pinging and watches ours.
    public var announceHeartbeat = false
    /// An unanswered PING older than this fails the tunnel (`peerTimeout`): the default
    /// or two heartbeats, whichever is shorter.
    public var pongTimeoutMs: Int64 { min(MuxLimits.defaultPongTimeoutMs, deadAfterMs) }

    public static let defaultHeartbeatMs: Int64 = 15_000
    /// A PING not answered by then means the path is dead (a slow path answers within it).
    public static let defaultPongTimeoutMs: Int64 = 30_000
    /// The interval a peer may announce with KEEPALIVE (out of range: clamped).
    public static let keepaliveMinMs: Int64 = 1_000
    public static let keepaliveMaxMs: Int64 = 86_400_000
    public static let defaultOpenTimeoutMs: Int64 = 15_000
    public static let defaultMaxStreamsServer = 1024
    public static let defaultMaxStreamsDevice = 128
    /// Room kept free in `tx` for control frames when data is queued.
    public static let controlReserve = 1024
    /// The credit a stream extends follows the tunnel's round trip: enough to keep
    /// `creditBytesPerRttMs` bytes in flight per millisecond of round trip (about
    /// 100 MB/s on one stream), at least `minCredit`, at most the stream's buffer.
    /// On a fast local hop a bulk stream then has little in flight, so a small
    /// message on another stream does not wait behind it; on a long path the
    /// whole buffer is used for throughput.
    public static let minCredit = 32 * 1024
    public static let creditBytesPerRttMs = 100_000

    /// A stream with no DATA for this long goes back to the pool's base window and
    /// gives its (empty) receive buffer's memory back; it grows again when data moves.
    public static let windowIdleMs: Int64 = 5_000

    /// DATA enters `tx` only while it holds less than this: about two records, so a
    /// bulk stream cannot queue much ahead of a small message on another stream
    /// (the rest waits in the streams' own buffers, served in turn).
    public static let dataHighWater = 2 * (WireProtocol.headerSize + WireProtocol.maxPayload)

    public init(maxStreams: Int = MuxLimits.defaultMaxStreamsServer,
                heartbeatMs: Int64 = MuxLimits.defaultHeartbeatMs,
                openTimeoutMs: Int64 = MuxLimits.defaultOpenTimeoutMs,
                rxCapacity: Int = 2 * (WireProtocol.headerSize + WireProtocol.maxPayload),
                txCapacity: Int = 4 * (WireProtocol.headerSize + WireProtocol.maxPayload)) {
        precondition(rxCapacity >= WireProtocol.headerSize + WireProtocol.maxPayload)
        precondition(txCapacity >= WireProtocol.headerSize + WireProtocol.maxPayload + MuxLimits.controlReserve)
        self.maxStreams = maxStreams
        self.heartbeatMs = heartbeatMs
        self.openTimeoutMs = openTimeoutMs
        self.rxCapacity = rxCapacity
        self.txCapacity = txCapacity
    }

    /// Dead-peer detection: twice the heartbeat.
    public var deadAfterMs: Int64 { 2 * heartbeatMs }
}
