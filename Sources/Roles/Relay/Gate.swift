import Loop

/// Where a connection comes from, for per-source shares: the /64 prefix of an IPv6
/// address (one subscriber usually holds a whole /64), or an IPv4 address after 32 one
/// bits (ff00::/8 is multicast: never a peer's prefix). A plain UInt64, so the relay's
/// dictionaries share one key type (each key type costs the release binary its own copy
/// of the dictionary code).
typealias SourceKey = UInt64

extension UInt64 {
    init(source address: SocketAddress) {
        let b = address.ipBytes
        var k: UInt64 = b.count == 16 ? 0 : 0xffff_ffff
        for x in b.prefix(8) { k = k << 8 | UInt64(x) }
        self = k
    }
}

/// A capped resource that every holder enters once and leaves once: pending
/// handshakes, public connections, scrapes. It keeps the count itself, so a caller
/// cannot lose track of it (each `Ticket` leaves exactly once, whatever path closes
/// the connection), and no source may hold more than `perSource` of it, so one
/// address cannot take the whole cap.
final class Gate {
    let limit: Int
    let perSource: Int
    private(set) var count = 0
    private var bySource: [SourceKey: Int] = [:]

    init(limit: Int, perSource: Int) {
        self.limit = limit
        self.perSource = perSource
    }

    /// Whether anyone may enter now (the listener is polled only then).
    var isOpen: Bool { count < limit }

    /// How much `source` holds.
    func held(by source: SourceKey) -> Int { bySource[source] ?? 0 }

    /// A ticket for `source`, or why not.
    func enter(_ source: SourceKey) -> Result<Ticket, Refusal> {
        guard count < limit else { return .failure(.full) }
        let h = bySource[source] ?? 0
        guard h < perSource else { return .failure(.sourceShare) }
        bySource[source] = h + 1
        count += 1
        return .success(Ticket(gate: self, source: source))
    }

    enum Refusal: Error {
        case full
        case sourceShare
    }

    fileprivate func leave(_ source: SourceKey) {
        count -= 1
        let h = (bySource[source] ?? 1) - 1
        if h <= 0 { bySource.removeValue(forKey: source) } else { bySource[source] = h }
    }

    /// One place held in a gate; `leave` is idempotent.
    final class Ticket {
        private var gate: Gate?
        let source: SourceKey

        fileprivate init(gate: Gate, source: SourceKey) {
            self.gate = gate
            self.source = source
        }

        var isHeld: Bool { gate != nil }

        func leave() {
            gate?.leave(source)
            gate = nil
        }

        deinit { leave() }
    }
}
