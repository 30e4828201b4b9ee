/*
 * Poly1305 with NEON, two blocks at a time, for armv7 (README.md).
 *
 * Poly1305 is h = (...((h + m1) r + m2) r + ... + mk) r mod p. Two lanes
 * split it: lane 0 takes blocks 1, 3, 5, ..., lane 1 blocks 2, 4, 6, ...,
 * each multiplying by r^2 per step; in the last step lane 0 multiplies by r^2
 * and lane 1 by r, and the sum of the lanes is the result:
 *   lane 0: (h + m1) r^k + m3 r^(k-2) + ...   lane 1: m2 r^(k-1) + m4 r^(k-3) + ...
 * The numbers are in five 26-bit limbs, one 32-bit element per lane, and a
 * step is 25 vmull/vmlal.u32 (two 32x32->64 products each) for two blocks,
 * where the scalar code needs 25 umull/umlal per block.
 *
 * Built with NEON switched on by the pragma (as in chacha20_neon.c); runs only
 * after the dispatcher has seen HWCAP_NEON.
 */
#include "chachapoly_internal.h"

#if defined(__arm__) && !defined(__ARM_NEON)
#pragma GCC target("fpu=neon")
#endif

/* armv7 only: on aarch64 the 64-bit scalar code (mul/umulh, five products
 * per block) executes as many instructions as this (measured under qemu). */
#if defined(__arm__)

#include <arm_neon.h>

/* Below this many blocks the scalar code is faster (r^2 costs a multiply). */
#define NEON_MIN_BLOCKS 8

