#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Loop
import Mux
@testable import Roles
import Testing
import Wire

// The relay's core (RelayCore) in memory: no socket, no poller, no sleep. Every
// connection is a `PipeEnd` pair; agents are real TLS clients (TLSSession) that speak
// the real hello (HelloAuth) over a real Mux; the clock is a number the test moves.
// `World.settle` plays the driver: it hands readiness to the core and runs its turns,
// and runs each agent, until no byte moves.

/// One end of an in-memory byte stream; what it drains lands in its peer's inbox.
final class PipeEnd: ByteStream {
    private(set) var fd: Int32 = 1
    var inbox: [UInt8] = []
    /// The other end shut its direction or closed: EOF once the inbox is read.
    var inboxEnded = false
    var peer: PipeEnd?
    var aborted = false
    var shut = false

    static func pair() -> (PipeEnd, PipeEnd) {
        let a = PipeEnd(), b = PipeEnd()
        a.peer = b
        b.peer = a
        return (a, b)
    }

    var isClosed: Bool { fd < 0 }
    /// Something for `fill` to report (bytes or the end).
    var hasInput: Bool { !inbox.isEmpty || inboxEnded }

    func fill(_ q: ByteQueue) -> (bytes: Int, end: SocketQueue.End) {
        guard fd >= 0 else { return (0, .failed(9)) }
        let n = min(q.freeSpace, inbox.count)
        if n > 0 {
            let took = inbox.withUnsafeBytes { q.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            inbox.removeFirst(took)
        }
        if inbox.isEmpty && inboxEnded { return (n, .eof) }
        return (n, .wouldBlock)
    }

    func drain(_ q: ByteQueue) -> (bytes: Int, end: SocketQueue.End) {
        guard fd >= 0 else { return (0, .failed(9)) }
        guard let p = peer, !p.isClosed else {
            let n = q.count
            q.consume(n)
            return (n, .wouldBlock)
        }
        let n = q.count
        p.inbox += Array(q.readable)
        q.consume(n)
        return (n, .wouldBlock)
    }

    func shutdownWrite() {
        shut = true
        peer?.inboxEnded = true
    }

    func close(abort: Bool) {
        guard fd >= 0 else { return }
        fd = -1
        aborted = abort
        peer?.inboxEnded = true
    }
}

/// The relay's identity and state directory, made once per test.
final class RelayFixture {
    let rng: Rng
    let key: PrivateKey
    let dir: String
    let core: RelayCore

    init(openEnrollment: Bool = false, maxTunnels: Int = 1000, heartbeatMs: Int64 = 15_000,
         drainTimeoutMs: Int64 = 5_000) throws {
        rng = try Rng()
        key = try PrivateKey.generate(rng: rng)
        let cert = try CertificateWriter.selfSigned(key: key, rng: rng, commonName: "agent relay")
        dir = "/tmp/agent-relaycore-" + String(rng.bytes(6).reduce(0) { $0 << 8 | UInt64($1) }, radix: 16)
        try Files.makeDirectory(dir, mode: 0o700)
        let resume = try ResumeKeyStore(path: dir + "/resume-keys", now: World.wall0)
        let tls = try TLSConfig(side: .server, rng: rng, certificate: cert, key: key, peerCheck: .none,
                                resume: resume.sealer, tlsKeyHello: true)
        let registry = try Registry.load(dir + "/registry")
        core = RelayCore(rng: rng, key: key, tlsConfig: tls, resumeKeys: resume, registry: registry,
                         enrollSecret: nil, clientCA: nil, openEnrollment: openEnrollment, heartbeatMs: heartbeatMs,
                         drainTimeoutMs: drainTimeoutMs, maxTunnels: maxTunnels)
    }

    deinit {
        for f in ["registry", "registry.journal", "resume-keys"] { Files.remove(dir + "/" + f) }
        _ = rmdir(dir)
    }

    var pinDigest: [UInt8] { Digest.sha256(key.publicKeyDER()) }

    /// Enrolls `agent`'s key as if it had come with a token before.
    func enroll(_ agent: TestAgent, hostnames: [String] = []) throws {
        try core.registry.put(Registry.Entry(id: agent.id, role: agent.role, enrolledAt: World.wall0, via: "token",
                                             hostnames: hostnames, token: nil))
    }
}

struct TestFailure: Error {
    let message: String
    init(_ m: String) { message = m }
}

/// An agent in memory: a TLS client, the hello, a Mux; the reverse's or forward's side
/// of the protocol as far as the tests need it (streams are driven by the test).
final class TestAgent {
    enum Phase: Equatable { case tls, hello, ready, denied, failed, closed }

