import Glibc
import Loop
@testable import Roles
import Testing
import Wire

/// The relay's registry: snapshot + journal (review finding 8: it was rewritten whole on every
/// enrollment, inside the loop, and refused to load past 4 MiB).
@Suite struct RegistryTests {
    final class Dir {
        let path: String
        init() {
            var r: UInt64 = 0
            withUnsafeMutableBytes(of: &r) { _ = getentropy($0.baseAddress, 8) }
            path = "/tmp/agent-registry-" + String(r, radix: 16)
            try? Files.makeDirectory(path)
        }
        deinit {
            for f in ["registry", "registry.journal"] { Files.remove(path + "/" + f) }
            _ = rmdir(path)
        }
        var registry: String { path + "/registry" }
        var journal: String { path + "/registry.journal" }
    }

    static func id(_ n: Int) -> AgentID {
        var b = [UInt8](repeating: 0, count: AgentID.byteCount)
        var x = UInt64(n) &* 0x9e37_79b9_7f4a_7c15 | 1
        for i in 0..<b.count {
            b[i] = UInt8(truncatingIfNeeded: x >> 56)
            x = x &* 6364136223846793005 &+ 1442695040888963407
        }
        return AgentID(bytes: b)!
    }

    static func entry(_ n: Int, hosts: [String] = [], token: String? = nil) -> Registry.Entry {
        Registry.Entry(id: id(n), role: n % 2 == 0 ? .reverse : .forward, enrolledAt: 1_800_000_000 + Int64(n),
                       via: token == nil ? "open" : "token", hostnames: hosts, token: token)
    }

    static func same(_ a: Registry, _ b: Registry) -> Bool {
        guard a.count == b.count else { return false }
        for (id, e) in a.entries {
            guard let f = b.entry(id), f.role == e.role, f.enrolledAt == e.enrolledAt, Text.equal(f.via, e.via),
                  Text.equal(f.hostnames, e.hostnames), f.token == e.token else { return false }
        }
        return true
    }

    static func bytes(_ path: String) -> [UInt8] { (try? Files.read(path, limit: 1 << 30)) ?? [] }

    static func write(_ path: String, _ b: [UInt8]) {
        try? Files.writeAtomically(path, b, mode: 0o600)
    }

    @Test func putsAreJournalledAndReload() throws {
        let d = Dir()
        let r = try Registry.load(d.registry)
        try r.put(Self.entry(1, hosts: ["a.example.test"], token: "00112233aabbccdd"))
        try r.put(Self.entry(2))
        try r.put(Self.entry(1, hosts: ["a.example.test", "b.example.test"], token: "00112233aabbccdd"))
        #expect(!Files.exists(d.registry), "no snapshot rewritten for a put")
        #expect(r.journalLines == 3)
        let again = try Registry.load(d.registry)
        #expect(Self.same(r, again))
        #expect(again.owner(ofHostname: "B.example.test") == Self.id(1))
        #expect(again.keys(enrolledByToken: "00112233aabbccdd") == 1)
        try again.remove(Self.id(1))
        let third = try Registry.load(d.registry)
        #expect(third.count == 1)
        #expect(third.owner(ofHostname: "a.example.test") == nil)
        #expect(third.keys(enrolledByToken: "00112233aabbccdd") == 0)
    }

    /// kill -9 or power loss while a line is written: at every byte of the last line, the
    /// registry loads as it was before that line, and the next put cuts the torn tail off.
    @Test func aTornLastLineAtEveryByteLoadsThePreviousState() throws {
        let d = Dir()
        let r = try Registry.load(d.registry)
        for n in 0..<5 { try r.put(Self.entry(n, hosts: n == 3 ? ["x.example.test"] : [])) }
        let before = try Registry.load(d.registry)
        try r.put(Self.entry(9, hosts: ["torn.example.test"], token: "0123456789abcdef"))
        let full = Self.bytes(d.journal)
        let last = full.count - (full.dropLast().lastIndex(of: UInt8(ascii: "\n"))! + 1)
        for cut in 0..<last {
            Self.write(d.journal, Array(full[0..<(full.count - last + cut)]))
            let torn = try Registry.load(d.registry)
            #expect(Self.same(torn, before), "cut at byte \(cut) of the last line")
            #expect(torn.ignoredJournalBytes == cut)
        }
        // A garbage tail (a power loss can leave zeros) is ignored too, then cut before appending.
        Self.write(d.journal, Array(full[0..<(full.count - last)]) + [0, 0, 0, 0, 10, 0, 0])
        let g = try Registry.load(d.registry)
        #expect(Self.same(g, before))
        try g.put(Self.entry(10))
        let after = try Registry.load(d.registry)
        #expect(after.ignoredJournalBytes == 0)
        #expect(after.count == before.count + 1)
    }

