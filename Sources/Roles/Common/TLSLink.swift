import Crypto
import Loop
import Wire

/// A TLS session bound to a nonblocking socket (or any `ByteStream`): the glue that
/// moves ciphertext between the stream and the sans-IO `TLSSession`. The single owner
/// of both; closing the link closes the stream.
public final class TLSLink {
    public let stream: ByteStream
    public let tls: TLSSession
    /// The socket returned EOF (the peer will send nothing more).
    public private(set) var socketEOF = false
    /// errno of the first failed read or write.
    public private(set) var socketError: Int32? = nil
    /// The socket refused more bytes; no write is tried until poll() says it is
    /// writable again (`writable()`), instead of an EAGAIN on every pass.
    public private(set) var writeBlocked = false

    public convenience init(fd: Int32, tls: TLSSession) {
        self.init(stream: SocketStream(fd: fd), tls: tls)
    }

    public init(stream: ByteStream, tls: TLSSession) {
        self.stream = stream
        self.tls = tls
    }

    deinit { close() }

    public var fd: Int32 { stream.fd }
    public var isClosed: Bool { stream.fd < 0 }

    public func close() { stream.close(abort: false) }

    /// Reads what the socket has into the session's inbound queue, until it is full
    /// or the socket would block. Returns the number of bytes read.
    @discardableResult
    public func receive() -> Int {
        guard fd >= 0, socketError == nil, !socketEOF else { return 0 }
        let (n, end) = stream.fill(tls.inbound)
        switch end {
        case .wouldBlock: break
        case .eof:
            socketEOF = true
            tls.transportEOF()
        case .failed(let e):
            socketError = e
            tls.transportEOF()
        }
        return n
    }

    /// Writes queued ciphertext to the socket until it is empty or the socket would block.
    /// Returns the number of bytes written.
    @discardableResult
    public func flush() -> Int {
        guard fd >= 0, socketError == nil, !writeBlocked else { return 0 }
        let (n, end) = stream.drain(tls.outbound)
        if case .failed(let e) = end { socketError = e }
        if !tls.outbound.isEmpty { writeBlocked = true }
        return n
    }

    /// poll() reported the socket writable: write what is queued.
    @discardableResult
    public func writable() -> Int {
        writeBlocked = false
        return flush()
    }

    /// What to ask poll() for: read while the session wants input and has room for it,
    /// write while ciphertext is waiting.
    public var interest: PollEvents {
        var e: PollEvents = []
        if fd < 0 || socketError != nil { return e }
        if !socketEOF && tls.wantsInput && tls.inbound.freeSpace > 0 { e.insert(.read) }
        if !tls.outbound.isEmpty { e.insert(.write) }
        return e
    }

    /// True when everything queued has reached the socket.
    public var isFlushed: Bool { tls.outbound.isEmpty }
}
