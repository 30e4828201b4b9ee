/*
 * Field arithmetic mod p = 2^255 - 19 for 32-bit targets (armv7): ten
 * unsigned limbs of alternately 26 and 25 bits ("radix 2^25.5"), limb i at bit
 * offset ceil(25.5 i) = 0, 26, 51, 77, 102, 128, 153, 179, 204, 230, and
 * 32 x 32 -> 64-bit products (one umull/umlal each on ARM). Included by
 * x25519.c only, which provides the radix-independent operations on top of
 * FE_LIMBS / FE_WIDTH.
 *
 * The product of limbs i and j has weight 2^(off(i) + off(j)); that is
 * 2^off(i+j) except when i and j are both odd, where it is twice that (two
 * half bits). Products reaching weight 2^255 or more wrap around times 19.
 *
 * Limb bounds (see x25519.c for who produces what):
 *   carried:  the output of fe_mul / fe_sq / fe_mul_small / fe_frombytes:
 *             limb i < 2^FE_WIDTH(i), except limb 1 < 2^25 + 2^17;
 *   inputs of fe_mul / fe_sq / fe_mul_small: even limbs < 3 * 2^26, odd
 *             limbs < 3 * 2^25 + 2^17 (x25519.c feeds them carried values,
 *             sums of two carried values, and differences f + 2p - g).
 * Then 19 g_j < 19 * 3 * 2^26 < 2^32 and 4 f_i < 2^32 fit a 32-bit word, and
 * every 64-bit column sum stays below 10 * (3 * 2^26) * (19 * 3 * 2^26) < 2^63.
 */
#ifndef AGENT_X25519_FE_10X25_H
#define AGENT_X25519_FE_10X25_H

#include <stdint.h>

typedef uint32_t limb;

#define FE_LIMBS 10
#define FE_WIDTH(i) (26 - ((i) & 1))

typedef limb fe[FE_LIMBS];

/* fe_mul and fe_sq are called from a dozen places (ladder, inversion): one
 * out-of-line copy each keeps the code at a few KB for the cost of a call. */
#if defined(__GNUC__)
#define FE_OUTLINE __attribute__((noinline))
#else
#define FE_OUTLINE
#endif

#if defined(__GNUC__) && !defined(__clang__)
#define FE_UNROLL _Pragma("GCC unroll 10")
#elif defined(__clang__)
#define FE_UNROLL _Pragma("clang loop unroll(full)")
#else
#define FE_UNROLL
#endif

/* h = the ten 64-bit column sums t, carried down to 26/25-bit limbs; the
 * carry out of limb 9 (weight 2^255 = 19 mod p) wraps into limb 0 times 19,
 * and limb 0 carries once more into limb 1. */
static inline void fe_carry_wide(fe h, uint64_t t[FE_LIMBS])
{
    uint64_t w;
    int i;

    FE_UNROLL
    for (i = 0; i < FE_LIMBS - 1; i++) {
        t[i + 1] += t[i] >> FE_WIDTH(i);
        h[i] = (limb) t[i] & ((1u << FE_WIDTH(i)) - 1);
    }
    h[9] = (limb) t[9] & ((1u << 25) - 1);
    w = (t[9] >> 25) * 19 + h[0];   /* < 2^39 * 19 + 2^26 */
    h[0] = (limb) w & ((1u << 26) - 1);
    h[1] += (limb) (w >> 26);       /* < 2^17 */
}

/* h = f g. h may be f or g: everything is read before h is written.
 * Column k is sum over i of a_i b_j with j = k - i mod 10, where a_i is f_i,
 * or 2 f_i when i and j are both odd, and b_j is g_j, or 19 g_j when
 * i + j >= 10 (that is, i > k). Fully unrolled, every choice is made at
 * compile time. */
static FE_OUTLINE void fe_mul(fe h, const fe f, const fe g)
{
    limb f2[FE_LIMBS], g19[FE_LIMBS];
    uint64_t t[FE_LIMBS];
    int i, k;

    FE_UNROLL
    for (i = 0; i < FE_LIMBS; i++) {
        f2[i] = 2 * f[i];
        g19[i] = 19 * g[i];
    }
    FE_UNROLL
    for (k = 0; k < FE_LIMBS; k++) {
        uint64_t acc = 0;
        FE_UNROLL
        for (i = 0; i < FE_LIMBS; i++) {
            int j = (k - i + FE_LIMBS) % FE_LIMBS;
            limb a = (i & j & 1) ? f2[i] : f[i];
            limb b = i > k ? g19[j] : g[j];
            acc += (uint64_t) a * b;
        }
        t[k] = acc;
    }
    fe_carry_wide(h, t);
}

/* h = f^2: the 100 products of fe_mul fold into 55 by symmetry; the pair
 * (i, j), i < j, counts twice. The left factor takes the 2s (at most
 * 4 f_i < 2^32), the right one the 19. */
static FE_OUTLINE void fe_sq(fe h, const fe f)
{
    limb f19[FE_LIMBS];
    uint64_t t[FE_LIMBS];
    int i, k;

    FE_UNROLL
    for (i = 0; i < FE_LIMBS; i++) {
        f19[i] = 19 * f[i];
    }
    FE_UNROLL
    for (k = 0; k < FE_LIMBS; k++) {
        uint64_t acc = 0;
        FE_UNROLL
        for (i = 0; i < FE_LIMBS; i++) {
            int j = (k - i + FE_LIMBS) % FE_LIMBS;
            if (i <= j) {
                limb a = f[i] << ((i < j) + (i & j & 1));
                limb b = i > k ? f19[j] : f[j];
                acc += (uint64_t) a * b;
            }
        }
        t[k] = acc;
    }
    fe_carry_wide(h, t);
}

/* h = f c for a small constant c < 2^20 (a24 = 121665 in the ladder). */
static inline void fe_mul_small(fe h, const fe f, uint32_t c)
{
    uint64_t t[FE_LIMBS];
    int i;

    FE_UNROLL
    for (i = 0; i < FE_LIMBS; i++) {
        t[i] = (uint64_t) f[i] * c;
    }
    fe_carry_wide(h, t);
}

#endif /* AGENT_X25519_FE_10X25_H */
