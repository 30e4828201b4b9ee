/// The iPAddress entries of a certificate's subjectAltName, read straight from its DER.
///
/// mbedTLS 2.28 checks a server's name only when the client set a host name, and it
/// cannot match an IP literal against iPAddress entries (CVE-2025-27809: with no host
/// name set, no name is checked at all). An agent that reaches its relay by IP address
/// and trusts it by --ca checks the address itself with this (RelayClient).
///
///     Certificate  ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
///     TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serial, signature, issuer, validity,
///                                   subject, spki, [1] OPTIONAL, [2] OPTIONAL, [3] Extensions OPTIONAL }
///     Extension    ::= SEQUENCE { extnID OID, critical BOOLEAN OPTIONAL, extnValue OCTET STRING }
///     subjectAltName (2.5.29.17): GeneralNames ::= SEQUENCE OF GeneralName
///     GeneralName  iPAddress [7] IMPLICIT OCTET STRING (4 bytes IPv4, 16 bytes IPv6)
public enum SubjectAltName {
    /// OID 2.5.29.17 (id-ce-subjectAltName), content bytes.
    static let oid: [UInt8] = [0x55, 0x1d, 0x11]

    /// The iPAddress entries (4 or 16 bytes each) of the leaf's subjectAltName; empty if it
    /// has none (or no such extension); nil if the DER is malformed where it was read.
    public static func ipAddresses(certificateDER der: [UInt8]) -> [[UInt8]]? {
        var top = DERReader(der, 0, der.count)
        guard let cert = top.next(), cert.tag == 0x30, top.atEnd else { return nil }
        var c = DERReader(der, cert.start, cert.end)
        guard let tbs = c.next(), tbs.tag == 0x30 else { return nil }
        var t = DERReader(der, tbs.start, tbs.end)
        while let e = t.next() {
            guard e.tag == 0xa3 else { continue }  // [3] EXPLICIT Extensions
            var wrap = DERReader(der, e.start, e.end)
            guard let exts = wrap.next(), exts.tag == 0x30, wrap.atEnd else { return nil }
            var x = DERReader(der, exts.start, exts.end)
            var found: [[UInt8]] = []
            while let ext = x.next() {
                guard ext.tag == 0x30 else { return nil }
                var f = DERReader(der, ext.start, ext.end)
                guard let id = f.next(), id.tag == 0x06 else { return nil }
                guard der[id.start..<id.end].elementsEqual(oid) else { continue }
                var value = f.next()
                if let v = value, v.tag == 0x01 { value = f.next() }  // critical
                guard let v = value, v.tag == 0x04, f.atEnd else { return nil }
                var g = DERReader(der, v.start, v.end)
                guard let names = g.next(), names.tag == 0x30, g.atEnd else { return nil }
                var n = DERReader(der, names.start, names.end)
                while let name = n.next() {
                    if name.tag == 0x87 {
                        let len = name.end - name.start
                        guard len == 4 || len == 16 else { return nil }
                        found.append(Array(der[name.start..<name.end]))
                    }
                }
                guard n.atEnd else { return nil }
            }
            guard x.atEnd else { return nil }
            return found
        }
        guard t.atEnd else { return nil }
        return []
    }

    /// True if `ip` (4 or 16 bytes, as `SocketAddress.ipBytes`) is one of the certificate's
    /// iPAddress entries.
    public static func contains(ip: [UInt8], certificateDER der: [UInt8]) -> Bool {
        guard let all = ipAddresses(certificateDER: der) else { return false }
        for a in all where a == ip { return true }
        return false
    }
}

/// A forward-only reader of DER TLVs inside `[start, end)` of a buffer. `next()` returns
/// nil at the end and on malformed input (then `atEnd` is false).
struct DERReader {
    struct TLV {
        let tag: UInt8
        let start: Int
        let end: Int
    }

    let bytes: [UInt8]
    var pos: Int
    let end: Int
    var broken = false

    init(_ bytes: [UInt8], _ start: Int, _ end: Int) {
        self.bytes = bytes
        pos = start
        self.end = end
    }

    var atEnd: Bool { !broken && pos == end }

    mutating func next() -> TLV? {
        guard !broken, pos < end else { return nil }
        guard end - pos >= 2 else { return fail() }
        let tag = bytes[pos]
        if tag & 0x1f == 0x1f { return fail() }  // multi-byte tags: never in what we read
        var p = pos + 1
        let first = bytes[p]
        p += 1
        var len = 0
        if first < 0x80 {
            len = Int(first)
        } else {
            let n = Int(first & 0x7f)
            guard n >= 1, n <= 3, end - p >= n else { return fail() }
            for _ in 0..<n {
                len = (len << 8) | Int(bytes[p])
                p += 1
            }
        }
        guard len <= end - p else { return fail() }
        pos = p + len
        return TLV(tag: tag, start: p, end: p + len)
    }

    mutating func fail() -> TLV? {
        broken = true
        return nil
    }
}
