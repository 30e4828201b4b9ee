import Loop
import Mux
import Wire

/// A TCP connection spliced to a multiplexed stream as is, with no end-to-end
/// session: SNI routing, where the public client's own TLS runs end to end to
/// the device's HTTPS service (the relay's SNI listener on one side, the
/// device's `--sni-target` on the other).
///
///     socket -> fromLocal -> mux DATA ->        (only once `canSend`)
///     socket <- mux receive buffer <-           (written straight from the stream's buffer)
///
/// Backpressure as in `Splice`: read only while `fromLocal` has room; the
/// stream's window only reopens as the socket takes the bytes. Each direction
/// ends on its own (EOF -> FIN; FIN -> shutdown(SHUT_WR)).
final class RawSplice {
    /// Set once the stream exists (the relay reads a ClientHello before it opens one).
    var streamID: UInt32
    let stream: ByteStream
    let fromLocal: ByteQueue
    var label: String
    /// The stream may carry our bytes (the peer accepted it / the target connected).
    var canSend = false
    /// Read the socket before the stream can carry bytes (the relay reads the
    /// ClientHello to route it; the buffer bounds how much).
    var readEarly = false
    var localEOF = false
    var localShut = false
    var localError: Int32? = nil
    /// The socket refused more bytes; retried once poll() says it is writable.
    var writeBlocked = false
    var finQueued = false
    /// Bytes for the socket are waiting in the stream's receive buffer.
    var pendingOut = false
    var dirty = true
    var connectDeadline: Instant? = nil
    var connectReady = false
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0

    convenience init(streamID: UInt32, fd: Int32, label: String, buffer: ByteQueue) {
        self.init(streamID: streamID, stream: SocketStream(fd: fd), label: label, buffer: buffer)
    }

    init(streamID: UInt32, stream: ByteStream, label: String, buffer: ByteQueue) {
        self.streamID = streamID
        self.stream = stream
        self.label = label
        self.fromLocal = buffer
    }

    deinit { closeLocal() }

    func closeLocal(abort: Bool = false) { stream.close(abort: abort) }

    var fd: Int32 { stream.fd }

    var connected: Bool { fd >= 0 && connectDeadline == nil }

    var interest: PollEvents {
        guard fd >= 0 else { return [] }
        if connectDeadline != nil { return .write }
        var e: PollEvents = []
        if (canSend || readEarly) && !localEOF && localError == nil && fromLocal.freeSpace > 0 { e.insert(.read) }
        if pendingOut && localError == nil { e.insert(.write) }
        return e
    }

    func ready(_ events: PollEvents) {
        dirty = true
        if connectDeadline != nil {
            connectReady = true
            return
        }
        if events.contains(.read) { readLocal() }
        if events.contains(.write) { writeBlocked = false }
    }

    func readLocal() {
        guard fd >= 0, !localEOF, localError == nil else { return }
        let (n, end) = stream.fill(fromLocal)
        bytesIn += UInt64(n)
        if end == .eof { localEOF = true }
        if case .failed(let e) = end { localError = e }
    }

    /// Moves bytes both ways. Returns true if anything moved.
    @discardableResult
    func pump(_ mux: Mux) -> Bool {
        var moved = false
        if connected, let rb = mux.receiveBuffer(streamID) {
            if localError == nil && !writeBlocked {
                let (n, end) = stream.drain(rb)
                bytesOut += UInt64(n)
                if n > 0 { moved = true }
                if case .failed(let e) = end { localError = e }
                if !rb.isEmpty { writeBlocked = true }
            }
            pendingOut = !rb.isEmpty
            if rb.isEmpty && !localShut, let info = mux.info(streamID), info.finReceived {
                stream.shutdownWrite()
                localShut = true
                moved = true
            }
        }
        if canSend {
            if !fromLocal.isEmpty {
                let n = mux.send(streamID, fromLocal.readable)
                if n > 0 {
                    fromLocal.consume(n)
                    moved = true
                }
            }
            if localEOF && fromLocal.isEmpty && !finQueued {
                mux.finish(streamID)
                finQueued = true
                moved = true
            }
        }
        return moved
    }

    func isComplete(_ mux: Mux) -> Bool {
        guard let info = mux.info(streamID) else { return false }
        return finQueued && info.finSent && info.finReceived && info.buffered == 0 && localShut
    }
}
