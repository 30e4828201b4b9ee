/*
 * ChaCha20 for x86_64 with SSE2 (every x86_64 CPU) and AVX2 (chosen at run
 * time, dispatch.c). See README.md for the design; in short:
 *
 * - Several blocks at once, "vertically": vector register i holds state word
 *   i of 4 (SSE2) or 8 (AVX2) consecutive blocks, one block per 32-bit lane,
 *   so a quarter round is 12 plain vector instructions with no shuffles. The
 *   lanes differ only in the block counter. At the end a 4x4 transpose of
 *   32-bit words (per 128-bit lane) turns columns back into keystream bytes,
 *   which are XORed with the input straight from registers.
 * - One or two blocks (a short tail, the one-block Poly1305 key of each AEAD
 *   record) go to the portable scalar code: a single block "horizontally" in
 *   vector registers (rows in registers, pshufd for the diagonals) is one long
 *   dependency chain and measured 2x slower than scalar code here, and a
 *   4-way pass for one block wastes three quarters of it.
 * - Rotations: SSE2 has no byte shuffle, so 16 is pshuflw/pshufhw and 12, 8, 7
 *   are two shifts and an OR; AVX2 does 16 and 8 with vpshufb.
 *
 * The AVX2 functions carry __attribute__((target("avx2"))), so this file is
 * compiled with the target's ordinary flags and only the dispatcher decides
 * whether they may run.
 */
#include "chachapoly_internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

/* --- SSE2 ------------------------------------------------------------------ */

#define ADD4(a, b) _mm_add_epi32(a, b)
#define XOR4(a, b) _mm_xor_si128(a, b)
#define ROTL4(x, n) _mm_or_si128(_mm_slli_epi32(x, n), _mm_srli_epi32(x, 32 - (n)))
#define ROTL4_16(x) _mm_shufflehi_epi16(_mm_shufflelo_epi16(x, 0xb1), 0xb1)

#define QR4(a, b, c, d)                                                     \
    do {                                                                    \
        a = ADD4(a, b); d = XOR4(d, a); d = ROTL4_16(d);                    \
        c = ADD4(c, d); b = XOR4(b, c); b = ROTL4(b, 12);                   \
        a = ADD4(a, b); d = XOR4(d, a); d = ROTL4(d, 8);                    \
        c = ADD4(c, d); b = XOR4(b, c); b = ROTL4(b, 7);                    \
    } while (0)

/* Words w..w+3 of 4 blocks (one block per lane) -> XOR into bytes 4w..4w+15
 * of each of the first nblk blocks at out. */
static inline __attribute__((always_inline))
void xor_group4(const uint8_t *in, uint8_t *out, size_t nblk,
                __m128i a, __m128i b, __m128i c, __m128i d)
{
    __m128i t0 = _mm_unpacklo_epi32(a, b);   /* a0 b0 a1 b1 */
    __m128i t1 = _mm_unpacklo_epi32(c, d);   /* c0 d0 c1 d1 */
    __m128i t2 = _mm_unpackhi_epi32(a, b);   /* a2 b2 a3 b3 */
    __m128i t3 = _mm_unpackhi_epi32(c, d);   /* c2 d2 c3 d3 */
    __m128i r[4];
    size_t j;

    r[0] = _mm_unpacklo_epi64(t0, t1);       /* block 0: a0 b0 c0 d0 */
    r[1] = _mm_unpackhi_epi64(t0, t1);       /* block 1 */
    r[2] = _mm_unpacklo_epi64(t2, t3);       /* block 2 */
    r[3] = _mm_unpackhi_epi64(t2, t3);       /* block 3 */
    for (j = 0; j < 4 && j < nblk; j++) {
        __m128i m = _mm_loadu_si128((const __m128i *) (in + 64 * j));
        _mm_storeu_si128((__m128i *) (out + 64 * j), XOR4(m, r[j]));
    }
}

