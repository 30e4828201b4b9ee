@testable import Crypto
import Glibc
import Loop
@testable import Roles
import Testing
import Wire

/// The relay's resume keys in --state: created 0600 on first start, the same after a
/// restart (credentials survive it), rotated after a period with the previous key still
/// opening, and replaced (devices fall back to full handshakes) if the file is lost.
@Suite struct ResumeKeyStoreTests {
    final class Dir {
        let path: String
        let rng: Rng
        init() throws {
            rng = try Rng()
            path = "/tmp/agent-resume-" + String(rng.bytes(6).reduce(0) { $0 << 8 | UInt64($1) }, radix: 16)
            try Files.makeDirectory(path, mode: 0o700)
        }
        var file: String { path + "/resume-keys" }
        deinit {
            Files.remove(file)
            _ = rmdir(path)
        }
    }

    static let agent = AgentID(bytes: [UInt8](repeating: 3, count: AgentID.byteCount))!

    static func opens(_ s: ResumeKeyStore, _ m: ResumeMessage, at now: Int64) -> Bool {
        if case .success(let (claim, psk)) = s.sealer.open(m.identity, nowSeconds: now) {
            return claim.id == agent && psk == m.psk
        }
        return false
    }

    @Test func survivesARestart() throws {
        let d = try Dir()
        let now: Int64 = 1_800_000_000
        let a = try ResumeKeyStore(path: d.file, rotationSeconds: 1000)
        #expect(try a.load(rng: d.rng, now: now) == "created")
        #expect(Files.mode(d.file) == 0o600)
        let m = try #require(a.issue(id: Self.agent, role: .reverse, rng: d.rng, now: now, lifetime: 500))
        #expect(m.lifetimeSeconds == 500)
        #expect(Self.opens(a, m, at: now + 499))
        #expect(!Self.opens(a, m, at: now + 500))
        // A new process on the same --state.
        let b = try ResumeKeyStore(path: d.file, rotationSeconds: 1000)
        #expect(try b.load(rng: d.rng, now: now + 10) == "loaded")
        #expect(Self.opens(b, m, at: now + 10))
        // A lifetime longer than the rotation period is cut to it.
        let long = try #require(b.issue(id: Self.agent, role: .reverse, rng: d.rng, now: now, lifetime: 5000))
        #expect(long.lifetimeSeconds == 1000)
    }

    @Test func rotatesKeepingThePreviousKey() throws {
        let d = try Dir()
        let now: Int64 = 1_800_000_000
        let s = try ResumeKeyStore(path: d.file, rotationSeconds: 1000)
        _ = try s.load(rng: d.rng, now: now)
        let m = try #require(s.issue(id: Self.agent, role: .forward, rng: d.rng, now: now + 900, lifetime: 1000))
        #expect(!s.rotateIfDue(rng: d.rng, now: now + 999))
        #expect(s.rotateIfDue(rng: d.rng, now: now + 1000))
        #expect(s.keys.count == 2)
        #expect(Self.opens(s, m, at: now + 1500))  // the previous key still opens it
        let fresh = try #require(s.issue(id: Self.agent, role: .forward, rng: d.rng, now: now + 1000, lifetime: 1000))
        #expect(Array(fresh.identity[0..<4]) == s.keys[0].id)
        // The rotation is on disk.
        let r = try ResumeKeyStore(path: d.file, rotationSeconds: 1000)
        #expect(try r.load(rng: d.rng, now: now + 1001) == "loaded")
        #expect(Self.opens(r, m, at: now + 1500) && Self.opens(r, fresh, at: now + 1500))
        // One more period: the first key is gone (its credentials had expired anyway).
        #expect(s.rotateIfDue(rng: d.rng, now: now + 2000))
        #expect(s.sealer.open(m.identity, nowSeconds: now + 1500).failure == .unknownKey)
    }

    @Test func aLostOrDamagedFileMeansFreshKeys() throws {
        let d = try Dir()
        let now: Int64 = 1_800_000_000
        let s = try ResumeKeyStore(path: d.file)
        _ = try s.load(rng: d.rng, now: now)
        let m = try #require(s.issue(id: Self.agent, role: .reverse, rng: d.rng, now: now))
        try Files.writeAtomically(d.file, Array("garbage".utf8), mode: 0o600)
        let damaged = try ResumeKeyStore(path: d.file)
        #expect(try damaged.load(rng: d.rng, now: now) == "unreadable_replaced")
        #expect(damaged.sealer.open(m.identity, nowSeconds: now + 1).failure == .unknownKey)
        Files.remove(d.file)
        let lost = try ResumeKeyStore(path: d.file)
        #expect(try lost.load(rng: d.rng, now: now) == "created")
        #expect(lost.sealer.open(m.identity, nowSeconds: now + 1).failure == .unknownKey)
        #expect(ResumeKeyStore.parse(ResumeKeyStore.encode(lost.keys))?.count == 1)
    }
}
