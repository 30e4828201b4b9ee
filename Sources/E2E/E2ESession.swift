import Crypto
import Wire

/// What `E2ESession.advance` reports. Each is reported once; `.none` means nothing
/// new happened (call again after more input, drained output, `answer`, or time).
public enum E2EEvent: Equatable {
    case none
    /// Server: the forward asked for this target. Check it, connect, then `answer`.
    case targetRequested(HostPort)
    /// Both sides: stream bytes may flow (`read`, `write`).
    case established
    /// Client: the reverse refused the target. Server: our refusal and close_notify
    /// are in `outbound`; drain it, then end the stream.
    case refused(Reason)
    /// The session is over (see `E2EFailure`). Drain nothing more; end the stream.
    case failed(E2EFailure)
}

/// Why a session failed. Safe to log: IDs and codes only, never key material.
public enum E2EFailure: Error, Equatable {
    /// mbedTLS failed (an mbedTLS error code), in the handshake or later on a record:
    /// a tampered, dropped, replayed or reordered record ends up here.
    case handshake(Int32)
    /// Client: the server's key is not the device ID we asked for (a relay
    /// substituting keys?). `presented` is the ID of the key it proved.
    case deviceMismatch(presented: AgentID?)
    /// Server: the forward's key is not admitted. The role closes the stream
    /// without telling the peer which check failed.
    case unauthorized(AgentID?)
    /// A malformed target request or answer, bytes sent before the answer, or a
    /// close_notify where a request or answer was due.
    case protocolError
    /// Handshake, request and answer did not finish within the handshake timeout.
    case timeout
    /// The mux stream ended (`transportEnded`) without the peer's close_notify.
    case truncated

    /// The code `read`/`write` return with `.failed` once the session failed:
    /// mbedTLS's (negative) code for `handshake` and `truncated`, small positive
    /// numbers for failures of this layer.
    public var code: Int32 {
        switch self {
        case .handshake(let c): return c
        case .truncated: return TLSSession.truncationError
        case .deviceMismatch: return 1
        case .unauthorized: return 2
        case .protocolError: return 3
        case .timeout: return 4
        }
    }

    /// How logs name it, on both sides (`stream_failed ... error=...`): one word, with the
    /// detail that helps in brackets (mbedTLS's code, the key the device presented).
    public var text: String {
        switch self {
        case .handshake(let e): return "tls_error(mbedtls=-0x" + String(-Int(e), radix: 16) + ")"
        case .deviceMismatch(let p): return "device_mismatch(presented=" + (p?.text ?? "none") + ")"
        case .unauthorized: return "unauthorized"
        case .protocolError: return "protocol_error"
        case .timeout: return "timeout"
        case .truncated: return "truncated"
        }
    }
}

/// Where a session stands (`E2ESession.phase`).
public enum E2EPhase: Equatable {
    case handshaking
    /// Server: the forward is admitted; its target request has not arrived yet.
    case awaitingRequest
    /// Client: the request is (being) sent, the answer has not arrived.
    /// Server: `.targetRequested` was reported; waiting for `answer` or for it to be sent.
    case awaitingAnswer
    case established
    /// The target was refused (client: by the reverse; server: by us). Final.
    case refused(Reason)
    /// Final.
    case failed(E2EFailure)
}

/// The end-to-end TLS session of one multiplexed stream, sans-IO: ciphertext in
/// (`inbound`) and out (`outbound`), `now` as an argument, no sockets, no clock.
///
/// The forward is the TLS client, the reverse the server; both present their
/// identity certificates. State machine (one `State` case per step; the states
/// after the handshake carry a `PeerProof`, which only `PeerCheck` can make):
///
///     client: handshaking -> [device check] -> sendingRequest -> awaitingAnswer
///                 -> established | refused(reason)
///     server: handshaking -> [authorize] -> awaitingRequest -> requested
///                 --answer()--> answering -> established | refused(reason)
///     any state before established -> failed(timeout) at `deadline`
///     any state -> failed(...) on a TLS error, a failed check, a protocol error,
///                  or a transport end without close_notify
///
/// Calling convention for the role, per stream:
///   1. create the session and call `advance(now:)` (the client's first flight
///      goes into `outbound`);
///   2. append the mux DATA payloads to `inbound` (two-phase `writable`/`commit` or
///      `append`), call `advance(now:)` until `.none`, send `outbound` as DATA and
///      consume it; call `advance` again after draining `outbound`, after `answer`,
///      and at `deadline`;
///   3. once `.established`: `read`/`write` plaintext; `closeWrite()` when the local
///      side ends; `peerClosed` when the peer did; `transportEnded()` on the mux FIN.
///
/// Failures are sticky: the first is reported once by `advance`, `phase` keeps it,
/// and `read`/`write` return `.failed(failure.code)` from then on.
///
/// Memory per session is fixed: the two ciphertext queues, mbedTLS's record
/// buffers, and a `TargetRequest.maxSize` scratch buffer for the request.
public final class E2ESession {
    public enum Side { case client, server }