    let role: AgentRole
    let key: PrivateKey
    let cert: Certificate
    let rng: Rng
    let pinDigest: [UInt8]
    let hostnames: [String]
    let link: TLSLink
    /// The relay's end of this agent's connection (what the core was given).
    let relayEnd: PipeEnd
    let mux: Mux
    let pool = BufferPool(bufferSize: 64 * 1024, limit: 64)
    var phase = Phase.tls
    /// False: the agent never answers the CHALLENGE (a hello that stalls).
    var answersChallenge = true
    /// Whether the relay's CHALLENGE carried a signature (nil until one arrived).
    var challengeSigned: Bool? = nil
    /// Mux events after the hello (OPEN, ACCEPT, DATA...), for the test to look at.
    var events: [MuxEvent] = []
    var peer: SocketAddress

    /// `credential`: a RESUME payload from an earlier tunnel, offered as a TLS 1.3 PSK.
    /// `tlsKeyHello`: offers ALPN agent-tls-key and checks the relay's TLS key itself, as an
    /// agent without --ca does.
    init(_ role: AgentRole, relay: RelayFixture, key: PrivateKey? = nil, hostnames: [String] = [],
         source: String = "192.0.2.10", port: UInt16 = 40_000, credential: [UInt8]? = nil,
         tlsKeyHello: Bool = false, now: Instant) throws {
        self.role = role
        rng = relay.rng
        self.key = try key ?? PrivateKey.generate(rng: relay.rng)
        cert = try CertificateWriter.selfSigned(key: self.key, rng: relay.rng)
        pinDigest = relay.pinDigest
        self.hostnames = hostnames
        let config = try TLSConfig(side: .client, rng: relay.rng, certificate: nil, key: nil, peerCheck: .none,
                                   resumeCredential: credential, tlsKeyHello: tlsKeyHello)
        let (mine, theirs) = PipeEnd.pair()
        link = TLSLink(stream: mine, tls: try TLSSession(config: config))
        relayEnd = theirs
        mux = Mux(side: .agent, limits: MuxLimits(), pool: pool, now: now)
        peer = SocketAddress.numeric(source, port: port)!
    }

    var id: AgentID { key.id }
    var stream: PipeEnd { link.stream as! PipeEnd }

    /// One step: read what the relay sent, advance, write. True if anything moved.
    @discardableResult
    func step(now: Instant) -> Bool {
        if phase == .closed || phase == .failed { return false }
        var moved = link.receive() > 0
        switch phase {
        case .tls:
            switch link.tls.handshake() {
            case .done:
                _ = link.tls.write(Preamble.raw)
                phase = .hello
                moved = true
                moved = hello(now: now) || moved
            case .needIO:
                break
            case .failed:
                phase = .failed
            }
        case .hello:
            moved = hello(now: now) || moved
        case .ready:
            if !TunnelPipe.pullInput(link.tls, mux) { phase = .closed }
            while let ev = mux.poll(now: now) {
                events.append(ev)
                moved = true
            }
            if !TunnelPipe.pushOutput(link, mux) { phase = .failed }
        case .denied, .failed, .closed:
            break
        }
        moved = link.flush() > 0 || moved
        if link.socketEOF && phase != .closed && !link.tls.hasBufferedInput {
            if phase == .ready || phase == .hello || phase == .tls { phase = phase == .ready ? .closed : .failed }
        }
        return moved
    }

    private func hello(now: Instant) -> Bool {
        var moved = false
        _ = TunnelPipe.pullInput(link.tls, mux)
        while phase == .hello, let ev = mux.poll(now: now) {
            moved = true
            switch ev {
            case .hello(.challenge, _) where !answersChallenge:
                break
            case .hello(.challenge, let payload):
                challengeSigned = (try? decodeBytes(payload) { (b) throws(WireError) in try ChallengeMessage.decode(b) })
                    .map { !$0.signature.isEmpty }
                let bound = link.tls.tlsKeyHello
                let r = HelloAuth.answer(challenge: payload, pinDigest: pinDigest,
                                         tlsPeerKey: bound ? link.tls.peerPublicKeyDER : nil, identity: key,
                                         certificates: [cert.leafDER], role: role, token: [], hostnames: hostnames,
                                         rng: rng, resumed: link.tls.resumedWithPSK, tlsKeyHello: bound)
                guard case .success(let auth) = r else { phase = .failed; return true }
                _ = mux.sendHello(.auth, auth)
            case .hello(.welcome, _):
                mux.helloFinished(now: now)
                phase = .ready
            case .hello(.denied, _):
                phase = .denied
            default:
                phase = .failed
            }
        }
        _ = TunnelPipe.pushOutput(link, mux)
        return moved
    }

    /// Takes the events seen so far.
    func takeEvents() -> [MuxEvent] {
        defer { events.removeAll() }
        return events
    }