/* Blocks ctr .. ctr+3; only the first nblk (1..4) are read and written. */
static inline __attribute__((always_inline))
void chacha_4blocks_sse(const uint32_t st[16], uint32_t ctr,
                        const uint8_t *in, uint8_t *out, size_t nblk)
{
    const __m128i c12 = ADD4(_mm_set1_epi32((int) ctr), _mm_setr_epi32(0, 1, 2, 3));
    __m128i x0 = _mm_set1_epi32((int) st[0]), x1 = _mm_set1_epi32((int) st[1]);
    __m128i x2 = _mm_set1_epi32((int) st[2]), x3 = _mm_set1_epi32((int) st[3]);
    __m128i x4 = _mm_set1_epi32((int) st[4]), x5 = _mm_set1_epi32((int) st[5]);
    __m128i x6 = _mm_set1_epi32((int) st[6]), x7 = _mm_set1_epi32((int) st[7]);
    __m128i x8 = _mm_set1_epi32((int) st[8]), x9 = _mm_set1_epi32((int) st[9]);
    __m128i x10 = _mm_set1_epi32((int) st[10]), x11 = _mm_set1_epi32((int) st[11]);
    __m128i x12 = c12, x13 = _mm_set1_epi32((int) st[13]);
    __m128i x14 = _mm_set1_epi32((int) st[14]), x15 = _mm_set1_epi32((int) st[15]);
    int i;

    for (i = 0; i < 10; i++) {
        QR4(x0, x4, x8, x12);
        QR4(x1, x5, x9, x13);
        QR4(x2, x6, x10, x14);
        QR4(x3, x7, x11, x15);
        QR4(x0, x5, x10, x15);
        QR4(x1, x6, x11, x12);
        QR4(x2, x7, x8, x13);
        QR4(x3, x4, x9, x14);
    }
    x0 = ADD4(x0, _mm_set1_epi32((int) st[0]));
    x1 = ADD4(x1, _mm_set1_epi32((int) st[1]));
    x2 = ADD4(x2, _mm_set1_epi32((int) st[2]));
    x3 = ADD4(x3, _mm_set1_epi32((int) st[3]));
    xor_group4(in, out, nblk, x0, x1, x2, x3);
    x4 = ADD4(x4, _mm_set1_epi32((int) st[4]));
    x5 = ADD4(x5, _mm_set1_epi32((int) st[5]));
    x6 = ADD4(x6, _mm_set1_epi32((int) st[6]));
    x7 = ADD4(x7, _mm_set1_epi32((int) st[7]));
    xor_group4(in + 16, out + 16, nblk, x4, x5, x6, x7);
    x8 = ADD4(x8, _mm_set1_epi32((int) st[8]));
    x9 = ADD4(x9, _mm_set1_epi32((int) st[9]));
    x10 = ADD4(x10, _mm_set1_epi32((int) st[10]));
    x11 = ADD4(x11, _mm_set1_epi32((int) st[11]));
    xor_group4(in + 32, out + 32, nblk, x8, x9, x10, x11);
    x12 = ADD4(x12, c12);
    x13 = ADD4(x13, _mm_set1_epi32((int) st[13]));
    x14 = ADD4(x14, _mm_set1_epi32((int) st[14]));
    x15 = ADD4(x15, _mm_set1_epi32((int) st[15]));
    xor_group4(in + 48, out + 48, nblk, x12, x13, x14, x15);
}

void agent_chacha20_blocks_sse2(uint32_t st[16], const uint8_t *in,
                                uint8_t *out, size_t nblocks)
{
    uint32_t ctr = st[12];

    for (; nblocks >= 4; nblocks -= 4, ctr += 4, in += 256, out += 256) {
        chacha_4blocks_sse(st, ctr, in, out, 4);
    }
    if (nblocks == 3) {
        chacha_4blocks_sse(st, ctr, in, out, 3);
        ctr += 3;
        nblocks = 0;
    }
    st[12] = ctr;
    if (nblocks > 0) {
        agent_chacha20_blocks_portable(st, in, out, nblocks);
    }
}

