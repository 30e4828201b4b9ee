import Mux
import Wire

/// Every timeout and limit of the roles, with its default. docs/LIMITS.md lists
/// them all; a test checks that list against this file.
public enum Limits {
    // Phases (milliseconds)
    public static let tcpConnectTimeoutMs: Int64 = 10_000
    public static let tlsHandshakeTimeoutMs: Int64 = 10_000
    public static let helloTimeoutMs: Int64 = 10_000
    public static let targetConnectTimeoutMs: Int64 = 10_000
    /// Relay: an accepted connection must finish TLS and hello within this.
    public static let relayHandshakeTimeoutMs: Int64 = 10_000
    /// Relay: a forward's open waits this long for the device to answer.
    public static let relayOpenTimeoutMs: Int64 = 15_000

    // Heartbeat and reconnect (seconds, as on the command line)
    public static let heartbeatSeconds = 15
    /// A device's heartbeat (`--heartbeat` of a reverse): it pings the relay this often and
    /// tells it so (KEEPALIVE), and the relay does not ping it. One exchange per interval:
    /// about 87 KB a day on the wire with TCP/IP headers (docs/LIMITS.md).
    public static let reverseHeartbeatSeconds = 240
    public static let reconnectMaxSeconds = 30
    /// First reconnect attempt: within this (jittered between half and all of it).
    public static let reconnectFirstMs: Int64 = 1_000

    // Relay capacity
    public static let relayMaxPendingHandshakes = 256
    /// Of those, from one source address (an IPv6 source: its /64), so one address cannot hold them all.
    public static let relayMaxPendingPerSource = 32
    /// New connections the relay accepts: at most this many at once, refilled at
    /// `relayAcceptPerSecond`; beyond, they wait in the kernel's listen backlog (a
    /// reconnect storm is taken at this pace, and live tunnels keep being served) ...
    public static let relayAcceptBurst = 1_000
    public static let relayAcceptPerSecond = 5_000
    /// ... at most this many per loop turn ...
    public static let relayAcceptPerTurn = 64
    /// ... and TLS handshake steps with input to process (each may be a full handshake's
    /// key exchange and signature) at most this many per turn; the rest wait for the next
    /// turn, after the live tunnels' I/O.
    public static let relayHandshakesPerTurn = 16
    /// Tunnels (agents connected, including handshakes in progress), `--max-tunnels`.
    public static let relayMaxTunnels = 100_000
    /// The most `--max-tunnels` accepts.
    public static let relayMaxTunnelsCeiling = 1_000_000
    /// Open files the relay keeps for itself beyond one per tunnel: listeners, public SNI
    /// connections and scrapes, the registry, logs.
    public static let relayReservedFiles = Limits.sniMaxConnections + Limits.metricsMaxConnections + 64
    public static let relayMaxStreamsPerTunnel = MuxLimits.defaultMaxStreamsServer
    public static let relayMaxStreams = 4096
    /// Spare buffer blocks of each size the relay keeps for reuse. An idle tunnel holds no
    /// record buffer or queue (they go back when it has no stream and nothing buffered);
    /// blocks beyond these go back to the allocator.
    public static let relaySpareBlocks = 256
    /// Tunnels one key may hold at once as a forward (a device's key holds one: a
    /// new connection replaces the old).
    public static let relayMaxTunnelsPerKey = 8
    /// Streams one key may have joined at once, over all its tunnels.
    public static let relayMaxStreamsPerKey = 512
    /// A key holding fewer streams may always open one more (while the pool has
    /// buffers); above it, only while it holds less than a quarter of the free buffers.
    public static let relayStreamsPerKeyFloor = 64
    /// New keys the relay enrols: at most this many at once, refilled at `relayEnrollPerSecond`.
    public static let relayEnrollBurst = 200
    public static let relayEnrollPerSecond = 50
    /// Keys in the relay's registry; a new key beyond it is denied (`registry_write_failed`).
    public static let registryMaxEntries = 1_000_000
    /// The registry's snapshot and journal files are read up to this size (1,000,000 keys
    /// with their hostnames fit; past it the relay does not start and says which file).
    public static let registryMaxFileBytes = 512 * 1024 * 1024
    /// The journal is compacted into a new snapshot once it has this many lines and more
    /// lines than the registry has keys.
    public static let registryJournalMinLines = 1024
    /// Resume credentials (docs/SECURITY.md, "Resumed admission"): how long one stays valid
    /// (a device away longer comes back with a full handshake) ...
    public static let relayResumeLifetimeSeconds: Int64 = 86_400
    /// ... how often the relay's resume key changes (the previous key still opens
    /// credentials for one more period; a credential never outlives its key) ...
    public static let relayResumeKeyRotationSeconds: Int64 = 86_400
    /// ... and how often a live tunnel gets a fresh one (a quarter of the lifetime), so a
    /// device connected for weeks holds a valid credential when the relay restarts.
    public static let relayResumeRefreshSeconds: Int64 = relayResumeLifetimeSeconds / 4
    /// Per stream and direction, to start with: fills a 100 ms path at 20 Mbit/s (250 KB)
    /// on one stream ...
    public static let relayWindow = 256 * 1024
    /// ... and grows to this while the path needs it (the measured round trip and the rate
    /// the stream is read at: 2 x 1 MiB fills 80 Mbit/s at 100 ms), within the pool's
    /// budget (2 x `relayMaxStreams` x `relayWindow`, the worst case of fixed windows).
    public static let relayMaxWindow = 1024 * 1024

