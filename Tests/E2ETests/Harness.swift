import Crypto
import E2E
import Testing
import Wire

// In-memory harness for E2E sessions: no sockets, no sleeps, a simulated clock.
// A `Pump` joins a client and a server E2ESession by copying `outbound` to the
// peer's `inbound` in random chunks, optionally through a `Tamperer` that alters
// whole TLS records in flight (flip a bit, drop, duplicate, swap with the next).
//
// Every test builds its own Rng and keys: Swift Testing runs tests in parallel and
// an Rng (CTR_DRBG) is not thread-safe.

/// A key and its certificate: self-signed, or issued by a CA agent.
final class TestAgent {
    let key: PrivateKey
    let cert: Certificate

    init(_ rng: Rng, isCA: Bool = false) throws {
        key = try PrivateKey.generate(rng: rng)
        cert = try CertificateWriter.selfSigned(key: key, rng: rng, commonName: isCA ? "test ca" : nil, isCA: isCA)
    }

    /// A certificate from `ca` with `role` as its extended key usage (`.forward`: an
    /// operator's, `.reverse`: a device's, nil: none, as before roles existed).
    init(_ rng: Rng, issuedBy ca: TestAgent, name: String = "operator", role: AgentRole? = .forward) throws {
        key = try PrivateKey.generate(rng: rng)
        let der = try CertificateWriter.make(subjectKey: key.pk, options: .init(commonName: name, role: role),
                                             issuerKey: ca.key, issuer: ca.cert, rng: rng)
        cert = try Certificate.parse(der)
    }

    var id: AgentID { key.id }
}

/// Deterministic random numbers for chunk sizes (reproducible runs).
struct Xorshift {
    var state: UInt64

    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    /// 1...max
    mutating func size(_ max: Int) -> Int { Int(next() % UInt64(max)) + 1 }
}

/// Stream byte `i` of the direction with `seed`: not periodic over the sizes used,
/// so a reordered or repeated record shows up as a mismatch.
@inline(__always)
func pattern(_ i: Int, _ seed: UInt8) -> UInt8 {
    let x = UInt32(truncatingIfNeeded: i) &* 2_654_435_761
    return UInt8(truncatingIfNeeded: (x >> 24) ^ (x >> 11)) ^ seed
}

let t0 = Instant(ms: 1_000_000)
let defaultTarget = HostPort(host: "127.0.0.1", port: 22)

/// One side of a pump: a session plus what it should send and what it has received.
final class Endpoint {
    let session: E2ESession
    let name: String
    var events: [E2EEvent] = []
    /// Stream bytes to send once established (pattern with `sendSeed`), then close_notify if `closeWhenDone`.
    var sendTotal = 0
    var sendSeed: UInt8
    var closeWhenDone = true
    var sent = 0
    var closeQueued = false
    /// Stream bytes received, checked against the peer's pattern.
    var received = 0
    var receiveSeed: UInt8
    var wrongPlaintext = false
    var gotClose = false
    var readFailed: Int32? = nil
    var writeChunk = 16384
    var buffer = [UInt8](repeating: 0, count: 16384)
    /// Server: the answer to give to a target request (if `answers`).
    var answer: (HostPort) -> Reason? = { _ in nil }
    var answers = true

    init(_ session: E2ESession, _ name: String, sendSeed: UInt8, receiveSeed: UInt8) {
        self.session = session
        self.name = name
        self.sendSeed = sendSeed
        self.receiveSeed = receiveSeed
    }

    var isEstablished: Bool { session.phase == .established }
    var isFailed: Bool {
        if case .failed = session.phase { return true }
        return false
    }

    var failure: E2EFailure? {
        if case .failed(let f) = session.phase { return f }
        return nil
    }

