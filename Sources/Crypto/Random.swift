import CShims

/// The process's random source: the kernel's generator (getrandom/getentropy), which
/// mbedTLS draws from too (MBEDTLS_PSA_CRYPTO_EXTERNAL_RNG, cross/mbedtls_config.h).
/// One instance is made at start and passed to whatever needs randomness (keys, TLS,
/// challenges, tokens); making it also starts PSA crypto, which TLS and keys need.
public final class Rng {
    public init() throws(CryptoError) {
        let psa = shim_psa_init()
        if psa != 0 { throw CryptoError("psa crypto init", psa) }
    }

    public func fill(_ buf: UnsafeMutableRawBufferPointer) {
        guard buf.count > 0 else { return }
        // A kernel that cannot give randomness leaves nothing safe to do.
        precondition(shim_getentropy(buf.baseAddress, buf.count) == 0, "getentropy failed")
    }

    public func bytes(_ n: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        out.withUnsafeMutableBytes { fill($0) }
        return out
    }

    /// A uniform value in 0..<bound (bound > 0), for jitter.
    public func below(_ bound: UInt64) -> UInt64 {
        precondition(bound > 0)
        var v: UInt64 = 0
        let limit = UInt64.max - UInt64.max % bound
        repeat {
            withUnsafeMutableBytes(of: &v) { fill($0) }
        } while v >= limit
        return v % bound
    }
}
