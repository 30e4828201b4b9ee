/// Byte-level (UTF-8) string helpers.
///
/// agent never compares, hashes or slices `String`s by `Character`: in Embedded
/// Swift those operations pull Unicode normalization and grapheme-breaking code
/// and tables into the binary (about 60 KB of a 512 KB budget; see
/// docs/PERFORMANCE.md). Everything agent parses -- options, file formats,
/// host names, IDs -- is ASCII, so byte-wise is also the right semantics.
/// `make sizes` fails if the Unicode tables come back into a release binary.
public enum Text {
    @inline(__always)
    public static func equal(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    public static func hasPrefix(_ s: String, _ prefix: String) -> Bool { s.utf8.starts(with: prefix.utf8) }

    public static func hasSuffix(_ s: String, _ suffix: String) -> Bool {
        let a = s.utf8, b = suffix.utf8
        return a.count >= b.count && a.dropFirst(a.count - b.count).elementsEqual(b)
    }

    /// The bytes after the first `n` (n counts UTF-8 bytes).
    public static func dropFirst(_ s: String, _ n: Int) -> String {
        String(decoding: s.utf8.dropFirst(n), as: UTF8.self)
    }

    /// Byte offset of the first `byte`, if any.
    public static func firstIndex(_ s: String, _ byte: UInt8) -> Int? {
        var i = 0
        for b in s.utf8 {
            if b == byte { return i }
            i += 1
        }
        return nil
    }

    /// Byte offset of the last `byte`, if any.
    public static func lastIndex(_ s: String, _ byte: UInt8) -> Int? {
        var i = 0
        var found: Int? = nil
        for b in s.utf8 {
            if b == byte { found = i }
            i += 1
        }
        return found
    }

    /// Bytes [from, to) as a String.
    public static func slice(_ s: String, _ from: Int, _ to: Int) -> String {
        String(decoding: s.utf8.dropFirst(from).prefix(to - from), as: UTF8.self)
    }

    /// Splits at every `separator` byte.
    public static func split(_ s: String, _ separator: UInt8, omittingEmpty: Bool = false) -> [String] {
        var out: [String] = []
        var cur: [UInt8] = []
        for b in s.utf8 {
            if b == separator {
                if !(omittingEmpty && cur.isEmpty) { out.append(String(decoding: cur, as: UTF8.self)) }
                cur.removeAll(keepingCapacity: true)
            } else {
                cur.append(b)
            }
        }
        if !(omittingEmpty && cur.isEmpty) { out.append(String(decoding: cur, as: UTF8.self)) }
        return out
    }

    /// Without leading and trailing spaces, tabs and carriage returns.
    public static func trim(_ s: String) -> String {
        var u = Array(s.utf8)
        var start = 0
        while start < u.count, u[start] == 0x20 || u[start] == 0x09 || u[start] == 0x0d { start += 1 }
        while u.count > start, let l = u.last, l == 0x20 || l == 0x09 || l == 0x0d { u.removeLast() }
        return String(decoding: u[start...], as: UTF8.self)
    }

    /// ASCII letters lowercased; other bytes unchanged.
    public static func lowercasedASCII(_ s: String) -> String {
        var b = Array(s.utf8)
        for i in 0..<b.count where b[i] >= 0x41 && b[i] <= 0x5a { b[i] += 0x20 }
        return String(decoding: b, as: UTF8.self)
    }

    public static func contains(_ list: [String], _ s: String) -> Bool {
        for x in list where equal(x, s) { return true }
        return false
    }

    public static func equal(_ a: [String], _ b: [String]) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count where !equal(a[i], b[i]) { return false }
        return true
    }

    public static func join(_ parts: [String], _ separator: String) -> String {
        var out = ""
        for (i, p) in parts.enumerated() {
            if i > 0 { out += separator }
            out += p
        }
        return out
    }

    /// Number of UTF-8 bytes.
    @inline(__always)
    public static func length(_ s: String) -> Int { s.utf8.count }
}
