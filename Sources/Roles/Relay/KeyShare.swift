import Wire

/// What one agent key holds on the relay, summed over its tunnels: so that one
/// enrolled key pair (however many tunnels it opens) cannot take the relay's
/// tunnels, streams or buffer pool from everyone else.
final class KeyShare {
    /// Tunnels of this key that passed the hello.
    var tunnels = 0
    /// Streams this key opened (as a forward) that are joined now.
    var streams = 0

    /// Whether a key holding `streams` joined streams may open one more, with
    /// `poolAvailable` buffers left in the relay's pool (a join takes two): below
    /// the per-key cap, and either within a small floor or below a quarter of what
    /// is free (half of the free joins), so one key never takes the rest of the pool
    /// from the others, and the last free buffers go to those who hold little.
    static func mayOpen(streams: Int, poolAvailable: Int) -> Bool {
        guard streams < Limits.relayMaxStreamsPerKey else { return false }
        return streams < Limits.relayStreamsPerKeyFloor || streams < poolAvailable / 4
    }
}

/// The `KeyShare` of every key with a tunnel up; an entry goes once the key holds nothing.
struct KeyShares {
    private var byKey: [AgentID: KeyShare] = [:]

    var count: Int { byKey.count }

    /// The share of `id`, made on first use.
    mutating func of(_ id: AgentID) -> KeyShare {
        if let s = byKey[id] { return s }
        let s = KeyShare()
        byKey[id] = s
        return s
    }

    func peek(_ id: AgentID) -> KeyShare? { byKey[id] }

    /// Forgets `id` if it holds nothing.
    mutating func tidy(_ id: AgentID) {
        if let s = byKey[id], s.tunnels == 0 && s.streams == 0 { byKey.removeValue(forKey: id) }
    }
}
