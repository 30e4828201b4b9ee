/*
 * ChaCha20 with NEON for aarch64 (always there) and armv7 (chosen at run time
 * from AT_HWCAP, dispatch.c). Same structure as chacha20_x86.c (README.md):
 * four blocks "vertically" (vector register i = word i of 4 blocks); one or
 * two blocks (tails, the per-record Poly1305 key block) go to the portable
 * scalar code, which beats a latency-bound single-block vector pass.
 *
 * armv7: our baseline is VFPv3-D16 without NEON, so this file switches NEON on
 * with a pragma (before <arm_neon.h>) instead of -mfpu=neon on the command
 * line. The code is the same; the object's build attributes stay at the
 * baseline (Tag_FP_arch VFPv3-D16, no Tag_Advanced_SIMD_arch), so the linked
 * binary still says what it needs, and nothing here runs unless the kernel
 * reports NEON.
 */
#include "chachapoly_internal.h"

#if defined(__arm__) && !defined(__ARM_NEON)
#pragma GCC target("fpu=neon")
#endif

#if defined(__aarch64__) || defined(__arm__)

#include <arm_neon.h>

#define ROTLQ(x, n) vsriq_n_u32(vshlq_n_u32(x, n), x, 32 - (n))
#define ROTLQ_16(x) vreinterpretq_u32_u16(vrev32q_u16(vreinterpretq_u16_u32(x)))
#if defined(__aarch64__)
/* One table lookup instead of two shifts: bytes 3,0,1,2 of each word. */
#define ROTLQ_8(x) vreinterpretq_u32_u8(vqtbl1q_u8(vreinterpretq_u8_u32(x), rot8))
#define ROT8_TABLE \
    static const uint8_t rot8_bytes[16] = { 3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14 }; \
    const uint8x16_t rot8 = vld1q_u8(rot8_bytes)
#else
#define ROTLQ_8(x) ROTLQ(x, 8)
#define ROT8_TABLE do { } while (0)
#endif

#define QRQ(a, b, c, d)                                                         \
    do {                                                                        \
        a = vaddq_u32(a, b); d = veorq_u32(d, a); d = ROTLQ_16(d);              \
        c = vaddq_u32(c, d); b = veorq_u32(b, c); b = ROTLQ(b, 12);             \
        a = vaddq_u32(a, b); d = veorq_u32(d, a); d = ROTLQ_8(d);               \
        c = vaddq_u32(c, d); b = veorq_u32(b, c); b = ROTLQ(b, 7);              \
    } while (0)

static inline __attribute__((always_inline))
void xor_block16(const uint8_t *in, uint8_t *out, uint32x4_t k)
{
    vst1q_u8(out, veorq_u8(vld1q_u8(in), vreinterpretq_u8_u32(k)));
}

/* Words w..w+3 of 4 blocks (one block per lane) -> XOR into bytes 4w..4w+15
 * of each of the first nblk blocks at out. */
static inline __attribute__((always_inline))
void xor_group4(const uint8_t *in, uint8_t *out, size_t nblk,
                uint32x4_t a, uint32x4_t b, uint32x4_t c, uint32x4_t d)
{
    uint32x4x2_t p = vtrnq_u32(a, b);   /* a0 b0 a2 b2 | a1 b1 a3 b3 */
    uint32x4x2_t q = vtrnq_u32(c, d);   /* c0 d0 c2 d2 | c1 d1 c3 d3 */

    xor_block16(in, out, vcombine_u32(vget_low_u32(p.val[0]), vget_low_u32(q.val[0])));
    if (nblk > 1) {
        xor_block16(in + 64, out + 64, vcombine_u32(vget_low_u32(p.val[1]), vget_low_u32(q.val[1])));
    }
    if (nblk > 2) {
        xor_block16(in + 128, out + 128, vcombine_u32(vget_high_u32(p.val[0]), vget_high_u32(q.val[0])));
    }
    if (nblk > 3) {
        xor_block16(in + 192, out + 192, vcombine_u32(vget_high_u32(p.val[1]), vget_high_u32(q.val[1])));
    }
}

