/*
 * X25519 (RFC 7748): the Montgomery ladder on x coordinates of curve25519,
 * y^2 = x^3 + 486662 x^2 + x over GF(2^255 - 19). See README.md.
 *
 * The field arithmetic comes in two radices, chosen at compile time:
 * fe_5x51.h (5 x 51-bit limbs, 128-bit products) where the compiler has
 * unsigned __int128 (x86_64, aarch64), fe_10x25.h (10 x 25.5-bit limbs,
 * 64-bit products) elsewhere (armv7). -DAGENT_X25519_FE32 forces the second
 * one on a 64-bit target (the tests compare the two).
 *
 * Constant time: the scalar and u only ever flow through arithmetic (adds,
 * multiplies, shifts by constants, masks); the ladder's choice between the
 * two points is a masked swap; the inversion is a fixed chain of squarings
 * and multiplications; loops and memory indices depend on loop counters only.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "x25519.h"

#if defined(__SIZEOF_INT128__) && !defined(AGENT_X25519_FE32)
#include "fe_5x51.h"
#else
#include "fe_10x25.h"
#endif

#define FE_LIMB_MASK(i) (((limb) 1 << FE_WIDTH(i)) - 1)

/* Hides a value from the optimiser, so that it cannot turn masked
 * arithmetic on it back into a branch. */
#if defined(__GNUC__)
#define FE_BARRIER(x) __asm__("" : "+r"(x))
#else
#define FE_BARRIER(x) ((void) 0)
#endif

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = (volatile unsigned char *) p;

    while (n-- > 0) {
        *v++ = 0;
    }
}

/* --- radix-independent field operations ------------------------------------ */

static inline void fe_0(fe h)
{
    int i;

    for (i = 0; i < FE_LIMBS; i++) {
        h[i] = 0;
    }
}

static inline void fe_1(fe h)
{
    fe_0(h);
    h[0] = 1;
}

/* h = f + g, no carry: with carried inputs every limb stays below
 * 2^(width + 1) + 2^18 (see the bounds in the fe_*.h headers). */
static inline void fe_add(fe h, const fe f, const fe g)
{
    int i;

    for (i = 0; i < FE_LIMBS; i++) {
        h[i] = f[i] + g[i];
    }
}

/* h = f + 2p - g, no carry. g must be carried (every limb of 2p, 2^(w+1) - 2
 * or 2^(w0+1) - 38 for limb 0, is larger than a carried limb), so no limb goes
 * negative; with f carried too, limb i stays below 3 * 2^width + 2^17. */
static inline void fe_sub(fe h, const fe f, const fe g)
{
    int i;

    h[0] = f[0] + (2 * (FE_LIMB_MASK(0) - 18)) - g[0];
    for (i = 1; i < FE_LIMBS; i++) {
        h[i] = f[i] + 2 * FE_LIMB_MASK(i) - g[i];
    }
}

/* Swaps f and g if swap is 1, leaves them if it is 0, in the same time. */
static inline void fe_cswap(fe f, fe g, limb swap)
{
    limb mask = (limb) 0 - swap, x;
    int i;

    FE_BARRIER(mask);
    for (i = 0; i < FE_LIMBS; i++) {
        x = mask & (f[i] ^ g[i]);
        f[i] ^= x;
        g[i] ^= x;
    }
}

/* h = the 255-bit little-endian number in s; bit 255 is ignored (RFC 7748
 * section 5). Values from p to 2^255 - 1 are kept as they are: they are
 * congruent to 0..18 and every operation accepts them. */
static void fe_frombytes(fe h, const unsigned char s[32])
{
    uint64_t acc = 0;
    int i, bits = 0, k = 0;

    for (i = 0; i < FE_LIMBS; i++) {
        while (bits < FE_WIDTH(i)) {
            acc |= (uint64_t) s[k++] << bits;
            bits += 8;
        }
        h[i] = (limb) acc & FE_LIMB_MASK(i);
        acc >>= FE_WIDTH(i);
        bits -= FE_WIDTH(i);
    }
}