void agent_poly1305_blocks_neon(uint64_t h[3], const uint64_t r[2],
                                const uint8_t *m, size_t nblocks,
                                uint32_t hibit)
{
    uint32_t r1[5], r2[5], hl[5];
    uint32x2_t H0, H1, H2, H3, H4, R0, R1, R2, R3, R4, S1, S2, S3, S4;
    const uint32x2_t mask = vdup_n_u32(AGENT_M26), hib = vdup_n_u32(1u << 24);
    const uint64x2_t mask64 = vdupq_n_u64(AGENT_M26);
    size_t pairs = nblocks / 2, i;

    if (nblocks < NEON_MIN_BLOCKS || !hibit) {
        agent_poly1305_blocks_portable(h, r, m, nblocks, hibit);
        return;
    }

    agent_poly_to26(r[0], r[1], 0, r1);
    agent_poly_mul26(r2, r1, r1);
    agent_poly_to26(h[0], h[1], h[2], hl);

    /* lane 0 starts with h, lane 1 with 0 */
    H0 = vset_lane_u32(hl[0], vdup_n_u32(0), 0);
    H1 = vset_lane_u32(hl[1], vdup_n_u32(0), 0);
    H2 = vset_lane_u32(hl[2], vdup_n_u32(0), 0);
    H3 = vset_lane_u32(hl[3], vdup_n_u32(0), 0);
    H4 = vset_lane_u32(hl[4], vdup_n_u32(0), 0);
    R0 = vdup_n_u32(r2[0]); R1 = vdup_n_u32(r2[1]); R2 = vdup_n_u32(r2[2]);
    R3 = vdup_n_u32(r2[3]); R4 = vdup_n_u32(r2[4]);
    S1 = vmul_n_u32(R1, 5); S2 = vmul_n_u32(R2, 5);
    S3 = vmul_n_u32(R3, 5); S4 = vmul_n_u32(R4, 5);

    for (i = 0; i < pairs; i++, m += 32) {
        /* w.val[j] = word j of block A (lane 0) and of block B (lane 1) */
        const uint32x2x4_t w = vld4_u32((const uint32_t *) (const void *) m);
        uint64x2_t d0, d1, d2, d3, d4, c;

        if (i == pairs - 1) {
            /* last step: lane 1 multiplies by r instead of r^2 */
            R0 = vset_lane_u32(r1[0], R0, 1); R1 = vset_lane_u32(r1[1], R1, 1);
            R2 = vset_lane_u32(r1[2], R2, 1); R3 = vset_lane_u32(r1[3], R3, 1);
            R4 = vset_lane_u32(r1[4], R4, 1);
            S1 = vmul_n_u32(R1, 5); S2 = vmul_n_u32(R2, 5);
            S3 = vmul_n_u32(R3, 5); S4 = vmul_n_u32(R4, 5);
        }

        /* h += m (+ 2^128): the 128-bit blocks cut into 26-bit limbs */
        H0 = vadd_u32(H0, vand_u32(w.val[0], mask));
        H1 = vadd_u32(H1, vand_u32(vorr_u32(vshr_n_u32(w.val[0], 26), vshl_n_u32(w.val[1], 6)), mask));
        H2 = vadd_u32(H2, vand_u32(vorr_u32(vshr_n_u32(w.val[1], 20), vshl_n_u32(w.val[2], 12)), mask));
        H3 = vadd_u32(H3, vand_u32(vorr_u32(vshr_n_u32(w.val[2], 14), vshl_n_u32(w.val[3], 18)), mask));
        H4 = vadd_u32(H4, vorr_u32(vshr_n_u32(w.val[3], 8), hib));

        /* h *= r^2 (or r): limbs < 2^27 times < 5 * 2^26, five terms < 2^59 */
        d0 = vmull_u32(H0, R0); d0 = vmlal_u32(d0, H1, S4); d0 = vmlal_u32(d0, H2, S3);
        d0 = vmlal_u32(d0, H3, S2); d0 = vmlal_u32(d0, H4, S1);
        d1 = vmull_u32(H0, R1); d1 = vmlal_u32(d1, H1, R0); d1 = vmlal_u32(d1, H2, S4);
        d1 = vmlal_u32(d1, H3, S3); d1 = vmlal_u32(d1, H4, S2);
        d2 = vmull_u32(H0, R2); d2 = vmlal_u32(d2, H1, R1); d2 = vmlal_u32(d2, H2, R0);
        d2 = vmlal_u32(d2, H3, S4); d2 = vmlal_u32(d2, H4, S3);
        d3 = vmull_u32(H0, R3); d3 = vmlal_u32(d3, H1, R2); d3 = vmlal_u32(d3, H2, R1);
        d3 = vmlal_u32(d3, H3, R0); d3 = vmlal_u32(d3, H4, S4);
        d4 = vmull_u32(H0, R4); d4 = vmlal_u32(d4, H1, R3); d4 = vmlal_u32(d4, H2, R2);
        d4 = vmlal_u32(d4, H3, R1); d4 = vmlal_u32(d4, H4, R0);

        /* Carry in two chains side by side, d0 -> d1 -> d2 -> d3 -> d4 and
         * d3 -> d4 -> d0 -> d1 (bits 130 and up come back times 5): four
         * steps deep instead of seven; every limb ends below 2^26 + 2^11. */
        c = vshrq_n_u64(d0, 26); d0 = vandq_u64(d0, mask64); d1 = vaddq_u64(d1, c);
        c = vshrq_n_u64(d3, 26); d3 = vandq_u64(d3, mask64); d4 = vaddq_u64(d4, c);
        c = vshrq_n_u64(d1, 26); H1 = vand_u32(vmovn_u64(d1), mask); d2 = vaddq_u64(d2, c);
        c = vshrq_n_u64(d4, 26); d4 = vandq_u64(d4, mask64);
        d0 = vaddq_u64(d0, vaddq_u64(c, vshlq_n_u64(c, 2)));
        c = vshrq_n_u64(d2, 26); H2 = vand_u32(vmovn_u64(d2), mask); d3 = vaddq_u64(d3, c);
        c = vshrq_n_u64(d0, 26); H0 = vand_u32(vmovn_u64(d0), mask); H1 = vadd_u32(H1, vmovn_u64(c));
        c = vshrq_n_u64(d3, 26); H3 = vand_u32(vmovn_u64(d3), mask); H4 = vmovn_u64(vaddq_u64(d4, c));
    }

    /* the sum of the two lanes (limbs < 2^28), then any odd last block */
    hl[0] = vget_lane_u32(H0, 0) + vget_lane_u32(H0, 1);
    hl[1] = vget_lane_u32(H1, 0) + vget_lane_u32(H1, 1);
    hl[2] = vget_lane_u32(H2, 0) + vget_lane_u32(H2, 1);
    hl[3] = vget_lane_u32(H3, 0) + vget_lane_u32(H3, 1);
    hl[4] = vget_lane_u32(H4, 0) + vget_lane_u32(H4, 1);
    agent_poly_from26(hl, h);
    if (nblocks % 2 != 0) {
        agent_poly1305_blocks_portable(h, r, m, 1, hibit);
    }
}

#endif /* __arm__ */
