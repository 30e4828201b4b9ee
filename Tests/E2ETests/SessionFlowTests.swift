import Crypto
import E2E
import Testing
import Wire

@Suite struct SessionFlowTests {
    /// Full flow with data both ways, random chunking of the ciphertext.
    @Test(arguments: [(0, 0), (1, 1), (65536, 1), (1 << 20, 7), (1, 65536), (1 << 20, 1 << 20)])
    func dataBothWays(clientBytes: Int, serverBytes: Int) throws {
        let setup = try Setup()
        let p = try setup.pump(seed: UInt64(clientBytes &+ serverBytes &+ 1), maxChunk: 5000)
        p.client.sendTotal = clientBytes
        p.server.sendTotal = serverBytes
        p.run()
        #expect(p.client.events == [.established])
        #expect(p.server.events == [.targetRequested(defaultTarget), .established])
        #expect(p.client.session.peerID == setup.device.id)
        #expect(p.server.session.peerID == setup.forward.id)
        #expect(p.server.session.grant == .key)
        #expect(p.client.session.grant == .device)
        #expect(p.server.session.target == defaultTarget)
        #expect(p.client.session.resumed == false)
        #expect(p.server.session.resumed == false)
        #expect(p.client.session.deadline == nil)
        #expect(p.client.session.ciphersuite.contains("CHACHA20-POLY1305"))
        #expect(p.server.received == clientBytes)
        #expect(p.client.received == serverBytes)
        #expect(!p.server.wrongPlaintext && !p.client.wrongPlaintext)
        #expect(p.client.gotClose && p.server.gotClose)
        #expect(p.client.session.peerClosed && p.client.session.sentClose)
        #expect(p.client.session.phase == .established && p.server.session.phase == .established)
    }

    /// A device with small record buffers: both sides cap the records they send at 512
    /// bytes (TLS 1.3 negotiates no size: the forward is told, like the device).
    @Test func smallRecordsBothWays() throws {
        let rng = try Rng()
        let f = try TestAgent(rng)
        let d = try TestAgent(rng)
        let client = try E2EClient(rng: rng, key: f.key, certificate: f.cert, maxFragment: .b512)
        let server = try E2EServer(rng: rng, key: d.key, certificate: d.cert,
                                   authorization: Authorization(keys: AuthorizedKeys(ids: [f.id]), ca: nil, any: false),
                                   maxFragment: .b512)
        let p = Pump(client: try E2ESession(client: client, device: d.id, target: defaultTarget, now: t0),
                     server: try E2ESession(server: server, now: t0), seed: 11, maxChunk: 300)
        p.client.sendTotal = 20_000
        p.server.sendTotal = 30_000
        p.run()
        #expect(p.server.received == 20_000 && p.client.received == 30_000)
        #expect(!p.server.wrongPlaintext && !p.client.wrongPlaintext && p.client.gotClose && p.server.gotClose)
        // Towards the device: 512 bytes of inner plaintext (511 of data and the content
        // type) plus the AEAD tag, handshake records included. Towards the forward the
        // same, except the device's NewSessionTicket: one record of ~530 bytes
        // (mbedTLS does not split it; the forward has full-size buffers).
        #expect(p.toServerCounter.largest <= 512 + 16)
        #expect(p.toClientCounter.largest <= 600)
    }

    /// Tiny ciphertext pieces: every split point of the handshake, request and answer.
    @Test func byteByByteDelivery() throws {
        let setup = try Setup()
        let p = try setup.pump(seed: 99, maxChunk: 3)
        p.client.sendTotal = 300
        p.server.sendTotal = 300
        p.run()
        #expect(p.client.events == [.established])
        #expect(p.server.received == 300 && p.client.received == 300)
        #expect(!p.server.wrongPlaintext && !p.client.wrongPlaintext)
    }

    /// Half-close: each direction ends on its own and every byte before the close arrives.
    @Test(arguments: [true, false])
    func halfCloseDeliversEverything(clientClosesFirst: Bool) throws {
        let setup = try Setup()
        let p = try setup.pump(seed: 5)
        let first = clientClosesFirst ? p.client : p.server
        let second = clientClosesFirst ? p.server : p.client
        first.sendTotal = 100_000
        second.sendTotal = 0
        second.closeWhenDone = false
        p.run()
        // The first side's direction is closed; the second still sends.
        #expect(second.received == 100_000 && second.gotClose)
        #expect(!first.gotClose && first.session.sentClose && !second.session.sentClose)
        #expect(second.session.phase == .established)
        second.sendTotal = 70_001
        p.run()
        #expect(first.received == 70_001 && !first.gotClose)
        second.closeWhenDone = true
        p.run()
        #expect(first.gotClose)
        #expect(!first.wrongPlaintext && !second.wrongPlaintext)
        #expect(p.client.session.phase == .established && p.server.session.phase == .established)
    }

