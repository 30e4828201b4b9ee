import Wire

/// Deadlines of many objects, earliest first (a binary min-heap of (time, serial)).
/// Sans-IO: times are passed in.
///
/// Entries are never removed early: an object whose deadline moved keeps its old
/// entry, which fires early and harmlessly (the owner finds the object not due and
/// schedules it again), or is skipped if the object is gone. An object therefore has
/// at most one live entry per `schedule` that moved its deadline earlier; the owner
/// calls `schedule` only then (`Timed.scheduledAt` tracks it).
public struct TimerHeap {
    var items: [(at: Int64, serial: UInt64)] = []

    public init() {}

    public var count: Int { items.count }
    public var isEmpty: Bool { items.isEmpty }
    /// The earliest time in the heap.
    public var earliest: Int64? { items.first?.at }

    public mutating func schedule(_ serial: UInt64, at: Int64) {
        items.append((at, serial))
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if items[p].at <= items[i].at { break }
            items.swapAt(p, i)
            i = p
        }
    }

    /// The next entry due at `now`, removed; nil if none is.
    public mutating func popDue(now: Int64) -> UInt64? {
        guard let first = items.first, first.at <= now else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var m = i
                if l < items.count && items[l].at < items[m].at { m = l }
                if r < items.count && items[r].at < items[m].at { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return first.serial
    }
}
