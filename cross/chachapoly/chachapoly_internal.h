/*
 * Internal interface of agent's ChaCha20 and Poly1305 (see README.md).
 *
 * mbedTLS sees only the mbedtls_chacha20_* / mbedtls_poly1305_* functions
 * (chacha20.c, poly1305.c). Underneath, each algorithm has one "bulk"
 * function per implementation, chosen once at run time (dispatch.c):
 *
 *   chacha20 blocks: XOR nblocks * 64 bytes of keystream into out, starting
 *                    at block counter state[12]; advances state[12] by nblocks
 *                    (mod 2^32, like RFC 8439 and mbedTLS: no carry into the
 *                    nonce). in == out is allowed; other overlaps are not.
 *   poly1305 blocks: absorb nblocks full 16-byte blocks (hibit = 1 for
 *                    message blocks, 0 for the final padded block).
 *
 * Everything here is constant time: no branch and no memory index depends on
 * key, nonce, counter or data, only on lengths.
 */
#ifndef AGENT_CHACHAPOLY_INTERNAL_H
#define AGENT_CHACHAPOLY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

typedef void agent_chacha20_blocks_fn(uint32_t state[16], const uint8_t *in,
                                      uint8_t *out, size_t nblocks);
typedef void agent_poly1305_blocks_fn(uint64_t h[3], const uint64_t r[2],
                                      const uint8_t *m, size_t nblocks,
                                      uint32_t hibit);

/* One implementation of both algorithms. */
struct agent_chachapoly_impl {
    const char *name;                    /* "portable", "sse2", "avx2", "neon" */
    agent_chacha20_blocks_fn *chacha20;
    agent_poly1305_blocks_fn *poly1305;
};

/* The implementation in use (chosen on first use, see dispatch.c). */
const struct agent_chachapoly_impl *agent_chachapoly_current(void);

/* Test and benchmark hooks: force an implementation by name ("auto" = the
 * run-time choice). Returns 0, or -1 if this CPU or build does not have it.
 * Not used by agent itself; --gc-sections drops them from the release. */
int agent_chachapoly_use(const char *name);
const char *agent_chachapoly_name(void);

/* Implementations (each file compiles only what its target can run). */
agent_chacha20_blocks_fn agent_chacha20_blocks_portable;
agent_poly1305_blocks_fn agent_poly1305_blocks_portable;
#if defined(__x86_64__)
agent_chacha20_blocks_fn agent_chacha20_blocks_sse2;
agent_chacha20_blocks_fn agent_chacha20_blocks_avx2;
agent_poly1305_blocks_fn agent_poly1305_blocks_avx2;   /* poly1305_x86.c */
int agent_cpu_has_avx2(void);
#endif
#if defined(__aarch64__) || defined(__arm__)
agent_chacha20_blocks_fn agent_chacha20_blocks_neon;
int agent_cpu_has_neon(void);
#endif
#if defined(__arm__)
agent_poly1305_blocks_fn agent_poly1305_blocks_neon;   /* poly1305_neon.c */
#endif

/* Little-endian loads and stores, byte by byte: correct on any host, and
 * gcc turns them into single loads/stores on little-endian targets. */
static inline uint32_t agent_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8) |
           ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static inline uint64_t agent_le64(const uint8_t *p)
{
    return (uint64_t) agent_le32(p) | ((uint64_t) agent_le32(p + 4) << 32);
}

static inline void agent_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}

static inline void agent_put_le64(uint8_t *p, uint64_t v)
{
    agent_put_le32(p, (uint32_t) v);
    agent_put_le32(p + 4, (uint32_t) (v >> 32));
}

/* --- Poly1305 numbers in five 26-bit limbs ----------------------------------
 * The contexts keep h and r as 64-bit words (x[0] + x[1]*2^64 + x[2]*2^128);
 * the 32-bit and SIMD code work on limbs of 26 bits, so that products of two
 * limbs and sums of five of them fit 64 bits. */

#define AGENT_M26 0x3ffffffu

/* x0 + x1*2^64 + x2*2^128 < 2^131 -> limbs; l[4] gets bits 104 and up. */
static inline void agent_poly_to26(uint64_t x0, uint64_t x1, uint64_t x2, uint32_t l[5])
{
    l[0] = (uint32_t) x0 & AGENT_M26;
    l[1] = (uint32_t) (x0 >> 26) & AGENT_M26;
    l[2] = (uint32_t) ((x0 >> 52) | (x1 << 12)) & AGENT_M26;
    l[3] = (uint32_t) (x1 >> 14) & AGENT_M26;
    l[4] = (uint32_t) ((x1 >> 40) | (x2 << 24));
}

/* Limbs below 2^31 each -> 64-bit words, partially reduced: bits 130 and up
 * are folded back (times 5), so the result is below 2^130 + 2^27 and x[2] is
 * at most 4, as the scalar code expects. */
static inline void agent_poly_from26(const uint32_t lin[5], uint64_t x[3])
{
    uint32_t l0 = lin[0], l1 = lin[1], l2 = lin[2], l3 = lin[3], l4 = lin[4], c;
    int pass;

    for (pass = 0; pass < 2; pass++) {
        c = l0 >> 26; l0 &= AGENT_M26;
        l1 += c; c = l1 >> 26; l1 &= AGENT_M26;
        l2 += c; c = l2 >> 26; l2 &= AGENT_M26;
        l3 += c; c = l3 >> 26; l3 &= AGENT_M26;
        l4 += c;
        if (pass == 0) {
            c = l4 >> 26; l4 &= AGENT_M26;
            l0 += c * 5;
        }
    }
    x[0] = (uint64_t) l0 | ((uint64_t) l1 << 26) | ((uint64_t) l2 << 52);
    x[1] = ((uint64_t) l2 >> 12) | ((uint64_t) l3 << 14) | ((uint64_t) l4 << 40);
    x[2] = (uint64_t) (l4 >> 24);
}

/* out = a * b mod p, partially reduced, limbs below 2^26 + 2^8 (SIMD code:
 * the powers of r). a and b limbs below 2^27. */
static inline void agent_poly_mul26(uint32_t out[5], const uint32_t a[5], const uint32_t b[5])
{
    const uint64_t b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3], b4 = b[4];
    const uint64_t s1 = b1 * 5, s2 = b2 * 5, s3 = b3 * 5, s4 = b4 * 5;
    const uint64_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], a4 = a[4];
    uint64_t d0 = a0 * b0 + a1 * s4 + a2 * s3 + a3 * s2 + a4 * s1;
    uint64_t d1 = a0 * b1 + a1 * b0 + a2 * s4 + a3 * s3 + a4 * s2;
    uint64_t d2 = a0 * b2 + a1 * b1 + a2 * b0 + a3 * s4 + a4 * s3;
    uint64_t d3 = a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0 + a4 * s4;
    uint64_t d4 = a0 * b4 + a1 * b3 + a2 * b2 + a3 * b1 + a4 * b0;

    d1 += d0 >> 26; d0 &= AGENT_M26;
    d2 += d1 >> 26; d1 &= AGENT_M26;
    d3 += d2 >> 26; d2 &= AGENT_M26;
    d4 += d3 >> 26; d3 &= AGENT_M26;
    d0 += (d4 >> 26) * 5; d4 &= AGENT_M26;
    d1 += d0 >> 26; d0 &= AGENT_M26;
    out[0] = (uint32_t) d0;
    out[1] = (uint32_t) d1;
    out[2] = (uint32_t) d2;
    out[3] = (uint32_t) d3;
    out[4] = (uint32_t) d4;
}

#endif /* AGENT_CHACHAPOLY_INTERNAL_H */