    @Test func closeWriteBeforeEstablishedIsSentOnEstablishment() throws {
        let setup = try Setup()
        let p = try setup.pump()
        #expect(p.client.session.closeWrite())
        p.client.closeQueued = true
        p.run()
        #expect(p.client.session.phase == .established)
        #expect(p.server.gotClose && p.server.received == 0)
        #expect(p.client.session.sentClose)
    }

    @Test(arguments: [Reason.targetNotAllowed, .connectFailed, .noResources, .unspecified])
    func refusalReachesTheClient(reason: Reason) throws {
        let setup = try Setup()
        let p = try setup.pump(target: HostPort(host: "10.0.0.9", port: 25))
        var asked: HostPort? = nil
        p.server.answer = { t in
            asked = t
            return reason
        }
        p.run()
        let expected = reason == .unspecified ? Reason.closed : reason
        #expect(asked == HostPort(host: "10.0.0.9", port: 25))
        #expect(p.client.events == [.refused(expected)])
        #expect(p.client.session.phase == .refused(expected))
        #expect(p.server.events == [.targetRequested(HostPort(host: "10.0.0.9", port: 25)), .refused(reason)])
        #expect(p.server.session.phase == .refused(reason))
        #expect(p.server.session.sentClose)
        #expect(p.client.session.deadline == nil && p.server.session.deadline == nil)
        var b = [UInt8](repeating: 0, count: 4)
        #expect(b.withUnsafeMutableBytes { p.client.session.read(into: $0) } == .failed(E2ESession.refusedCode))
        #expect(b.withUnsafeBytes { p.client.session.write($0) } == .failed(E2ESession.refusedCode))
        #expect(p.client.session.advance(now: p.now) == .none)
    }

    @Test func authorizedByCA() throws {
        let rng = try Rng()
        let ca = try TestAgent(rng, isCA: true)
        let forward = try TestAgent(rng, issuedBy: ca, role: .forward)  // an operator certificate
        #expect(forward.cert.agentRole == .forward)
        let setup = try Setup(authorization: { _ in Authorization(keys: nil, ca: ca.cert, any: false) },
                              forward: forward, rng: rng)
        let p = try setup.pump()
        p.client.sendTotal = 1000
        p.server.sendTotal = 1000
        p.run()
        #expect(p.server.events == [.targetRequested(defaultTarget), .established])
        #expect(p.server.session.grant == .ca)
        #expect(p.server.session.peerID == forward.id)
        #expect(p.server.received == 1000 && p.client.received == 1000)
    }

    @Test func authorizeAny() throws {
        let setup = try Setup(authorization: { _ in Authorization(keys: nil, ca: nil, any: true) })
        let p = try setup.pump()
        p.run()
        #expect(p.server.session.phase == .established && p.client.session.phase == .established)
        #expect(p.server.session.grant == .any)
        #expect(p.server.session.peerID == setup.forward.id)
    }