    /// Compaction: a new snapshot, then an empty journal. A crash between the two leaves a
    /// snapshot and the old journal: replaying it changes nothing.
    @Test func compactionKeepsEverythingAndSurvivesACrashBetweenItsSteps() throws {
        let d = Dir()
        let r = try Registry.load(d.registry)
        for n in 0..<40 { try r.put(Self.entry(n, hosts: n % 7 == 0 ? ["h\(n).example.test"] : [])) }
        try r.remove(Self.id(5))
        let journal = Self.bytes(d.journal)
        try r.compact()
        #expect(Self.bytes(d.journal).isEmpty)
        let compacted = try Registry.load(d.registry)
        #expect(Self.same(r, compacted))
        // The crash: the snapshot was renamed into place, the journal not yet emptied.
        Self.write(d.journal, journal)
        let crashed = try Registry.load(d.registry)
        #expect(Self.same(r, crashed))
        // Before the snapshot's rename only its temp file exists: the old state loads (nothing to do).
    }

    @Test func compactionIsAutomaticAndAmortised() throws {
        let d = Dir()
        let r = try Registry.load(d.registry)
        let n = Limits.registryJournalMinLines + 10
        for i in 0..<n { try r.put(Self.entry(i)) }
        #expect(Files.exists(d.registry), "compacted once the journal passed its bound")
        #expect(r.journalLines < Limits.registryJournalMinLines)
        #expect(Self.same(r, try Registry.load(d.registry)))
    }

    /// Today's files (no token column, no journal) load, and keep working.
    @Test func aVersionOneFileUpgradesInPlace() throws {
        let d = Dir()
        let id1 = Self.id(1).text
        let id2 = Self.id(2).text
        Self.write(d.registry, Array("# agent relay registry v1\n\(id1) reverse 1796482353 token dev1.example.test\n\(id2) - 1796482354 open -\n".utf8))
        let r = try Registry.load(d.registry)
        #expect(r.count == 2)
        #expect(r.entry(Self.id(2))?.role == nil)
        #expect(r.owner(ofHostname: "dev1.example.test") == Self.id(1))
        try r.put(Self.entry(3))
        #expect(try Registry.load(d.registry).count == 3)
    }

    /// No size cliff: a registry larger than the 4 MiB every other file is limited to loads.
    @Test func aLargeRegistryLoads() throws {
        let d = Dir()
        var text = Registry.header + "\n"
        let n = 60_000
        for i in 0..<n {
            text += Self.entry(i, hosts: ["device-\(i).fleet.example.test"]).line + "\n"
        }
        #expect(text.utf8.count > Files.maxReadBytes)
        Self.write(d.registry, Array(text.utf8))
        let r = try Registry.load(d.registry)
        #expect(r.count == n)
        #expect(r.owner(ofHostname: "device-59999.fleet.example.test") == Self.id(59_999))
    }

    @Test func aSnapshotThatDoesNotParseIsAnError() {
        let d = Dir()
        Self.write(d.registry, Array("# agent relay registry v1\nnot an entry\n".utf8))
        #expect(throws: Registry.LoadError.self) { try Registry.load(d.registry) }
    }

    @Test func theFirstHolderKeepsAHostname() throws {
        let d = Dir()
        let r = try Registry.load(d.registry)
        try r.put(Self.entry(1, hosts: ["same.example.test"]))
        try r.put(Self.entry(2, hosts: ["same.example.test"]))
        #expect(r.owner(ofHostname: "same.example.test") == Self.id(1))
        try r.remove(Self.id(1))
        #expect(r.owner(ofHostname: "same.example.test") == nil)
    }
}
