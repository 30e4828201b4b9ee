import Crypto
import Loop
import Mux
import Wire

/// Moves plaintext between a tunnel's TLS session and its multiplexer:
/// TLS -> `mux.rx` (as room allows) and `mux.tx` -> TLS -> socket. Both the
/// agents' tunnel to the relay and the relay's tunnels use it.
public enum TunnelPipe {
    /// Decrypts what the session holds into `mux.rx` while it has room. Returns
    /// false when the TLS session failed or the peer closed it.
    public static func pullInput(_ tls: TLSSession, _ mux: Mux) -> Bool {
        while mux.rx.freeSpace > 0 {
            switch tls.read(into: mux.rx.writable()) {
            case .bytes(let n):
                mux.rx.commit(n)
            case .needIO:
                return true
            case .closed, .failed:
                return false
            }
        }
        return true
    }

    /// Control frames into `tx`, `tx` through TLS into the session's outbound
    /// queue, and that to the socket. Returns false when the TLS session failed.
    public static func pushOutput(_ link: TLSLink, _ mux: Mux) -> Bool {
        mux.produce()
        moving: while !mux.tx.isEmpty {
            switch link.tls.write(mux.tx.readable) {
            case .bytes(let n):
                mux.tx.consume(n)
                mux.produce()
            case .needIO:
                // TLS's outbound queue is full: hand it to the socket; if the socket
                // takes nothing either, poll() will say when it drains.
                if link.flush() == 0 { break moving }
            case .failed:
                return false
            }
        }
        link.flush()
        return link.socketError == nil
    }
}
