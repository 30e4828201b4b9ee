import Crypto
import E2E
import Testing
import Wire

/// Records altered in flight, one at a time, at every record position of each
/// direction: the handshake, the request, the answer, stream data and the closes.
/// Whatever happens, no side may ever read a byte that was not sent (in that
/// order), and every alteration MUST make a side fail (or time out), except one
/// that cannot matter: a copy of a direction's very last record (its close_notify),
/// which arrives after the reader has stopped reading.
@Suite struct TamperTests {
    static let bytesEachWay = 3000

    /// Both sides send `bytesEachWay` in 1000-byte records, then close.
    func scenario(_ setup: Setup, toServer: Tamperer?, toClient: Tamperer?, seed: UInt64) throws -> Pump {
        let p = try setup.pump(seed: seed, maxChunk: 700)
        p.client.sendTotal = TamperTests.bytesEachWay
        p.server.sendTotal = TamperTests.bytesEachWay
        p.client.writeChunk = 1000
        p.server.writeChunk = 1000
        p.toServerTamper = toServer
        p.toClientTamper = toClient
        p.finish()
        return p
    }

    @Test(arguments: [true, false])
    func everyRecordAlteredFailsClosed(towardsServer: Bool) throws {
        let setup = try Setup()
        // A clean run first: how many records each direction carries.
        let clean = try scenario(setup, toServer: nil, toClient: nil, seed: 1)
        #expect(clean.client.gotClose && clean.server.gotClose)
        #expect(clean.client.received == TamperTests.bytesEachWay && clean.server.received == TamperTests.bytesEachWay)
        let records = towardsServer ? clean.toServerCounter.count : clean.toClientCounter.count
        #expect(records >= 8)  // handshake flight(s), request/answer, 3 data records, close_notify
        setup.client.forgetAllSessions()  // every run below does a full handshake

        var runs = 0
        for index in 0..<records {
            for mutation in Mutation.allCases {
                if mutation == .swapWithNext && index == records - 1 { continue }
                let t = Tamperer(index: index, mutation: mutation)
                let p = try scenario(setup, toServer: towardsServer ? t : nil, toClient: towardsServer ? nil : t,
                                     seed: UInt64(index * 7 + 3))
                setup.client.forgetAllSessions()
                runs += 1
                let label = (towardsServer ? "to server" : "to client") + " record \(index) (type \(t.types[index])) \(mutation)"
                #expect(!p.client.wrongPlaintext && !p.server.wrongPlaintext, "wrong plaintext: \(label)")
                #expect(p.client.received <= TamperTests.bytesEachWay && p.server.received <= TamperTests.bytesEachWay)
                let someoneFailed = p.client.isFailed || p.server.isFailed
                let harmless = mutation == .duplicate && index == records - 1
                if harmless {
                    #expect(p.client.received == TamperTests.bytesEachWay && p.server.received == TamperTests.bytesEachWay,
                            "\(label)")
                } else {
                    #expect(someoneFailed, "no failure: \(label)")
                }
                // A side that failed never reports established data it did not get.
                for e in [p.client, p.server] where e.isFailed {
                    #expect(e.events.filter { if case .failed = $0 { return true } else { return false } }.count == 1,
                            "failure reported once: \(label)")
                }
            }
        }
        print("tamper runs \(towardsServer ? "to server" : "to client"): \(runs) over \(records) records")
        #expect(runs >= 4 * 7)
    }

    /// The same in a resumed session (the abbreviated handshake has other records).
    @Test(arguments: [true, false])
    func resumedHandshakeAlteredFailsClosed(towardsServer: Bool) throws {
        let setup = try Setup()
        _ = try scenario(setup, toServer: nil, toClient: nil, seed: 1)
        let clean = try scenario(setup, toServer: nil, toClient: nil, seed: 2)
        #expect(clean.client.session.resumed)
        let records = towardsServer ? clean.toServerCounter.count : clean.toClientCounter.count
        // Only the handshake part: the first few records.
        for index in 0..<min(records, 4) {
            for mutation in Mutation.allCases {
                let t = Tamperer(index: index, mutation: mutation)
                let p = try scenario(setup, toServer: towardsServer ? t : nil, toClient: towardsServer ? nil : t,
                                     seed: UInt64(index * 5 + 1))
                let label = (towardsServer ? "to server" : "to client") + " resumed record \(index) \(mutation)"
                #expect(!p.client.wrongPlaintext && !p.server.wrongPlaintext, "wrong plaintext: \(label)")
                #expect(p.client.isFailed || p.server.isFailed, "no failure: \(label)")
                // Keep the cache entry for the next run (a failed resumption drops it).
                if setup.client.cachedSessionCount == 0 {
                    _ = try scenario(setup, toServer: nil, toClient: nil, seed: 9)
                }
            }
        }
    }
}
