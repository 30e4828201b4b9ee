import Crypto
import E2E
import Testing
import Wire

/// A plain TLS peer (Crypto.TLSSession) that sends whatever records a test scripts:
/// it plays a misbehaving forward or reverse against a real E2ESession.
final class RawPeer {
    let tls: TLSSession
    /// Records to write once the handshake is done, in order (each `write` is one record).
    var script: [[UInt8]]
    var closeAfterScript: Bool
    var received: [UInt8] = []
    var gotClose = false

    init(side: TLSConfig.Side, agent: TestAgent, rng: Rng, script: [[UInt8]], closeAfterScript: Bool = false) throws {
        let config = try TLSConfig(side: side, rng: rng, certificate: agent.cert, key: agent.key,
                                   peerCheck: .afterHandshake(trusted: nil), ticketLifetimeSeconds: side == .server ? 3600 : nil)
        tls = try TLSSession(config: config)
        self.script = script
        self.closeAfterScript = closeAfterScript
    }

    /// Handshakes, writes the scripted records, reads what arrives.
    func drive() -> Bool {
        var progress = false
        if tls.isHandshaking {
            let before = tls.outbound.count
            _ = tls.handshake()
            progress = tls.outbound.count != before || tls.isOpen
        }
        guard tls.isOpen else { return progress }
        while !script.isEmpty {
            guard case .bytes = tls.write(script[0]) else { break }
            script.removeFirst()
            progress = true
        }
        if script.isEmpty && closeAfterScript && !tls.sentClose {
            tls.sendCloseNotify()
            progress = true
        }
        var buf = [UInt8](repeating: 0, count: 4096)
        while !gotClose {
            let r = buf.withUnsafeMutableBytes { tls.read(into: $0) }
            switch r {
            case .bytes(let k):
                received += buf[0..<k]
                progress = true
            case .closed:
                gotClose = true
                progress = true
            default:
                return progress
            }
        }
        return progress
    }
}

/// Joins a RawPeer and an E2ESession (whole-queue copies).
func runRaw(_ raw: RawPeer, _ e2e: Endpoint, now: Instant = t0) {
    var steps = 0
    while true {
        var progress = raw.drive()
        progress = e2e.drive(now: now) || progress
        for (from, to) in [(raw.tls.outbound, e2e.session.inbound), (e2e.session.outbound, raw.tls.inbound)] where !from.isEmpty {
            let k = to.append(from.readable)
            from.consume(k)
            progress = progress || k > 0
        }
        steps += 1
        precondition(steps < 10_000)
        if !progress { return }
    }
}

func request(_ host: String, _ port: UInt16) -> [UInt8] { TargetRequest.encode(HostPort(host: host, port: port))! }

@Suite struct InnerProtocolTests {
    // MARK: target request format

    @Test func requestBytes() {
        #expect(request("127.0.0.1", 22) == [1, 9] + Array("127.0.0.1".utf8) + [0, 22])
        #expect(request("::1", 443) == [1, 3, 0x3a, 0x3a, 0x31, 0x01, 0xbb])
        #expect(request("a", 65535) == [1, 1, 0x61, 0xff, 0xff])
        let longest = String(repeating: "h", count: 253)
        #expect(request(longest, 80).count == TargetRequest.maxSize)
        #expect(TargetRequest.encode(HostPort(host: String(repeating: "h", count: 254), port: 80)) == nil)
        #expect(TargetRequest.encode(HostPort(host: "", port: 80)) == nil)
        #expect(TargetRequest.encode(HostPort(host: "a b", port: 80)) == nil)
        #expect(TargetRequest.encode(HostPort(host: "[::1]", port: 80)) == nil)
        #expect(TargetRequest.encode(HostPort(host: "host", port: nil)) == nil)
        #expect(TargetRequest.encode(HostPort(host: "host", port: 0)) == nil)
    }

    @Test(arguments: [
        ([], TargetRequest.Progress.needMore(total: 2)),
        ([1], .needMore(total: 2)),
        ([1, 3], .needMore(total: 7)),
        ([1, 3, 0x3a, 0x3a, 0x31, 0x01], .needMore(total: 7)),
        ([1, 3, 0x3a, 0x3a, 0x31, 0x01, 0xbb], .complete(HostPort(host: "::1", port: 443))),
        ([2], .malformed),                                       // version
        ([0, 1, 0x61, 0, 1], .malformed),                        // version 0
        ([1, 0], .malformed),                                    // empty host
        ([1, 254], .malformed),                                  // host too long
        ([1, 1, 0x20, 0, 22], .malformed),                       // space
        ([1, 1, 0x5b, 0, 22], .malformed),                       // '['
        ([1, 1, 0x7f, 0, 22], .malformed),                       // DEL
        ([1, 1, 0xc3, 0, 22], .malformed),                       // non-ASCII
        ([1, 1, 0x61, 0, 0], .malformed),                        // port 0
        ([1, 1, 0x61, 0, 22, 0], .malformed),                    // trailing byte
    ] as [([UInt8], TargetRequest.Progress)])
    func requestParsing(bytes: [UInt8], expected: TargetRequest.Progress) {
        #expect(bytes.withUnsafeBytes { TargetRequest.parse($0) } == expected)
    }

