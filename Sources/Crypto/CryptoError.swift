/// A failed mbedTLS call: which operation, and mbedTLS's (negative) error code.
/// The one error type of Crypto. Never carries key material.
public struct CryptoError: Error, Equatable {
    public let op: StaticString
    public let code: Int32

    public init(_ op: StaticString, _ code: Int32) {
        self.op = op
        self.code = code
    }

    public static func == (a: CryptoError, b: CryptoError) -> Bool {
        a.code == b.code && a.op.utf8Start == b.op.utf8Start
    }

    /// "x509 parse: mbedtls error -0x2180"
    public var message: String {
        var s = op.description
        s += ": mbedtls error "
        s += code < 0 ? "-0x" + String(-Int(code), radix: 16) : String(code)
        return s
    }
}

@inline(__always)
func check(_ op: StaticString, _ rc: Int32) throws(CryptoError) {
    if rc != 0 { throw CryptoError(op, rc) }
}