    /// A forward that is not admitted: the server fails `.unauthorized` and queues
    /// nothing; the role ends the stream and the client sees the end as a failure.
    @Test(arguments: ["not in keys", "other CA", "no authorization", "keys of someone else",
                      "device certificate from the CA", "role-less certificate from the CA"])
    func unauthorizedForward(kind: String) throws {
        let rng = try Rng()
        let ca = try TestAgent(rng, isCA: true)
        let otherCA = try TestAgent(rng, isCA: true)
        let stranger = try TestAgent(rng)
        let forward: TestAgent
        let auth: Authorization
        switch kind {
        case "not in keys":
            forward = try TestAgent(rng)
            auth = Authorization(keys: AuthorizedKeys(ids: []), ca: ca.cert, any: false)
        case "other CA":
            forward = try TestAgent(rng, issuedBy: otherCA)
            auth = Authorization(keys: nil, ca: ca.cert, any: false)
        case "no authorization":
            forward = try TestAgent(rng)
            auth = .denyAll
        case "device certificate from the CA":
            // Security review finding 2: the CA that signs operators also signs devices; a
            // device's key and certificate must not make their holder an operator elsewhere.
            forward = try TestAgent(rng, issuedBy: ca, name: "dev1", role: .reverse)
            auth = Authorization(keys: nil, ca: ca.cert, any: false)
        case "role-less certificate from the CA":
            // Issued before certificates carried a role: reissue it with --role operator.
            forward = try TestAgent(rng, issuedBy: ca, name: "old", role: nil)
            auth = Authorization(keys: nil, ca: ca.cert, any: false)
        default:
            forward = try TestAgent(rng)
            auth = Authorization(keys: AuthorizedKeys(ids: [stranger.id]), ca: nil, any: false)
        }
        let setup = try Setup(authorization: { _ in auth }, forward: forward, rng: rng)
        let p = try setup.pump()
        p.run()
        #expect(p.server.events == [.failed(.unauthorized(forward.id))])
        #expect(p.server.session.peerID == nil)
        #expect(p.client.session.phase == .awaitingAnswer)
        // The role closes the stream silently: the client's transport ends.
        p.client.session.transportEnded()
        p.run()
        #expect(p.client.events == [.failed(.truncated)])
        #expect(p.server.received == 0 && p.client.received == 0)
    }

    @Test func deviceMismatch() throws {
        let setup = try Setup()
        let otherDevice = try TestAgent(setup.rng)
        // The client asks for another device; the relay (say) joined it to this one.
        let p = try setup.pump(device: otherDevice.id)
        p.run()
        #expect(p.client.events == [.failed(.deviceMismatch(presented: setup.device.id))])
        #expect(p.client.session.peerID == nil)
        // The target never left the client.
        #expect(p.server.session.phase == .awaitingRequest)
        #expect(setup.client.cachedSessionCount == 0)
    }

    @Test func truncatedWithoutCloseNotify() throws {
        let setup = try Setup()
        let p = try setup.pump()
        p.client.sendTotal = 10_000
        p.client.closeWhenDone = false
        p.server.closeWhenDone = false
        p.run()
        #expect(p.server.received == 10_000)
        p.server.session.transportEnded()
        p.run()
        #expect(p.server.events.last == .failed(.truncated))
        #expect(p.server.session.phase == .failed(.truncated))
        var b = [UInt8](repeating: 0, count: 16)
        #expect(b.withUnsafeMutableBytes { p.server.session.read(into: $0) } == .failed(TLSSession.truncationError))
        // The client's direction is still open: its peer ended without close_notify too.
        p.client.session.transportEnded()
        p.run()
        #expect(p.client.session.phase == .failed(.truncated))
    }

    @Test func transportEndsDuringHandshake() throws {
        let setup = try Setup()
        let p = try setup.pump()
        _ = p.client.drive(now: p.now)
        let hello = p.client.session.outbound.peekAll()
        p.client.session.outbound.consume(hello.count)
        p.server.session.inbound.append(Array(hello[0..<(hello.count / 2)]))
        p.server.session.transportEnded()
        _ = p.server.drive(now: p.now)
        #expect(p.server.events == [.failed(.truncated)])
    }

    /// After a failure every call gives the same failure or nothing.
    @Test func failuresAreSticky() throws {
        let setup = try Setup()
        let p = try setup.pump()
        p.client.closeWhenDone = false
        p.server.closeWhenDone = false
        p.run()
        p.client.session.inbound.append([23, 3, 3, 0, 20] + [UInt8](repeating: 0xAA, count: 20))
        var b = [UInt8](repeating: 0, count: 16)
        let r = b.withUnsafeMutableBytes { p.client.session.read(into: $0) }
        guard case .failed(let code) = r else {
            Issue.record("expected a failure, got \(r)")
            return
        }
        #expect(p.client.session.advance(now: p.now) == .failed(.handshake(code)))
        #expect(p.client.session.advance(now: p.now) == .none)
        #expect(p.client.session.advance(now: p.now.adding(ms: 1_000_000)) == .none)
        #expect(p.client.session.phase == .failed(.handshake(code)))
        #expect(b.withUnsafeMutableBytes { p.client.session.read(into: $0) } == .failed(code))
        #expect(b.withUnsafeBytes { p.client.session.write($0) } == .failed(code))
        #expect(p.client.session.closeWrite())
        #expect(!p.client.session.wantsInput)
    }
}
