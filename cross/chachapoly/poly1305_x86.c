/*
 * Poly1305 with AVX2, four blocks at a time, for x86_64 (README.md).
 *
 * h = (...((h + m1) r + m2) r + ... + mk) r mod p, split over four lanes:
 * lane j takes every fourth block and multiplies by r^4 per step; in the
 * last step the lanes multiply by r^4, r^3, r^2, r (in block order), and
 * their sum is the result. The numbers are in five 26-bit limbs, one limb
 * per 64-bit element (vpmuludq multiplies the low 32 bits of each), so a step
 * is 25 vpmuludq for four blocks; the scalar code does 5 64x64->128 multiplies
 * and their carries per block.
 *
 * Blocks are loaded as two 32-byte halves and split into low and high 64-bit
 * words with vpunpck[lh]qdq, which leaves them in lane order 0, 2, 1, 3; the
 * final multipliers follow that order instead of shuffling every step.
 */
#include "chachapoly_internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))

/* Below this many blocks the scalar code wins (r^2..r^4 cost 3 multiplies). */
#define AVX2_MIN_BLOCKS 16

#define MUL(a, b) _mm256_mul_epu32(a, b)
#define ADD(a, b) _mm256_add_epi64(a, b)

static inline __attribute__((always_inline)) AVX2
__m256i times5(__m256i x)
{
    return ADD(x, _mm256_slli_epi64(x, 2));
}

static inline __attribute__((always_inline)) AVX2
uint32_t lane_sum(__m256i x)
{
    uint64_t v[4];

    _mm256_storeu_si256((__m256i *) v, x);
    return (uint32_t) (v[0] + v[1] + v[2] + v[3]);
}