    /// Runs the session as far as it goes now. Returns true if anything happened.
    func drive(now: Instant) -> Bool {
        var progress = false
        while true {
            let e = session.advance(now: now)
            if e == .none { break }
            progress = true
            events.append(e)
            if case .targetRequested(let t) = e, answers { session.answer(answer(t)) }
        }
        guard isEstablished else { return progress }
        // Write our pattern.
        while sent < sendTotal {
            let n = min(writeChunk, sendTotal - sent, buffer.count)
            for i in 0..<n { buffer[i] = pattern(sent + i, sendSeed) }
            let r = buffer.withUnsafeBytes { session.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            guard case .bytes(let w) = r else { break }
            sent += w
            progress = true
        }
        if sent == sendTotal && closeWhenDone && !closeQueued {
            closeQueued = session.closeWrite()
            progress = progress || closeQueued
        }
        // Read and check the peer's pattern.
        readLoop: while !gotClose && readFailed == nil {
            let r = buffer.withUnsafeMutableBytes { session.read(into: $0) }
            switch r {
            case .bytes(let n):
                for i in 0..<n where buffer[i] != pattern(received + i, receiveSeed) { wrongPlaintext = true }
                received += n
                progress = true
            case .closed:
                gotClose = true
                progress = true
            case .needIO:
                break readLoop
            case .failed(let c):
                readFailed = c
                progress = true
            }
        }
        // A failure seen by read is reported by advance too.
        while true {
            let e = session.advance(now: now)
            if e == .none { break }
            events.append(e)
            progress = true
        }
        return progress
    }
}

enum Mutation: CaseIterable, CustomStringConvertible {
    case flip, drop, duplicate, swapWithNext

    var description: String {
        switch self {
        case .flip: return "flip"
        case .drop: return "drop"
        case .duplicate: return "duplicate"
        case .swapWithNext: return "swap"
        }
    }
}

/// Splits one direction's ciphertext into TLS records and alters record `index`.
final class Tamperer {
    let index: Int
    let mutation: Mutation
    var pending: [UInt8] = []
    var count = 0
    var held: [UInt8]? = nil
    /// Record kinds seen (content type bytes), for reports.
    var types: [UInt8] = []

    init(index: Int, mutation: Mutation) {
        self.index = index
        self.mutation = mutation
    }

    /// Takes raw ciphertext, returns what goes on the wire.
    func pass(_ bytes: [UInt8]) -> [UInt8] {
        pending += bytes
        var out: [UInt8] = []
        while pending.count >= 5 {
            let len = Int(pending[3]) << 8 | Int(pending[4])
            guard pending.count >= 5 + len else { break }
            var record = Array(pending[0..<(5 + len)])
            pending.removeFirst(5 + len)
            types.append(record[0])
            let k = count
            count += 1
            if let h = held {
                out += record
                out += h
                held = nil
                continue
            }
            guard k == index else {
                out += record
                continue
            }
            switch mutation {
            case .flip:
                record[5 + len / 2] ^= 0x04
                out += record
            case .drop:
                break
            case .duplicate:
                out += record
                out += record
            case .swapWithNext:
                held = record
            }
        }
        return out
    }
}

/// Counts records in a byte stream (for sizing tamper runs).
final class RecordCounter {
    var pending: [UInt8] = []
    var count = 0
    /// Largest record body seen.
    var largest = 0

    func pass(_ bytes: [UInt8]) {
        pending += bytes
        while pending.count >= 5 {
            let len = Int(pending[3]) << 8 | Int(pending[4])
            guard pending.count >= 5 + len else { break }
            pending.removeFirst(5 + len)
            count += 1
            largest = max(largest, len)
        }
    }
}

/// Joins a client and a server endpoint through in-memory "mux streams".
final class Pump {
    let client: Endpoint
    let server: Endpoint
    var now = t0
    var rng: Xorshift
    /// Largest ciphertext piece delivered at once.
    var maxChunk: Int
    var toServerTamper: Tamperer? = nil
    var toClientTamper: Tamperer? = nil
    let toServerCounter = RecordCounter()
    let toClientCounter = RecordCounter()
    /// Bytes in flight after tampering, per direction.
    var toServerWire: [UInt8] = []
    var toClientWire: [UInt8] = []
    /// Ciphertext bytes taken from each side's outbound.
    var clientSent = 0
    var serverSent = 0
    /// Ciphertext moved (both directions) until both sides were established.
    var bytesToEstablish: Int? = nil