/* --- AVX2 ------------------------------------------------------------------ */

#define AVX2 __attribute__((target("avx2")))

#define ADD8(a, b) _mm256_add_epi32(a, b)
#define XOR8(a, b) _mm256_xor_si256(a, b)
#define ROTL8(x, n) _mm256_or_si256(_mm256_slli_epi32(x, n), _mm256_srli_epi32(x, 32 - (n)))

#define QR8(a, b, c, d)                                                     \
    do {                                                                    \
        a = ADD8(a, b); d = XOR8(d, a); d = _mm256_shuffle_epi8(d, rot16);  \
        c = ADD8(c, d); b = XOR8(b, c); b = ROTL8(b, 12);                   \
        a = ADD8(a, b); d = XOR8(d, a); d = _mm256_shuffle_epi8(d, rot8);   \
        c = ADD8(c, d); b = XOR8(b, c); b = ROTL8(b, 7);                    \
    } while (0)

/* 4x4 transpose of 32-bit words inside each 128-bit lane: on return t[j]
 * holds 4 consecutive words of block j (low lane) and of block j+4 (high). */
static inline __attribute__((always_inline)) AVX2
void transpose8(__m256i a, __m256i b, __m256i c, __m256i d, __m256i t[4])
{
    __m256i t0 = _mm256_unpacklo_epi32(a, b);
    __m256i t1 = _mm256_unpacklo_epi32(c, d);
    __m256i t2 = _mm256_unpackhi_epi32(a, b);
    __m256i t3 = _mm256_unpackhi_epi32(c, d);

    t[0] = _mm256_unpacklo_epi64(t0, t1);
    t[1] = _mm256_unpackhi_epi64(t0, t1);
    t[2] = _mm256_unpacklo_epi64(t2, t3);
    t[3] = _mm256_unpackhi_epi64(t2, t3);
}

/* Words w..w+7 of 8 blocks -> XOR into bytes 4w..4w+31 of each of the first
 * nblk blocks at out. */
static inline __attribute__((always_inline)) AVX2
void xor_group8(const uint8_t *in, uint8_t *out, size_t nblk,
                __m256i a, __m256i b, __m256i c, __m256i d,
                __m256i e, __m256i f, __m256i g, __m256i h)
{
    __m256i lo[4], hi[4];
    size_t j;

    transpose8(a, b, c, d, lo);   /* words w..w+3 */
    transpose8(e, f, g, h, hi);   /* words w+4..w+7 */
    for (j = 0; j < 4; j++) {
        /* block j: low lanes; block j + 4: high lanes */
        __m256i kj = _mm256_permute2x128_si256(lo[j], hi[j], 0x20);
        __m256i kj4 = _mm256_permute2x128_si256(lo[j], hi[j], 0x31);

        if (j < nblk) {
            __m256i m = _mm256_loadu_si256((const __m256i *) (in + 64 * j));
            _mm256_storeu_si256((__m256i *) (out + 64 * j), XOR8(m, kj));
        }
        if (j + 4 < nblk) {
            __m256i m = _mm256_loadu_si256((const __m256i *) (in + 64 * (j + 4)));
            _mm256_storeu_si256((__m256i *) (out + 64 * (j + 4)), XOR8(m, kj4));
        }
    }
}