    @Test func answerBytes() {
        #expect(TargetRequest.answerByte(nil) == 0)
        #expect(TargetRequest.answerByte(.targetNotAllowed) == 4)
        #expect(TargetRequest.answerByte(.unspecified) == Reason.closed.rawValue)
    }

    // MARK: a misbehaving forward against the server

    /// Runs a raw client with `records` against an E2E server; returns the server's events.
    func serverEvents(_ records: [[UInt8]], close: Bool = false, answers: Bool = true) throws -> (Endpoint, RawPeer) {
        let setup = try Setup()
        let raw = try RawPeer(side: .client, agent: setup.forward, rng: setup.rng, script: records, closeAfterScript: close)
        let server = Endpoint(try E2ESession(server: setup.server, now: t0), "server", sendSeed: 1, receiveSeed: 2)
        server.answers = answers
        runRaw(raw, server)
        return (server, raw)
    }

    @Test(arguments: [
        ("bad version", [[2, 1, 0x61, 0, 22]]),
        ("length 0", [[1, 0, 0, 22]]),
        ("length 254", [[1, 254] + [UInt8](repeating: 0x61, count: 254) + [0, 22]]),
        ("trailing garbage", [request("127.0.0.1", 22) + [0]]),
        ("port 0", [[1, 1, 0x61, 0, 0]]),
        ("host with a space", [[1, 3, 0x61, 0x20, 0x62, 0, 22]]),
        ("data in the next record", [request("127.0.0.1", 22), [0x68, 0x69]]),
        ("split, then trailing garbage", [[1, 9], Array("127.0.0.1".utf8), [0, 22, 7]]),
    ] as [(String, [[UInt8]])])
    func malformedRequestIsAProtocolError(name: String, records: [[UInt8]]) throws {
        let (server, raw) = try serverEvents(records)
        #expect(server.events.last == .failed(.protocolError), "\(name)")
        #expect(server.events.filter { $0 == .failed(.protocolError) }.count == 1)
        #expect(server.session.phase == .failed(.protocolError))
        #expect(raw.received.isEmpty, "no answer to a malformed request")
    }

    @Test func closeBeforeTheRequestIsComplete() throws {
        let (server, _) = try serverEvents([[1, 9, 0x31]], close: true)
        #expect(server.events == [.failed(.protocolError)])
    }

    @Test func requestSplitAcrossRecords() throws {
        let bytes = request("example.internal", 8080)
        let (server, raw) = try serverEvents(bytes.map { [$0] })
        #expect(server.events == [.targetRequested(HostPort(host: "example.internal", port: 8080)), .established])
        #expect(raw.received == [0])
    }

    /// Data sent after the request but before the answer (in its own flight) is an error too.
    @Test func dataBeforeTheAnswer() throws {
        let setup = try Setup()
        let raw = try RawPeer(side: .client, agent: setup.forward, rng: setup.rng,
                              script: [request("127.0.0.1", 22)])
        let server = Endpoint(try E2ESession(server: setup.server, now: t0), "server", sendSeed: 1, receiveSeed: 2)
        server.answers = false
        runRaw(raw, server)
        #expect(server.events == [.targetRequested(defaultTarget)])
        raw.script = [[1, 2, 3]]
        runRaw(raw, server)
        #expect(server.events == [.targetRequested(defaultTarget), .failed(.protocolError)])
    }

    /// A forward that half-closes right after its request (nothing to send) is fine.
    @Test func closeNotifyAfterTheRequest() throws {
        let (server, raw) = try serverEvents([request("127.0.0.1", 22)], close: true)
        #expect(server.events == [.targetRequested(defaultTarget), .established])
        #expect(server.gotClose)
        #expect(raw.received == [0])
    }

    // MARK: a misbehaving reverse against the client

    func clientEvents(_ records: [[UInt8]], close: Bool = false) throws -> (Endpoint, RawPeer) {
        let setup = try Setup()
        let raw = try RawPeer(side: .server, agent: setup.device, rng: setup.rng, script: [], closeAfterScript: false)
        let client = Endpoint(try E2ESession(client: setup.client, device: setup.device.id, target: defaultTarget, now: t0),
                              "client", sendSeed: 1, receiveSeed: 2)
        client.closeWhenDone = false
        runRaw(raw, client)
        #expect(raw.received == request("127.0.0.1", 22))
        raw.script = records
        raw.closeAfterScript = close
        runRaw(raw, client)
        return (client, raw)
    }

    @Test func answerAndDataInOneRecord() throws {
        // The bytes after the status are stream data (the client endpoint checks them
        // against the pattern with its receive seed, 2).
        let (client, _) = try clientEvents([[0, pattern(0, 2), pattern(1, 2)]])
        #expect(client.events == [.established])
        #expect(client.received == 2 && !client.wrongPlaintext)
    }

    @Test func closeWithoutAnswer() throws {
        let (client, _) = try clientEvents([], close: true)
        #expect(client.events == [.failed(.protocolError)])
    }

    @Test func unknownStatusIsARefusal() throws {
        let (client, _) = try clientEvents([[200]], close: true)
        #expect(client.events == [.refused(.unspecified)])
    }
}
