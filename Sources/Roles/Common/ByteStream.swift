import Loop
import Wire

/// One end of a byte stream, as the cores that move bytes see it (`TLSLink`,
/// `RawSplice`): a nonblocking socket in the processes (`SocketStream`), an
/// in-memory pipe in tests (Tests/RolesTests/RelayCoreHarness.swift). The relay's
/// core reaches the network only through this port and never calls the clock or the
/// poller, so it runs whole in memory (wireguard-go's in-memory binds).
public protocol ByteStream: AnyObject {
    /// What the loop watches (-1 once closed).
    var fd: Int32 { get }
    /// Reads into `q` until it is full or the stream would block.
    func fill(_ q: ByteQueue) -> (bytes: Int, end: SocketQueue.End)
    /// Writes from `q` until it is empty or the stream would block.
    func drain(_ q: ByteQueue) -> (bytes: Int, end: SocketQueue.End)
    /// Ends our direction (FIN); the other may go on.
    func shutdownWrite()
    /// Closes the stream (`abort`: with a reset, dropping what is unsent).
    func close(abort: Bool)
}

/// A nonblocking socket as a `ByteStream`; closing it closes the fd.
public final class SocketStream: ByteStream {
    public private(set) var fd: Int32

    public init(fd: Int32) { self.fd = fd }

    public func fill(_ q: ByteQueue) -> (bytes: Int, end: SocketQueue.End) { SocketQueue.fill(fd, q) }
    public func drain(_ q: ByteQueue) -> (bytes: Int, end: SocketQueue.End) { SocketQueue.drain(fd, q) }
    public func shutdownWrite() { Socket.shutdownWrite(fd) }

    public func close(abort: Bool) {
        guard fd >= 0 else { return }
        if abort { Socket.abort(fd) } else { Socket.close(fd) }
        fd = -1
    }
}
