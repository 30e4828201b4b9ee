/*
 * SHA-256's compression function for x86_64 behind mbedTLS 3.6's
 * MBEDTLS_SHA256_PROCESS_ALT hook (README.md): mbedTLS's sha256.c keeps the
 * padding, the byte counts and the buffering and calls
 *
 *     int mbedtls_internal_sha256_process(mbedtls_sha256_context *ctx,
 *                                         const unsigned char data[64]);
 *
 * once per 64-byte block; we update ctx->state[0..7] (A..H, host order) and
 * return 0. Two implementations, chosen on first use:
 *
 *   shani     the SHA extensions (sha256rnds2, sha256msg1, sha256msg2), with
 *             SSSE3 (pshufb, palignr) and SSE4.1 (pblendw): CPUID leaf 7 EBX
 *             bit 29, leaf 1 ECX bits 9 and 19;
 *   portable  plain C (FIPS 180-4, section 6.2.2), for CPUs without them.
 *
 * Neither has a data-dependent branch or memory address (HMAC keys go through
 * here). Built only where the configuration asks for it (x86_64); elsewhere
 * this file is empty and mbedTLS's own code runs.
 */
#if !defined(MBEDTLS_ALLOW_PRIVATE_ACCESS)
#define MBEDTLS_ALLOW_PRIVATE_ACCESS
#endif
#include "mbedtls/build_info.h"

#if defined(MBEDTLS_SHA256_PROCESS_ALT)

#if !defined(__x86_64__)
#error "cross/sha256 is for x86_64 (MBEDTLS_SHA256_PROCESS_ALT only there)"
#endif

#include "mbedtls/sha256.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cpuid.h>
#include <immintrin.h>

#include "sha256_x86.h"

/* FIPS 180-4, 4.2.2: the first 32 bits of the fractional parts of the cube
 * roots of the first 64 primes. */
static const uint32_t K256[64] __attribute__((aligned(16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* ---- portable C ---------------------------------------------------------- */

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define BSIG0(x) (ROR32(x, 2) ^ ROR32(x, 13) ^ ROR32(x, 22))
#define BSIG1(x) (ROR32(x, 6) ^ ROR32(x, 11) ^ ROR32(x, 25))
#define SSIG0(x) (ROR32(x, 7) ^ ROR32(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ROR32(x, 17) ^ ROR32(x, 19) ^ ((x) >> 10))
/* Ch(e, f, g) = (e & f) ^ (~e & g); Maj(a, b, c) = (a & b) ^ (a & c) ^ (b & c) */
#define CH(e, f, g) ((g) ^ ((e) & ((f) ^ (g))))
#define MAJ(a, b, c) (((a) & (b)) | ((c) & ((a) | (b))))

static uint32_t load_be32(const uint8_t *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}

/* The eight working variables rotate by renaming: a round writes d += t1
 * and h = t1 + t2, and the next round reads (h, a, b, c, d, e, f, g) as its
 * (a .. h). */
#define ROUND(a, b, c, d, e, f, g, h, i)                                      \
    do {                                                                      \
        uint32_t t1_ = (h) + BSIG1(e) + CH(e, f, g) + K256[i] + w[i];         \
        uint32_t t2_ = BSIG0(a) + MAJ(a, b, c);                               \
        (d) += t1_;                                                           \
        (h) = t1_ + t2_;                                                      \
    } while (0)

/* The whole message schedule w[0..63] first, then the rounds, eight per turn. */
void agent_sha256_blocks_portable(uint32_t state[8], const uint8_t *data, size_t nblocks)
{
    uint32_t w[64];

    while (nblocks-- > 0) {
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];

        for (int t = 0; t < 16; t++) {
            w[t] = load_be32(data + 4 * t);
        }
        for (int t = 16; t < 64; t++) {
            w[t] = SSIG1(w[t - 2]) + w[t - 7] + SSIG0(w[t - 15]) + w[t - 16];
        }
        for (int i = 0; i < 64; i += 8) {
            ROUND(a, b, c, d, e, f, g, h, i + 0);
            ROUND(h, a, b, c, d, e, f, g, i + 1);
            ROUND(g, h, a, b, c, d, e, f, i + 2);
            ROUND(f, g, h, a, b, c, d, e, i + 3);
            ROUND(e, f, g, h, a, b, c, d, i + 4);
            ROUND(d, e, f, g, h, a, b, c, i + 5);
            ROUND(c, d, e, f, g, h, a, b, i + 6);
            ROUND(b, c, d, e, f, g, h, a, i + 7);
        }
        state[0] += a; state[1] += b; state[2] += c; state[3] += d;
        state[4] += e; state[5] += f; state[6] += g; state[7] += h;
        data += 64;
    }
    /* w held the message (and HMAC keys): wipe it, past the optimizer. */
    memset(w, 0, sizeof(w));
    __asm__ volatile ("" : : "r" (w) : "memory");
}

/* ---- SHA extensions ------------------------------------------------------ */

/*
 * sha256rnds2(cdgh, abef, wk) does two rounds on the state held as two
 * registers, lanes high to low (A, B, E, F) and (C, D, G, H), with w + k of
 * the two rounds in lanes 0 and 1 of wk; it returns the new (A, B, E, F),
 * and the old (A, B, E, F) is the new (C, D, G, H). Four rounds therefore
 * leave the registers in their roles again. sha256msg1(x, y) adds s0 of the
 * next word to each word of x (w[t] + s0(w[t + 1]), t = 0..3, the fourth s0
 * from lane 0 of y); sha256msg2(x, m3) adds s1(w[t - 2]) to the four sums x
 * (w[t - 16] + s0(w[t - 15]) + w[t - 7]), the last two from its own results.
 */
#define SHANI_TARGET __attribute__((target("sha,ssse3,sse4.1")))

/* Four rounds starting at round i, with the message words m (w[i .. i + 3]). */
#define SHANI_4ROUNDS(i, m)                                                        \
    do {                                                                           \
        __m128i wk_ = _mm_add_epi32((m), _mm_load_si128((const __m128i *) &K256[i])); \
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk_);                             \
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk_, 0x0e));    \
    } while (0)

