import CShims
import Glibc
import Loop
import Testing

/// Files (atomic writes with exact modes, bounded reads, directories) and the pure
/// parts of Log. Every test works in its own fresh directory under $TMPDIR or /tmp.
@Suite struct FilesTests {
    /// A fresh directory, removed with its contents when the value goes away.
    final class TempDir {
        let path: String

        init() throws {
            let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
            var template = Array((base + "/agent-files-XXXXXX").utf8CString)
            let made: Bool = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
            try #require(made, "mkdtemp failed")
            path = String(cString: template)
        }

        deinit { FilesTests.removeTree(path) }

        func file(_ name: String) -> String { path + "/" + name }
    }

    /// Names in a directory, without "." and "..", sorted.
    static func list(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: &e.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func isDirectoryNoFollow(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func removeTree(_ path: String) {
        if isDirectoryNoFollow(path) {
            for name in list(path) { removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    static func text(_ s: String) -> [UInt8] { Array(s.utf8) }

    // MARK: writeAtomically

    @Test func writeAtomicallyCreatesTheFileWithMode0600() throws {
        let dir = try TempDir()
        let path = dir.file("key.pem")
        #expect(!Files.exists(path))
        try Files.writeAtomically(path, Self.text("secret\n"), mode: 0o600)
        #expect(Files.exists(path))
        #expect(Files.mode(path) == 0o600)
        #expect(try Files.read(path) == Self.text("secret\n"))
        #expect(Self.list(dir.path) == ["key.pem"])  // no temporary file left behind
    }

    /// The umask is process-wide and tests run in parallel, so each umask case runs in
    /// a child process (an exit test): the parent's umask is never touched.
    /// Exit codes: 0 ok, 10 setup, 11 write threw, 12 wrong mode, 13 wrong content,
    /// 14 leftover files.
    static func modeUnderUmask(_ mask: mode_t, mode: Int) -> Int32 {
        let old = umask(mask)
        guard let dir = try? TempDir() else { return 10 }
        let path = dir.file("f")
        do throws(SysError) {
            try Files.writeAtomically(path, text("one"), mode: mode)
            // And when replacing an existing file.
            if Files.mode(path) != mode { return 12 }
            try Files.writeAtomically(path, text("two"), mode: mode)
        } catch {
            return 11
        }
        if Files.mode(path) != mode { return 12 }
        if (try? Files.read(path)) != text("two") { return 13 }
        if list(dir.path) != ["f"] { return 14 }
        umask(old)
        return 0
    }

    @Test func writeAtomicallyModeIsExactUnderUmask022() async {
        await #expect(processExitsWith: .exitCode(0)) {
            exit(FilesTests.modeUnderUmask(0o022, mode: 0o600))
        }
    }

    @Test func writeAtomicallyModeIsExactUnderUmask077() async {
        await #expect(processExitsWith: .exitCode(0)) {
            exit(FilesTests.modeUnderUmask(0o077, mode: 0o600))
        }
    }

    @Test func writeAtomicallyGivesBitsTheUmaskWouldClear() async {
        // 0644 under umask 077: fchmod sets the bits the umask took away.
        await #expect(processExitsWith: .exitCode(0)) {
            exit(FilesTests.modeUnderUmask(0o077, mode: 0o644))
        }
    }

    @Test func writeAtomicallyReplacesAnExistingFile() throws {
        let dir = try TempDir()
        let path = dir.file("registry")
        try Files.writeAtomically(path, Self.text("old contents, longer than the new"), mode: 0o644)
        #expect(Files.mode(path) == 0o644)
        try Files.writeAtomically(path, Self.text("new"), mode: 0o600)
        #expect(try Files.read(path) == Self.text("new"))
        #expect(Files.mode(path) == 0o600)
        for i in 0..<20 { try Files.writeAtomically(path, Self.text(String(i)), mode: 0o600) }
        #expect(try Files.read(path) == Self.text("19"))
        #expect(Self.list(dir.path) == ["registry"])
    }

    @Test func writeAtomicallyOfNothingMakesAnEmptyFile() throws {
        let dir = try TempDir()
        let path = dir.file("empty")
        try Files.writeAtomically(path, [], mode: 0o600)
        #expect(try Files.read(path) == [])
    }

    @Test func writeAtomicallyOfALargeFile() throws {
        let dir = try TempDir()
        let path = dir.file("big")
        let data = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        try Files.writeAtomically(path, data, mode: 0o600)
        #expect(try Files.read(path) == data)
    }

    @Test func writeAtomicallyIntoAMissingDirectoryFails() throws {
        let dir = try TempDir()
        let e = #expect(throws: SysError.self) {
            try Files.writeAtomically(dir.file("missing/key.pem"), Self.text("x"), mode: 0o600)
        }
        #expect(e?.code == ENOENT)
        #expect(Self.list(dir.path) == [])
    }

    @Test func aFailedRenameLeavesNoTemporaryFile() throws {
        let dir = try TempDir()
        let target = dir.file("occupied")
        try Files.makeDirectory(target)
        // The destination is a (non-empty) directory: rename fails after the temporary
        // file was written, and the temporary file must be removed.
        try Files.writeAtomically(target + "/inside", Self.text("x"), mode: 0o600)
        #expect(throws: SysError.self) { try Files.writeAtomically(target, Self.text("y"), mode: 0o600) }
        #expect(Self.list(dir.path) == ["occupied"])
        #expect(Self.list(target) == ["inside"])
    }

    // MARK: read

    @Test func readRespectsItsLimit() throws {
        let dir = try TempDir()
        let path = dir.file("f")
        let data = [UInt8](repeating: 0x41, count: 100)
        try Files.writeAtomically(path, data, mode: 0o600)
        #expect(try Files.read(path, limit: 100) == data)  // exactly the limit is fine
        let e = #expect(throws: SysError.self) { try Files.read(path, limit: 99) }
        #expect(e?.code == EFBIG)
        // Across read chunks too.
        let big = [UInt8](repeating: 0x42, count: 20_000)
        try Files.writeAtomically(path, big, mode: 0o600)
        #expect(try Files.read(path, limit: 20_000) == big)
        #expect(throws: SysError.self) { try Files.read(path, limit: 10_000) }
        #expect(throws: SysError.self) { try Files.read(path, limit: 19_999) }
        #expect(try Files.read(path) == big)
    }

    @Test func readOfAMissingFileFails() throws {
        let dir = try TempDir()
        let e = #expect(throws: SysError.self) { try Files.read(dir.file("nope")) }
        #expect(e?.code == ENOENT)
        #expect(e?.message == "open: No such file or directory")
    }

    @Test func readTextDecodesUTF8() throws {
        let dir = try TempDir()
        let path = dir.file("conf")
        try Files.writeAtomically(path, Self.text("listen = 0.0.0.0:7443\n"), mode: 0o600)
        #expect(try Files.readText(path) == "listen = 0.0.0.0:7443\n")
    }

    // MARK: Directories and paths

    @Test func makeDirectoryCreatesNestedDirectories() throws {
        let dir = try TempDir()
        let nested = dir.file("a/b/c")
        try Files.makeDirectory(nested)
        #expect(Files.isDirectory(dir.file("a")))
        #expect(Files.isDirectory(dir.file("a/b")))
        #expect(Files.isDirectory(nested))
        #expect(Files.mode(nested) == 0o700)
        // Again: nothing to do, no error.
        try Files.makeDirectory(nested)
        try Files.makeDirectory(dir.file("a/b/c/"))
        try Files.makeDirectory(dir.file("a//b/d"))
        #expect(Files.isDirectory(dir.file("a/b/d")))
        #expect(Self.list(dir.file("a/b")) == ["c", "d"])
    }

    @Test func makeDirectoryThroughAFileFails() throws {
        let dir = try TempDir()
        try Files.writeAtomically(dir.file("file"), Self.text("x"), mode: 0o600)
        let e = #expect(throws: SysError.self) { try Files.makeDirectory(dir.file("file/sub")) }
        #expect(e?.code == ENOTDIR)
    }

    /// makeDirectory(path) where `path` itself is a regular file: mkdir fails with EEXIST,
    /// which makeDirectory ignores for every component, so it returns success and the
    /// caller only fails later (e.g. writing DIR/key.pem gives ENOTDIR naming the file,
    /// not the directory flag).
    @Test func makeDirectoryOverAFileFails() throws {
        let dir = try TempDir()
        let path = dir.file("state")
        try Files.writeAtomically(path, Self.text("x"), mode: 0o600)
        #expect(throws: SysError.self) { try Files.makeDirectory(path) }
        #expect(!Files.isDirectory(path))
    }

    @Test func existsModeAndRemove() throws {
        let dir = try TempDir()
        let path = dir.file("f")
        #expect(!Files.exists(path))
        #expect(Files.mode(path) == nil)
        #expect(Files.exists(dir.path))
        #expect(Files.isDirectory(dir.path))
        try Files.writeAtomically(path, Self.text("x"), mode: 0o640)
        #expect(Files.exists(path))
        #expect(!Files.isDirectory(path))
        #expect(Files.mode(path) == 0o640)
        Files.remove(path)
        #expect(!Files.exists(path))
    }

    @Test(arguments: [("a/b", "a"), ("b", "."), ("/b", "/"), ("/x/y/z.pem", "/x/y"), ("./k.pem", "."),
                      ("dir/", "dir")])
    func directoryOf(path: String, dir: String) {
        #expect(Files.directory(of: path) == dir)
    }

    // MARK: Log

    @Test(arguments: [
        ("plain", "plain"),
        ("127.0.0.1:22", "127.0.0.1:22"),
        ("", "\"\""),
        ("a b", "\"a b\""),
        ("say \"hi\"", "\"say \\\"hi\\\"\""),
        ("k=v", "\"k=v\""),
        ("tab\there", "\"tab\\x09here\""),
        ("line\nbreak", "\"line\\x0abreak\""),
        ("del\u{7f}", "\"del\\x7f\""),
        ("é", "\"\\xc3\\xa9\""),
        ("back\\slash", "back\\slash"),  // nothing forces quoting: left as is
        ("a\"b\\c", "\"a\\\"b\\\\c\""),
    ])
    func logQuote(input: String, quoted: String) {
        #expect(Log.quote(input) == quoted)
    }

    @Test func quotedValuesAreOneTokenOnOneLine() {
        // Whatever goes in, the output is printable ASCII on one line (control and
        // non-ASCII bytes escaped), wrapped in quotes when it needed quoting.
        for s in ["a b\nc", "x\r\ny", "\u{1b}[31mred", "a\0b", "\"", "=", " "] {
            let q = Log.quote(s)
            #expect(q.hasPrefix("\"") && q.hasSuffix("\""))
            for b in q.utf8 { #expect(b >= 0x20 && b < 0x7f) }
            #expect(!q.utf8.contains(UInt8(ascii: "\n")))
        }
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (Int64(1), "1970-01-01T00:00:00.001Z"),
        (Int64(1_000_000_000_123), "2001-09-09T01:46:40.123Z"),
        (Int64(951_782_400_000), "2000-02-29T00:00:00.000Z"),
        (Int64(4_102_444_799_999), "2099-12-31T23:59:59.999Z"),
    ])
    func logTimestamp(ms: Int64, text: String) {
        #expect(Log.timestamp(ms) == text)
    }

    @Test func logLevels() {
        for l in [LogLevel.error, .warn, .info, .debug] {
            #expect(LogLevel.parse(l.name) == l)
        }
        #expect(LogLevel.parse("verbose") == nil)
        #expect(LogLevel.parse("INFO") == nil)
        #expect(LogLevel.error < LogLevel.warn && LogLevel.info < LogLevel.debug)
    }
}
