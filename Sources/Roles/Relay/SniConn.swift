import Loop
import Mux
import Wire

/// A public TLS connection to the relay's SNI listener: the relay reads the
/// ClientHello only to learn the server name, opens a stream to the device
/// that claimed it, sends the ClientHello and then the raw bytes both ways.
/// The TLS session is the client's and the device's: the relay holds no key.
final class SniConn {
    enum Phase {
        case hello(deadline: Instant)
        case opening
        case open
    }

    let serial: UInt64
    let peer: SocketAddress
    let splice: RawSplice
    /// Leaving `.hello` gives back the place among the pending public connections.
    var phase: Phase {
        didSet { if !isPending { pendingTicket.leave() } }
    }
    /// Places held among the public connections still in their ClientHello, and among all of them.
    let pendingTicket: Gate.Ticket
    let connectionTicket: Gate.Ticket
    /// Routed: bytes seen either way at the last check, and when they last changed (idle timeout).
    var lastBytes: UInt64 = 0
    var lastActive: Instant
    var dev: RelayConn? = nil
    var hostname = ""
    var closed = false

    init(serial: UInt64, stream: ByteStream, peer: SocketAddress, pendingTicket: Gate.Ticket, connectionTicket: Gate.Ticket,
         now: Instant) {
        self.serial = serial
        self.peer = peer
        self.pendingTicket = pendingTicket
        self.connectionTicket = connectionTicket
        lastActive = now
        splice = RawSplice(streamID: 0, stream: stream, label: peer.text, buffer: ByteQueue(capacity: ClientHelloSNI.maxBytes))
        phase = .hello(deadline: now.adding(ms: Limits.sniHelloTimeoutMs))
        splice.readEarly = true
    }

    var isPending: Bool {
        if case .hello = phase { return true }
        return false
    }

    /// The ClientHello's deadline, then the idle timeout.
    var deadline: Instant? {
        if case .hello(let d) = phase { return d }
        return lastActive.adding(ms: Limits.sniIdleTimeoutMs)
    }

    /// Notes bytes moved since the last call; true if the connection has been idle too long.
    func idleExpired(now: Instant) -> Bool {
        let total = splice.bytesIn + splice.bytesOut
        if total != lastBytes {
            lastBytes = total
            lastActive = now
        }
        return now >= lastActive.adding(ms: Limits.sniIdleTimeoutMs)
    }
}
