// Fuzz target `identity`: private key, certificate and ID loading
// (Sources/Crypto/Keys.swift, Certificate.swift, Identity.swift) -- mbedTLS's
// PEM/DER/X.509 parsers through our wrappers. mbedTLS is built with the same
// instrumentation (coverage and ASan) as our code, see Fuzz/fuzz.mk.
//
// The whole input goes to `PrivateKey.parse`, `Certificate.parse`,
// `Identity.idOfKeyOrCertificate` and `PublicKey.parse(spki:)`.
// Checks: no trap, no memory error; a parsed key is P-256, writes itself as
// PEM that parses back to the same ID, and its public half parses as an SPKI
// with the same ID; a parsed certificate has a leaf whose DER and PEM parse
// back to the same ID; `idOfKeyOrCertificate` agrees with whichever parser
// it picked.

import Crypto
import Wire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIdentity(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var keyID: AgentID? = nil
    var certID: AgentID? = nil

    if let k = try? PrivateKey.parse(bytes) {
        let id = k.id
        keyID = id
        let spki = k.publicKeyDER()
        require(!spki.isEmpty, "key without a public key")
        guard let pem = try? k.pem() else { require(false, "a parsed key does not write as PEM"); return 0 }
        guard let again = try? PrivateKey.parse(pem) else { require(false, "a key's own PEM does not parse"); return 0 }
        require(again.id == id, "key PEM round trip changed the ID")
        guard let pub = try? PublicKey.parse(spki: spki) else { require(false, "a key's SPKI does not parse"); return 0 }
        require(pub.id == id, "SPKI round trip changed the ID")
        require(Identity.pin(spki: spki).utf8.count == 7 + 64, "pin length")
    }

    if let c = try? Certificate.parse(bytes) {
        let leaf = c.leafDER
        require(!leaf.isEmpty, "certificate without a leaf")
        let id = c.leafID
        certID = id
        require(c.chainDER.count >= 1 && c.chainDER[0] == leaf, "chain does not start with the leaf")
        guard let fromDER = try? Certificate.parse(leaf) else { require(false, "leaf DER does not parse"); return 0 }
        require(fromDER.leafID == id, "leaf DER round trip changed the ID")
        guard let fromPEM = try? Certificate.parse(Certificate.pem(der: leaf)) else { require(false, "leaf PEM does not parse"); return 0 }
        require(fromPEM.leafID == id, "leaf PEM round trip changed the ID")
        _ = c.isCA
        _ = try? c.leafPublicKey()
    }

    if let id = try? Identity.idOfKeyOrCertificate(bytes) {
        require(id == certID || id == keyID, "idOfKeyOrCertificate gave an ID neither parser gave")
    }

    if let pub = try? PublicKey.parse(spki: bytes) {
        _ = pub.verify([1, 2, 3], signature: bytes)
        guard let again = try? PublicKey.parse(spki: pub.der()) else { require(false, "SPKI does not re-parse"); return 0 }
        require(again.id == pub.id, "SPKI round trip changed the ID")
    }
    return 0
}

// Seeds: real keys and certificates, made by Fuzz/make-seeds.sh with
// `agent keygen`, `agent ca` and openssl (files, not code).
func fuzzSeeds() -> [(String, [UInt8])] { [] }
