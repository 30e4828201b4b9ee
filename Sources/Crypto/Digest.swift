import CShims

/// SHA-256, HMAC-SHA256 and a constant-time comparison.
public enum Digest {
    public static let sha256Length = 32

    public static func sha256(_ data: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBufferPointer { o in
            _ = mbedtls_sha256(data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count, o.baseAddress, 0)
        }
        return out
    }

    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        data.withUnsafeBytes { sha256($0) }
    }

    public static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let info = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256)
        key.withUnsafeBufferPointer { k in
            data.withUnsafeBufferPointer { d in
                out.withUnsafeMutableBufferPointer { o in
                    _ = mbedtls_md_hmac(info, k.baseAddress, k.count, d.baseAddress, d.count, o.baseAddress)
                }
            }
        }
        return out
    }

    /// Equal lengths and bytes, in time that does not depend on where they differ.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        if a.count != b.count { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}

/// Incremental SHA-256 for data that arrives in pieces.
public struct SHA256Hasher: ~Copyable {
    var ctx = mbedtls_sha256_context()

    public init() {
        mbedtls_sha256_init(&ctx)
        _ = mbedtls_sha256_starts(&ctx, 0)
    }

    public mutating func update(_ data: UnsafeRawBufferPointer) {
        _ = mbedtls_sha256_update(&ctx, data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count)
    }

    public mutating func update(_ data: [UInt8]) {
        data.withUnsafeBytes { update($0) }
    }

    public consuming func finish() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBufferPointer { _ = mbedtls_sha256_finish(&ctx, $0.baseAddress) }
        mbedtls_sha256_free(&ctx)
        return out
    }
}
