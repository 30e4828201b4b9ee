import Crypto
import E2E
import Loop
import Mux
import Wire

/// One TCP connection spliced to one multiplexed stream through an end-to-end
/// session: the forward's client connection, or the reverse's target connection.
///
///     local socket -> fromLocal -> e2e.write -> e2e.outbound -> mux DATA ->
///     <- toLocal <- e2e.read <- e2e.inbound <- mux receive buffer <-
///
/// Backpressure end to end: the socket is read only while `fromLocal` has room,
/// which drains only while the session's outbound queue has room, which drains
/// only while the stream has credit. Each direction ends on its own: local EOF
/// -> close_notify -> FIN; the peer's close_notify -> shutdown(SHUT_WR) once
/// everything before it was written.
final class Splice {
    let streamID: UInt32
    var fd: Int32 = -1
    let e2e: E2ESession
    let toLocal: ByteQueue
    let fromLocal: ByteQueue
    /// Who is on the local end, for logs ("127.0.0.1:51234" or the target).
    var label: String
    var established = false
    var localEOF = false
    var localShut = false
    var localError: Int32? = nil
    /// The local socket refused more bytes; retried once poll() says it is writable.
    var localWriteBlocked = false
    var closeNotifyQueued = false
    var finQueued = false
    var transportEndSignaled = false
    /// Set when the stream is finished with and only the local side needs closing.
    var abandoned = false
    var dirty = true
    var bytesToLocal: UInt64 = 0
    var bytesFromLocal: UInt64 = 0

    // Reverse only: connecting to the target.
    var connectDeadline: Instant? = nil
    var connectReady = false
    var target: HostPort? = nil
    /// Reverse only: after a refusal, when to give up waiting for the forward to close.
    var lingerDeadline: Instant? = nil
    /// Device side, until the session authorized its forward: the place it holds and the
    /// deadline for authorization (`PreAuth`).
    var preAuth: PreAuth? = nil
    /// Device side: `fd` is the pipe of a name being resolved (Resolver), not yet the target's socket.
    var resolving = false
    var authDeadline: Instant? = nil

    init(streamID: UInt32, e2e: E2ESession, label: String, bufferSize: Int = Limits.spliceBuffer) {
        self.streamID = streamID
        self.e2e = e2e
        self.label = label
        toLocal = ByteQueue(capacity: bufferSize)
        fromLocal = ByteQueue(capacity: bufferSize)
    }

    deinit { closeLocal() }

    func closeLocal(abort: Bool = false) {
        if fd >= 0 {
            if abort { Socket.abort(fd) } else { Socket.close(fd) }
            fd = -1
        }
    }

    /// Poll interest for the local socket.
    var interest: PollEvents {
        guard fd >= 0 else { return [] }
        if resolving { return .read }
        if connectDeadline != nil { return .write }
        var e: PollEvents = []
        if established && !localEOF && localError == nil && fromLocal.freeSpace > 0 { e.insert(.read) }
        if !toLocal.isEmpty && localError == nil { e.insert(.write) }
        return e
    }

    /// Socket I/O on readiness (never closes anything).
    func ready(_ events: PollEvents) {
        dirty = true
        if resolving || connectDeadline != nil {
            connectReady = true
            return
        }
        if events.contains(.read) { readLocal() }
        if events.contains(.write) {
            localWriteBlocked = false
            writeLocal()
        }
    }

    func readLocal() {
        guard fd >= 0, established, !localEOF, localError == nil else { return }
        let (n, end) = SocketQueue.fill(fd, fromLocal)
        bytesFromLocal += UInt64(n)
        if end == .eof { localEOF = true }
        if case .failed(let e) = end { localError = e }
    }

    func writeLocal() {
        guard fd >= 0, localError == nil, !localWriteBlocked else { return }
        let (n, end) = SocketQueue.drain(fd, toLocal)
        bytesToLocal += UInt64(n)
        if case .failed(let e) = end { localError = e }
        if !toLocal.isEmpty { localWriteBlocked = true }
    }

