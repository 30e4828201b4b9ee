// Shared by every fuzz target (compiled into each binary; see Fuzz/fuzz.mk).
//
// A fuzz input is read as a little program: `FuzzInput` hands out bytes and
// small integers, and returns zeros once the input is used up, so every input
// is a valid program and the fuzzer never wastes runs on "too short".
// `require` is the one way a target reports a broken invariant: it traps with
// a message, which libFuzzer records as a crash (with the input that caused it).

#if canImport(Glibc)
import Glibc
#endif

struct FuzzInput {
    let bytes: UnsafeRawBufferPointer
    private(set) var pos = 0

    init(_ data: UnsafePointer<UInt8>, _ size: Int) {
        bytes = UnsafeRawBufferPointer(start: data, count: size)
    }

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isEmpty: Bool { pos >= bytes.count }
    var remaining: Int { max(0, bytes.count - pos) }

    mutating func u8() -> UInt8 {
        guard pos < bytes.count else { return 0 }
        defer { pos += 1 }
        return bytes[pos]
    }

    mutating func u16() -> UInt16 { UInt16(u8()) << 8 | UInt16(u8()) }

    mutating func u32() -> UInt32 { UInt32(u16()) << 16 | UInt32(u16()) }

    mutating func bool() -> Bool { u8() & 1 == 1 }

    /// One of `choices`, picked by the next byte.
    mutating func pick<T>(_ choices: [T]) -> T { choices[Int(u8()) % choices.count] }

    /// Up to `n` bytes (fewer at the end of the input).
    mutating func take(_ n: Int) -> UnsafeRawBufferPointer {
        let k = min(max(0, n), remaining)
        defer { pos += k }
        return UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + k)])
    }

    mutating func takeArray(_ n: Int) -> [UInt8] { Array(take(n)) }

    /// Everything not read yet.
    mutating func rest() -> UnsafeRawBufferPointer { take(remaining) }
}

/// Traps with `message` when `condition` is false: a broken invariant is a finding.
@inline(__always)
func require(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) {
    if !condition { fatalError("fuzz invariant: " + message(), file: file, line: line) }
}

func hex(_ b: [UInt8]) -> String {
    let d: [UInt8] = Array("0123456789abcdef".utf8)
    var o: [UInt8] = []
    for x in b {
        o.append(d[Int(x >> 4)])
        o.append(d[Int(x & 15)])
    }
    return String(decoding: o, as: UTF8.self)
}

/// FUZZ_TRACE=1: targets print what they do (to follow one input).
let fuzzTrace = getenv("FUZZ_TRACE") != nil

/// One line to stderr, unbuffered (a trap right after must not lose it).
func trace(_ line: String) { fputs(line + "\n", stderr) }

/// A file path unique to this process (targets whose API reads a file).
func scratchPath(_ name: String) -> String {
    "/tmp/agent-fuzz-" + String(getpid()) + "-" + name
}

/// Writes `bytes` to `path` (truncating). Traps if the file system refuses:
/// that is the harness failing, not the code under test.
func writeScratch(_ path: String, _ bytes: UnsafeRawBufferPointer) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    require(fd >= 0, "cannot create " + path)
    var off = 0
    while off < bytes.count {
        let n = write(fd, bytes.baseAddress! + off, bytes.count - off)
        require(n > 0, "cannot write " + path)
        off += n
    }
    close(fd)
}

// MARK: - Seeds

/// Each target defines `fuzzSeeds()`: small valid inputs made with the real
/// encoders. `FUZZ_WRITE_SEEDS=DIR fuzz-<target>` writes them into DIR and exits
/// (Fuzz/make-seeds.sh); a normal run ignores them.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    guard let dir = getenv("FUZZ_WRITE_SEEDS") else { return 0 }
    let d = String(cString: dir)
    for (name, bytes) in fuzzSeeds() {
        bytes.withUnsafeBytes { writeScratch(d + "/" + name, $0) }
    }
    exit(0)
}
