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
        init() throws {
            let rng = try Rng()
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

    static func issue(_ s: ResumeKeyStore, now: Int64, lifetime: Int64 = 500) throws -> ResumeMessage {
        let p = try #require(s.issue(id: agent, role: .reverse, now: now, lifetime: lifetime))
        return try decodeBytes(p) { (b) throws(WireError) in try ResumeMessage.decode(b) }
    }

    static func opens(_ s: ResumeKeyStore, _ m: ResumeMessage, at now: Int64) -> Bool {
        if case .success(let (claim, psk)) = s.sealer.open(m.identity, nowSeconds: now) {
            return claim.id == agent && psk == m.psk
        }
        return false
    }

    @Test func survivesARestart() throws {
        let d = try Dir()
        let now: Int64 = 1_800_000_000
        #expect(!Files.exists(d.file))
        let a = try ResumeKeyStore(path: d.file, now: now, rotationSeconds: 1000)
        #expect(a.image.count == 6 + 44 && a.created == now)
        #expect(Files.mode(d.file) == 0o600)
        let m = try Self.issue(a, now: now)
        #expect(m.lifetimeSeconds == 500)
        #expect(Self.opens(a, m, at: now + 499))
        #expect(!Self.opens(a, m, at: now + 500))
        // A new process on the same --state.
        let b = try ResumeKeyStore(path: d.file, now: now + 10, rotationSeconds: 1000)
        #expect(b.image == a.image && b.created == now)
        #expect(Self.opens(b, m, at: now + 10))
        // A lifetime longer than the rotation period is cut to it.
        #expect(try Self.issue(b, now: now, lifetime: 5000).lifetimeSeconds == 1000)
    }

    @Test func rotatesKeepingThePreviousKey() throws {
        let d = try Dir()
        let now: Int64 = 1_800_000_000
        let s = try ResumeKeyStore(path: d.file, now: now, rotationSeconds: 1000)
        let m = try Self.issue(s, now: now + 900, lifetime: 1000)
        #expect(!s.rotateIfDue(now: now + 999))
        #expect(s.rotateIfDue(now: now + 1000))
        #expect(s.image.count == 6 + 2 * 44)
        #expect(Self.opens(s, m, at: now + 1500))  // the previous key still opens it
        let fresh = try Self.issue(s, now: now + 1000, lifetime: 1000)
        #expect(Array(fresh.identity[0..<4]) == Array(s.image[6..<10]))
        // The rotation is on disk.
        let r = try ResumeKeyStore(path: d.file, now: now + 1001, rotationSeconds: 1000)
        #expect(r.image == s.image)
        #expect(Self.opens(r, m, at: now + 1500) && Self.opens(r, fresh, at: now + 1500))
        // One more period: the first key is gone (its credentials had expired anyway).
        #expect(s.rotateIfDue(now: now + 2000))
        #expect(s.sealer.open(m.identity, nowSeconds: now + 1500).failure == .unknownKey)
        // A relay started long after: rotated at once.
        let late = try ResumeKeyStore(path: d.file, now: now + 9000, rotationSeconds: 1000)
        #expect(late.created == now + 9000 && Array(late.image[50..<94]) == Array(s.image[6..<50]))
    }

    @Test func aLostOrDamagedFileMeansFreshKeys() throws {
        let d = try Dir()
        let now: Int64 = 1_800_000_000
        let s = try ResumeKeyStore(path: d.file, now: now)
        let m = try Self.issue(s, now: now)
        try Files.writeAtomically(d.file, Array("garbage".utf8), mode: 0o600)
        let damaged = try ResumeKeyStore(path: d.file, now: now)
        #expect(damaged.image.count == 6 + 44 && damaged.image != s.image)
        #expect(damaged.sealer.open(m.identity, nowSeconds: now + 1).failure == .unknownKey)
        #expect(Files.mode(d.file) == 0o600)
        Files.remove(d.file)
        let lost = try ResumeKeyStore(path: d.file, now: now)
        #expect(lost.image.count == 6 + 44)
        #expect(lost.sealer.open(m.identity, nowSeconds: now + 1).failure == .unknownKey)
    }
}