    /// A fingerprint of everything a pump can change: equal before and after means no progress.
    func fingerprint(_ mux: Mux) -> Int {
        var h = e2e.inbound.count &* 3 &+ e2e.outbound.count &* 5 &+ toLocal.count &* 7 &+ fromLocal.count &* 11
        h = h &+ Int(truncatingIfNeeded: bytesToLocal &* 13 &+ bytesFromLocal &* 17)
        h = h &+ (mux.receiveBuffer(streamID)?.count ?? -1) &* 19
        h = h &+ (closeNotifyQueued ? 23 : 0) &+ (finQueued ? 29 : 0) &+ (localShut ? 31 : 0) &+ (established ? 37 : 0)
        return h
    }

    /// Moves bytes between the stream, the session and the local socket, and
    /// hands session events to `onEvent`. Call whenever something changed.
    /// Returns true if anything moved.
    @discardableResult
    func pump(_ mux: Mux, now: Instant, onEvent: (E2EEvent) -> Void) -> Bool {
        let before = fingerprint(mux)
        pumpOnce(mux, now: now, onEvent: onEvent)
        return fingerprint(mux) != before
    }

    func pumpOnce(_ mux: Mux, now: Instant, onEvent: (E2EEvent) -> Void) {
        // stream -> session
        if let rb = mux.receiveBuffer(streamID) {
            if !rb.isEmpty {
                let n = e2e.inbound.append(rb.readable)
                rb.consume(n)
            }
            if rb.isEmpty && !transportEndSignaled, let info = mux.info(streamID), info.finReceived {
                transportEndSignaled = true
                e2e.transportEnded()
            }
        }
        var guardCount = 0
        while guardCount < 16 {
            guardCount += 1
            let ev = e2e.advance(now: now)
            if ev == .none { break }
            if ev == .established { established = true }
            onEvent(ev)
        }
        if established && !abandoned {
            // session -> local
            while toLocal.freeSpace > 0 && !e2e.peerClosed {
                let r = e2e.read(into: toLocal.writable())
                if case .bytes(let n) = r {
                    toLocal.commit(n)
                } else {
                    break
                }
            }
            writeLocal()
            if e2e.peerClosed && toLocal.isEmpty && !localShut && fd >= 0 && localError == nil {
                Socket.shutdownWrite(fd)
                localShut = true
            }
            // local -> session
            if !fromLocal.isEmpty {
                if case .bytes(let n) = e2e.write(fromLocal.readable) { fromLocal.consume(n) }
            }
            if localEOF && fromLocal.isEmpty && !closeNotifyQueued {
                closeNotifyQueued = e2e.closeWrite()
            }
        }
        // session -> stream
        if !e2e.outbound.isEmpty {
            let n = mux.send(streamID, e2e.outbound.readable)
            if n > 0 { e2e.outbound.consume(n) }
        }
        if closeNotifyQueued && e2e.outbound.isEmpty && !finQueued {
            mux.finish(streamID)
            finQueued = true
        }
    }

    /// Whether a pump could do anything: readiness or a stream event since the last
    /// one (`dirty`), bytes waiting to move, or a deadline due. Idle streams are
    /// skipped, so a turn costs what moves, not the number of streams.
    func needsPump(_ now: Instant) -> Bool {
        if dirty || abandoned || !e2e.outbound.isEmpty { return true }
        if established && (!fromLocal.isEmpty || (!toLocal.isEmpty && !localWriteBlocked)) { return true }
        if closeNotifyQueued && !finQueued { return true }
        for d in [e2e.deadline, connectDeadline, lingerDeadline] {
            if let d = d, now >= d { return true }
        }
        return false
    }

    /// Little waiting to go out (less than one record): served before bulk streams.
    var isLight: Bool { e2e.outbound.count + fromLocal.count < 4096 }

    /// Both directions ended cleanly and everything was delivered.
    func isComplete(_ mux: Mux) -> Bool {
        guard let info = mux.info(streamID) else { return false }
        return finQueued && info.finSent && info.finReceived && e2e.peerClosed && toLocal.isEmpty && (localShut || fd < 0)
    }
}