/* The next four schedule words from the last sixteen (m0 the oldest). */
#define SHANI_SCHEDULE(m0, m1, m2, m3) \
    _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32((m0), (m1)), \
                                       _mm_alignr_epi8((m3), (m2), 4)), (m3))

SHANI_TARGET
void agent_sha256_blocks_shani(uint32_t state[8], const uint8_t *data, size_t nblocks)
{
    /* byte-swaps each 32-bit lane (the message is big-endian) */
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i dcba = _mm_loadu_si128((const __m128i *) &state[0]);   /* lanes 0..3: A B C D */
    __m128i hgfe = _mm_loadu_si128((const __m128i *) &state[4]);   /* lanes 0..3: E F G H */
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xb1);                  /* B A D C */
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1b);                  /* H G F E */
    __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);                 /* F E B A */
    __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xf0);              /* H G D C */

    while (nblocks-- > 0) {
        const __m128i abef0 = abef, cdgh0 = cdgh;
        __m128i m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *) (data + 0)), bswap);
        __m128i m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *) (data + 16)), bswap);
        __m128i m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *) (data + 32)), bswap);
        __m128i m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *) (data + 48)), bswap);

        SHANI_4ROUNDS(0, m0);
        SHANI_4ROUNDS(4, m1);
        SHANI_4ROUNDS(8, m2);
        SHANI_4ROUNDS(12, m3);
        for (int i = 16; i < 64; i += 16) {
            m0 = SHANI_SCHEDULE(m0, m1, m2, m3);
            SHANI_4ROUNDS(i + 0, m0);
            m1 = SHANI_SCHEDULE(m1, m2, m3, m0);
            SHANI_4ROUNDS(i + 4, m1);
            m2 = SHANI_SCHEDULE(m2, m3, m0, m1);
            SHANI_4ROUNDS(i + 8, m2);
            m3 = SHANI_SCHEDULE(m3, m0, m1, m2);
            SHANI_4ROUNDS(i + 12, m3);
        }
        abef = _mm_add_epi32(abef, abef0);
        cdgh = _mm_add_epi32(cdgh, cdgh0);
        data += 64;
    }

    /* back to A..H */
    __m128i feba = _mm_shuffle_epi32(abef, 0x1b);                  /* A B E F */
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xb1);                  /* G H C D */
    _mm_storeu_si128((__m128i *) &state[0], _mm_blend_epi16(feba, dchg, 0xf0));  /* A B C D */
    _mm_storeu_si128((__m128i *) &state[4], _mm_alignr_epi8(dchg, feba, 8));     /* E F G H */
}

/* ---- run-time choice ----------------------------------------------------- */

int agent_cpu_has_shani(void)
{
    unsigned a, b, c, d;

    if (!__get_cpuid(1, &a, &b, &c, &d)) {
        return 0;
    }
    if (!(c & bit_SSSE3) || !(c & bit_SSE4_1)) {
        return 0;
    }
    if (__get_cpuid_max(0, NULL) < 7) {
        return 0;
    }
    __cpuid_count(7, 0, a, b, c, d);
    return (b & (1u << 29)) != 0;   /* CPUID.(EAX=7, ECX=0):EBX.SHA[bit 29] */
}

/* 0: not chosen yet, 1: portable, 2: shani. Atomic (relaxed): the host's
 * tests hash in several threads; a race only computes the same answer twice. */
static int impl_choice;

static int choose(void)
{
    int c = __atomic_load_n(&impl_choice, __ATOMIC_RELAXED);
    if (c == 0) {
        c = agent_cpu_has_shani() ? 2 : 1;
        __atomic_store_n(&impl_choice, c, __ATOMIC_RELAXED);
    }
    return c;
}

int agent_sha256_use(const char *name)
{
    int c;
    if (strcmp(name, "auto") == 0) {
        c = agent_cpu_has_shani() ? 2 : 1;
    } else if (strcmp(name, "portable") == 0) {
        c = 1;
    } else if (strcmp(name, "shani") == 0) {
        if (!agent_cpu_has_shani()) {
            return -1;
        }
        c = 2;
    } else {
        return -1;
    }
    __atomic_store_n(&impl_choice, c, __ATOMIC_RELAXED);
    return 0;
}

const char *agent_sha256_name(void)
{
    return choose() == 2 ? "shani" : "portable";
}

void agent_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t nblocks)
{
    if (choose() == 2) {
        agent_sha256_blocks_shani(state, data, nblocks);
    } else {
        agent_sha256_blocks_portable(state, data, nblocks);
    }
}

int mbedtls_internal_sha256_process(mbedtls_sha256_context *ctx, const unsigned char data[64])
{
    agent_sha256_blocks(ctx->state, data, 1);
    return 0;
}

#endif /* MBEDTLS_SHA256_PROCESS_ALT */
