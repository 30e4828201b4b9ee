@testable import Roles
import Testing
import Wire

/// Device side, review finding 4: what an unauthorized forward can make a device hold and
/// spend before authorization.
@Suite struct PreAuthTests {
    static let a = PreAuth.key(origin: [UInt8](repeating: 0xaa, count: 20))
    static let b = PreAuth.key(origin: [UInt8](repeating: 0xbb, count: 20))

    @Test func streamsBeforeAuthorizationAreBoundedPerForwardAndInAll() {
        let gate = Gate(limit: Limits.reverseMaxUnauthorizedStreams, perSource: Limits.reverseMaxUnauthorizedPerForward)
        let strikes = ForwardStrikes()
        var held: [PreAuth] = []
        for _ in 0..<Limits.reverseMaxUnauthorizedPerForward {
            guard case .success(let t) = gate.enter(Self.a) else { Issue.record("refused early"); return }
            held.append(PreAuth(ticket: t, origin: Self.a, strikes: strikes))
        }
        guard case .failure(.sourceShare) = gate.enter(Self.a) else { Issue.record("one forward took more"); return }
        // Another forward still gets in; an authorized stream gives its place back, without a strike.
        guard case .success(let tb) = gate.enter(Self.b) else { Issue.record("other forward refused"); return }
        let pb = PreAuth(ticket: tb, origin: Self.b, strikes: strikes)
        pb.authorize()
        #expect(gate.held(by: Self.b) == 0)
        _ = pb
        // Dropping the held streams (whatever ended them) gives the places back, with a strike each.
        held.removeAll()
        #expect(gate.count == 0)
        #expect(strikes.pending.count == Limits.reverseMaxUnauthorizedPerForward)
    }

    @Test func aForwardThatKeepsFailingIsHeldThenForgiven() {
        let strikes = ForwardStrikes()
        let now = Instant(ms: 10_000)
        for _ in 0..<Limits.reverseStrikeBurst { strikes.pending.append(Self.a) }
        strikes.settle(now: now)
        #expect(strikes.isHeld(Self.a, now: now))
        #expect(!strikes.isHeld(Self.b, now: now))
        // One strike's worth of time later, one more stream may try.
        #expect(!strikes.isHeld(Self.a, now: now.adding(ms: 1000 / Int64(Limits.reverseStrikesPerSecond))))
    }

    @Test func rememberedForwardsAreBounded() {
        let strikes = ForwardStrikes()
        let now = Instant(ms: 0)
        for i in 0..<(Limits.reverseTrackedForwards + 10) {
            strikes.pending.append(UInt64(i))
            strikes.settle(now: now)
        }
        #expect(strikes.forwards.count == Limits.reverseTrackedForwards)
    }
}

extension PreAuthTests {
    @Test func anAuthorizedForwardIsKnownUntilItFails() {
        let strikes = ForwardStrikes()
        let now = Instant(ms: 1_000)
        #expect(!strikes.isKnown(Self.a, now: now))
        strikes.trust(Self.a, now: now)
        #expect(strikes.isKnown(Self.a, now: now.adding(ms: 1000)))
        #expect(!strikes.isKnown(Self.a, now: now.adding(ms: Limits.reverseKnownForwardMs)))
        strikes.trust(Self.a, now: now)
        strikes.pending.append(Self.a)
        strikes.settle(now: now)
        #expect(!strikes.isKnown(Self.a, now: now), "a failure makes it unknown again")
    }
}
