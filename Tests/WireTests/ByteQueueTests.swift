import Testing
import Wire

/// ByteQueue: the fixed buffer under every TLS session and socket. These tests pin the
/// invariant `0 <= head <= tail <= capacity`, the two-phase writable()/commit and
/// readable/consume protocol, compaction (including overlapping moves), and that the
/// queue never grows: a randomized run is checked against a plain array model.
@Suite struct ByteQueueTests {
    /// Deterministic generator so a failure reproduces (SplitMix64).
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func checkInvariant(_ q: ByteQueue) {
        #expect(q.head >= 0)
        #expect(q.head <= q.tail)
        #expect(q.tail <= q.capacity)
        #expect(q.count == q.tail - q.head)
        #expect(q.freeSpace == q.capacity - q.count)
        #expect(q.isEmpty == (q.count == 0))
        #expect(q.readable.count == q.count)
    }

    /// Writes `bytes` through the two-phase API.
    static func put(_ q: ByteQueue, _ bytes: [UInt8]) {
        let w = q.writable()
        precondition(w.count >= bytes.count)
        for (i, b) in bytes.enumerated() { w[i] = b }
        q.commit(bytes.count)
    }

    @Test func emptyQueue() {
        let q = ByteQueue(capacity: 8)
        #expect(q.capacity == 8)
        #expect(q.count == 0)
        #expect(q.isEmpty)
        #expect(q.freeSpace == 8)
        #expect(q.readable.count == 0)
        #expect(q.writable().count == 8)
        #expect(q.peekAll() == [])
        Self.checkInvariant(q)
    }

    @Test func writableCommitReadableConsume() {
        let q = ByteQueue(capacity: 8)
        let w = q.writable()
        w[0] = 1
        w[1] = 2
        w[2] = 3
        // Nothing is readable before commit.
        #expect(q.count == 0)
        q.commit(3)
        #expect(q.count == 3)
        #expect(Array(q.readable) == [1, 2, 3])
        #expect(q.writable().count == 5)
        q.consume(1)
        #expect(Array(q.readable) == [2, 3])
        #expect(q.head == 1 && q.tail == 3)
        Self.checkInvariant(q)
        // Committing zero and consuming zero change nothing.
        q.commit(0)
        q.consume(0)
        #expect(Array(q.readable) == [2, 3])
    }

    @Test func consumingEverythingRewindsToTheStart() {
        let q = ByteQueue(capacity: 8)
        Self.put(q, [1, 2, 3, 4, 5])
        q.consume(2)
        #expect(q.head == 2)
        q.consume(3)
        #expect(q.isEmpty)
        #expect(q.head == 0 && q.tail == 0)
        #expect(q.writable().count == 8)
    }

    @Test func fillToCapacityExactly() {
        let q = ByteQueue(capacity: 4)
        Self.put(q, [9, 8, 7, 6])
        #expect(q.freeSpace == 0)
        #expect(q.writable().count == 0)
        #expect(q.writable(minimum: 1).count == 0)
        #expect(q.append([1]) == 0)
        #expect(q.peekAll() == [9, 8, 7, 6])
        Self.checkInvariant(q)
    }

    @Test func writableCompactsOnlyWhenTheTailEndIsFull() {
        let q = ByteQueue(capacity: 8)
        Self.put(q, [1, 2, 3, 4, 5, 6])
        q.consume(4)
        // Tail end still has room: no move, only the 2 bytes at the end are offered.
        #expect(q.writable().count == 2)
        #expect(q.head == 4 && q.tail == 6)
        // Ask for more than the tail end has: compacts, offering all free space.
        let w = q.writable(minimum: 5)
        #expect(w.count == 6)
        #expect(q.head == 0 && q.tail == 2)
        #expect(q.peekAll() == [5, 6])
        Self.checkInvariant(q)
    }