AVX2 void agent_poly1305_blocks_avx2(uint64_t h[3], const uint64_t r[2],
                                     const uint8_t *m, size_t nblocks,
                                     uint32_t hibit)
{
    uint32_t p1[5], p2[5], p3[5], p4[5], hl[5];
    const __m256i mask = _mm256_set1_epi64x(AGENT_M26), hib = _mm256_set1_epi64x(1 << 24);
    __m256i H0, H1, H2, H3, H4, R0, R1, R2, R3, R4, S1, S2, S3, S4;
    size_t quads = nblocks / 4, i;

    if (nblocks < AVX2_MIN_BLOCKS || !hibit) {
        agent_poly1305_blocks_portable(h, r, m, nblocks, hibit);
        return;
    }

    agent_poly_to26(r[0], r[1], 0, p1);
    agent_poly_mul26(p2, p1, p1);
    agent_poly_mul26(p3, p2, p1);
    agent_poly_mul26(p4, p2, p2);
    agent_poly_to26(h[0], h[1], h[2], hl);

    /* lane 0 starts with h, the others with 0 */
    H0 = _mm256_setr_epi64x(hl[0], 0, 0, 0);
    H1 = _mm256_setr_epi64x(hl[1], 0, 0, 0);
    H2 = _mm256_setr_epi64x(hl[2], 0, 0, 0);
    H3 = _mm256_setr_epi64x(hl[3], 0, 0, 0);
    H4 = _mm256_setr_epi64x(hl[4], 0, 0, 0);
    R0 = _mm256_set1_epi64x(p4[0]); R1 = _mm256_set1_epi64x(p4[1]);
    R2 = _mm256_set1_epi64x(p4[2]); R3 = _mm256_set1_epi64x(p4[3]);
    R4 = _mm256_set1_epi64x(p4[4]);
    S1 = times5(R1); S2 = times5(R2); S3 = times5(R3); S4 = times5(R4);

    for (i = 0; i < quads; i++, m += 64) {
        const __m256i a = _mm256_loadu_si256((const __m256i *) m);        /* blocks 0, 1 */
        const __m256i b = _mm256_loadu_si256((const __m256i *) (m + 32)); /* blocks 2, 3 */
        const __m256i lo = _mm256_unpacklo_epi64(a, b);   /* low words of blocks 0, 2, 1, 3 */
        const __m256i hi = _mm256_unpackhi_epi64(a, b);   /* high words */
        __m256i d0, d1, d2, d3, d4, c;

        if (i == quads - 1) {
            /* last step: blocks 0, 2, 1, 3 multiply by r^4, r^2, r^3, r */
            R0 = _mm256_setr_epi64x(p4[0], p2[0], p3[0], p1[0]);
            R1 = _mm256_setr_epi64x(p4[1], p2[1], p3[1], p1[1]);
            R2 = _mm256_setr_epi64x(p4[2], p2[2], p3[2], p1[2]);
            R3 = _mm256_setr_epi64x(p4[3], p2[3], p3[3], p1[3]);
            R4 = _mm256_setr_epi64x(p4[4], p2[4], p3[4], p1[4]);
            S1 = times5(R1); S2 = times5(R2); S3 = times5(R3); S4 = times5(R4);
        }

        /* h += m (+ 2^128), cut into 26-bit limbs */
        H0 = ADD(H0, _mm256_and_si256(lo, mask));
        H1 = ADD(H1, _mm256_and_si256(_mm256_srli_epi64(lo, 26), mask));
        H2 = ADD(H2, _mm256_and_si256(_mm256_or_si256(_mm256_srli_epi64(lo, 52),
                                                      _mm256_slli_epi64(hi, 12)), mask));
        H3 = ADD(H3, _mm256_and_si256(_mm256_srli_epi64(hi, 14), mask));
        H4 = ADD(H4, _mm256_or_si256(_mm256_srli_epi64(hi, 40), hib));

        /* h *= r^4 (or the last step's powers): five terms < 2^56 each */
        d0 = ADD(ADD(MUL(H0, R0), MUL(H1, S4)), ADD(ADD(MUL(H2, S3), MUL(H3, S2)), MUL(H4, S1)));
        d1 = ADD(ADD(MUL(H0, R1), MUL(H1, R0)), ADD(ADD(MUL(H2, S4), MUL(H3, S3)), MUL(H4, S2)));
        d2 = ADD(ADD(MUL(H0, R2), MUL(H1, R1)), ADD(ADD(MUL(H2, R0), MUL(H3, S4)), MUL(H4, S3)));
        d3 = ADD(ADD(MUL(H0, R3), MUL(H1, R2)), ADD(ADD(MUL(H2, R1), MUL(H3, R0)), MUL(H4, S4)));
        d4 = ADD(ADD(MUL(H0, R4), MUL(H1, R3)), ADD(ADD(MUL(H2, R2), MUL(H3, R1)), MUL(H4, R0)));

        /* Carry in two chains side by side, d0 -> d1 -> d2 -> d3 -> d4 and
         * d3 -> d4 -> d0 -> d1 (bits 130 and up come back times 5): four
         * steps deep instead of seven; every limb ends below 2^26 + 2^11. */
        c = _mm256_srli_epi64(d0, 26); d0 = _mm256_and_si256(d0, mask); d1 = ADD(d1, c);
        c = _mm256_srli_epi64(d3, 26); d3 = _mm256_and_si256(d3, mask); d4 = ADD(d4, c);
        c = _mm256_srli_epi64(d1, 26); H1 = _mm256_and_si256(d1, mask); d2 = ADD(d2, c);
        c = _mm256_srli_epi64(d4, 26); d4 = _mm256_and_si256(d4, mask); d0 = ADD(d0, times5(c));
        c = _mm256_srli_epi64(d2, 26); H2 = _mm256_and_si256(d2, mask); d3 = ADD(d3, c);
        c = _mm256_srli_epi64(d0, 26); H0 = _mm256_and_si256(d0, mask); H1 = ADD(H1, c);
        c = _mm256_srli_epi64(d3, 26); H3 = _mm256_and_si256(d3, mask); H4 = ADD(d4, c);
    }

    /* the sum of the four lanes (limbs < 2^29), then the blocks left over */
    hl[0] = lane_sum(H0);
    hl[1] = lane_sum(H1);
    hl[2] = lane_sum(H2);
    hl[3] = lane_sum(H3);
    hl[4] = lane_sum(H4);
    agent_poly_from26(hl, h);
    if (nblocks % 4 != 0) {
        agent_poly1305_blocks_portable(h, r, m, nblocks % 4, hibit);
    }
}

#endif /* __x86_64__ */