    enum State {
        case handshaking
        /// Client: the device check passed; the request is being written.
        case sendingRequest(PeerProof)
        /// Client: the whole request is in `outbound`.
        case awaitingAnswer(PeerProof)
        /// Server: the forward is admitted; collecting the request in `scratch`.
        case awaitingRequest(PeerProof)
        /// Server: `.targetRequested` reported; waiting for `answer`.
        case requested(PeerProof)
        /// Server: `answer` called; writing the status byte (and, for a refusal, close_notify).
        case answering(PeerProof, refusal: Reason?, statusWritten: Bool)
        case established(PeerProof)
        case refused(Reason)
        case failed(E2EFailure)
    }

    public let side: Side
    let tls: TLSSession
    let client: E2EClient?
    let server: E2EServer?
    /// Client: the device asked for.
    let device: AgentID?
    /// Client: the target asked for. Server: the target the forward asked for, once read.
    public private(set) var target: HostPort?
    let started: Instant
    let timeoutMs: Int64
    var state: State = .handshaking
    /// The terminal event (`refused`/`failed`) was returned by `advance`.
    var terminalReported = false
    /// `.established` was returned by `advance`.
    var establishedReported = false
    /// `closeWrite` was called: send close_notify once established.
    var closeRequested = false
    var transportDone = false
    /// Client: a saved session was offered.
    var offeredSession = false
    /// The request: client = encoded request (`scratchCount` bytes, `scratchSent` of
    /// them written); server = bytes received so far (`scratchCount`).
    /// Invariant: 0 <= scratchSent <= scratchCount <= TargetRequest.maxSize = scratch.count.
    var scratch: [UInt8]
    var scratchCount = 0
    var scratchSent = 0

    public private(set) var peerID: AgentID? = nil
    public private(set) var grant: E2EGrant? = nil
    /// This session skipped the public-key work (valid after the handshake).
    public private(set) var resumed = false
    /// Client: when this session's full handshake ended, until its ticket is saved.
    var fullHandshakeAt: Instant?

    /// Forward side: a session to `device`, asking for `target`. Offers a saved session
    /// for `device` if the client has an unexpired one. `target` MUST have a port and
    /// a host of 1...253 bytes that `TargetRequest.isHostByte` accepts (what
    /// `HostPort.parse` without wildcard gives).
    public init(client: E2EClient, device: AgentID, target: HostPort, now: Instant) throws(CryptoError) {
        side = .client
        tls = try TLSSession(config: client.config, inboundCapacity: client.inboundCapacity,
                             outboundCapacity: client.outboundCapacity)
        self.client = client
        server = nil
        self.device = device
        self.target = target
        started = now
        timeoutMs = client.handshakeTimeoutMs
        scratch = [UInt8](repeating: 0, count: TargetRequest.maxSize)
        let n = scratch.withUnsafeMutableBytes { TargetRequest.encode(target, into: $0) }
        guard let n = n else { preconditionFailure("E2ESession: target cannot be sent (no port or bad host)") }
        scratchCount = n
        if let saved = client.savedSession(for: device, now: now) {
            tls.resume(saved)
            offeredSession = true
        }
    }

    /// Reverse side: a session for a stream a forward opened.
    public init(server: E2EServer, now: Instant) throws(CryptoError) {
        side = .server
        tls = try TLSSession(config: server.config, inboundCapacity: server.inboundCapacity,
                             outboundCapacity: server.outboundCapacity)
        client = nil
        self.server = server
        device = nil
        target = nil
        started = now
        timeoutMs = server.handshakeTimeoutMs
        scratch = [UInt8](repeating: 0, count: TargetRequest.maxSize)
    }