    /// The peer closed the tunnel (TLS close_notify or EOF).
    var tunnelClosed: Bool { phase == .closed || relayEnd.isClosed }
}

/// A public TLS client on the SNI listener: only its ClientHello matters to the relay.
final class PublicClient {
    let link: TLSLink
    let relayEnd: PipeEnd
    let peer: SocketAddress

    init(serverName: String, rng: Rng, source: String = "198.51.100.7") throws {
        let config = try TLSConfig(side: .client, rng: rng, certificate: nil, key: nil, peerCheck: .none)
        let (mine, theirs) = PipeEnd.pair()
        link = TLSLink(stream: mine, tls: try TLSSession(config: config, serverName: serverName))
        relayEnd = theirs
        peer = SocketAddress.numeric(source, port: 50_000)!
    }

    var stream: PipeEnd { link.stream as! PipeEnd }

    /// Writes the ClientHello (the first flight) to the relay.
    func sendHello() {
        _ = link.tls.handshake()
        link.flush()
    }
}

/// The relay core and its agents, with a simulated clock.
final class World {
    static let wall0: Int64 = 1_800_000_000
    let relay: RelayFixture
    var core: RelayCore { relay.core }
    var now = Instant(ms: 1_000_000)
    var agents: [TestAgent] = []
    var publics: [(PublicClient, UInt64)] = []

    init(_ relay: RelayFixture) { self.relay = relay }

    var wall: Int64 { World.wall0 + (now.ms - 1_000_000) / 1000 }

    /// Connects an agent to the core (the driver's accept); nil if the core dropped it.
    @discardableResult
    func connect(_ a: TestAgent) -> RelayConn? {
        agents.append(a)
        return core.accept(a.relayEnd, peer: a.peer, now: now)
    }

    func connectPublic(_ p: PublicClient) -> SniConn? {
        guard let s = core.acceptSni(p.relayEnd, peer: p.peer, now: now) else { return nil }
        publics.append((p, s.serial))
        return s
    }

    /// Plays the driver until nothing moves: readiness to the core, its turn, each agent's step.
    func settle(maxRounds: Int = 500) {
        for _ in 0..<maxRounds {
            var moved = false
            for (_, c) in core.conns {
                if let p = c.link.stream as? PipeEnd, p.hasInput, !p.isClosed {
                    core.connReady(c.serial, read: true, write: true)
                }
            }
            for (p, serial) in publics where p.relayEnd.hasInput && !p.relayEnd.isClosed {
                core.sniReady(serial, .read)
                moved = true
            }
            let before = totalInFlight
            core.turn(now: now, wallSeconds: wall)
            core.touched.forEach { $0.touched = false }
            core.touched.removeAll()
            for a in agents where a.step(now: now) { moved = true }
            if totalInFlight != before { moved = true }
            if !moved && totalInFlight == 0 && core.work.items.isEmpty { return }
        }
    }

    private var totalInFlight: Int {
        agents.reduce(0) { $0 + $1.relayEnd.inbox.count + $1.stream.inbox.count }
            + publics.reduce(0) { $0 + $1.0.relayEnd.inbox.count }
    }

    /// Moves the clock and runs what became due.
    func advance(ms: Int64) {
        now = now.adding(ms: ms)
        settle()
    }

    /// Connects `a` and runs until its hello ends; returns the core's connection.
    @discardableResult
    func admit(_ a: TestAgent) -> RelayConn? {
        let c = connect(a)
        settle()
        return c
    }
}

extension RelayStats {
    func count(_ list: [(String, UInt64)], _ reason: String) -> UInt64 {
        list.first { $0.0 == reason }?.1 ?? 0
    }
}

extension TestAgent {
    /// The first OPEN seen (and accepts it if `accept`).
    func takeOpen(accept: Bool = true) -> (UInt32, OpenPayload)? {
        for (i, ev) in events.enumerated() {
            if case .opened(let sid, let open) = ev {
                events.remove(at: i)
                if accept { mux.accept(sid) }
                return (sid, open)
            }
        }
        return nil
    }

    /// The last resume credential the relay gave (a RESUME frame).
    var credential: [UInt8]? {
        for ev in events.reversed() { if case .resume(let p) = ev { return p } }
        return nil
    }

    func saw(_ match: (MuxEvent) -> Bool) -> Bool { events.contains(where: match) }

    /// Queues `bytes` on stream `sid` (all of it: the tests send less than a window).
    func send(_ sid: UInt32, _ bytes: [UInt8]) {
        let n = bytes.withUnsafeBytes { mux.send(sid, $0) }
        #expect(n == bytes.count)
    }

    /// Takes everything received on `sid`.
    func receive(_ sid: UInt32) -> [UInt8] {
        guard let rb = mux.receiveBuffer(sid) else { return [] }
        let b = Array(rb.readable)
        rb.consume(b.count)
        return b
    }
}
