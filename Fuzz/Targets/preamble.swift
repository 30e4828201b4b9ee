// Fuzz target `preamble`: what the relay reads before any frame
// (Sources/Wire/Preamble.swift): the agent preamble / HTTP Upgrade head
// (`Preamble.classify`, `headEnd`, `header`, `containsToken`, `status`) and
// the SNI listener's `ClientHelloSNI.parse` -- both read bytes from anyone who
// connects, before any authentication.
//
// First byte: bit 0 selects `Preamble` (0) or `ClientHelloSNI` (1); the rest
// is the bytes a client sent. Both parsers are run on every prefix, as a
// reader that gets the bytes in pieces.
// Checks: no trap, no out-of-bounds read; results are monotonic: once a prefix
// is classified (raw, http, garbage; hostname, noSNI, malformed) every longer
// prefix gives the same answer, and before that only `needMore`; an HTTP head
// ends within `maxHead` at "\r\n\r\n"; a hostname has valid bytes.

import Wire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPreamble(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    let sni = input.bool()
    let b = input.rest()
    if sni { checkSNI(b) } else { checkPreamble(b) }
    return 0
}

/// Prefix lengths to try: all of the short ones, then a sample (the parsers
/// re-read from the start, so all of them would be quadratic).
func prefixLengths(_ n: Int) -> [Int] {
    var out = Array(0...min(n, 64))
    var k = 64
    while k < n {
        k += max(1, (n - 64) / 32)
        out.append(min(k, n))
    }
    return out
}

func checkPreamble(_ b: UnsafeRawBufferPointer) {
    var settled: Preamble.Kind? = nil
    for k in prefixLengths(b.count) {
        let p = UnsafeRawBufferPointer(rebasing: b[0..<k])
        let kind = Preamble.classify(p)
        if let s = settled {
            require(kind == s, "classify changed from \(s) to \(kind) after \(k) bytes")
            continue
        }
        switch kind {
        case .needMore:
            require(k < Preamble.maxHead, "needMore after \(k) bytes")
        case .raw(let n):
            require(n == Preamble.raw.count && p.starts(with: Preamble.raw), "raw preamble")
            settled = kind
        case .http(let end, let upgrade):
            require(end >= 4 && end <= min(k, Preamble.maxHead), "head end \(end) of \(k)")
            require(Preamble.headEnd(p) == end, "headEnd disagrees")
            require(p[end - 4] == 13 && p[end - 3] == 10 && p[end - 2] == 13 && p[end - 1] == 10, "head does not end in CRLFCRLF")
            let value = Preamble.header(p, end: end, name: "upgrade")
            require(upgrade == (value.map { Preamble.containsToken($0, Preamble.upgradeToken) } ?? false), "upgrade flag")
            _ = Preamble.header(p, end: end, name: "host")
            _ = Preamble.status(p, end: end)
            settled = kind
        case .garbage:
            settled = kind
        }
    }
    // The response side: a head the agent reads back from the relay or a proxy.
    if let end = Preamble.headEnd(b) {
        if let code = Preamble.status(b, end: end) { require(code >= 0 && code <= 999, "status code") }
        if let v = Preamble.header(b, end: end, name: "connection") { _ = Preamble.containsToken(v, "upgrade") }
    }
    _ = Preamble.containsToken(Array(b), Preamble.upgradeToken)
}

func checkSNI(_ b: UnsafeRawBufferPointer) {
    var settled: ClientHelloSNI.Result? = nil
    for k in prefixLengths(min(b.count, ClientHelloSNI.maxBytes)) {
        let r = ClientHelloSNI.parse(UnsafeRawBufferPointer(rebasing: b[0..<k]))
        if let s = settled {
            require(r == s, "SNI result changed from \(s) to \(r) after \(k) bytes")
            continue
        }
        switch r {
        case .needMore:
            require(k < ClientHelloSNI.maxBytes, "needMore after maxBytes")
        case .hostname(let h):
            require(OpenPayload.isHostnameBytes(Array(h.utf8)), "SNI hostname bytes")
            settled = r
        case .noSNI, .malformed:
            settled = r
        }
    }
}

// MARK: - Seeds (more, from a real TLS client, in Fuzz/make-seeds.sh)

func fuzzSeeds() -> [(String, [UInt8])] {
    [
        ("raw", [0] + Preamble.raw + [0, 0, 0, 1]),
        ("upgrade", [0] + Preamble.upgradeRequest(host: "relay.example", port: 8443, path: "/agent")),
        ("browser", [0] + Array("GET / HTTP/1.1\r\nHost: relay\r\nUpgrade: h2c, Agent/1 \r\nConnection: upgrade\r\n\r\n".utf8)),
        ("switching", [0] + Preamble.switching),
        ("upgrade-required", [0] + Preamble.upgradeRequired),
        ("connect", [0] + Preamble.connectRequest(host: "::1", port: 7443)),
    ]
}