/* Blocks ctr .. ctr+7; only the first nblk (1..8) are read and written. */
static inline __attribute__((always_inline)) AVX2
void chacha_8blocks_avx2(const uint32_t st[16], uint32_t ctr,
                         const uint8_t *in, uint8_t *out, size_t nblk)
{
    const __m256i rot16 = _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
                                           2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    const __m256i rot8 = _mm256_setr_epi8(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14,
                                          3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);
    const __m256i c12 = ADD8(_mm256_set1_epi32((int) ctr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i x0 = _mm256_set1_epi32((int) st[0]), x1 = _mm256_set1_epi32((int) st[1]);
    __m256i x2 = _mm256_set1_epi32((int) st[2]), x3 = _mm256_set1_epi32((int) st[3]);
    __m256i x4 = _mm256_set1_epi32((int) st[4]), x5 = _mm256_set1_epi32((int) st[5]);
    __m256i x6 = _mm256_set1_epi32((int) st[6]), x7 = _mm256_set1_epi32((int) st[7]);
    __m256i x8 = _mm256_set1_epi32((int) st[8]), x9 = _mm256_set1_epi32((int) st[9]);
    __m256i x10 = _mm256_set1_epi32((int) st[10]), x11 = _mm256_set1_epi32((int) st[11]);
    __m256i x12 = c12, x13 = _mm256_set1_epi32((int) st[13]);
    __m256i x14 = _mm256_set1_epi32((int) st[14]), x15 = _mm256_set1_epi32((int) st[15]);
    int i;

    for (i = 0; i < 10; i++) {
        QR8(x0, x4, x8, x12);
        QR8(x1, x5, x9, x13);
        QR8(x2, x6, x10, x14);
        QR8(x3, x7, x11, x15);
        QR8(x0, x5, x10, x15);
        QR8(x1, x6, x11, x12);
        QR8(x2, x7, x8, x13);
        QR8(x3, x4, x9, x14);
    }
    x0 = ADD8(x0, _mm256_set1_epi32((int) st[0]));
    x1 = ADD8(x1, _mm256_set1_epi32((int) st[1]));
    x2 = ADD8(x2, _mm256_set1_epi32((int) st[2]));
    x3 = ADD8(x3, _mm256_set1_epi32((int) st[3]));
    x4 = ADD8(x4, _mm256_set1_epi32((int) st[4]));
    x5 = ADD8(x5, _mm256_set1_epi32((int) st[5]));
    x6 = ADD8(x6, _mm256_set1_epi32((int) st[6]));
    x7 = ADD8(x7, _mm256_set1_epi32((int) st[7]));
    xor_group8(in, out, nblk, x0, x1, x2, x3, x4, x5, x6, x7);
    x8 = ADD8(x8, _mm256_set1_epi32((int) st[8]));
    x9 = ADD8(x9, _mm256_set1_epi32((int) st[9]));
    x10 = ADD8(x10, _mm256_set1_epi32((int) st[10]));
    x11 = ADD8(x11, _mm256_set1_epi32((int) st[11]));
    x12 = ADD8(x12, c12);
    x13 = ADD8(x13, _mm256_set1_epi32((int) st[13]));
    x14 = ADD8(x14, _mm256_set1_epi32((int) st[14]));
    x15 = ADD8(x15, _mm256_set1_epi32((int) st[15]));
    xor_group8(in + 32, out + 32, nblk, x8, x9, x10, x11, x12, x13, x14, x15);
}

AVX2 void agent_chacha20_blocks_avx2(uint32_t st[16], const uint8_t *in,
                                     uint8_t *out, size_t nblocks)
{
    uint32_t ctr = st[12];

    for (; nblocks >= 8; nblocks -= 8, ctr += 8, in += 512, out += 512) {
        chacha_8blocks_avx2(st, ctr, in, out, 8);
    }
    if (nblocks > 4) {
        chacha_8blocks_avx2(st, ctr, in, out, nblocks);
        ctr += (uint32_t) nblocks;
        nblocks = 0;
    } else if (nblocks >= 3) {
        chacha_4blocks_sse(st, ctr, in, out, nblocks);
        ctr += (uint32_t) nblocks;
        nblocks = 0;
    }
    st[12] = ctr;
    if (nblocks > 0) {
        agent_chacha20_blocks_portable(st, in, out, nblocks);
    }
}

#endif /* __x86_64__ */