/* s = f fully reduced mod p, 32 bytes little-endian; f must be carried. */
static void fe_tobytes(unsigned char s[32], const fe f)
{
    limb t[FE_LIMBS], q;
    uint64_t acc = 0;
    int i, bits = 0, k = 0;

    /* One carry pass: every limb within its width, except limb 0, which may
     * exceed it by the 19 wrapped around from limb 9 (a carry of 0 or 1, as
     * only limb 1 of a carried value exceeds its width). The value is then
     * below 2^255 + 19 < 2p. */
    for (i = 0; i < FE_LIMBS; i++) {
        t[i] = f[i];
    }
    for (i = 0; i < FE_LIMBS - 1; i++) {
        t[i + 1] += t[i] >> FE_WIDTH(i);
        t[i] &= FE_LIMB_MASK(i);
    }
    q = t[FE_LIMBS - 1] >> FE_WIDTH(FE_LIMBS - 1);
    t[FE_LIMBS - 1] &= FE_LIMB_MASK(FE_LIMBS - 1);
    t[0] += 19 * q;

    /* q = 1 if t >= p, that is if t + 19 reaches 2^255: the carry of t + 19
     * rippled through the limbs without storing the sum. */
    q = (t[0] + 19) >> FE_WIDTH(0);
    for (i = 1; i < FE_LIMBS; i++) {
        q = (t[i] + q) >> FE_WIDTH(i);
    }

    /* t - q p = t + 19 q - q 2^255: add 19 q, carry, drop bit 255. */
    t[0] += 19 * q;
    for (i = 0; i < FE_LIMBS - 1; i++) {
        t[i + 1] += t[i] >> FE_WIDTH(i);
        t[i] &= FE_LIMB_MASK(i);
    }
    t[FE_LIMBS - 1] &= FE_LIMB_MASK(FE_LIMBS - 1);

    for (i = 0; i < FE_LIMBS; i++) {
        acc |= (uint64_t) t[i] << bits;
        bits += FE_WIDTH(i);
        while (bits >= 8) {
            s[k++] = (unsigned char) acc;
            acc >>= 8;
            bits -= 8;
        }
    }
    s[k] = (unsigned char) acc;   /* k = 31, the last 7 bits */
    wipe(t, sizeof(t));
}

/* h = f^(2^n): n squarings. */
static void fe_sqn(fe h, const fe f, int n)
{
    fe_sq(h, f);
    while (--n > 0) {
        fe_sq(h, h);
    }
}

/* h = 1/z = z^(p - 2) = z^(2^255 - 21) (Fermat; 0 gives 0), by a fixed
 * chain of 254 squarings and 11 multiplications. z^(2^k - 1) is built by
 * doubling k: z^(2^(a+b) - 1) = (z^(2^a - 1))^(2^b) z^(2^b - 1). */
static void fe_invert(fe h, const fe z)
{
    struct {
        fe z2, z9, z11, t, e5, e10, e20, e50, e100;
    } v;

    fe_sq(v.z2, z);                     /* z^2 */
    fe_sqn(v.t, v.z2, 2);               /* z^8 */
    fe_mul(v.z9, v.t, z);               /* z^9 */
    fe_mul(v.z11, v.z9, v.z2);          /* z^11 */
    fe_sq(v.t, v.z11);                  /* z^22 */
    fe_mul(v.e5, v.t, v.z9);            /* z^(2^5 - 1) = z^31 */
    fe_sqn(v.t, v.e5, 5);
    fe_mul(v.e10, v.t, v.e5);           /* z^(2^10 - 1) */
    fe_sqn(v.t, v.e10, 10);
    fe_mul(v.e20, v.t, v.e10);          /* z^(2^20 - 1) */
    fe_sqn(v.t, v.e20, 20);
    fe_mul(v.t, v.t, v.e20);            /* z^(2^40 - 1) */
    fe_sqn(v.t, v.t, 10);
    fe_mul(v.e50, v.t, v.e10);          /* z^(2^50 - 1) */
    fe_sqn(v.t, v.e50, 50);
    fe_mul(v.e100, v.t, v.e50);         /* z^(2^100 - 1) */
    fe_sqn(v.t, v.e100, 100);
    fe_mul(v.t, v.t, v.e100);           /* z^(2^200 - 1) */
    fe_sqn(v.t, v.t, 50);
    fe_mul(v.t, v.t, v.e50);            /* z^(2^250 - 1) */
    fe_sqn(v.t, v.t, 5);                /* z^(2^255 - 32) */
    fe_mul(h, v.t, v.z11);              /* z^(2^255 - 21) */
    wipe(&v, sizeof(v));
}

