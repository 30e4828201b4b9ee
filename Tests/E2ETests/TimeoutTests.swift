import Crypto
import E2E
import Testing
import Wire

@Suite struct TimeoutTests {
    @Test func handshakeTimesOutOnTheSimulatedClock() throws {
        let setup = try Setup()
        let c = try E2ESession(client: setup.client, device: setup.device.id, target: defaultTarget, now: t0)
        let s = try E2ESession(server: setup.server, now: t0)
        let deadline = t0.adding(ms: E2ELimits.defaultHandshakeTimeoutMs)
        #expect(c.deadline == deadline && s.deadline == deadline)
        #expect(c.advance(now: t0) == .none)
        #expect(!c.outbound.isEmpty)  // ClientHello, never delivered
        #expect(c.phase == .handshaking)
        #expect(c.advance(now: deadline.adding(ms: -1)) == .none)
        #expect(s.advance(now: deadline.adding(ms: -1)) == .none)
        #expect(c.advance(now: deadline) == .failed(.timeout))
        #expect(s.advance(now: deadline) == .failed(.timeout))
        #expect(c.advance(now: deadline) == .none)
        #expect(c.phase == .failed(.timeout) && c.deadline == nil)
    }

    /// The role takes too long to connect the target: the server times out, and a
    /// late `answer` is ignored.
    @Test func serverTimesOutWaitingForTheRole() throws {
        let setup = try Setup()
        let p = try setup.pump()
        p.server.answers = false
        p.run()
        #expect(p.server.events == [.targetRequested(defaultTarget)])
        #expect(p.server.session.phase == .awaitingAnswer)
        #expect(p.client.session.phase == .awaitingAnswer)
        p.now = t0.adding(ms: E2ELimits.defaultHandshakeTimeoutMs)
        p.run()
        #expect(p.server.events.last == .failed(.timeout))
        #expect(p.client.events.last == .failed(.timeout))
        p.server.session.answer(nil)
        #expect(p.server.session.advance(now: p.now) == .none)
        #expect(p.server.session.phase == .failed(.timeout))
    }

    /// `answer` queues the status (and a refusal's close_notify) at once: a role that
    /// ends the stream when `outbound` is empty cannot end it ahead of the answer.
    @Test(arguments: [nil, Reason.connectFailed])
    func answerIsQueuedImmediately(refusal: Reason?) throws {
        let setup = try Setup()
        let p = try setup.pump()
        p.server.answers = false
        p.run()
        #expect(p.server.session.outbound.isEmpty)
        p.server.session.answer(refusal)
        #expect(!p.server.session.outbound.isEmpty)
        #expect(p.server.session.advance(now: p.now) == (refusal.map { E2EEvent.refused($0) } ?? .established))
        #expect(p.server.session.advance(now: p.now) == .none)
        p.run()
        #expect(p.client.events == [refusal.map { E2EEvent.refused($0) } ?? .established])
    }

    @Test func establishedSessionsHaveNoDeadline() throws {
        let setup = try Setup()
        let p = try setup.pump()
        p.client.closeWhenDone = false
        p.server.closeWhenDone = false
        p.run()
        #expect(p.client.session.deadline == nil && p.server.session.deadline == nil)
        p.now = t0.adding(ms: 100 * E2ELimits.defaultHandshakeTimeoutMs)
        p.run()
        #expect(p.client.session.phase == .established && p.server.session.phase == .established)
    }

    @Test func customHandshakeTimeout() throws {
        let rng = try Rng()
        let f = try TestAgent(rng)
        let d = try TestAgent(rng)
        let client = try E2EClient(rng: rng, key: f.key, certificate: f.cert, handshakeTimeoutMs: 250)
        let server = try E2EServer(rng: rng, key: d.key, certificate: d.cert, authorization: .denyAll, handshakeTimeoutMs: 400)
        let c = try E2ESession(client: client, device: d.id, target: defaultTarget, now: t0)
        let s = try E2ESession(server: server, now: t0)
        #expect(c.deadline == t0.adding(ms: 250) && s.deadline == t0.adding(ms: 400))
        #expect(c.advance(now: t0.adding(ms: 250)) == .failed(.timeout))
        #expect(s.advance(now: t0.adding(ms: 399)) == .none)
    }
}