    // MARK: - Queues and status

    /// Ciphertext from the peer: the role appends mux DATA payloads here.
    public var inbound: ByteQueue { tls.inbound }
    /// Ciphertext for the peer: the role sends it as mux DATA and consumes it.
    public var outbound: ByteQueue { tls.outbound }

    public var phase: E2EPhase {
        switch state {
        case .handshaking: return .handshaking
        case .sendingRequest, .awaitingAnswer: return .awaitingAnswer
        case .awaitingRequest: return .awaitingRequest
        case .requested, .answering: return .awaitingAnswer
        case .established: return .established
        case .refused(let r): return .refused(r)
        case .failed(let f): return .failed(f)
        }
    }

    /// When the current phase times out: `started + handshake timeout` until
    /// established; nil once established, refused or failed.
    public var deadline: Instant? {
        switch state {
        case .handshaking, .sendingRequest, .awaitingAnswer, .awaitingRequest, .requested, .answering:
            return started.adding(ms: timeoutMs)
        case .established, .refused, .failed:
            return nil
        }
    }

    /// True while the session can use more ciphertext from the peer (for read
    /// interest and mux credit).
    public var wantsInput: Bool {
        switch state {
        case .refused, .failed: return false
        default: return tls.wantsInput
        }
    }

    /// The peer's close_notify was read: it sends nothing more.
    public var peerClosed: Bool { tls.peerClosed }
    /// Our close_notify is in `outbound`: we send nothing more.
    public var sentClose: Bool { tls.sentClose }

    /// Established, and `read` can return bytes (or the close) without new input.
    public var hasBufferedInput: Bool {
        if case .established = state { return tls.hasBufferedInput }
        return false
    }

    /// The negotiated cipher suite ("none" before the handshake).
    public var ciphersuite: String { tls.ciphersuite }

    /// The mux stream's FIN arrived: the peer sends no more ciphertext. Once what
    /// is buffered is used up, a session without the peer's close_notify fails
    /// with `.truncated`.
    public func transportEnded() {
        transportDone = true
        tls.transportEOF()
    }

    // MARK: - Driving

