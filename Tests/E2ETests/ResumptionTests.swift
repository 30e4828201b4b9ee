import Crypto
import E2E
import Testing
import Wire

@Suite struct ResumptionTests {
    @Test func secondSessionResumesAndMovesFewerBytes() throws {
        let setup = try Setup()
        // Handshake, request and answer only (no stream bytes, no closes): the bytes
        // counted are exactly what it costs to open a stream end to end.
        let first = try setup.pump()
        first.client.closeWhenDone = false
        first.server.closeWhenDone = false
        first.run()
        #expect(first.client.session.phase == .established)
        #expect(!first.client.session.resumed && !first.server.session.resumed)
        #expect(setup.client.cachedSessionCount == 1)

        let measured = try setup.pump(now: t0.adding(ms: 30_000), seed: 3)
        measured.client.closeWhenDone = false
        measured.server.closeWhenDone = false
        measured.run()
        #expect(measured.client.session.resumed && measured.server.session.resumed)

        let second = try setup.pump(now: t0.adding(ms: 60_000), seed: 2)
        second.client.sendTotal = 20_000
        second.server.sendTotal = 20_000
        second.run()
        #expect(second.client.events == [.established])
        #expect(second.server.events == [.targetRequested(defaultTarget), .established])
        #expect(second.client.session.resumed && second.server.session.resumed)
        // A resumed session still names (and checked) the right peers.
        #expect(second.client.session.peerID == setup.device.id)
        #expect(second.server.session.peerID == setup.forward.id)
        #expect(second.client.received == 20_000 && second.server.received == 20_000)
        #expect(!second.client.wrongPlaintext && !second.server.wrongPlaintext)

        let full = try #require(first.bytesToEstablish)
        let resumed = try #require(measured.bytesToEstablish)
        #expect(full == first.clientSent + first.serverSent)
        #expect(resumed == measured.clientSent + measured.serverSent)
        print("E2E ciphertext to establish: full handshake \(full) bytes, resumed \(resumed) bytes")
        // TLS 1.3 resumes with a fresh ECDHE share each way and the ticket in the client's
        // hello, and the device renews the ticket (mbedTLS 3.6 sends one on resumption):
        // fewer bytes and no signature, but not half of a full handshake's bytes.
        #expect(resumed < full)
        #expect(resumed * 4 < full * 3)
    }

    @Test func afterTheLifetimeAFullHandshakeRenewsTheKeys() throws {
        let lifetime: Int64 = 600_000
        let setup = try Setup(resumptionLifetimeMs: lifetime)
        try setup.pump().run()
        let justBefore = try setup.pump(now: t0.adding(ms: lifetime - 1))
        justBefore.run()
        #expect(justBefore.client.session.resumed)
        // Resuming did not extend the entry: at the lifetime it is gone.
        let after = try setup.pump(now: t0.adding(ms: lifetime))
        after.run()
        #expect(after.client.session.phase == .established)
        #expect(!after.client.session.resumed && !after.server.session.resumed)
        // The full handshake saved a fresh entry.
        let next = try setup.pump(now: t0.adding(ms: lifetime + 1000))
        next.run()
        #expect(next.client.session.resumed && next.server.session.resumed)
    }

    @Test func reloadAppliesToResumedSessions() throws {
        let setup = try Setup()
        try setup.pump().run()
        // SIGHUP: the forward's key is no longer listed (same CA: tickets stay valid).
        try setup.server.reload(authorization: Authorization(keys: AuthorizedKeys(ids: []), ca: nil, any: false))
        let p = try setup.pump(now: t0.adding(ms: 1000))
        p.run()
        #expect(p.server.session.resumed)
        #expect(p.server.events == [.failed(.unauthorized(setup.forward.id))])
        // And back.
        try setup.server.reload(authorization: Authorization(keys: AuthorizedKeys(ids: [setup.forward.id]), ca: nil, any: false))
        let q = try setup.pump(now: t0.adding(ms: 2000))
        q.run()
        #expect(q.server.session.resumed && q.server.session.phase == .established)
    }

    @Test func changingTheCARetiresTicketsAndIsChecked() throws {
        let rng = try Rng()
        let ca1 = try TestAgent(rng, isCA: true)
        let ca2 = try TestAgent(rng, isCA: true)
        let forward = try TestAgent(rng, issuedBy: ca1)
        let setup = try Setup(authorization: { _ in Authorization(keys: nil, ca: ca1.cert, any: false) },
                              forward: forward, rng: rng)
        try setup.pump().run()
        let resumed = try setup.pump(now: t0.adding(ms: 1000))
        resumed.run()
        #expect(resumed.server.session.resumed && resumed.server.session.grant == .ca)
        try setup.server.reload(authorization: Authorization(keys: nil, ca: ca2.cert, any: false))
        let p = try setup.pump(now: t0.adding(ms: 2000))
        p.run()
        #expect(!p.server.session.resumed)
        #expect(p.server.events == [.failed(.unauthorized(forward.id))])
    }

    @Test func leastRecentlyUsedEntryGoesWhenFull() throws {
        let rng = try Rng()
        let forward = try TestAgent(rng)
        let client = try E2EClient(rng: rng, key: forward.key, certificate: forward.cert, cacheCapacity: 2)
        var servers: [(TestAgent, E2EServer)] = []
        for _ in 0..<3 {
            let d = try TestAgent(rng)
            let s = try E2EServer(rng: rng, key: d.key, certificate: d.cert,
                                  authorization: Authorization(keys: AuthorizedKeys(ids: [forward.id]), ca: nil, any: false))
            servers.append((d, s))
        }
        func connect(_ i: Int, _ ms: Int64) throws -> Pump {
            let now = t0.adding(ms: ms)
            let p = Pump(client: try E2ESession(client: client, device: servers[i].0.id, target: defaultTarget, now: now),
                         server: try E2ESession(server: servers[i].1, now: now))
            p.now = now
            p.run()
            #expect(p.client.session.phase == .established)
            return p
        }
        _ = try connect(0, 0)
        _ = try connect(1, 10)
        #expect(try connect(0, 20).client.session.resumed)  // device 0 is now the most recent
        _ = try connect(2, 30)  // evicts device 1
        #expect(client.cachedSessionCount == 2)
        #expect(try connect(0, 40).client.session.resumed)
        #expect(try connect(2, 50).client.session.resumed)
        #expect(try !connect(1, 60).client.session.resumed)
        client.forgetSession(device: servers[1].0.id)
        #expect(try !connect(1, 70).client.session.resumed)
    }

    @Test func noCacheMeansNoResumption() throws {
        let rng = try Rng()
        let forward = try TestAgent(rng)
        let device = try TestAgent(rng)
        let client = try E2EClient(rng: rng, key: forward.key, certificate: forward.cert, cacheCapacity: 0)
        let server = try E2EServer(rng: rng, key: device.key, certificate: device.cert,
                                   authorization: Authorization(keys: nil, ca: nil, any: true))
        for i in 0..<2 {
            let now = t0.adding(ms: Int64(i))
            let p = Pump(client: try E2ESession(client: client, device: device.id, target: defaultTarget, now: now),
                         server: try E2ESession(server: server, now: now))
            p.now = now
            p.run()
            #expect(p.client.session.phase == .established && !p.client.session.resumed)
        }
        #expect(client.cachedSessionCount == 0)
    }
}