    @Test func compactionWithOverlappingRegionsKeepsTheBytes() {
        // head = 3, 5 unread bytes: the move from 3..<8 to 0..<5 overlaps.
        let q = ByteQueue(capacity: 8)
        Self.put(q, [10, 11, 12, 13, 14, 15, 16, 17])
        q.consume(3)
        let w = q.writable()  // tail == capacity and head > 0: compacts
        #expect(w.count == 3)
        #expect(q.head == 0 && q.tail == 5)
        #expect(q.peekAll() == [13, 14, 15, 16, 17])
        w[0] = 18
        w[1] = 19
        w[2] = 20
        q.commit(3)
        #expect(q.peekAll() == [13, 14, 15, 16, 17, 18, 19, 20])
        Self.checkInvariant(q)
    }

    @Test func writableMinimumLargerThanFreeSpaceGivesWhatThereIs() {
        let q = ByteQueue(capacity: 8)
        Self.put(q, [1, 2, 3, 4, 5, 6])
        q.consume(1)
        // 3 bytes free in all; asking for 4 cannot be met, so the answer is what
        // writable() gives (after compaction, all 3 free bytes).
        let w = q.writable(minimum: 4)
        #expect(w.count == 3)
        #expect(q.peekAll() == [2, 3, 4, 5, 6])
    }

    @Test func appendCopiesWhatFitsAndCompacts() {
        let q = ByteQueue(capacity: 8)
        #expect(q.append([1, 2, 3, 4, 5, 6]) == 6)
        q.consume(5)
        // 7 free bytes, only 2 at the tail end: append compacts and takes 5.
        #expect(q.append([7, 8, 9, 10, 11]) == 5)
        #expect(q.peekAll() == [6, 7, 8, 9, 10, 11])
        // Partial append: 2 free.
        #expect(q.append([12, 13, 14, 15]) == 2)
        #expect(q.peekAll() == [6, 7, 8, 9, 10, 11, 12, 13])
        #expect(q.append([]) == 0)
        Self.checkInvariant(q)
    }

    @Test func readIntoCopiesAndConsumes() {
        let q = ByteQueue(capacity: 16)
        q.append([1, 2, 3, 4, 5])
        var out = [UInt8](repeating: 0, count: 3)
        let n = out.withUnsafeMutableBytes { q.read(into: $0) }
        #expect(n == 3)
        #expect(out == [1, 2, 3])
        #expect(q.peekAll() == [4, 5])
        var big = [UInt8](repeating: 0, count: 10)
        #expect(big.withUnsafeMutableBytes { q.read(into: $0) } == 2)
        #expect(Array(big[0..<2]) == [4, 5])
        #expect(q.isEmpty)
        #expect(big.withUnsafeMutableBytes { q.read(into: $0) } == 0)
        var none: [UInt8] = []
        q.append([1])
        #expect(none.withUnsafeMutableBytes { q.read(into: $0) } == 0)
        #expect(q.count == 1)
    }

    @Test func removeAllEmpties() {
        let q = ByteQueue(capacity: 8)
        q.append([1, 2, 3])
        q.consume(1)
        q.removeAll()
        #expect(q.isEmpty)
        #expect(q.head == 0 && q.tail == 0)
        #expect(q.freeSpace == 8)
    }

    @Test func capacityOneQueue() {
        let q = ByteQueue(capacity: 1)
        for i in 0..<10 {
            #expect(q.append([UInt8(i)]) == 1)
            #expect(q.append([0xff]) == 0)
            #expect(q.peekAll() == [UInt8(i)])
            q.consume(1)
        }
    }