/* --- the ladder --------------------------------------------------------------- */

struct ladder {
    fe x2, z2, x3, z3;                    /* (x2 : z2) = k u, (x3 : z3) = (k + 1) u */
    fe a, b, c, d, aa, bb, e, da, cb;     /* temporaries, wiped with the rest */
    unsigned char k[32];                  /* the clamped scalar */
};

/* Returns X25519(scalar, u) in s->x2 / s->z2 (projective). */
static void ladder(struct ladder *s, const unsigned char scalar[32], const fe x1)
{
    limb swap = 0, bit;
    int t;

    memcpy(s->k, scalar, 32);
    s->k[0] &= 248;
    s->k[31] &= 127;
    s->k[31] |= 64;

    fe_1(s->x2);
    fe_0(s->z2);
    memcpy(s->x3, x1, sizeof(fe));
    fe_1(s->z3);

    /* RFC 7748 section 5: bit t of k, from 254 down to 0 (bit 255 is 0). The
     * swap is deferred: the points are swapped when bit t differs from bit
     * t + 1, and back once after the loop. */
    for (t = 254; t >= 0; t--) {
        bit = (s->k[t >> 3] >> (t & 7)) & 1;
        swap ^= bit;
        fe_cswap(s->x2, s->x3, swap);
        fe_cswap(s->z2, s->z3, swap);
        swap = bit;

        /* Differential addition and doubling (the RFC's formulas, with
         * a24 = (486662 - 2) / 4 = 121665):
         *   x3 = (DA + CB)^2, z3 = x1 (DA - CB)^2, x2 = AA BB,
         *   z2 = E (AA + a24 E). */
        fe_add(s->a, s->x2, s->z2);
        fe_sub(s->b, s->x2, s->z2);
        fe_add(s->c, s->x3, s->z3);
        fe_sub(s->d, s->x3, s->z3);
        fe_sq(s->aa, s->a);
        fe_sq(s->bb, s->b);
        fe_mul(s->da, s->d, s->a);
        fe_mul(s->cb, s->c, s->b);
        fe_sub(s->e, s->aa, s->bb);
        fe_add(s->x3, s->da, s->cb);
        fe_sq(s->x3, s->x3);
        fe_sub(s->z3, s->da, s->cb);
        fe_sq(s->z3, s->z3);
        fe_mul(s->z3, s->z3, x1);
        fe_mul(s->x2, s->aa, s->bb);
        fe_mul_small(s->z2, s->e, 121665);
        fe_add(s->z2, s->z2, s->aa);
        fe_mul(s->z2, s->z2, s->e);
    }
    fe_cswap(s->x2, s->x3, swap);
    fe_cswap(s->z2, s->z3, swap);
}

static int x25519(unsigned char out[32], const unsigned char scalar[32], const fe x1)
{
    struct ladder s;
    unsigned char r[32];
    unsigned acc = 0;
    int i;

    ladder(&s, scalar, x1);
    fe_invert(s.a, s.z2);          /* z2 = 0 (small-order u) gives 0 */
    fe_mul(s.x2, s.x2, s.a);
    fe_tobytes(r, s.x2);
    wipe(&s, sizeof(s));

    for (i = 0; i < 32; i++) {
        acc |= r[i];
    }
    memcpy(out, r, 32);
    wipe(r, sizeof(r));
    /* -1 if all 32 bytes are zero, else 0, computed without a branch */
    return -(int) (((acc - 1) >> 8) & 1);
}

int agent_x25519(unsigned char out[32], const unsigned char scalar[32],
                 const unsigned char u[32])
{
    fe x1;

    fe_frombytes(x1, u);
    return x25519(out, scalar, x1);
}

int agent_x25519_base(unsigned char out[32], const unsigned char scalar[32])
{
    fe x1;

    fe_0(x1);
    x1[0] = 9;
    return x25519(out, scalar, x1);
}