    /// Moves the session forward with the bytes in `inbound` and the room in
    /// `outbound`, and checks the deadline. Returns each event once; `.none` when
    /// nothing new happened. Call it again until it returns `.none`.
    public func advance(now: Instant) -> E2EEvent {
        while true {
            switch state {
            case .refused(let r):
                if terminalReported { return .none }
                terminalReported = true
                return .refused(r)

            case .failed(let f):
                if terminalReported { return .none }
                terminalReported = true
                return .failed(f)

            case .handshaking:
                switch tls.handshake() {
                case .needIO: return waiting(now)
                case .failed(let c): return fail(tlsFailure(c))
                case .done: if let e = handshakeDone(now) { return e }
                }

            case .sendingRequest(let proof):
                let r = scratch.withUnsafeBytes { tls.write(UnsafeRawBufferPointer(rebasing: $0[scratchSent..<scratchCount])) }
                switch r {
                case .bytes(let n):
                    scratchSent += n
                    if scratchSent == scratchCount { state = .awaitingAnswer(proof) }
                case .needIO: return waiting(now)
                case .failed(let c): return fail(tlsFailure(c))
                }

            case .awaitingAnswer(let proof):
                var status: UInt8 = 0
                let r = withUnsafeMutableBytes(of: &status) { tls.read(into: $0) }
                saveTicketedSession()
                switch r {
                case .bytes:
                    if status == TargetRequest.answerOK {
                        state = .established(proof)  // reported below
                        continue
                    }
                    let reason = Reason.from(status)
                    state = .refused(reason)
                    terminalReported = true
                    tls.sendCloseNotify()  // best effort: the server already ended its side
                    return .refused(reason)
                case .needIO: return waiting(now)
                case .closed: return fail(.protocolError)  // closed without an answer
                case .failed(let c): return fail(tlsFailure(c))
                }

            case .awaitingRequest(let proof):
                let progress = scratch.withUnsafeBytes { TargetRequest.parse(UnsafeRawBufferPointer(rebasing: $0[0..<scratchCount])) }
                switch progress {
                case .malformed:
                    return fail(.protocolError)
                case .complete(let hostPort):
                    if let e = rejectEarlyData() { return e }
                    target = hostPort
                    state = .requested(proof)
                    return .targetRequested(hostPort)
                case .needMore(let total):
                    let r = scratch.withUnsafeMutableBytes {
                        tls.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[scratchCount..<total]))
                    }
                    switch r {
                    case .bytes(let n): scratchCount += n
                    case .needIO: return waiting(now)
                    case .closed: return fail(.protocolError)  // closed before the request was complete
                    case .failed(let c): return fail(tlsFailure(c))
                    }
                }

            case .requested:
                if let e = rejectEarlyData() { return e }
                return waiting(now)

            case .answering:
                writeAnswer()
                if case .answering = state { return waiting(now) }

            case .established:
                if !establishedReported {
                    establishedReported = true
                    sendDeferredClose()
                    return .established
                }
                sendDeferredClose()
                if case .failed(let c) = tls.status { return fail(tlsFailure(c)) }
                if transportDone && !tls.peerClosed && !tls.hasBufferedInput { return fail(.truncated) }
                return .none
            }
        }
    }

    /// Server only, after `.targetRequested`: nil = the target is connected, stream
    /// bytes may flow; otherwise the refusal to send (then close_notify). The answer
    /// (and for a refusal the close_notify) goes into `outbound` at once when there is
    /// room, else at the next `advance`; `advance` then reports `.established` or
    /// `.refused`. Ignored if the session already ended (e.g. it timed out while the
    /// role was connecting).
    public func answer(_ refusal: Reason?) {
        precondition(side == .server, "answer() is for the server side")
        switch state {
        case .requested(let proof):
            state = .answering(proof, refusal: refusal, statusWritten: false)
            // Queue it now if `outbound` has room, so a role that waits for `outbound`
            // to drain before ending the stream never ends it ahead of the answer.
            writeAnswer()
        case .refused, .failed:
            return
        case .handshaking, .sendingRequest, .awaitingAnswer, .awaitingRequest, .answering, .established:
            preconditionFailure("answer() without a pending .targetRequested")
        }
    }

    // MARK: - Stream bytes (established)

    /// Decrypts stream bytes into `into`. `.needIO` before established and when
    /// more ciphertext is needed; `.closed` once the peer's close_notify was read;
    /// `.failed(code)` once the session failed or was refused (the failure is then
    /// also reported by the next `advance`).
    public func read(into: UnsafeMutableRawBufferPointer) -> TLSSession.ReadResult {
        switch state {
        case .established:
            let r = tls.read(into: into)
            saveTicketedSession()
            if case .failed(let c) = r { enterFailure(tlsFailure(c)) }
            return r
        case .failed(let f): return .failed(f.code)
        case .refused: return .failed(E2ESession.refusedCode)
        case .handshaking, .sendingRequest, .awaitingAnswer, .awaitingRequest, .requested, .answering:
            return .needIO
        }
    }

    /// Encrypts as much of `data` as fits in `outbound` (whole records only).
    /// `.needIO` before established and when `outbound` is full. MUST NOT be
    /// called after `closeWrite`.
    public func write(_ data: UnsafeRawBufferPointer) -> TLSSession.WriteResult {
        switch state {
        case .established:
            precondition(!closeRequested, "E2ESession.write after closeWrite")
            let r = tls.write(data)
            if case .failed(let c) = r { enterFailure(tlsFailure(c)) }
            return r
        case .failed(let f): return .failed(f.code)
        case .refused: return .failed(E2ESession.refusedCode)
        case .handshaking, .sendingRequest, .awaitingAnswer, .awaitingRequest, .requested, .answering:
            return .needIO
        }
    }

    /// Ends our direction with close_notify (an authenticated half-close: the peer
    /// reads every byte written before it, then `.closed`). Returns false if
    /// `outbound` had no room: drain it and call again. Before established the close
    /// is remembered and sent on establishment (returns true). After a refusal or
    /// failure there is nothing to close (returns true).
    @discardableResult
    public func closeWrite() -> Bool {
        switch state {
        case .established:
            closeRequested = true
            if tls.sentClose { return true }
            let ok = tls.sendCloseNotify()
            if case .failed(let c) = tls.status { enterFailure(tlsFailure(c)) }
            return ok
        case .handshaking, .sendingRequest, .awaitingAnswer, .awaitingRequest, .requested, .answering:
            closeRequested = true
            return true
        case .refused, .failed:
            return true
        }
    }

    /// The code `read`/`write` return after a refusal.
    public static let refusedCode: Int32 = 5

    // MARK: - Internals

    /// Client: once a full handshake's session ticket has arrived, saves the session
    /// for resumption (dated by that handshake).
    func saveTicketedSession() {
        guard let at = fullHandshakeAt, tls.ticketsReceived > 0, let c = client, let d = device else { return }
        fullHandshakeAt = nil
        if let saved = tls.saveSession() { c.save(saved, for: d, now: at) }
    }

    /// The handshake finished: check the peer, then move to the request step.
    /// Returns an event to report, or nil to keep going.
    func handshakeDone(_ now: Instant) -> E2EEvent? {
        resumed = tls.peerCertificateDER != nil && !tls.sawPeerCertificate
        switch side {
        case .client:
            let c = client!
            switch PeerCheck.device(tls, expected: device!) {
            case .failure(let f):
                c.forgetSession(device: device!)
                return fail(f)
            case .success(let proof):
                accept(proof)
                // Save after a full handshake only: resuming keeps the entry's age, so
                // keys are renewed when it expires. TLS 1.3 sends the ticket after the
                // handshake: the session is saved when `read` has seen it.
                if !resumed { fullHandshakeAt = now }
                state = .sendingRequest(proof)
            }
        case .server:
            switch PeerCheck.authorize(tls, server!.authorization) {
            case .failure(let f): return fail(f)
            case .success(let proof):
                accept(proof)
                state = .awaitingRequest(proof)
            }
        }
        return nil
    }

    /// Server, `.answering`: writes the status byte, then (refusal) close_notify, as
    /// far as `outbound` has room; moves to `.established`, `.refused` or `.failed`
    /// when done. Events are left for `advance` to report.
    func writeAnswer() {
        guard case .answering(let proof, let refusal, let statusWritten) = state else { return }
        if !statusWritten {
            var status = TargetRequest.answerByte(refusal)
            let r = withUnsafeBytes(of: &status) { tls.write($0) }
            switch r {
            case .bytes: break
            case .needIO: return
            case .failed(let c):
                enterFailure(tlsFailure(c))
                return
            }
            state = .answering(proof, refusal: refusal, statusWritten: true)
        }
        guard let reason = refusal else {
            state = .established(proof)
            return
        }
        if !tls.sendCloseNotify() { return }
        if case .failed(let c) = tls.status {
            enterFailure(tlsFailure(c))
            return
        }
        state = .refused(reason)
    }

    func accept(_ proof: PeerProof) {
        peerID = proof.id
        grant = proof.grant
    }

    /// Server, between the request and the answer: the client MUST NOT send
    /// anything, so one byte of plaintext here is a protocol error. A close_notify
    /// is allowed (the forward's client may have nothing to send).
    func rejectEarlyData() -> E2EEvent? {
        var probe: UInt8 = 0
        let r = withUnsafeMutableBytes(of: &probe) { tls.read(into: $0) }
        switch r {
        case .bytes: return fail(.protocolError)
        case .needIO, .closed: return nil
        case .failed(let c): return fail(tlsFailure(c))
        }
    }

    func sendDeferredClose() {
        if closeRequested && !tls.sentClose {
            _ = tls.sendCloseNotify()
        }
    }

    /// Nothing more to do now: time out if the deadline has passed.
    func waiting(_ now: Instant) -> E2EEvent {
        if let d = deadline, now >= d { return fail(.timeout) }
        return .none
    }

    func tlsFailure(_ code: Int32) -> E2EFailure {
        code == TLSSession.truncationError ? .truncated : .handshake(code)
    }

    /// Records `f` (unless already ended) and reports it now.
    func fail(_ f: E2EFailure) -> E2EEvent {
        enterFailure(f)
        if terminalReported { return .none }
        terminalReported = true
        if case .failed(let first) = state { return .failed(first) }
        return .none
    }

    /// Records `f` as the session's failure; the next `advance` reports it.
    func enterFailure(_ f: E2EFailure) {
        switch state {
        case .failed, .refused: return
        default:
            if side == .client && offeredSession && !resumed, case .handshake = f, case .handshaking = state {
                client!.forgetSession(device: device!)
            }
            state = .failed(f)
        }
    }
}
