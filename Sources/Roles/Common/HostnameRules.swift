import Wire

/// Host names that may be claimed for SNI routing: 1-253 bytes of letters,
/// digits, '-', '.', '_'; labels of 1-63 bytes; no leading or trailing dot.
public enum HostnameRules {
    public static func isValid(_ h: String) -> Bool {
        let b = Array(h.utf8)
        guard OpenPayload.isHostnameBytes(b), b.first != UInt8(ascii: "."), b.last != UInt8(ascii: ".") else { return false }
        for label in b.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            if label.isEmpty || label.count > 63 { return false }
        }
        return true
    }
}
