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
    var phase: Phase
    var dev: RelayConn? = nil
    var hostname = ""
    var closed = false

    init(serial: UInt64, fd: Int32, peer: SocketAddress, now: Instant) {
        self.serial = serial
        self.peer = peer
        splice = RawSplice(streamID: 0, fd: fd, label: peer.text, buffer: ByteQueue(capacity: ClientHelloSNI.maxBytes))
        phase = .hello(deadline: now.adding(ms: Limits.sniHelloTimeoutMs))
        splice.readEarly = true
    }

    var isPending: Bool {
        if case .hello = phase { return true }
        return false
    }

    var deadline: Instant? {
        if case .hello(let d) = phase { return d }
        return nil
    }
}
