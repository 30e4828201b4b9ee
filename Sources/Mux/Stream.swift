import Wire

/// One multiplexed stream, as the multiplexer sees it.
///
///     we open:        opening --ACCEPT--> open        opening --REFUSE/timeout--> (gone)
///     peer opens:     pendingAccept --accept()--> open    --refuse()--> (gone)
///     open:           each direction ends with its own FIN (half-close);
///                     RESET from either side ends both at once (gone).
///
/// Credit: `sendCredit` bytes may still be sent; `recvCredit` bytes may still
/// arrive. Invariant: recvCredit <= receive.freeSpace, so data within credit
/// always fits and the tunnel never stalls on one stream.
final class MuxStream {
    enum Phase: Equatable {
        case opening
        case pendingAccept
        case open
    }

    let id: UInt32
    var phase: Phase
    /// Bytes from the peer, waiting for the owner. From the pool; back to it on removal.
    let receive: ByteQueue
    var recvCredit: Int
    var sendCredit: Int
    /// Our ACCEPT still has to be written (nothing may be sent before it).
    var acceptPending = false
    /// Our OPEN still has to be written.
    var openPending: [UInt8]? = nil
    var finRequested = false
    var finSent = false
    var finReceived = false
    let openedAt: Instant
    /// In the multiplexer's `attention` list (something to write may come up for it).
    var noticed = false
    /// Removed from the multiplexer (entries for it in its lists are skipped).
    var gone = false

    // Window auto-tuning (`Mux.tune`): the credit target follows the bytes the owner
    // reads per round trip, like TCP's receive-buffer auto-tuning.
    /// The receive window the stream aims for: the pool's base size, doubled while the
    /// path needs it (up to the pool's `maxBufferSize` and budget).
    var window: Int
    /// Start of the current measurement, nil before the first DATA of a busy period.
    var sampleAt: Instant? = nil
    /// Bytes the owner read since `sampleAt`.
    var copied = 0
    /// `receive.count` right after the last DATA was appended.
    var countAfterData = 0
    var lastDataAt: Instant
    /// In the multiplexer's `idleWatch` list.
    var watched = false

    init(id: UInt32, phase: Phase, receive: ByteQueue, sendCredit: Int, recvCredit: Int, now: Instant) {
        self.id = id
        self.phase = phase
        self.receive = receive
        self.sendCredit = sendCredit
        self.recvCredit = recvCredit
        self.openedAt = now
        self.window = receive.capacity
        self.lastDataAt = now
    }
}

/// A stream's state as its owner may query it.
public struct StreamInfo: Equatable {
    public var isOpen: Bool
    public var sendCredit: Int
    public var finSent: Bool
    public var finReceived: Bool
    public var buffered: Int
}