    // Forward (operator machine)
    public static let forwardMaxStreams = 256
    public static let forwardWindow = 256 * 1024
    public static let forwardMaxWindow = 1024 * 1024

    // Reverse (device): a small window to start with; it grows on a long path while data
    // moves (512 KiB: 2 x 20 Mbit/s at 100 ms) and shrinks back when the stream idles.
    public static let reverseMaxStreams = MuxLimits.defaultMaxStreamsDevice
    public static let reverseWindow = 64 * 1024
    public static let reverseMaxWindow = 512 * 1024
    /// The most `--memory-budget` accepts (the least: one stream at the role's base window).
    public static let memoryBudgetMax = 1024 * 1024 * 1024
    /// Device: streams whose end-to-end session has not yet authorized its forward, in all
    /// (the rest of the 128 stay for authorized operators) ...
    public static let reverseMaxUnauthorizedStreams = 32
    /// ... and from one forward ID.
    public static let reverseMaxUnauthorizedPerForward = 8
    /// Device: a forward must be authorized within this (the end-to-end handshake's own
    /// timeout, 10 s, covers the target request and answer after it).
    public static let reverseAuthTimeoutMs: Int64 = 5_000
    /// Device: streams of one forward that may end before authorization at once (refused,
    /// failed, timed out, reset) ...
    public static let reverseStrikeBurst = 16
    /// ... and per second after that; beyond, its OPENs are refused before any TLS work.
    public static let reverseStrikesPerSecond = 1
    /// Device: forwards whose strikes are remembered.
    public static let reverseTrackedForwards = 64
    /// Device: a forward authorized this recently is not held to the limits of streams
    /// before authorization (a failed stream makes it unknown again).
    public static let reverseKnownForwardMs: Int64 = 3_600_000
    /// Device: names being resolved at once (each in a thread of its own, off the loop);
    /// a stream beyond is refused with `no_resources`.
    public static let reverseMaxResolving = 4

    // SNI routing (relay)
    /// A public client must send its whole ClientHello within this.
    public static let sniHelloTimeoutMs: Int64 = 5_000
    /// Public connections still sending their ClientHello.
    public static let sniMaxPending = 256
    /// Public connections routed by SNI, in all.
    public static let sniMaxConnections = 1024
    /// Of the pending ones, from one source address (IPv6: its /64).
    public static let sniMaxPendingPerSource = 16
    /// Of all public connections, from one source address (IPv6: its /64).
    public static let sniMaxConnectionsPerSource = 64
    /// Public connections routed to one device at once: the rest of the device's
    /// streams (128 by default) stay free for operators.
    public static let sniMaxStreamsPerDevice = 64
    /// A routed public connection with no bytes either way for this long is closed.
    public static let sniIdleTimeoutMs: Int64 = 120_000

    // Metrics endpoint (relay --metrics)
    /// A scrape must send its request within this.
    public static let metricsTimeoutMs: Int64 = 5_000
    /// Scrapes served at once.
    public static let metricsMaxConnections = 8
    /// Of those, from one source address.
    public static let metricsMaxConnectionsPerSource = 4

    /// Unsent bytes the kernel may hold on a tunnel socket (TCP_NOTSENT_LOWAT): more
    /// waits in our queues, where small messages can pass bulk ones. Bytes in flight
    /// on the network are not counted, so this does not limit throughput on long paths.
    public static let tunnelNotSentLowWater: Int32 = 32 * 1024

    /// Plaintext staging per spliced TCP connection and direction.
    public static let spliceBuffer = 16 * 1024
    /// listen() backlog of the relay's and the forward's listening sockets.
    public static let maxListenBacklog: Int32 = 128

    // Log rate limits (RateLimit): repeated events from one source, such as failed
    // handshakes, refused targets or SNI garbage, write at most a burst of lines per
    // window; the number dropped goes with the next line that is written.
    /// Lines per window for one kind of event.
    public static let logBurst = 10
    /// The window.
    public static let logWindowMs: Int64 = 10_000
    /// Relay: `agent_admitted` and `tunnel_down` lines per window (a fleet reconnecting
    /// after an outage makes many at once; beyond this they are counted, not written).
    public static let tunnelLogBurst = 100
    /// `relay_unreachable` while an agent keeps failing to reach its relay: lines per window.
    public static let unreachableLogBurst = 5
    /// Its window.
    public static let unreachableLogWindowMs: Int64 = 60_000

    // Enrollment tokens (`agent token`)
    /// Distinct keys a token not bound to a device may enrol when `--uses` is not given.
    public static let tokenDefaultUses = 1
    /// Largest `--uses`.
    public static let tokenMaxUses = 1000
}
