// Fuzz target `formats`: the small text and byte formats.
//
// First byte % 5 selects, the rest is the data:
//   0: `E2E.AuthorizedKeys.parse` (the --authorized-keys file);
//   1: `E2E.TargetRequest.parse` (the first message of an end-to-end session),
//      on every prefix of the data, as a reader that gets it in pieces;
//   2: `Wire.HostPort.parse` with and without `host:*`;
//   3: `Roles.Registry.load` (the relay's registry file; written to a file
//      under /tmp unique to this process);
//   4: `Roles.HostnameRules.isValid`.
// Checks: no trap; an authorized-keys file that parses lists IDs that parse
// again from their text; a target request gives `needMore` for every prefix
// of a complete request and the total it announced, and encodes back to the
// same bytes; a host:port prints as text that parses back to the same value
// and can be sent as a target request; a registry's entries have canonical
// (lowercase) valid hostnames and each is found by `owner(ofHostname:)`.

import E2E
import Roles
import Wire

let registryPath = scratchPath("registry")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFormats(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    let which = input.u8() % 5
    let rest = input.rest()
    switch which {
    case 0: checkAuthorizedKeys(rest)
    case 1: checkTargetRequest(rest)
    case 2: checkHostPort(rest)
    case 3: checkRegistry(rest)
    default:
        let s = String(decoding: rest, as: UTF8.self)
        if HostnameRules.isValid(s) {
            require(OpenPayload.isHostnameBytes(Array(s.utf8)), "valid hostname with bad bytes")
            require(HostnameRules.isValid(Text.lowercasedASCII(s)), "lowercase of a valid hostname is invalid")
        }
    }
    return 0
}

func checkAuthorizedKeys(_ b: UnsafeRawBufferPointer) {
    let text = String(decoding: b, as: UTF8.self)
    switch AuthorizedKeys.parse(text) {
    case .success(let keys):
        // One ID per line, as `agent id` prints them: the same set again.
        let lines = keys.ids.map { $0.text }.sorted()
        var again = ""
        for l in lines { again += l + "\n" }
        guard case .success(let k2) = AuthorizedKeys.parse(again) else { require(false, "printed IDs do not parse"); return }
        require(Set(k2.ids) == Set(keys.ids) && k2.ids.count == keys.ids.count, "authorized keys round trip")
        let lineCount = b.reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
        require(keys.ids.count <= lineCount, "more IDs than lines")
    case .failure(let e):
        require(Text.hasPrefix(e.message, "line "), "error does not name the line: " + e.message)
    }
}

func checkTargetRequest(_ b: UnsafeRawBufferPointer) {
    let full = TargetRequest.parse(b)
    // Every prefix, as a reader that gets the request a few bytes at a time.
    var announced: Int? = nil
    var sawMalformed = false
    var k = 0
    while k <= min(b.count, TargetRequest.maxSize + 1) {
        let p = TargetRequest.parse(UnsafeRawBufferPointer(rebasing: b[0..<k]))
        switch p {
        case .needMore(let total):
            require(total > k && total <= TargetRequest.maxSize, "needMore(\(total)) after \(k) bytes")
            if k >= 2 {
                if let a = announced { require(a == total, "announced total changed") }
                announced = total
            }
        case .complete(let hp):
            require(!sawMalformed, "complete after a malformed prefix")
            if let a = announced { require(a == k, "complete at \(k), announced \(a)") }
            require(TargetRequest.encode(hp) == Array(b[0..<k]), "target request round trip")
            require(HostPort.parse(hp.text) == hp, "a request's target does not parse as host:port: " + hp.text)
        case .malformed:
            sawMalformed = true
        }
        k += 1
    }
    if case .complete(let hp) = full { require(hp.port != nil && hp.port != 0, "request without a port") }
}

func checkHostPort(_ b: UnsafeRawBufferPointer) {
    let s = String(decoding: b, as: UTF8.self)
    for wildcard in [false, true] {
        guard let hp = HostPort.parse(s, allowWildcard: wildcard) else { continue }
        require(!hp.host.isEmpty && hp.host.utf8.count <= HostPort.maxHostLength, "host length")
        require(hp.port != 0, "port 0")
        if !wildcard { require(hp.port != nil, "wildcard without allowWildcard") }
        require(HostPort.parse(hp.text, allowWildcard: wildcard) == hp, "host:port round trip: " + hp.text)
        if hp.port != nil {
            guard let req = TargetRequest.encode(hp) else { require(false, "a parsed host:port cannot be sent: " + hp.text); continue }
            let back = req.withUnsafeBytes { TargetRequest.parse($0) }
            require(back == .complete(hp), "host:port -> request -> host:port")
        }
    }
}

func checkRegistry(_ b: UnsafeRawBufferPointer) {
    writeScratch(registryPath, b)
    do throws(Registry.LoadError) {
        let r = try Registry.load(registryPath)
        require(r.count <= b.count / 32 + 1, "more entries than the file can hold")
        for (id, e) in r.entries {
            require(e.id == id, "entry under another ID")
            require(Text.equal(e.via, "open") || Text.equal(e.via, "token") || Text.equal(e.via, "ca"), "via")
            for h in e.hostnames {
                require(Text.equal(h, Registry.canonicalHostname(h)), "hostname not canonical")
                require(OpenPayload.isHostnameBytes(Array(h.utf8)), "bad hostname bytes")
                require(r.owner(ofHostname: h) != nil, "hostname without an owner")
            }
        }
    } catch {
        require(Text.hasPrefix(error.message, registryPath), "registry error does not name the file")
    }
}

// MARK: - Seeds

func fuzzSeeds() -> [(String, [UInt8])] {
    let id1 = AgentID(bytes: (0..<20).map { UInt8($0) })!.text
    let id2 = AgentID(bytes: [UInt8](repeating: 0xee, count: 20))!.text
    let grouped = Text.slice(id2, 0, 8) + "-" + Text.slice(id2, 8, 16) + "-" + Text.slice(id2, 16, 32)
    return [
        ("keys", [0] + Array(("\u{FEFF}# operators\n" + id1 + "\n\n  " + Text.lowercasedASCII(grouped) + "  # laptop\r\n").utf8)),
        ("keys-bad", [0] + Array((id1 + " " + id2 + "\nnot-an-id\n").utf8)),
        ("request-name", [1] + TargetRequest.encode(HostPort(host: "localhost", port: 22))!),
        ("request-v6", [1] + TargetRequest.encode(HostPort(host: "::1", port: 443))!),
        ("hostport", [2] + Array("127.0.0.1:22".utf8)),
        ("hostport-v6", [2] + Array("[fe80::1%eth0]:8080".utf8)),
        ("hostport-wild", [2] + Array("device.local:*".utf8)),
        ("registry", [3] + Array((Registry.header + "\n" + id1 + " reverse 1700000000 token cam.example,Door\n"
                                  + id2 + " - 1700000001 open -\n").utf8)),
        ("hostname", [4] + Array("a-b.c_d.example".utf8)),
    ]
}
