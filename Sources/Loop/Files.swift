import CShims

/// File access for configuration, keys and state. Keys and state are written
/// atomically: a temporary file in the same directory, fsync, rename, fsync of
/// the directory. A kill -9 or a power loss at any moment leaves either the old
/// or the new file, never a torn one.
public enum Files {
    /// Largest file agent reads (keys, certificates, configuration, registry).
    public static let maxReadBytes = 4 * 1024 * 1024

    public static func exists(_ path: String) -> Bool {
        path.withCString { access($0, F_OK) == 0 }
    }

    public static func isDirectory(_ path: String) -> Bool {
        path.withCString { shim_is_dir($0) != 0 }
    }

    /// Permission bits (e.g. 0o600), nil if the file cannot be stat'ed.
    public static func mode(_ path: String) -> Int? {
        let m = path.withCString { shim_file_mode($0) }
        return m < 0 ? nil : Int(m)
    }

    /// Reads a whole file, at most `maxReadBytes`.
    public static func read(_ path: String, limit: Int = maxReadBytes) throws(SysError) -> [UInt8] {
        let fd = path.withCString { shim_open($0, shim_o_rdonly(), 0) }
        if fd < 0 { throw SysError.last("open") }
        defer { _ = close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = chunk.withUnsafeMutableBytes { CShims.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if shim_errno() == EINTR { continue }
                throw SysError.last("read")
            }
            if n == 0 { break }
            if out.count + n > limit { throw SysError("read", EFBIG) }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    public static func readText(_ path: String) throws(SysError) -> String {
        let bytes = try read(path)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `bytes` to `path` atomically with permission `mode` (e.g. 0o600 for keys).
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: Int) throws(SysError) {
        var suffix: UInt32 = 0
        withUnsafeMutableBytes(of: &suffix) { _ = shim_getentropy($0.baseAddress, 4) }
        let tmp = path + ".tmp-" + String(suffix, radix: 16)
        let fd = tmp.withCString { shim_open($0, shim_o_create_excl_wronly(), Int32(mode)) }
        if fd < 0 { throw SysError.last("open") }
        var ok = false
        defer {
            if !ok { _ = tmp.withCString { unlink($0) } }
        }
        // The umask may have cleared bits of `mode`; set them exactly.
        if fchmod(fd, mode_t(mode)) != 0 {
            let e = SysError.last("fchmod")
            _ = close(fd)
            throw e
        }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { CShims.write(fd, $0.baseAddress! + off, bytes.count - off) }
            if n < 0 {
                if shim_errno() == EINTR { continue }
                let e = SysError.last("write")
                _ = close(fd)
                throw e
            }
            off += n
        }
        if fsync(fd) != 0 {
            let e = SysError.last("fsync")
            _ = close(fd)
            throw e
        }
        _ = close(fd)
        let rc = tmp.withCString { t in path.withCString { rename(t, $0) } }
        if rc != 0 { throw SysError.last("rename") }
        ok = true
        syncDirectory(of: path)
    }

    /// Creates a directory (and its parents) with `mode` if missing.
    public static func makeDirectory(_ path: String, mode: Int = 0o700) throws(SysError) {
        if isDirectory(path) { return }
        var prefix = ""
        for (i, part) in splitPath(path).enumerated() {
            if i > 0 { prefix += "/" }
            prefix += part
            if prefix.utf8.isEmpty || isDots(prefix) || isDirectory(prefix) { continue }
            if prefix.withCString({ mkdir($0, mode_t(mode)) }) != 0 {
                let e = shim_errno()
                if e != EEXIST { throw SysError("mkdir", e) }
                if !isDirectory(prefix) { throw SysError("mkdir", ENOTDIR) }
            }
        }
    }

    public static func remove(_ path: String) {
        _ = path.withCString { unlink($0) }
    }

    /// The directory part of a path ("." for a bare name).
    public static func directory(of path: String) -> String {
        let b = Array(path.utf8)
        guard let slash = b.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        if slash == 0 { return "/" }
        return String(decoding: b[0..<slash], as: UTF8.self)
    }

    static func splitPath(_ path: String) -> [String] {
        var out: [String] = []
        var cur: [UInt8] = []
        for b in path.utf8 {
            if b == UInt8(ascii: "/") {
                out.append(String(decoding: cur, as: UTF8.self))
                cur.removeAll()
            } else {
                cur.append(b)
            }
        }
        out.append(String(decoding: cur, as: UTF8.self))
        return out
    }

    /// "." or "..", compared as bytes.
    static func isDots(_ s: String) -> Bool {
        let b = Array(s.utf8)
        return (b.count == 1 && b[0] == 0x2e) || (b.count == 2 && b[0] == 0x2e && b[1] == 0x2e)
    }

    static func syncDirectory(of path: String) {
        let dir = directory(of: path)
        let fd = dir.withCString { shim_open($0, shim_o_directory(), 0) }
        if fd >= 0 {
            _ = fsync(fd)
            _ = close(fd)
        }
    }

    /// Raises this process's open-file limit (RLIMIT_NOFILE, the soft one, up to the hard
    /// one) to at least `want`; returns the limit in force afterwards.
    public static func raiseOpenFileLimit(_ want: Int) -> Int {
        var hard: Int = 0
        return Int(shim_raise_nofile(want, &hard))
    }
}

/// A file written only at its end, each record made durable before `append` returns
/// (fdatasync): the relay's registry journal. A crash (kill -9 or power loss) can leave
/// only the last record torn, which the reader ignores.
public final class AppendFile {
    public let path: String
    let fd: Int32

    /// Opens (creating with `mode` if missing) for appending.
    public init(_ path: String, mode: Int) throws(SysError) {
        self.path = path
        fd = path.withCString { shim_open($0, shim_o_append_create(), Int32(mode)) }
        if fd < 0 { throw SysError.last("open") }
        if fchmod(fd, mode_t(mode)) != 0 {
            let e = SysError.last("fchmod")
            _ = close(fd)
            throw e
        }
    }

    deinit { _ = close(fd) }

    /// Writes `bytes` at the end and waits until they are on disk.
    public func append(_ bytes: [UInt8]) throws(SysError) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { CShims.write(fd, $0.baseAddress! + off, bytes.count - off) }
            if n < 0 {
                if shim_errno() == EINTR { continue }
                throw SysError.last("write")
            }
            off += n
        }
        if fdatasync(fd) != 0 { throw SysError.last("fdatasync") }
    }

    /// Cuts the file to `length` bytes (and makes that durable).
    public func truncate(to length: Int) throws(SysError) {
        if ftruncate(fd, off_t(length)) != 0 { throw SysError.last("ftruncate") }
        if fsync(fd) != 0 { throw SysError.last("fsync") }
    }
}
