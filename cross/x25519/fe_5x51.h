/*
 * Field arithmetic mod p = 2^255 - 19 for 64-bit targets (x86_64, aarch64):
 * five unsigned 51-bit limbs, f = f0 + f1 2^51 + f2 2^102 + f3 2^153 + f4 2^204,
 * and 64 x 64 -> 128-bit products (unsigned __int128). Included by x25519.c
 * only, which provides the radix-independent operations (add, sub, swap,
 * conversion to and from bytes) on top of FE_LIMBS / FE_WIDTH.
 *
 * Limb bounds (see x25519.c for who produces what):
 *   carried:  the output of fe_mul / fe_sq / fe_mul_small / fe_frombytes:
 *             every limb < 2^51, except limb 1 < 2^51 + 2^16;
 *   inputs of fe_mul / fe_sq / fe_mul_small: every limb < 2^53 (x25519.c
 *             feeds them carried values, sums of two carried values, and
 *             differences f + 2p - g of carried values, all below 2^52.6).
 * With inputs below 2^53, 19 g_j < 2^57.3 fits a 64-bit word, each of the
 * five 128-bit column sums stays below 5 * 2^53 * 2^57.3 < 2^113, and so
 * every carry (the column >> 51) is below 2^62 and fits a 64-bit word.
 */
#ifndef AGENT_X25519_FE_5X51_H
#define AGENT_X25519_FE_5X51_H

#include <stdint.h>

typedef uint64_t limb;
typedef unsigned __int128 dlimb;

#define FE_LIMBS 5
#define FE_WIDTH(i) 51
#define FE_MASK51 ((UINT64_C(1) << 51) - 1)

typedef limb fe[FE_LIMBS];

/* fe_mul and fe_sq are called from a dozen places (ladder, inversion): one
 * out-of-line copy each keeps the code at a few KB for the cost of a call. */
#if defined(__GNUC__)
#define FE_OUTLINE __attribute__((noinline))
#else
#define FE_OUTLINE
#endif

/* h = (h0..h4) + c 2^255, with h0..h4 below 2^51: the carry c out of limb 4
 * (weight 2^255 = 19 mod p) wraps into limb 0 times 19, computed in 128 bits
 * (19 times a carry below 2^62 needs 67), and limb 0 carries once more into
 * limb 1 (less than 2^16). */
static inline void fe_carry_top(fe h, limb h0, limb h1, limb h2, limb h3, limb h4, limb c)
{
    dlimb w = (dlimb) c * 19 + h0;

    h[0] = (limb) w & FE_MASK51;
    h[1] = h1 + (limb) (w >> 51);
    h[2] = h2;
    h[3] = h3;
    h[4] = h4;
}

/* h = f g. h may be f or g: everything is read before h is written.
 * Column k collects f_i g_j with i + j = k, and 19 f_i g_j with i + j = k + 5
 * (2^255 = 19 mod p). The columns are summed one after the other, each with
 * the carry of the previous one, so that only one 128-bit sum is live at a
 * time (fewer register spills on x86_64). */
static FE_OUTLINE void fe_mul(fe h, const fe f, const fe g)
{
    limb f0 = f[0], f1 = f[1], f2 = f[2], f3 = f[3], f4 = f[4];
    limb g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3], g4 = g[4];
    limb g1_19 = 19 * g1, g2_19 = 19 * g2, g3_19 = 19 * g3, g4_19 = 19 * g4;
    limb h0, h1, h2, h3, h4;
    dlimb r;

    r = (dlimb) f0 * g0 + (dlimb) f1 * g4_19 + (dlimb) f2 * g3_19 + (dlimb) f3 * g2_19 + (dlimb) f4 * g1_19;
    h0 = (limb) r & FE_MASK51;
    r = (r >> 51) + (dlimb) f0 * g1 + (dlimb) f1 * g0 + (dlimb) f2 * g4_19 + (dlimb) f3 * g3_19 + (dlimb) f4 * g2_19;
    h1 = (limb) r & FE_MASK51;
    r = (r >> 51) + (dlimb) f0 * g2 + (dlimb) f1 * g1 + (dlimb) f2 * g0 + (dlimb) f3 * g4_19 + (dlimb) f4 * g3_19;
    h2 = (limb) r & FE_MASK51;
    r = (r >> 51) + (dlimb) f0 * g3 + (dlimb) f1 * g2 + (dlimb) f2 * g1 + (dlimb) f3 * g0 + (dlimb) f4 * g4_19;
    h3 = (limb) r & FE_MASK51;
    r = (r >> 51) + (dlimb) f0 * g4 + (dlimb) f1 * g3 + (dlimb) f2 * g2 + (dlimb) f3 * g1 + (dlimb) f4 * g0;
    h4 = (limb) r & FE_MASK51;
    fe_carry_top(h, h0, h1, h2, h3, h4, (limb) (r >> 51));
}

/* h = f^2: the 25 products of fe_mul fold into 15 by symmetry. */
static FE_OUTLINE void fe_sq(fe h, const fe f)
{
    limb f0 = f[0], f1 = f[1], f2 = f[2], f3 = f[3], f4 = f[4];
    limb f0_2 = 2 * f0, f1_2 = 2 * f1, f2_2 = 2 * f2, f3_2 = 2 * f3;
    limb f3_19 = 19 * f3, f4_19 = 19 * f4;
    limb h0, h1, h2, h3, h4;
    dlimb r;

    r = (dlimb) f0 * f0 + (dlimb) f1_2 * f4_19 + (dlimb) f2_2 * f3_19;
    h0 = (limb) r & FE_MASK51;
    r = (r >> 51) + (dlimb) f0_2 * f1 + (dlimb) f2_2 * f4_19 + (dlimb) f3 * f3_19;
    h1 = (limb) r & FE_MASK51;
    r = (r >> 51) + (dlimb) f0_2 * f2 + (dlimb) f1 * f1 + (dlimb) f3_2 * f4_19;
    h2 = (limb) r & FE_MASK51;
    r = (r >> 51) + (dlimb) f0_2 * f3 + (dlimb) f1_2 * f2 + (dlimb) f4 * f4_19;
    h3 = (limb) r & FE_MASK51;
    r = (r >> 51) + (dlimb) f0_2 * f4 + (dlimb) f1_2 * f3 + (dlimb) f2 * f2;
    h4 = (limb) r & FE_MASK51;
    fe_carry_top(h, h0, h1, h2, h3, h4, (limb) (r >> 51));
}

/* h = f c for a small constant c < 2^20 (a24 = 121665 in the ladder).
 * h may be f. */
static inline void fe_mul_small(fe h, const fe f, uint32_t c)
{
    dlimb r = 0;
    int i;

    for (i = 0; i < FE_LIMBS; i++) {
        r = (r >> 51) + (dlimb) f[i] * c;
        h[i] = (limb) r & FE_MASK51;
    }
    fe_carry_top(h, h[0], h[1], h[2], h[3], h[4], (limb) (r >> 51));
}

#endif /* AGENT_X25519_FE_5X51_H */