    /// Random operations against an array model: contents, counts and the bounds
    /// invariant hold after every step, and the queue never offers more than its capacity.
    @Test(arguments: [1 as UInt64, 2, 3, 4])
    func randomOperationsMatchAModel(seed: UInt64) {
        var rng = SplitMix(state: seed)
        let capacity = Int.random(in: 1...64, using: &rng)
        let q = ByteQueue(capacity: capacity)
        var model: [UInt8] = []
        var next: UInt8 = 0
        for _ in 0..<5000 {
            switch Int.random(in: 0..<6, using: &rng) {
            case 0:  // two-phase write of a random amount of what is offered
                let w = q.writable()
                #expect(w.count == capacity - q.tail)
                let n = w.count == 0 ? 0 : Int.random(in: 0...w.count, using: &rng)
                for i in 0..<n {
                    w[i] = next
                    model.append(next)
                    next &+= 1
                }
                q.commit(n)
            case 1:  // writable(minimum:)
                let want = Int.random(in: 0...capacity, using: &rng)
                let w = q.writable(minimum: want)
                if want <= q.freeSpace { #expect(w.count >= want) }
                let n = min(w.count, want)
                for i in 0..<n {
                    w[i] = next
                    model.append(next)
                    next &+= 1
                }
                q.commit(n)
            case 2:  // append
                let n = Int.random(in: 0...(capacity + 3), using: &rng)
                var bytes: [UInt8] = []
                for _ in 0..<n {
                    bytes.append(next)
                    next &+= 1
                }
                let took = q.append(bytes)
                #expect(took == min(n, capacity - model.count))
                model += bytes[0..<took]
            case 3:  // consume
                let n = model.isEmpty ? 0 : Int.random(in: 0...model.count, using: &rng)
                q.consume(n)
                model.removeFirst(n)
            case 4:  // read(into:)
                var out = [UInt8](repeating: 0, count: Int.random(in: 0...capacity, using: &rng))
                let n = out.withUnsafeMutableBytes { q.read(into: $0) }
                #expect(n == min(out.count, model.count))
                #expect(Array(out[0..<n]) == Array(model[0..<n]))
                model.removeFirst(n)
            default:
                #expect(q.peekAll() == model)
            }
            #expect(q.count == model.count)
            #expect(q.head >= 0 && q.head <= q.tail && q.tail <= q.capacity)
            #expect(q.freeSpace == capacity - model.count)
        }
        #expect(q.peekAll() == model)
    }
}

@Suite struct ParkedByteQueueTests {
    @Test func anEmptyQueueGivesItsStorageBackAndTakesItAgain() {
        let cache = BlockCache(keepPerSize: 2)
        let q = ByteQueue(capacity: 100, cache: cache)
        #expect(q.isParked)                 // nothing taken until bytes are written
        #expect(cache.lent == 0)
        #expect(q.append([1, 2, 3]) == 3)
        #expect(!q.isParked && cache.lent == 1)
        #expect(!q.park())                  // not empty: keeps its bytes
        #expect(q.peekAll() == [1, 2, 3])
        q.consume(3)
        #expect(q.park())
        #expect(q.isParked && cache.lent == 0 && cache.spareCount == 1)
        #expect(q.readable.count == 0 && q.freeSpace == 100)
        #expect(q.append([4, 5]) == 2)
        #expect(q.peekAll() == [4, 5])
        #expect(cache.spareCount == 0 && cache.lent == 1)
    }

    @Test func aBlockIsWipedAsFarAsItWasWritten() {
        let cache = BlockCache(keepPerSize: 1)
        let q = ByteQueue(capacity: 64, cache: cache)
        q.append([UInt8](repeating: 0xAB, count: 40))
        q.consume(40)
        #expect(q.park())
        // The same block comes back to the next taker: no byte of the old contents is left.
        let p = cache.take(64)
        let bytes = UnsafeRawBufferPointer(start: p, count: 40)
        #expect(bytes.allSatisfy { $0 == 0 })
        cache.give(p, size: 64, written: 0)
    }

    @Test func sparesAreCappedPerSize() {
        let cache = BlockCache(keepPerSize: 1)
        let a = cache.take(32), b = cache.take(32), c = cache.take(48)
        #expect(cache.lent == 3)
        cache.give(a, size: 32, written: 0)
        cache.give(b, size: 32, written: 0)   // over the cap: freed
        cache.give(c, size: 48, written: 0)
        #expect(cache.lent == 0)
        #expect(cache.spareCount == 2)
    }

    @Test func aQueueWithoutACacheNeverParks() {
        let q = ByteQueue(capacity: 16)
        #expect(!q.isParked)
        #expect(!q.park())
        #expect(!q.isParked)
    }
}