    init(client: E2ESession, server: E2ESession, seed: UInt64 = 1, maxChunk: Int = 4096) {
        self.client = Endpoint(client, "client", sendSeed: 0x11, receiveSeed: 0x22)
        self.server = Endpoint(server, "server", sendSeed: 0x22, receiveSeed: 0x11)
        rng = Xorshift(seed: seed)
        self.maxChunk = maxChunk
    }

    /// One round: drive both, move bytes. Returns true if anything happened.
    func step() -> Bool {
        var progress = client.drive(now: now)
        progress = server.drive(now: now) || progress
        progress = move(from: client.session, to: server.session, wire: &toServerWire, tamper: toServerTamper,
                        counter: toServerCounter, sent: &clientSent) || progress
        progress = move(from: server.session, to: client.session, wire: &toClientWire, tamper: toClientTamper,
                        counter: toClientCounter, sent: &serverSent) || progress
        if bytesToEstablish == nil && client.isEstablished && server.isEstablished {
            bytesToEstablish = clientSent + serverSent
        }
        return progress
    }

    func move(from a: E2ESession, to b: E2ESession, wire: inout [UInt8], tamper: Tamperer?,
              counter: RecordCounter, sent: inout Int) -> Bool {
        var progress = false
        if !a.outbound.isEmpty {
            let bytes = a.outbound.peekAll()
            a.outbound.consume(bytes.count)
            sent += bytes.count
            counter.pass(bytes)
            wire += tamper?.pass(bytes) ?? bytes
            progress = true
        }
        if !wire.isEmpty && b.inbound.freeSpace > 0 {
            let n = min(wire.count, b.inbound.freeSpace, rng.size(maxChunk))
            wire.withUnsafeBytes { _ = b.inbound.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            wire.removeFirst(n)
            progress = true
        }
        return progress
    }

    /// Runs until nothing moves.
    func run(maxSteps: Int = 1_000_000) {
        var steps = 0
        while step() {
            steps += 1
            precondition(steps < maxSteps, "pump did not settle")
        }
    }

    /// Lets the handshake deadline pass, then ends both mux streams (FIN both ways),
    /// and runs to the end: every session is then established-and-closed or failed.
    func finish() {
        run()
        now = now.adding(ms: E2ELimits.defaultHandshakeTimeoutMs + 1)
        run()
        client.session.transportEnded()
        server.session.transportEnded()
        run()
    }
}

/// Client and server contexts for a device and an operator.
struct Setup {
    let rng: Rng
    let device: TestAgent
    let forward: TestAgent
    let client: E2EClient
    let server: E2EServer

    init(authorization: ((TestAgent) -> Authorization)? = nil, forward: TestAgent? = nil, device: TestAgent? = nil,
         rng: Rng? = nil, resumptionLifetimeMs: Int64 = E2ELimits.defaultResumptionLifetimeMs) throws {
        let r = try rng ?? Rng()
        self.rng = r
        let d = try device ?? TestAgent(r)
        let f = try forward ?? TestAgent(r)
        self.device = d
        self.forward = f
        client = try E2EClient(rng: r, key: f.key, certificate: f.cert, resumptionLifetimeMs: resumptionLifetimeMs)
        let auth = authorization?(f) ?? Authorization(keys: AuthorizedKeys(ids: [f.id]), ca: nil, any: false)
        server = try E2EServer(rng: r, key: d.key, certificate: d.cert, authorization: auth)
    }

    func pump(target: HostPort = defaultTarget, device: AgentID? = nil, now: Instant = t0, seed: UInt64 = 1,
              maxChunk: Int = 4096) throws -> Pump {
        let c = try E2ESession(client: client, device: device ?? self.device.id, target: target, now: now)
        let s = try E2ESession(server: server, now: now)
        let p = Pump(client: c, server: s, seed: seed, maxChunk: maxChunk)
        p.now = now
        return p
    }
}
