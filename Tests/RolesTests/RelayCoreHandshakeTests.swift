import Crypto
import Loop
import Mux
@testable import Roles
import Testing
import Wire

/// The relay core's phase machine in memory: TLS -> preamble -> hello -> ready, and the
/// admission decision applied (RelayHandshake.swift, RelayAdmission.swift).
@Suite struct RelayCoreHandshakeTests {
    @Test func anEnrolledKeyIsAdmitted() throws {
        let w = World(try RelayFixture())
        let dev = try TestAgent(.reverse, relay: w.relay, now: w.now)
        try w.relay.enroll(dev)
        let c = try #require(w.admit(dev))
        #expect(dev.phase == .ready)
        #expect(c.phase.isReady)
        #expect(c.id == dev.id)
        #expect(c.role == .reverse)
        #expect(w.core.online[dev.id] === c)
        #expect(w.core.stats.admitted == 1)
        #expect(w.core.pending.count == 0)  // the pending place was given back
        let snap = w.core.snapshot()
        #expect(snap.reverseTunnels == 1 && snap.forwardTunnels == 0 && snap.pendingHandshakes == 0)
    }

    /// ALPN agent-tls-key: the core sends CHALLENGE unsigned to an agent that checks its TLS
    /// key itself, signed to any other; both are admitted.
    @Test func theChallengeIsUnsignedOnlyForAnAgentThatChecksTheTLSKey() throws {
        let w = World(try RelayFixture())
        let bound = try TestAgent(.reverse, relay: w.relay, tlsKeyHello: true, now: w.now)
        let plain = try TestAgent(.reverse, relay: w.relay, port: 40_001, now: w.now)
        try w.relay.enroll(bound)
        try w.relay.enroll(plain)
        w.admit(bound)
        w.admit(plain)
        #expect(bound.phase == .ready && plain.phase == .ready)
        #expect(bound.challengeSigned == false)
        #expect(plain.challengeSigned == true)
        #expect(bound.link.tls.tlsKeyHello && !plain.link.tls.tlsKeyHello)
    }

    @Test func anUnknownKeyIsDeniedAndToldNothingMore() throws {
        let w = World(try RelayFixture())
        let stranger = try TestAgent(.reverse, relay: w.relay, now: w.now)
        let c = try #require(w.admit(stranger))
        #expect(stranger.phase == .denied)
        #expect(c.id == nil)
        #expect(w.core.online[stranger.id] == nil)
        #expect(w.core.stats.count(w.core.stats.handshakeFailures, "not_enrolled") == 1)
        #expect(w.core.registry.entry(stranger.id) == nil)
        // Closed once DENIED is flushed (the closing phase's deadline at the latest).
        w.advance(ms: 2_500)
        #expect(stranger.relayEnd.isClosed)
        #expect(w.core.conns.isEmpty)
        #expect(w.core.pending.count == 0)
    }

    @Test func openEnrollmentRegistersANewKey() throws {
        let w = World(try RelayFixture(openEnrollment: true))
        let dev = try TestAgent(.reverse, relay: w.relay, hostnames: ["dev1.example.com"], now: w.now)
        w.admit(dev)
        #expect(dev.phase == .ready)
        let e = try #require(w.core.registry.entry(dev.id))
        #expect(e.role == .reverse)
        #expect(e.hostnames == ["dev1.example.com"])
        #expect(w.core.registry.owner(ofHostname: "DEV1.example.com") == dev.id)
    }

    @Test func aKeyEnrolledAsADeviceIsNotAdmittedAsAForward() throws {
        let w = World(try RelayFixture())
        let dev = try TestAgent(.reverse, relay: w.relay, now: w.now)
        try w.relay.enroll(dev)
        let same = try TestAgent(.forward, relay: w.relay, key: dev.key, now: w.now)
        w.admit(same)
        #expect(same.phase == .denied)
        #expect(w.core.stats.count(w.core.stats.handshakeFailures, "role_mismatch") == 1)
    }

    @Test func garbageInsteadOfTLSClosesTheConnection() throws {
        let w = World(try RelayFixture())
        let (mine, theirs) = PipeEnd.pair()
        let c = try #require(w.core.accept(theirs, peer: SocketAddress.numeric("192.0.2.1", port: 1)!, now: w.now))
        _ = mine
        theirs.inbox = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        w.settle()
        #expect(c.link.isClosed)
        #expect(w.core.conns.isEmpty)
        #expect(w.core.pending.count == 0)
    }

    @Test func aSilentConnectionTimesOutInTLS() throws {
        let w = World(try RelayFixture())
        let (_, theirs) = PipeEnd.pair()
        let c = try #require(w.core.accept(theirs, peer: SocketAddress.numeric("192.0.2.1", port: 1)!, now: w.now))
        w.settle()
        #expect(!c.link.isClosed)
        w.advance(ms: Limits.relayHandshakeTimeoutMs - 1)
        #expect(!c.link.isClosed)
        w.advance(ms: 1)
        #expect(c.link.isClosed)
        #expect(w.core.stats.count(w.core.stats.handshakeFailures, "handshake_timeout") == 1)
    }

