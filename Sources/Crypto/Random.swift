import CShims

/// The process's random generator: mbedTLS CTR_DRBG seeded from the kernel's
/// entropy (getrandom/getentropy). One instance is made at start and passed to
/// whatever needs randomness (keys, TLS, challenges, tokens).
public final class Rng {
    let entropy: UnsafeMutablePointer<mbedtls_entropy_context>
    public let drbg: UnsafeMutablePointer<mbedtls_ctr_drbg_context>

    public init() throws(CryptoError) {
        // PSA crypto (TLS 1.3, keys, the P-256 driver) needs its own start, once.
        let psa = shim_psa_init()
        if psa != 0 { throw CryptoError("psa crypto init", psa) }
        // The entropy context is about 37 KB: keep it off the stack.
        entropy = .allocate(capacity: 1)
        drbg = .allocate(capacity: 1)
        mbedtls_entropy_init(entropy)
        mbedtls_ctr_drbg_init(drbg)
        let personal: [UInt8] = Array("agent ctr_drbg".utf8)
        let rc = personal.withUnsafeBufferPointer { p in
            mbedtls_ctr_drbg_seed(drbg, mbedtls_entropy_func, entropy, p.baseAddress, p.count)
        }
        if rc != 0 {
            mbedtls_ctr_drbg_free(drbg)
            mbedtls_entropy_free(entropy)
            drbg.deallocate()
            entropy.deallocate()
            throw CryptoError("ctr_drbg seed", rc)
        }
    }

    deinit {
        mbedtls_ctr_drbg_free(drbg)
        mbedtls_entropy_free(entropy)
        drbg.deallocate()
        entropy.deallocate()
    }

    /// The context pointer to pass with `mbedtls_ctr_drbg_random` as an f_rng/p_rng pair.
    public var context: UnsafeMutableRawPointer { UnsafeMutableRawPointer(drbg) }

    public func fill(_ buf: UnsafeMutableRawBufferPointer) {
        var off = 0
        while off < buf.count {
            let n = min(buf.count - off, Int(MBEDTLS_CTR_DRBG_MAX_REQUEST))
            let rc = mbedtls_ctr_drbg_random(drbg, buf.baseAddress!.assumingMemoryBound(to: UInt8.self) + off, n)
            // A DRBG that cannot produce output leaves nothing safe to do.
            precondition(rc == 0, "ctr_drbg failed")
            off += n
        }
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
