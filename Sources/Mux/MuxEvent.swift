import Wire

/// What the multiplexer tells its owner, one event per `poll` call.
public enum MuxEvent: Equatable {
    /// A hello-phase frame (CHALLENGE, AUTH, WELCOME, DENIED) for the role to handle.
    case hello(FrameType, [UInt8])
    /// The peer opened a stream; answer with `accept` or `refuse`.
    case opened(UInt32, OpenPayload)
    /// Our open was accepted; the stream may send.
    case accepted(UInt32)
    /// Our open was refused (or timed out); the stream is gone.
    case refused(UInt32, Reason)
    /// New bytes are in the stream's receive buffer.
    case data(UInt32)
    /// The peer will send no more on this stream (all its data came before).
    case finished(UInt32)
    /// The peer reset the stream; it is gone.
    case reset(UInt32, Reason)
    /// The peer granted more credit: the stream may send again.
    case credit(UInt32)
    /// Answer to our heartbeat.
    case pong(rttMs: Int64)
    /// The peer is going away; open nothing new, come back after the hint.
    case goaway(Reason, retryAfterMs: UInt32)
    /// The relay sent a resume credential (RESUME payload; agents only).
    case resume([UInt8])
    /// The tunnel must close (the first failure; nothing follows it).
    case failed(MuxFailure)
}

/// Why a tunnel failed. Scope: the whole tunnel.
public enum MuxFailure: Equatable {
    case oversized(Int)            // frame longer than maxPayload
    case malformed(UInt8)          // payload does not match the type's layout
    case unexpected(UInt8)         // frame type not allowed now (hello after hello, data before hello...)
    case creditViolation(UInt32)   // peer sent more than the credit we granted
    case badStreamID(UInt32)       // open with a used id or the wrong parity
    case peerTimeout               // no frame for deadAfterMs

    public var text: String {
        switch self {
        case .oversized(let n): return "oversized_frame length=" + String(n)
        case .malformed(let t): return "malformed_frame type=" + String(t)
        case .unexpected(let t): return "unexpected_frame type=" + String(t)
        case .creditViolation(let s): return "credit_violation stream=" + String(s)
        case .badStreamID(let s): return "bad_stream_id stream=" + String(s)
        case .peerTimeout: return "peer_timeout"
        }
    }
}