    @Test func aHealthCheckGets426AfterTLS() throws {
        let w = World(try RelayFixture())
        let a = try TestAgent(.reverse, relay: w.relay, now: w.now)
        let c = try #require(w.connect(a))
        // TLS by hand, then an HTTP request that is no Upgrade.
        for _ in 0..<20 {
            a.link.receive()
            if a.link.tls.handshake() == .done { break }
            a.link.flush()
            w.core.connReady(c.serial, read: true, write: true)
            w.core.turn(now: w.now, wallSeconds: w.wall)
        }
        #expect(a.link.tls.isOpen)
        _ = a.link.tls.write(Array("GET /health HTTP/1.1\r\nHost: relay\r\n\r\n".utf8))
        a.link.flush()
        w.core.connReady(c.serial, read: true, write: true)
        w.core.turn(now: w.now, wallSeconds: w.wall)
        a.link.receive()
        var buf = [UInt8](repeating: 0, count: 512)
        let r = buf.withUnsafeMutableBytes { a.link.tls.read(into: $0) }
        guard case .bytes(let n) = r else {
            Issue.record("no answer: \(r)")
            return
        }
        #expect(String(decoding: buf[0..<n], as: UTF8.self).hasPrefix("HTTP/1.1 426"))
        #expect(c.phase.isClosing)
    }

    /// TLS, preamble and hello share the deadline set at accept: a hello that stalls is
    /// closed at it, not later.
    @Test func aStalledHelloTimesOutAtTheHandshakeDeadline() throws {
        let w = World(try RelayFixture())
        let a = try TestAgent(.reverse, relay: w.relay, now: w.now)
        try w.relay.enroll(a)
        a.answersChallenge = false
        let c = try #require(w.connect(a))
        w.settle()
        #expect(a.phase == .hello)
        #expect(c.phase.isHello)
        #expect(w.core.pending.count == 1)
        w.advance(ms: Limits.relayHandshakeTimeoutMs - 1)
        #expect(!c.link.isClosed)
        w.advance(ms: 1)
        #expect(c.link.isClosed)
        #expect(w.core.pending.count == 0)
        #expect(w.core.stats.count(w.core.stats.handshakeFailures, "handshake_timeout") == 1)
    }

    /// A returning device: the RESUME credential of its last tunnel admits it without a
    /// certificate or signature (the TLS PSK proves the key that earned it).
    @Test func aReturningDeviceIsAdmittedWithItsResumeCredential() throws {
        let w = World(try RelayFixture())
        let dev = try TestAgent(.reverse, relay: w.relay, now: w.now)
        try w.relay.enroll(dev)
        w.admit(dev)
        let credential = try #require(dev.credential)
        let back = try TestAgent(.reverse, relay: w.relay, key: dev.key, port: 40_001, credential: credential, now: w.now)
        let c = try #require(w.admit(back))
        #expect(back.link.tls.resumedWithPSK)
        #expect(back.phase == .ready)
        #expect(w.core.online[dev.id] === c)
        #expect(w.core.stats.admitted == 2)
        #expect(w.core.stats.admittedResumed == 1)
    }

    /// A credential is bound to the key it was issued to: another key presenting it is denied.
    @Test func aResumeCredentialIsNoUseToAnotherKey() throws {
        let w = World(try RelayFixture())
        let dev = try TestAgent(.reverse, relay: w.relay, now: w.now)
        let thief = try TestAgent(.reverse, relay: w.relay, source: "192.0.2.66", now: w.now)
        try w.relay.enroll(dev)
        try w.relay.enroll(thief)
        w.admit(dev)
        let credential = try #require(dev.credential)
        let stolen = try TestAgent(.reverse, relay: w.relay, key: thief.key, source: "192.0.2.66", credential: credential,
                                   now: w.now)
        w.admit(stolen)
        #expect(stolen.phase != .ready)
        #expect(w.core.online[thief.id] == nil)
        #expect(w.core.stats.admittedResumed == 0)
    }

    /// A hostname is claimed once: a second device asking for it is denied, even under
    /// open enrollment, and the first keeps it.
    @Test func aHostnameAnotherDeviceHoldsIsNotGiven() throws {
        let w = World(try RelayFixture(openEnrollment: true))
        let first = try TestAgent(.reverse, relay: w.relay, hostnames: ["dev1.example.com"], now: w.now)
        let second = try TestAgent(.reverse, relay: w.relay, hostnames: ["Dev1.Example.com"], source: "192.0.2.11",
                                   now: w.now)
        w.admit(first)
        w.admit(second)
        #expect(first.phase == .ready)
        #expect(second.phase == .denied)
        #expect(w.core.stats.count(w.core.stats.handshakeFailures, "hostname_taken") == 1)
        #expect(w.core.registry.owner(ofHostname: "dev1.example.com") == first.id)
        #expect(w.core.registry.entry(second.id) == nil)
    }
}