/* Blocks ctr .. ctr+3; only the first nblk (1..4) are read and written. */
static inline __attribute__((always_inline))
void chacha_4blocks_neon(const uint32_t st[16], uint32_t ctr,
                         const uint8_t *in, uint8_t *out, size_t nblk)
{
    static const uint32_t lanes[4] = { 0, 1, 2, 3 };
    const uint32x4_t c12 = vaddq_u32(vdupq_n_u32(ctr), vld1q_u32(lanes));
    uint32x4_t x0 = vdupq_n_u32(st[0]), x1 = vdupq_n_u32(st[1]);
    uint32x4_t x2 = vdupq_n_u32(st[2]), x3 = vdupq_n_u32(st[3]);
    uint32x4_t x4 = vdupq_n_u32(st[4]), x5 = vdupq_n_u32(st[5]);
    uint32x4_t x6 = vdupq_n_u32(st[6]), x7 = vdupq_n_u32(st[7]);
    uint32x4_t x8 = vdupq_n_u32(st[8]), x9 = vdupq_n_u32(st[9]);
    uint32x4_t x10 = vdupq_n_u32(st[10]), x11 = vdupq_n_u32(st[11]);
    uint32x4_t x12 = c12, x13 = vdupq_n_u32(st[13]);
    uint32x4_t x14 = vdupq_n_u32(st[14]), x15 = vdupq_n_u32(st[15]);
    int i;
    ROT8_TABLE;

    for (i = 0; i < 10; i++) {
        QRQ(x0, x4, x8, x12);
        QRQ(x1, x5, x9, x13);
        QRQ(x2, x6, x10, x14);
        QRQ(x3, x7, x11, x15);
        QRQ(x0, x5, x10, x15);
        QRQ(x1, x6, x11, x12);
        QRQ(x2, x7, x8, x13);
        QRQ(x3, x4, x9, x14);
    }
    x0 = vaddq_u32(x0, vdupq_n_u32(st[0]));
    x1 = vaddq_u32(x1, vdupq_n_u32(st[1]));
    x2 = vaddq_u32(x2, vdupq_n_u32(st[2]));
    x3 = vaddq_u32(x3, vdupq_n_u32(st[3]));
    xor_group4(in, out, nblk, x0, x1, x2, x3);
    x4 = vaddq_u32(x4, vdupq_n_u32(st[4]));
    x5 = vaddq_u32(x5, vdupq_n_u32(st[5]));
    x6 = vaddq_u32(x6, vdupq_n_u32(st[6]));
    x7 = vaddq_u32(x7, vdupq_n_u32(st[7]));
    xor_group4(in + 16, out + 16, nblk, x4, x5, x6, x7);
    x8 = vaddq_u32(x8, vdupq_n_u32(st[8]));
    x9 = vaddq_u32(x9, vdupq_n_u32(st[9]));
    x10 = vaddq_u32(x10, vdupq_n_u32(st[10]));
    x11 = vaddq_u32(x11, vdupq_n_u32(st[11]));
    xor_group4(in + 32, out + 32, nblk, x8, x9, x10, x11);
    x12 = vaddq_u32(x12, c12);
    x13 = vaddq_u32(x13, vdupq_n_u32(st[13]));
    x14 = vaddq_u32(x14, vdupq_n_u32(st[14]));
    x15 = vaddq_u32(x15, vdupq_n_u32(st[15]));
    xor_group4(in + 48, out + 48, nblk, x12, x13, x14, x15);
}

void agent_chacha20_blocks_neon(uint32_t st[16], const uint8_t *in,
                                uint8_t *out, size_t nblocks)
{
    uint32_t ctr = st[12];

    for (; nblocks >= 4; nblocks -= 4, ctr += 4, in += 256, out += 256) {
        chacha_4blocks_neon(st, ctr, in, out, 4);
    }
    if (nblocks == 3) {
        chacha_4blocks_neon(st, ctr, in, out, 3);
        ctr += 3;
        nblocks = 0;
    }
    st[12] = ctr;
    if (nblocks > 0) {
        agent_chacha20_blocks_portable(st, in, out, nblocks);
    }
}

#endif /* __aarch64__ || __arm__ */
