/*
 * NIST P-256 (secp256r1) ECDH and ECDSA for agent: see p256.h and README.md.
 *
 * Field elements and scalars: little-endian arrays of limbs, 4 x 64 bits
 * (unsigned __int128 products) where the compiler has __int128, 8 x 32 bits
 * (uint64_t products) otherwise or with -DP256_LIMB32. Both radices use the
 * same Montgomery representation (R = 2^256), so one table serves both.
 * Every value is kept fully reduced ([0, m)), so equality is limb equality.
 *
 * Points: Jacobian (X, Y, Z) with x = X/Z^2, y = Y/Z^3, coordinates in
 * Montgomery form; Z = 0 is the point at infinity. Curve a = -3.
 *
 * Secret scalars (private keys, nonces) go through the constant-time paths
 * only: fixed-base comb (mul_base) and fixed-window variable base (mul_var),
 * table entries read by a full scan with masks, no branch and no address that
 * depends on a secret. Verification (public data only) is variable time.
 */
#include <stdint.h>
#include <string.h>

#include "p256.h"

/* The constant-time test (test/ct_p256.c, under valgrind's memcheck) builds
 * this file with -DP256_CT_VALGRIND: secrets are then "undefined" memory,
 * and the values that are public by design (a validity verdict, an output)
 * are declared defined here, where they become public. */
#ifdef P256_CT_VALGRIND
#include "memcheck.h"
#define DECLASSIFY(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))
#else
#define DECLASSIFY(p, n) ((void) 0)
#endif

#if defined(__SIZEOF_INT128__) && !defined(P256_LIMB32)
typedef uint64_t limb;
typedef unsigned __int128 dlimb;
#define LB 64
#define NL 4
#define C64(x) ((limb) (x))
#else
typedef uint32_t limb;
typedef uint64_t dlimb;
#define LB 32
#define NL 8
#define C64(x) ((limb) (x)), ((limb) ((x) >> 32))
#endif

typedef limb fe[NL];

typedef struct {
    fe x, y, z;
} jac;

/* P256_SMALL (the default with -Os on ARM): the size of the object first.
 * The inner loop of the Montgomery multiplication stays unrolled, the other
 * limb loops do not, and multiplication mod p and mod n share one function
 * (README.md: the trade-off measured). x86_64 (assembly) is built for speed. */
#ifndef P256_SMALL
#if defined(__OPTIMIZE_SIZE__) && !defined(__x86_64__)
#define P256_SMALL 1
#else
#define P256_SMALL 0
#endif
#endif

#if defined(__GNUC__)
/* limb loops fully unrolled (gcc does not at -O2 nor -Os otherwise) */
#define HOT_UNROLL _Pragma("GCC unroll 16")
#define INLINE static inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))
#define MAYBE_UNUSED __attribute__((unused))
#else
#define MAYBE_UNUSED
#define HOT_UNROLL
#define INLINE static inline
#define NOINLINE
#endif
#if P256_SMALL
#define UNROLL
#define HELPER static __attribute__((unused))
#else
#define UNROLL HOT_UNROLL
#define HELPER INLINE
#endif

static const fe P = { C64(0xffffffffffffffffULL), C64(0x00000000ffffffffULL),
                      C64(0x0000000000000000ULL), C64(0xffffffff00000001ULL) };
static const fe N = { C64(0xf3b9cac2fc632551ULL), C64(0xbce6faada7179e84ULL),
                      C64(0xffffffffffffffffULL), C64(0xffffffff00000000ULL) };
/* -N^-1 mod 2^LB (-P^-1 is 1 in both radices) */
#define N0 ((limb) 0xccd1c8aaee00bc4fULL)
static const fe RR_P = { C64(0x0000000000000003ULL), C64(0xfffffffbffffffffULL),
                         C64(0xfffffffffffffffeULL), C64(0x00000004fffffffdULL) };
static const fe RR_N = { C64(0x83244c95be79eea2ULL), C64(0x4699799c49bd6fa6ULL),
                         C64(0x2845b2392b6bec59ULL), C64(0x66e12d94f3d95620ULL) };
static const fe B_M = { C64(0xd89cdf6229c4bddfULL), C64(0xacf005cd78843090ULL),
                        C64(0xe5a220abf7212ed6ULL), C64(0xdc30061d04874834ULL) };
static const fe ONE_M = { C64(0x0000000000000001ULL), C64(0xffffffff00000000ULL),
                          C64(0xffffffffffffffffULL), C64(0x00000000fffffffeULL) };
static MAYBE_UNUSED const fe ZERO_FE = { 0 };
/* p - n: x(R) in [n, p) also matches r = x(R) - n */
static const fe P_MINUS_N = { C64(0x0c46353d039cdaaeULL), C64(0x4319055358e8617bULL),
                              C64(0x0000000000000000ULL), C64(0x0000000000000000ULL) };

/* The fixed base (k G: key generation, signing; u1 G in verification) by one
 * of two precomputed tables of multiples of G (affine, Montgomery form,
 * written by test/gen_table.c from the curve's constants):
 *
 * P256_WTABLE=1 (default but on aarch64 at -Os: the release's aarch64 binary
 * has no room for it): signed 5-bit windows, two per 10-bit
 * block: WTAB[b][m - 1] = m 2^(10 b) G for the 26 blocks b and m = 1..16
 * (26,624 bytes, p256_wtable.h); k G = 5 doublings and 52 mixed additions.
 * P256_WTABLE=0: Lim-Lee comb, 5 teeth 52 bits apart (5 x 52 >= 256), 52
 * columns: COMB[d - 1] = sum over the set bits j of d (1..31) of 2^(52 j) G
 * (1,984 bytes, p256_table.h); k G = 52 doublings and 52 mixed additions. */
#ifndef P256_WTABLE
#if defined(__aarch64__) && defined(__OPTIMIZE_SIZE__)
#define P256_WTABLE 0
#else
#define P256_WTABLE 1
#endif
#endif
#define COMB_TEETH 5
#define COMB_COLS 52
#define WT_BLOCKS 26
#define WT_WINDOWS 52
#ifndef P256_GEN_TABLE
#if P256_WTABLE
/* one point per line: x then y, 4 x 64 bits each, least significant first */
#define WT_P(x0, x1, x2, x3, y0, y1, y2, y3) \
    { { C64(x0##ULL), C64(x1##ULL), C64(x2##ULL), C64(x3##ULL) }, \
      { C64(y0##ULL), C64(y1##ULL), C64(y2##ULL), C64(y3##ULL) } }
static const limb WTAB[WT_BLOCKS][16][2][NL] = {
#include "p256_wtable.h"
};
#undef WT_P
#else
static const limb COMB[31][2][NL] = {
#include "p256_table.h"
};
#endif
#endif

/* ------------------------------------------------------------------------ */
/* Multiprecision helpers, constant time                                     */

/* Secrets wiped before return. With gcc/clang (but P256_SMALL): memset,
 * then an empty asm that takes the pointer and clobbers memory, so the
 * stores cannot be dropped as dead (word stores instead of about 5
 * instructions a byte); the volatile byte loop is 12 bytes smaller. */
static NOINLINE void zeroize(void *p, size_t n)
{
#if defined(__GNUC__) && !P256_SMALL
    memset(p, 0, n);
    __asm__ __volatile__("" : : "r"(p) : "memory");
#else
    volatile unsigned char *v = (volatile unsigned char *) p;
    while (n--) {
        *v++ = 0;
    }
#endif
}

/* All ones if x == 0, else 0, without a branch. */
HELPER limb mask_zero(limb x)
{
    return ((limb) ((~x & (x - 1)) >> (LB - 1))) * (limb) -1;
}

HELPER limb fe_is_zero(const fe a)
{
    limb acc = 0;
    UNROLL
    for (int i = 0; i < NL; i++) {
        acc |= a[i];
    }
    return mask_zero(acc);
}

HELPER limb fe_eq(const fe a, const fe b)
{
    limb acc = 0;
    UNROLL
    for (int i = 0; i < NL; i++) {
        acc |= a[i] ^ b[i];
    }
    return mask_zero(acc);
}

/* z = mask ? a : z */
HELPER void fe_cmov(fe z, const fe a, limb mask)
{
    UNROLL
    for (int i = 0; i < NL; i++) {
        z[i] ^= mask & (z[i] ^ a[i]);
    }
}

HELPER limb mp_add(limb *z, const limb *a, const limb *b)
{
    dlimb c = 0;
    UNROLL
    for (int i = 0; i < NL; i++) {
        c += (dlimb) a[i] + b[i];
        z[i] = (limb) c;
        c >>= LB;
    }
    return (limb) c;
}

/* z = a - b, returns the borrow (0 or 1) */
HELPER limb mp_sub(limb *z, const limb *a, const limb *b)
{
    dlimb c = 0;
    UNROLL
    for (int i = 0; i < NL; i++) {
        c = (dlimb) a[i] - b[i] - c;
        z[i] = (limb) c;
        c = (c >> LB) & 1;
    }
    return (limb) c;
}

/* z = a + b mod m, for a, b < m */
HELPER void mod_add(fe z, const fe a, const fe b, const fe m)
{
    fe t;
    limb c = mp_add(z, a, b);
    limb bo = mp_sub(t, z, m);
    /* keep z (no subtraction) iff the subtraction borrowed and the sum did
     * not carry */
    fe_cmov(z, t, ((bo & ~c) & 1) - 1);
}

/* z = a - b mod m, for a, b < m */
HELPER void mod_sub(fe z, const fe a, const fe b, const fe m)
{
    fe t;
    limb bo = mp_sub(z, a, b);
    limb mask = (limb) 0 - bo;
    UNROLL
    for (int i = 0; i < NL; i++) {
        t[i] = m[i] & mask;
    }
    mp_add(z, z, t);
}

/* Montgomery multiplication (CIOS): z = a b R^-1 mod m, for a, b < m. */
INLINE void mont_mul(fe z, const fe a, const fe b, const fe m, limb m0)
{
    limb t[NL + 2];
    int i, j;

    HOT_UNROLL
    for (i = 0; i < NL + 2; i++) {
        t[i] = 0;
    }
#if !P256_SMALL
    HOT_UNROLL
#endif
    for (i = 0; i < NL; i++) {
        dlimb c = 0;
        HOT_UNROLL
        for (j = 0; j < NL; j++) {
            c += (dlimb) a[j] * b[i] + t[j];
            t[j] = (limb) c;
            c >>= LB;
        }
        c += t[NL];
        t[NL] = (limb) c;
        t[NL + 1] = (limb) (c >> LB);

        limb q = t[0] * m0;
        c = (dlimb) q * m[0] + t[0];
        c >>= LB;
        HOT_UNROLL
        for (j = 1; j < NL; j++) {
            c += (dlimb) q * m[j] + t[j];
            t[j - 1] = (limb) c;
            c >>= LB;
        }
        c += t[NL];
        t[NL - 1] = (limb) c;
        t[NL] = t[NL + 1] + (limb) (c >> LB);
    }
    /* t < 2m: subtract m unless that borrows (and t[NL] is 0) */
    limb bo = mp_sub(z, t, m);
    fe_cmov(z, t, (limb) 0 - (bo & ~t[NL] & 1));
}

/* Field mod p and scalars mod n. */
#if LB == 64 && defined(__x86_64__) && defined(__GNUC__) && !defined(P256_NO_ASM)
/* x86_64 (baseline: mul, adc, cmov; no BMI2/ADX): the same algorithms as the
 * C below, which gcc compiles to about three times as many instructions.
 * Montgomery multiplication mod p interleaves each row of the product with
 * one reduction step (q = the low limb; q p = q 2^256 - q 2^224 + q 2^192 +
 * q 2^96 - q: add q 2^32 at limb 1 and q (2^64 - 2^32 + 1) at limb 3). The
 * final subtraction of p, in fe_add too, is selected by cmov. Montgomery
 * multiplication mod n (sc_mul) is the generic one (CIOS, q = t0 n0).
 * Squaring: 6 cross products doubled plus 4 squares, then the same four
 * reduction steps on the low half, and the high half added. The functions
 * are local symbols of this object (no .globl): two builds of p256.c can be
 * linked together (the tests do). */
void agent_p256_x64_mul(limb *z, const limb *a, const limb *b);
void agent_p256_x64_add(limb *z, const limb *a, const limb *b);
void agent_p256_x64_sub(limb *z, const limb *a, const limb *b);
void agent_p256_x64_scmul(limb *z, const limb *a, const limb *b);
void agent_p256_x64_sqr(limb *z, const limb *a);
void agent_p256_x64_mulsmall(limb *z, const limb *a, limb c);
__asm__(
    ".text\n"
    ".type agent_p256_x64_mul, @function\n"
    ".p2align 4\n"
    "agent_p256_x64_mul:\n"
    "\tpush %rbx\n"
    "\tpush %rbp\n"
    "\tpush %r12\n"
    "\tpush %r13\n"
    "\tpush %r14\n"
    "\tpush %r15\n"
    "\tmov %rdx, %rbx\n"
    "\tmovabs $0xffffffff00000001, %r15\n"
    "\tmov 0(%rbx), %rcx\n"
    "\tmov (%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tmov %rax, %r8\n"
    "\tmov %rdx, %r9\n"
    "\tmov 8(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r9\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %r10\n"
    "\tmov 16(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r10\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %r11\n"
    "\tmov 24(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %r12\n"
    "\txor %r13, %r13\n"
    "\tmov %r8, %rax\n"
    "\tmul %r15\n"
    "\tmov %r8, %rcx\n"
    "\tshl $32, %rcx\n"
    "\tmov %r8, %rbp\n"
    "\tshr $32, %rbp\n"
    "\tadd %rcx, %r9\n"
    "\tadc %rbp, %r10\n"
    "\tadc %rax, %r11\n"
    "\tadc %rdx, %r12\n"
    "\tadc $0, %r13\n"
    "\tmov 8(%rbx), %rcx\n"
    "\tmov (%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r9\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 8(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r10\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r10\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 16(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r11\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 24(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r12\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r12\n"
    "\tadc $0, %rdx\n"
    "\tmov $0, %r8\n"
    "\tadd %rdx, %r13\n"
    "\tadc $0, %r8\n"
    "\tmov %r9, %rax\n"
    "\tmul %r15\n"
    "\tmov %r9, %rcx\n"
    "\tshl $32, %rcx\n"
    "\tmov %r9, %rbp\n"
    "\tshr $32, %rbp\n"
    "\tadd %rcx, %r10\n"
    "\tadc %rbp, %r11\n"
    "\tadc %rax, %r12\n"
    "\tadc %rdx, %r13\n"
    "\tadc $0, %r8\n"
    "\tmov 16(%rbx), %rcx\n"
    "\tmov (%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r10\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 8(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r11\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 16(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r12\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r12\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 24(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r13\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r13\n"
    "\tadc $0, %rdx\n"
    "\tmov $0, %r9\n"
    "\tadd %rdx, %r8\n"
    "\tadc $0, %r9\n"
    "\tmov %r10, %rax\n"
    "\tmul %r15\n"
    "\tmov %r10, %rcx\n"
    "\tshl $32, %rcx\n"
    "\tmov %r10, %rbp\n"
    "\tshr $32, %rbp\n"
    "\tadd %rcx, %r11\n"
    "\tadc %rbp, %r12\n"
    "\tadc %rax, %r13\n"
    "\tadc %rdx, %r8\n"
    "\tadc $0, %r9\n"
    "\tmov 24(%rbx), %rcx\n"
    "\tmov (%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 8(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r12\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r12\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 16(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r13\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r13\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 24(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r8\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r8\n"
    "\tadc $0, %rdx\n"
    "\tmov $0, %r10\n"
    "\tadd %rdx, %r9\n"
    "\tadc $0, %r10\n"
    "\tmov %r11, %rax\n"
    "\tmul %r15\n"
    "\tmov %r11, %rcx\n"
    "\tshl $32, %rcx\n"
    "\tmov %r11, %rbp\n"
    "\tshr $32, %rbp\n"
    "\tadd %rcx, %r12\n"
    "\tadc %rbp, %r13\n"
    "\tadc %rax, %r8\n"
    "\tadc %rdx, %r9\n"
    "\tadc $0, %r10\n"
    "\tmov $0xffffffff, %r14\n"
    "\tmov %r12, %rax\n"
    "\tmov %r13, %rdx\n"
    "\tmov %r8, %rcx\n"
    "\tmov %r9, %rbp\n"
    "\tsub $-1, %rax\n"
    "\tsbb %r14, %rdx\n"
    "\tsbb $0, %rcx\n"
    "\tsbb %r15, %rbp\n"
    "\tsbb $0, %r10\n"
    "\tcmovc %r12, %rax\n"
    "\tcmovc %r13, %rdx\n"
    "\tcmovc %r8, %rcx\n"
    "\tcmovc %r9, %rbp\n"
    "\tmov %rax, (%rdi)\n"
    "\tmov %rdx, 8(%rdi)\n"
    "\tmov %rcx, 16(%rdi)\n"
    "\tmov %rbp, 24(%rdi)\n"
    "\tpop %r15\n"
    "\tpop %r14\n"
    "\tpop %r13\n"
    "\tpop %r12\n"
    "\tpop %rbp\n"
    "\tpop %rbx\n"
    "\tret\n"
    ".size agent_p256_x64_mul, .-agent_p256_x64_mul\n"
    ".type agent_p256_x64_add, @function\n"
    ".p2align 4\n"
    "agent_p256_x64_add:\n"
    "\tmov (%rsi), %rax\n"
    "\tmov 8(%rsi), %rcx\n"
    "\tmov 16(%rsi), %r8\n"
    "\tmov 24(%rsi), %r9\n"
    "\txor %r10d, %r10d\n"
    "\tadd (%rdx), %rax\n"
    "\tadc 8(%rdx), %rcx\n"
    "\tadc 16(%rdx), %r8\n"
    "\tadc 24(%rdx), %r9\n"
    "\tadc $0, %r10\n"
    "\tmov %rax, (%rdi)\n"
    "\tmov %rcx, 8(%rdi)\n"
    "\tmov %r8, 16(%rdi)\n"
    "\tmov %r9, 24(%rdi)\n"
    "\tmov $0xffffffff, %r11\n"
    "\tmovabs $0xffffffff00000001, %rdx\n"
    "\tsub $-1, %rax\n"
    "\tsbb %r11, %rcx\n"
    "\tsbb $0, %r8\n"
    "\tsbb %rdx, %r9\n"
    "\tsbb $0, %r10\n"
    "\tcmovc (%rdi), %rax\n"
    "\tcmovc 8(%rdi), %rcx\n"
    "\tcmovc 16(%rdi), %r8\n"
    "\tcmovc 24(%rdi), %r9\n"
    "\tmov %rax, (%rdi)\n"
    "\tmov %rcx, 8(%rdi)\n"
    "\tmov %r8, 16(%rdi)\n"
    "\tmov %r9, 24(%rdi)\n"
    "\tret\n"
    ".size agent_p256_x64_add, .-agent_p256_x64_add\n"
    ".type agent_p256_x64_mulsmall, @function\n"
    ".p2align 4\n"
    "agent_p256_x64_mulsmall:\n"
    "\tmov %rdx, %rcx\n"
    "\tmov (%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tmov %rax, %r8\n"
    "\tmov %rdx, %r9\n"
    "\tmov 8(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %r9, %rax\n"
    "\tadc $0, %rdx\n"
    "\tmov %rax, %r9\n"
    "\tmov %rdx, %r10\n"
    "\tmov 16(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %r10, %rax\n"
    "\tadc $0, %rdx\n"
    "\tmov %rax, %r10\n"
    "\tmov %rdx, %r11\n"
    "\tmov 24(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %r11, %rax\n"
    "\tadc $0, %rdx\n"
    "\tmov %rax, %r11\n"
    "\tmov %rdx, %rcx\n"
    "\tshl $32, %rcx\n"
    "\tmov %rcx, %rsi\n"
    "\tsub %rdx, %rsi\n"
    "\txor %eax, %eax\n"
    "\tadd %rdx, %r8\n"
    "\tadc $0, %r9\n"
    "\tadc $0, %r10\n"
    "\tadc %rsi, %r11\n"
    "\tadc $0, %rax\n"
    "\tsub %rcx, %r9\n"
    "\tsbb $0, %r10\n"
    "\tsbb $0, %r11\n"
    "\tsbb $0, %rax\n"
    "\tmov %r8, (%rdi)\n"
    "\tmov %r9, 8(%rdi)\n"
    "\tmov %r10, 16(%rdi)\n"
    "\tmov %r11, 24(%rdi)\n"
    "\tmov $0xffffffff, %rcx\n"
    "\tmovabs $0xffffffff00000001, %rdx\n"
    "\tsub $-1, %r8\n"
    "\tsbb %rcx, %r9\n"
    "\tsbb $0, %r10\n"
    "\tsbb %rdx, %r11\n"
    "\tsbb $0, %rax\n"
    "\tcmovc (%rdi), %r8\n"
    "\tcmovc 8(%rdi), %r9\n"
    "\tcmovc 16(%rdi), %r10\n"
    "\tcmovc 24(%rdi), %r11\n"
    "\tmov %r8, (%rdi)\n"
    "\tmov %r9, 8(%rdi)\n"
    "\tmov %r10, 16(%rdi)\n"
    "\tmov %r11, 24(%rdi)\n"
    "\tret\n"
    ".size agent_p256_x64_mulsmall, .-agent_p256_x64_mulsmall\n"
    ".type agent_p256_x64_sub, @function\n"
    ".p2align 4\n"
    "agent_p256_x64_sub:\n"
    "\tmov (%rsi), %rax\n"
    "\tmov 8(%rsi), %rcx\n"
    "\tmov 16(%rsi), %r8\n"
    "\tmov 24(%rsi), %r9\n"
    "\tsub (%rdx), %rax\n"
    "\tsbb 8(%rdx), %rcx\n"
    "\tsbb 16(%rdx), %r8\n"
    "\tsbb 24(%rdx), %r9\n"
    "\tsbb %r10, %r10\n"
    "\tmov %r10, %r11\n"
    "\tshr $32, %r11\n"
    "\tmovabs $0xffffffff00000001, %rdx\n"
    "\tand %r10, %rdx\n"
    "\tadd %r10, %rax\n"
    "\tadc %r11, %rcx\n"
    "\tadc $0, %r8\n"
    "\tadc %rdx, %r9\n"
    "\tmov %rax, (%rdi)\n"
    "\tmov %rcx, 8(%rdi)\n"
    "\tmov %r8, 16(%rdi)\n"
    "\tmov %r9, 24(%rdi)\n"
    "\tret\n"
    ".size agent_p256_x64_sub, .-agent_p256_x64_sub\n"
    ".type agent_p256_x64_sqr, @function\n"
    ".p2align 4\n"
    "agent_p256_x64_sqr:\n"
    "\tpush %rbx\n"
    "\tpush %rbp\n"
    "\tpush %r12\n"
    "\tpush %r13\n"
    "\tpush %r14\n"
    "\tpush %r15\n"
    "\tmov (%rsi), %rcx\n"
    "\tmov 8(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tmov %rax, %r9\n"
    "\tmov %rdx, %r10\n"
    "\tmov 16(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r10\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %r11\n"
    "\tmov 24(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %r12\n"
    "\tmov 8(%rsi), %rcx\n"
    "\tmov 16(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbx\n"
    "\tmov 24(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbx, %r12\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r12\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %r13\n"
    "\tmov 16(%rsi), %rcx\n"
    "\tmov 24(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r13\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %r14\n"
    "\txor %r15d, %r15d\n"
    "\tadd %r9, %r9\n"
    "\tadc %r10, %r10\n"
    "\tadc %r11, %r11\n"
    "\tadc %r12, %r12\n"
    "\tadc %r13, %r13\n"
    "\tadc %r14, %r14\n"
    "\tadc $0, %r15\n"
    "\tmov (%rsi), %rax\n"
    "\tmul %rax\n"
    "\tmov %rax, %r8\n"
    "\tmov %rdx, %rcx\n"
    "\tmov 8(%rsi), %rax\n"
    "\tmul %rax\n"
    "\tmov %rax, %rbx\n"
    "\tmov %rdx, %rbp\n"
    "\tadd %rcx, %r9\n"
    "\tadc %rbx, %r10\n"
    "\tadc %rbp, %r11\n"
    "\tsbb %rcx, %rcx\n"
    "\tmov 16(%rsi), %rax\n"
    "\tmul %rax\n"
    "\tmov %rax, %rbx\n"
    "\tmov %rdx, %rbp\n"
    "\tneg %rcx\n"
    "\tadc %rbx, %r12\n"
    "\tadc %rbp, %r13\n"
    "\tsbb %rcx, %rcx\n"
    "\tmov 24(%rsi), %rax\n"
    "\tmul %rax\n"
    "\tneg %rcx\n"
    "\tadc %rax, %r14\n"
    "\tadc %rdx, %r15\n"
    "\tmovabs $0xffffffff00000001, %rbx\n"
    "\tmov %r8, %rax\n"
    "\tmul %rbx\n"
    "\tmov %r8, %rcx\n"
    "\tshl $32, %rcx\n"
    "\tmov %r8, %rbp\n"
    "\tshr $32, %rbp\n"
    "\tadd %rcx, %r9\n"
    "\tadc %rbp, %r10\n"
    "\tadc %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %r8\n"
    "\tmov %r9, %rax\n"
    "\tmul %rbx\n"
    "\tmov %r9, %rcx\n"
    "\tshl $32, %rcx\n"
    "\tmov %r9, %rbp\n"
    "\tshr $32, %rbp\n"
    "\tadd %rcx, %r10\n"
    "\tadc %rbp, %r11\n"
    "\tadc %rax, %r8\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %r9\n"
    "\tmov %r10, %rax\n"
    "\tmul %rbx\n"
    "\tmov %r10, %rcx\n"
    "\tshl $32, %rcx\n"
    "\tmov %r10, %rbp\n"
    "\tshr $32, %rbp\n"
    "\tadd %rcx, %r11\n"
    "\tadc %rbp, %r8\n"
    "\tadc %rax, %r9\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %r10\n"
    "\tmov %r11, %rax\n"
    "\tmul %rbx\n"
    "\tmov %r11, %rcx\n"
    "\tshl $32, %rcx\n"
    "\tmov %r11, %rbp\n"
    "\tshr $32, %rbp\n"
    "\tadd %rcx, %r8\n"
    "\tadc %rbp, %r9\n"
    "\tadc %rax, %r10\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %r11\n"
    "\txor %ecx, %ecx\n"
    "\tadd %r12, %r8\n"
    "\tadc %r13, %r9\n"
    "\tadc %r14, %r10\n"
    "\tadc %r15, %r11\n"
    "\tadc $0, %rcx\n"
    "\tmov $0xffffffff, %r14\n"
    "\tmov %r8, %rax\n"
    "\tmov %r9, %rdx\n"
    "\tmov %r10, %r12\n"
    "\tmov %r11, %rbp\n"
    "\tsub $-1, %rax\n"
    "\tsbb %r14, %rdx\n"
    "\tsbb $0, %r12\n"
    "\tsbb %rbx, %rbp\n"
    "\tsbb $0, %rcx\n"
    "\tcmovc %r8, %rax\n"
    "\tcmovc %r9, %rdx\n"
    "\tcmovc %r10, %r12\n"
    "\tcmovc %r11, %rbp\n"
    "\tmov %rax, (%rdi)\n"
    "\tmov %rdx, 8(%rdi)\n"
    "\tmov %r12, 16(%rdi)\n"
    "\tmov %rbp, 24(%rdi)\n"
    "\tpop %r15\n"
    "\tpop %r14\n"
    "\tpop %r13\n"
    "\tpop %r12\n"
    "\tpop %rbp\n"
    "\tpop %rbx\n"
    "\tret\n"
    ".size agent_p256_x64_sqr, .-agent_p256_x64_sqr\n"
    ".type agent_p256_x64_scmul, @function\n"
    ".p2align 4\n"
    "agent_p256_x64_scmul:\n"
    "\tpush %rbx\n"
    "\tpush %rbp\n"
    "\tpush %r12\n"
    "\tpush %r13\n"
    "\tpush %r14\n"
    "\tpush %r15\n"
    "\tmov %rdx, %rbx\n"
    "\tmovabs $0xccd1c8aaee00bc4f, %r15\n"
    "\tmov 0(%rbx), %rcx\n"
    "\tmov (%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tmov %rax, %r8\n"
    "\tmov %rdx, %r9\n"
    "\tmov 8(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r9\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %r10\n"
    "\tmov 16(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r10\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %r11\n"
    "\tmov 24(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %r12\n"
    "\txor %r13, %r13\n"
    "\tmov %r8, %r14\n"
    "\timul %r15, %r14\n"
    "\tmovabs $0xf3b9cac2fc632551, %rax\n"
    "\tmul %r14\n"
    "\tadd %rax, %r8\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmovabs $0xbce6faada7179e84, %rax\n"
    "\tmul %r14\n"
    "\tadd %rbp, %r9\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r9\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmovabs $0xffffffffffffffff, %rax\n"
    "\tmul %r14\n"
    "\tadd %rbp, %r10\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r10\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmovabs $0xffffffff00000000, %rax\n"
    "\tmul %r14\n"
    "\tadd %rbp, %r11\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tadd %rdx, %r12\n"
    "\tadc $0, %r13\n"
    "\tmov 8(%rbx), %rcx\n"
    "\tmov (%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r9\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 8(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r10\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r10\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 16(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r11\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 24(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r12\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r12\n"
    "\tadc $0, %rdx\n"
    "\tmov $0, %r8\n"
    "\tadd %rdx, %r13\n"
    "\tadc $0, %r8\n"
    "\tmov %r9, %r14\n"
    "\timul %r15, %r14\n"
    "\tmovabs $0xf3b9cac2fc632551, %rax\n"
    "\tmul %r14\n"
    "\tadd %rax, %r9\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmovabs $0xbce6faada7179e84, %rax\n"
    "\tmul %r14\n"
    "\tadd %rbp, %r10\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r10\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmovabs $0xffffffffffffffff, %rax\n"
    "\tmul %r14\n"
    "\tadd %rbp, %r11\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmovabs $0xffffffff00000000, %rax\n"
    "\tmul %r14\n"
    "\tadd %rbp, %r12\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r12\n"
    "\tadc $0, %rdx\n"
    "\tadd %rdx, %r13\n"
    "\tadc $0, %r8\n"
    "\tmov 16(%rbx), %rcx\n"
    "\tmov (%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r10\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 8(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r11\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 16(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r12\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r12\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 24(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r13\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r13\n"
    "\tadc $0, %rdx\n"
    "\tmov $0, %r9\n"
    "\tadd %rdx, %r8\n"
    "\tadc $0, %r9\n"
    "\tmov %r10, %r14\n"
    "\timul %r15, %r14\n"
    "\tmovabs $0xf3b9cac2fc632551, %rax\n"
    "\tmul %r14\n"
    "\tadd %rax, %r10\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmovabs $0xbce6faada7179e84, %rax\n"
    "\tmul %r14\n"
    "\tadd %rbp, %r11\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmovabs $0xffffffffffffffff, %rax\n"
    "\tmul %r14\n"
    "\tadd %rbp, %r12\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r12\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmovabs $0xffffffff00000000, %rax\n"
    "\tmul %r14\n"
    "\tadd %rbp, %r13\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r13\n"
    "\tadc $0, %rdx\n"
    "\tadd %rdx, %r8\n"
    "\tadc $0, %r9\n"
    "\tmov 24(%rbx), %rcx\n"
    "\tmov (%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 8(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r12\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r12\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 16(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r13\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r13\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmov 24(%rsi), %rax\n"
    "\tmul %rcx\n"
    "\tadd %rbp, %r8\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r8\n"
    "\tadc $0, %rdx\n"
    "\tmov $0, %r10\n"
    "\tadd %rdx, %r9\n"
    "\tadc $0, %r10\n"
    "\tmov %r11, %r14\n"
    "\timul %r15, %r14\n"
    "\tmovabs $0xf3b9cac2fc632551, %rax\n"
    "\tmul %r14\n"
    "\tadd %rax, %r11\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmovabs $0xbce6faada7179e84, %rax\n"
    "\tmul %r14\n"
    "\tadd %rbp, %r12\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r12\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmovabs $0xffffffffffffffff, %rax\n"
    "\tmul %r14\n"
    "\tadd %rbp, %r13\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r13\n"
    "\tadc $0, %rdx\n"
    "\tmov %rdx, %rbp\n"
    "\tmovabs $0xffffffff00000000, %rax\n"
    "\tmul %r14\n"
    "\tadd %rbp, %r8\n"
    "\tadc $0, %rdx\n"
    "\tadd %rax, %r8\n"
    "\tadc $0, %rdx\n"
    "\tadd %rdx, %r9\n"
    "\tadc $0, %r10\n"
    "\tmov %r12, %rax\n"
    "\tmov %r13, %rdx\n"
    "\tmov %r8, %rcx\n"
    "\tmov %r9, %rbp\n"
    "\tmovabs $0xf3b9cac2fc632551, %r14\n"
    "\tsub %r14, %rax\n"
    "\tmovabs $0xbce6faada7179e84, %r14\n"
    "\tsbb %r14, %rdx\n"
    "\tsbb $-1, %rcx\n"
    "\tmovabs $0xffffffff00000000, %r14\n"
    "\tsbb %r14, %rbp\n"
    "\tsbb $0, %r10\n"
    "\tcmovc %r12, %rax\n"
    "\tcmovc %r13, %rdx\n"
    "\tcmovc %r8, %rcx\n"
    "\tcmovc %r9, %rbp\n"
    "\tmov %rax, (%rdi)\n"
    "\tmov %rdx, 8(%rdi)\n"
    "\tmov %rcx, 16(%rdi)\n"
    "\tmov %rbp, 24(%rdi)\n"
    "\tpop %r15\n"
    "\tpop %r14\n"
    "\tpop %r13\n"
    "\tpop %r12\n"
    "\tpop %rbp\n"
    "\tpop %rbx\n"
    "\tret\n"
    ".size agent_p256_x64_scmul, .-agent_p256_x64_scmul\n"
);
#define fe_mul agent_p256_x64_mul
#define fe_add agent_p256_x64_add
#define fe_sub agent_p256_x64_sub
#define P256_SC_MUL_ASM
#define fe_sqr agent_p256_x64_sqr
/* z = c a mod p for c in 1..8 (a < p): one call instead of the two or three
 * fe_add that 3a, 4a and 8a take (three in the doubling, one in the mixed
 * addition). c a = h 2^256 + x with h < 8, and 2^256 = 2^224 - 2^192 - 2^96
 * + 1 mod p, so r = x + h (2^224 - 2^192 - 2^96 + 1) (h at limb 0, h 2^32 - h
 * at limb 3, minus h 2^32 at limb 1) is below 2^256 + 2^227 < 2p: then one
 * subtraction of p, selected by cmov like fe_add's. */
#define P256_FE_MUL_SMALL
#define fe_mul_small agent_p256_x64_mulsmall
#elif P256_SMALL
/* one Montgomery multiplication for p and n */
static NOINLINE void mont_mul_g(fe z, const fe a, const fe b, const fe m, limb m0)
{
    mont_mul(z, a, b, m, m0);
}
static NOINLINE void fe_mul(fe z, const fe a, const fe b) { mont_mul_g(z, a, b, P, 1); }
static NOINLINE void sc_mul(fe z, const fe a, const fe b) { mont_mul_g(z, a, b, N, N0); }
#define P256_SC_MUL_DONE
static NOINLINE void fe_add(fe z, const fe a, const fe b) { mod_add(z, a, b, P); }
static NOINLINE void fe_sub(fe z, const fe a, const fe b) { mod_sub(z, a, b, P); }
#else
#if LB == 64
/* z = a b R^-1 mod p, 64-bit limbs: the product (16 multiplications), then
 * four Montgomery steps that use the shape of p = 2^256 - 2^224 + 2^192 +
 * 2^96 - 1: with q = the low limb, q p = q 2^256 - q 2^224 + q 2^192 +
 * q 2^96 - q, so adding q p clears the low limb with a carry of q, adds
 * q 2^32 to the next limb, nothing to the one after and q (2^64 - 2^32 + 1)
 * to the fourth: one multiplication per step. */
static NOINLINE void fe_mul(fe z, const fe a, const fe b)
{
    limb r[8], c, hi = 0;
    dlimb t;
    int i, j;

    t = 0;
    HOT_UNROLL
    for (j = 0; j < 4; j++) {
        t += (dlimb) a[j] * b[0];
        r[j] = (limb) t;
        t >>= 64;
    }
    r[4] = (limb) t;
    HOT_UNROLL
    for (i = 1; i < 4; i++) {
        t = 0;
        HOT_UNROLL
        for (j = 0; j < 4; j++) {
            t += (dlimb) a[j] * b[i] + r[i + j];
            r[i + j] = (limb) t;
            t >>= 64;
        }
        r[i + 4] = (limb) t;
    }
    HOT_UNROLL
    for (i = 0; i < 4; i++) {
        limb q = r[i];
        t = (dlimb) r[i + 1] + (q << 32);
        r[i + 1] = (limb) t;
        t >>= 64;
        t += (dlimb) r[i + 2] + (q >> 32);
        r[i + 2] = (limb) t;
        t >>= 64;
        t += (dlimb) r[i + 3] + (dlimb) q * 0xffffffff00000001ULL;
        r[i + 3] = (limb) t;
        t >>= 64;
        HOT_UNROLL
        for (j = i + 4; j < 8; j++) {
            t += r[j];
            r[j] = (limb) t;
            t >>= 64;
        }
        hi += (limb) t;
    }
    /* r[4..7] + hi 2^256 < 2p */
    c = mp_sub(z, r + 4, P);
    fe_cmov(z, r + 4, (limb) 0 - (c & ~hi & 1));
}
#else
static NOINLINE void fe_mul(fe z, const fe a, const fe b) { mont_mul(z, a, b, P, 1); }
#endif
static NOINLINE void fe_add(fe z, const fe a, const fe b) { mod_add(z, a, b, P); }
static NOINLINE void fe_sub(fe z, const fe a, const fe b) { mod_sub(z, a, b, P); }
#endif /* x86_64 assembly */
#ifndef fe_sqr
static void fe_sqr(fe z, const fe a) { fe_mul(z, a, a); }
#endif
#ifdef P256_SC_MUL_ASM
#define sc_mul agent_p256_x64_scmul
#elif defined(P256_SC_MUL_DONE)
#else
static NOINLINE void sc_mul(fe z, const fe a, const fe b) { mont_mul(z, a, b, N, N0); }
#endif
static void sc_add(fe z, const fe a, const fe b) { mod_add(z, a, b, N); }

static void fe_sqr_n(fe z, const fe a, int n)
{
    fe_sqr(z, a);
    while (--n > 0) {
        fe_sqr(z, z);
    }
}

/* z = a^(p-2) = a^-1 (0 for 0), Montgomery form in and out. The chain:
 * 255 squarings, 12 multiplications. */
static MAYBE_UNUSED void fe_inv_fermat(fe z, const fe a)
{
    fe x2, x3, x6, x12, x15, x30, x32, t;

    fe_sqr(x2, a);
    fe_mul(x2, x2, a);          /* 2^2 - 1 */
    fe_sqr(x3, x2);
    fe_mul(x3, x3, a);          /* 2^3 - 1 */
    fe_sqr_n(x6, x3, 3);
    fe_mul(x6, x6, x3);         /* 2^6 - 1 */
    fe_sqr_n(x12, x6, 6);
    fe_mul(x12, x12, x6);       /* 2^12 - 1 */
    fe_sqr_n(x15, x12, 3);
    fe_mul(x15, x15, x3);       /* 2^15 - 1 */
    fe_sqr_n(x30, x15, 15);
    fe_mul(x30, x30, x15);      /* 2^30 - 1 */
    fe_sqr_n(x32, x30, 2);
    fe_mul(x32, x32, x2);       /* 2^32 - 1 */
    fe_sqr_n(t, x32, 32);
    fe_mul(t, t, a);            /* ffffffff 00000001 */
    fe_sqr_n(t, t, 128);
    fe_mul(t, t, x32);          /* ... 00000000 00000000 00000000 ffffffff */
    fe_sqr_n(t, t, 32);
    fe_mul(t, t, x32);          /* ... ffffffff */
    fe_sqr_n(t, t, 30);
    fe_mul(t, t, x30);
    fe_sqr_n(t, t, 2);
    fe_mul(z, t, a);            /* ... fffffffd */
    zeroize(x2, sizeof x2);
    zeroize(x3, sizeof x3);
    zeroize(x6, sizeof x6);
    zeroize(x12, sizeof x12);
    zeroize(x15, sizeof x15);
    zeroize(x30, sizeof x30);
    zeroize(x32, sizeof x32);
    zeroize(t, sizeof t);
}

/* z = a^(n-2) = a^-1 mod n, Montgomery form in and out; 4-bit fixed window
 * over the public exponent (branches and table indexes depend on n only). */
static MAYBE_UNUSED void sc_inv_fermat(fe z, const fe a)
{
    static const fe E = { C64(0xf3b9cac2fc63254fULL), C64(0xbce6faada7179e84ULL),
                          C64(0xffffffffffffffffULL), C64(0xffffffff00000000ULL) };
    fe tab[15], t;
    int i, k;

    memcpy(tab[0], a, sizeof(fe));
    for (i = 1; i < 15; i++) {
        sc_mul(tab[i], tab[i - 1], a);
    }
    memcpy(t, tab[14], sizeof(fe));   /* top nibble of n - 2: f */
    for (i = 62; i >= 0; i--) {
        unsigned d = (unsigned) (E[(i * 4) / LB] >> ((i * 4) % LB)) & 15;
        for (k = 0; k < 4; k++) {
            sc_mul(t, t, t);
        }
        if (d != 0) {
            sc_mul(t, t, tab[d - 1]);
        }
    }
    memcpy(z, t, sizeof(fe));
    zeroize(tab, sizeof tab);
    zeroize(t, sizeof t);
}

/* P256_SAFEGCD (default with 64-bit limbs, unless P256_SMALL): inversions by
 * Bernstein and Yang's divsteps ("Fast constant-time gcd computation and
 * modular inversion", 2019) instead of Fermat: about 4 (mod p) and 8 (mod n)
 * times fewer instructions. Otherwise the exponentiations above. */
#ifndef P256_SAFEGCD
#if LB == 64 && !P256_SMALL
#define P256_SAFEGCD 1
#else
#define P256_SAFEGCD 0
#endif
#endif

#if P256_SAFEGCD && LB != 64
#error "P256_SAFEGCD needs 64-bit limbs (unsigned __int128)"
#endif
#if P256_SAFEGCD
/* Constant-time inversion mod an odd m < 2^256 by divsteps. divstep(delta,
 * f, g) is (1 - delta, g, (g - f) / 2) if delta > 0 and g is odd, else
 * (1 + delta, f, (g + (g mod 2) f) / 2). From (1, m, x), after 741 steps
 * (the paper's Theorem 11.2 for 256-bit inputs: floor((49 * 256 + 57) / 17))
 * g = 0 and f = +-gcd(m, x) = +-1; we run 12 batches of 62 (744: more steps
 * keep g = 0 and f). Each batch runs on the low 64 bits of f and g only
 * (62 steps need 62 bits) and yields the matrix T with
 * 2^62 (f', g') = T (f, g), then applied to the full f, g and, mod m, to
 * (d, e), which start at (0, c): the invariant f = d x / c, g = e x / c
 * (mod m) holds, so at the end +-d = c / x. c = R^2 turns a Montgomery form
 * x = a R into a^-1 R. Nothing branches on or indexes by the data. */
#define M62 ((uint64_t) 0x3fffffffffffffffULL)
typedef __int128 sdlimb;

/* a signed integer as 5 limbs of 62 bits, v[0..3] in [0, 2^62), v[4] signed */
typedef struct {
    int64_t v[5];
} s62;

static void s62_from_fe(s62 *r, const fe a)
{
    r->v[0] = (int64_t) (a[0] & M62);
    r->v[1] = (int64_t) ((a[0] >> 62 | a[1] << 2) & M62);
    r->v[2] = (int64_t) ((a[1] >> 60 | a[2] << 4) & M62);
    r->v[3] = (int64_t) ((a[2] >> 58 | a[3] << 6) & M62);
    r->v[4] = (int64_t) (a[3] >> 56);
}

/* for a in [0, 2^256) */
static void fe_from_s62(fe r, const s62 *a)
{
    r[0] = (uint64_t) a->v[0] | (uint64_t) a->v[1] << 62;
    r[1] = (uint64_t) a->v[1] >> 2 | (uint64_t) a->v[2] << 60;
    r[2] = (uint64_t) a->v[2] >> 4 | (uint64_t) a->v[3] << 58;
    r[3] = (uint64_t) a->v[3] >> 6 | (uint64_t) a->v[4] << 56;
}

/* 62 divsteps on the low words of f and g: returns the new delta, and in t
 * (u, v, q, r) with 2^62 f' = u f + v g, 2^62 g' = q f + r g. Kept scaled:
 * after i steps 2^i (f_i, g_i) = T_i (f, g); a step doubles the new f row
 * and sets the g row to g row +- f row, so |u| + |v| and |q| + |r| stay
 * <= 2^i. A swap step (delta > 0, g odd) is: (f, g) = (g, -f), then like
 * any step g += (g odd) f, g /= 2. */
static int64_t divsteps62(int64_t delta, uint64_t f, uint64_t g, int64_t t[4])
{
    uint64_t u = 1, v = 0, q = 0, r = 1, x;

    for (int i = 0; i < 62; i++) {
        uint64_t odd = (uint64_t) 0 - (g & 1);
        uint64_t sw = (uint64_t) ((0 - delta) >> 63) & odd;   /* delta > 0 and g odd */

        x = (f ^ g) & sw;
        f ^= x;
        g ^= x;
        x = (u ^ q) & sw;
        u ^= x;
        q ^= x;
        x = (v ^ r) & sw;
        v ^= x;
        r ^= x;
        g = (g ^ sw) - sw;
        q = (q ^ sw) - sw;
        r = (r ^ sw) - sw;
        delta = (int64_t) (((uint64_t) delta ^ sw) - sw) + 1;
        g += f & odd;
        q += u & odd;
        r += v & odd;
        g >>= 1;
        u <<= 1;
        v <<= 1;
    }
    t[0] = (int64_t) u;
    t[1] = (int64_t) v;
    t[2] = (int64_t) q;
    t[3] = (int64_t) r;
    return delta;
}

/* (f, g) = T (f, g) / 2^62, exactly (the low 62 bits of both sums are 0) */
static void s62_mat(s62 *f, s62 *g, const int64_t t[4])
{
    sdlimb cf = (sdlimb) t[0] * f->v[0] + (sdlimb) t[1] * g->v[0];
    sdlimb cg = (sdlimb) t[2] * f->v[0] + (sdlimb) t[3] * g->v[0];

    cf >>= 62;
    cg >>= 62;
    for (int i = 1; i < 5; i++) {
        cf += (sdlimb) t[0] * f->v[i] + (sdlimb) t[1] * g->v[i];
        cg += (sdlimb) t[2] * f->v[i] + (sdlimb) t[3] * g->v[i];
        f->v[i - 1] = (int64_t) ((uint64_t) cf & M62);
        g->v[i - 1] = (int64_t) ((uint64_t) cg & M62);
        cf >>= 62;
        cg >>= 62;
    }
    f->v[4] = (int64_t) cf;
    g->v[4] = (int64_t) cg;
}

/* a in (-m, 2m) to [0, m) */
static void s62_norm(s62 *a, const s62 *m)
{
    int64_t s = a->v[4] >> 63, c = 0;     /* all ones if a < 0: add m */
    s62 b;
    int i;

    for (i = 0; i < 4; i++) {
        c += a->v[i] + (m->v[i] & s);
        a->v[i] = (int64_t) ((uint64_t) c & M62);
        c >>= 62;
    }
    a->v[4] += c + (m->v[4] & s);
    c = 0;                                  /* b = a - m; keep it if >= 0 */
    for (i = 0; i < 4; i++) {
        c += a->v[i] - m->v[i];
        b.v[i] = (int64_t) ((uint64_t) c & M62);
        c >>= 62;
    }
    b.v[4] = a->v[4] - m->v[4] + c;
    s = ~(b.v[4] >> 63);
    for (i = 0; i < 5; i++) {
        a->v[i] ^= (a->v[i] ^ b.v[i]) & s;
    }
}

/* (d, e) = T (d, e) / 2^62 mod m, for d, e in [0, m); minv = m^-1 mod 2^62.
 * Adding md m and me m (md, me in [0, 2^62)) clears the low 62 bits; the
 * results lie in (-m, 2m): |u d + v e| <= 2^62 m, md m < 2^62 m. */
static void s62_mat_mod(s62 *d, s62 *e, const int64_t t[4], const s62 *m, uint64_t minv)
{
    sdlimb cd = (sdlimb) t[0] * d->v[0] + (sdlimb) t[1] * e->v[0];
    sdlimb ce = (sdlimb) t[2] * d->v[0] + (sdlimb) t[3] * e->v[0];
    int64_t md = (int64_t) ((((uint64_t) 0 - (uint64_t) cd) * minv) & M62);
    int64_t me = (int64_t) ((((uint64_t) 0 - (uint64_t) ce) * minv) & M62);

    cd += (sdlimb) m->v[0] * md;
    ce += (sdlimb) m->v[0] * me;
    cd >>= 62;
    ce >>= 62;
    for (int i = 1; i < 5; i++) {
        cd += (sdlimb) t[0] * d->v[i] + (sdlimb) t[1] * e->v[i] + (sdlimb) m->v[i] * md;
        ce += (sdlimb) t[2] * d->v[i] + (sdlimb) t[3] * e->v[i] + (sdlimb) m->v[i] * me;
        d->v[i - 1] = (int64_t) ((uint64_t) cd & M62);
        e->v[i - 1] = (int64_t) ((uint64_t) ce & M62);
        cd >>= 62;
        ce >>= 62;
    }
    d->v[4] = (int64_t) cd;
    e->v[4] = (int64_t) ce;
    s62_norm(d, m);
    s62_norm(e, m);
}

/* z = x^-1 c mod m (0 for x = 0), x < m, c < m; constant time */
static void inv_divsteps(fe z, const fe x, const fe mod, uint64_t minv, const fe c)
{
    s62 f, g, d, e, m;
    int64_t t[4], delta = 1;
    fe r, nr;

    s62_from_fe(&m, mod);
    f = m;
    s62_from_fe(&g, x);
    memset(&d, 0, sizeof d);
    s62_from_fe(&e, c);
    for (int i = 0; i < 12; i++) {
        delta = divsteps62(delta, (uint64_t) f.v[0] | (uint64_t) f.v[1] << 62,
                           (uint64_t) g.v[0] | (uint64_t) g.v[1] << 62, t);
        s62_mat_mod(&d, &e, t, &m, minv);
        s62_mat(&f, &g, t);
    }
    /* f = +-1: d or m - d */
    fe_from_s62(r, &d);
    mod_sub(nr, ZERO_FE, r, mod);
    fe_cmov(r, nr, (limb) (f.v[4] >> 63));
    memcpy(z, r, sizeof r);
    zeroize(&f, sizeof f);
    zeroize(&g, sizeof g);
    zeroize(&d, sizeof d);
    zeroize(&e, sizeof e);
    zeroize(t, sizeof t);
    zeroize(r, sizeof r);
    zeroize(nr, sizeof nr);
}

static void fe_inv(fe z, const fe a) { inv_divsteps(z, a, P, 0x3fffffffffffffffULL, RR_P); }
static void sc_inv(fe z, const fe a) { inv_divsteps(z, a, N, 0x332e375511ff43b1ULL, RR_N); }
#else
#define fe_inv fe_inv_fermat
#define sc_inv sc_inv_fermat
#endif

/* ------------------------------------------------------------------------ */
/* Byte encodings                                                            */

static void mp_from_bytes(fe z, const uint8_t b[32])
{
    UNROLL
    for (int i = 0; i < NL; i++) {
        limb v = 0;
        for (int j = 0; j < LB / 8; j++) {
            v |= (limb) b[31 - i * (LB / 8) - j] << (8 * j);
        }
        z[i] = v;
    }
}

static void mp_to_bytes(uint8_t b[32], const fe z)
{
    UNROLL
    for (int i = 0; i < NL; i++) {
        for (int j = 0; j < LB / 8; j++) {
            b[31 - i * (LB / 8) - j] = (uint8_t) (z[i] >> (8 * j));
        }
    }
}

/* All ones if a < m */
static limb mp_lt(const fe a, const fe m)
{
    fe t;
    return (limb) 0 - mp_sub(t, a, m);
}

/* Scalar in [1, n-1]: all ones if valid; constant time. */
static limb sc_from_bytes(fe s, const uint8_t b[32])
{
    limb ok;

    mp_from_bytes(s, b);
    ok = mp_lt(s, N) & ~fe_is_zero(s);
    DECLASSIFY(&ok, sizeof ok);     /* the verdict only */
    return ok;
}

/* a < p to Montgomery form */
static void fe_to_mont(fe z, const fe a) { fe_mul(z, a, RR_P); }

static void fe_from_mont(fe z, const fe a)
{
    static const fe one = { 1 };
    fe_mul(z, a, one);
}


/* ------------------------------------------------------------------------ */
/* Points                                                                    */

/* r = 2a (dbl-2001-b, a = -3; 3M + 5S); r may be a; infinity stays so. */
static NOINLINE void jac_dbl(jac *r, const jac *a)
{
    fe delta, gamma, beta, alpha, t, u;

    fe_sqr(delta, a->z);
    fe_sqr(gamma, a->y);
    fe_mul(beta, a->x, gamma);
    fe_sub(t, a->x, delta);
    fe_add(u, a->x, delta);
    fe_mul(t, t, u);
#ifdef P256_FE_MUL_SMALL
    fe_mul_small(alpha, t, 3);
#else
    fe_add(alpha, t, t);
    fe_add(alpha, alpha, t);            /* 3 (x - delta)(x + delta) */
#endif
    fe_add(t, a->y, a->z);
    fe_sqr(t, t);
    fe_sub(t, t, gamma);
    fe_sub(r->z, t, delta);             /* (y + z)^2 - gamma - delta */
#ifdef P256_FE_MUL_SMALL
    fe_mul_small(beta, beta, 4);
#else
    fe_add(beta, beta, beta);
    fe_add(beta, beta, beta);           /* 4 beta */
#endif
    fe_sqr(t, alpha);
    fe_sub(t, t, beta);
    fe_sub(r->x, t, beta);              /* alpha^2 - 8 beta */
    fe_sub(t, beta, r->x);
    fe_mul(t, t, alpha);
    fe_sqr(gamma, gamma);
#ifdef P256_FE_MUL_SMALL
    fe_mul_small(gamma, gamma, 8);
#else
    fe_add(gamma, gamma, gamma);
    fe_add(gamma, gamma, gamma);
    fe_add(gamma, gamma, gamma);        /* 8 gamma^2 */
#endif
    fe_sub(r->y, t, gamma);
}

/* r = a + (x2, y2) affine (madd-2007-bl; 7M + 4S), no special case: wrong
 * for a at infinity or a = (x2, y2); r must not be a. *hz and *rz: H and
 * 2 (S2 - Y1), whose zero-ness tells the special cases. */
static void jac_madd_raw(jac *r, const jac *a, const fe x2, const fe y2,
                         fe hh_out, fe rr_out)
{
    fe z1z1, u2, s2, h, hh, i, j, rr, v;

    fe_sqr(z1z1, a->z);
    fe_mul(u2, x2, z1z1);
    fe_mul(s2, y2, a->z);
    fe_mul(s2, s2, z1z1);
    fe_sub(h, u2, a->x);
    fe_sqr(hh, h);
#ifdef P256_FE_MUL_SMALL
    fe_mul_small(i, hh, 4);
#else
    fe_add(i, hh, hh);
    fe_add(i, i, i);
#endif
    fe_mul(j, h, i);
    fe_sub(rr, s2, a->y);
    fe_add(rr, rr, rr);
    fe_mul(v, a->x, i);
    fe_sqr(r->x, rr);
    fe_sub(r->x, r->x, j);
    fe_sub(r->x, r->x, v);
    fe_sub(r->x, r->x, v);
    fe_sub(u2, v, r->x);
    fe_mul(u2, u2, rr);
    fe_mul(s2, a->y, j);
    fe_add(s2, s2, s2);
    fe_sub(r->y, u2, s2);
    fe_add(r->z, a->z, h);
    fe_sqr(r->z, r->z);
    fe_sub(r->z, r->z, z1z1);
    fe_sub(r->z, r->z, hh);
    memcpy(hh_out, h, sizeof(fe));
    memcpy(rr_out, rr, sizeof(fe));
}

/* r = a + b (add-2007-bl; 11M + 5S), no special case; r must be neither. */
static void jac_add_raw(jac *r, const jac *a, const jac *b, fe h_out, fe rr_out)
{
    fe z1z1, z2z2, u1, u2, s1, s2, h, i, j, rr, v;

    fe_sqr(z1z1, a->z);
    fe_sqr(z2z2, b->z);
    fe_mul(u1, a->x, z2z2);
    fe_mul(u2, b->x, z1z1);
    fe_mul(s1, a->y, b->z);
    fe_mul(s1, s1, z2z2);
    fe_mul(s2, b->y, a->z);
    fe_mul(s2, s2, z1z1);
    fe_sub(h, u2, u1);
    fe_add(i, h, h);
    fe_sqr(i, i);
    fe_mul(j, h, i);
    fe_sub(rr, s2, s1);
    fe_add(rr, rr, rr);
    fe_mul(v, u1, i);
    fe_sqr(r->x, rr);
    fe_sub(r->x, r->x, j);
    fe_sub(r->x, r->x, v);
    fe_sub(r->x, r->x, v);
    fe_sub(u2, v, r->x);
    fe_mul(u2, u2, rr);
    fe_mul(s1, s1, j);
    fe_add(s1, s1, s1);
    fe_sub(r->y, u2, s1);
    fe_add(r->z, a->z, b->z);
    fe_sqr(r->z, r->z);
    fe_sub(r->z, r->z, z1z1);
    fe_sub(r->z, r->z, z2z2);
    fe_mul(r->z, r->z, h);
    memcpy(h_out, h, sizeof(fe));
    memcpy(rr_out, rr, sizeof(fe));
}

static void jac_cmov(jac *r, const jac *a, limb mask)
{
    fe_cmov(r->x, a->x, mask);
    fe_cmov(r->y, a->y, mask);
    fe_cmov(r->z, a->z, mask);
}

/* Variable time (public points): r = a + b with every special case; r may be
 * a or b. */
static void jac_add_vt(jac *r, const jac *a, const jac *b)
{
    jac t;
    fe h, rr;

    if (fe_is_zero(a->z)) {
        *r = *b;
        return;
    }
    if (fe_is_zero(b->z)) {
        *r = *a;
        return;
    }
    jac_add_raw(&t, a, b, h, rr);
    if (fe_is_zero(h) && fe_is_zero(rr)) {
        jac_dbl(r, a);
        return;
    }
    *r = t;     /* h = 0, rr != 0: a = -b, t.z = 0 */
}

static void jac_madd_vt(jac *r, const jac *a, const fe x2, const fe y2)
{
    jac t;
    fe h, rr;

    if (fe_is_zero(a->z)) {
        memcpy(r->x, x2, sizeof(fe));
        memcpy(r->y, y2, sizeof(fe));
        memcpy(r->z, ONE_M, sizeof(fe));
        return;
    }
    jac_madd_raw(&t, a, x2, y2, h, rr);
    if (fe_is_zero(h) && fe_is_zero(rr)) {
        jac_dbl(r, a);
        return;
    }
    *r = t;
}

/* (x, y) affine, Montgomery form, from r (not at infinity); not secret
 * afterwards but computed in constant time. */
static void jac_to_affine(fe x, fe y, const jac *r)
{
    fe zi, zi2;

    fe_inv(zi, r->z);
    fe_sqr(zi2, zi);
    fe_mul(x, r->x, zi2);
    fe_mul(zi2, zi2, zi);
    fe_mul(y, r->y, zi2);
    zeroize(zi, sizeof zi);
    zeroize(zi2, sizeof zi2);
}

/* y^2 = x^3 - 3x + b, for x, y < p in Montgomery form: all ones if so. */
static limb on_curve(const fe x, const fe y)
{
    fe l, r, t;

    fe_sqr(l, y);
    fe_sqr(r, x);
    fe_mul(r, r, x);
    fe_add(t, x, x);
    fe_add(t, t, x);
    fe_sub(r, r, t);
    fe_add(r, r, B_M);
    return fe_eq(l, r);
}

/* Public key bytes to an affine point in Montgomery form: 0 on success. */
static int point_from_bytes(fe x, fe y, const uint8_t pub[64])
{
    fe a, b;

    mp_from_bytes(a, pub);
    mp_from_bytes(b, pub + 32);
    if (!mp_lt(a, P) || !mp_lt(b, P)) {
        return -1;
    }
    fe_to_mont(x, a);
    fe_to_mont(y, b);
    return on_curve(x, y) ? 0 : -1;
}

static void point_to_bytes(uint8_t out[64], const fe x, const fe y)
{
    fe t;

    fe_from_mont(t, x);
    mp_to_bytes(out, t);
    fe_from_mont(t, y);
    mp_to_bytes(out + 32, t);
}

#ifndef P256_GEN_TABLE
#if !P256_WTABLE
/* Column i of the comb for scalar k: bits i, 52 + i, ..., 208 + i. The bit
 * positions are public; the bits are not. */
static unsigned comb_digit(const fe k, int i)
{
    unsigned d = 0;
    for (int j = 0; j < COMB_TEETH; j++) {
        int pos = j * COMB_COLS + i;
        if (pos < 256) {
            d |= (unsigned) ((k[pos / LB] >> (pos % LB)) & 1) << j;
        }
    }
    return d;
}
#endif

#if P256_WTABLE
/* k < 2^256 in signed 5-bit digits, k = sum d_i 32^i over the 52 windows
 * (window i: bits 5i..5i+4), d_i in [-16, 16]: |d_i| in mag[i], 1 in neg[i]
 * if d_i < 0. From the bottom, t = window + carry (0..32); t > 16 gives
 * d = t - 32 and a carry of 1. The top window (bits 255..259) is at most 1 + 1
 * and carries nothing out. Constant time (masks; positions are public). */
static void wt_recode(unsigned char mag[WT_WINDOWS], unsigned char neg[WT_WINDOWS], const fe k)
{
    unsigned c = 0;

    for (int i = 0; i < WT_WINDOWS; i++) {
        int pos = 5 * i, l = pos / LB, o = pos % LB;
        limb v = k[l] >> o;
        if (o > LB - 5 && l + 1 < NL) {
            v |= k[l + 1] << (LB - o);
        }
        unsigned t = (unsigned) (v & 31) + c;
        unsigned m = ((16u - t) >> 31) & 1;     /* t > 16 */
        mag[i] = (unsigned char) (t ^ ((t ^ (32u - t)) & (0u - m)));
        neg[i] = (unsigned char) m;
        c = m;
    }
}

/* wt_add_ct's temporaries, wiped once by mul_base */
typedef struct {
    jac t;
    fe x, y, ny, h, rr;
} wt_scratch;

/* out = entry mag - 1 of tab (16 entries of W limbs), or 0 for mag = 0:
 * every entry read, the one wanted kept by a mask (an OR of masked
 * entries). Inlined with a constant W: 2 x NL limbs (an affine point, 64
 * bytes) or 3 x NL (Jacobian, 96 bytes) in both radices; with SSE2
 * (x86_64's baseline) in 16-byte lanes. */
#define SEL_MAXW (3 * NL)
#if defined(__SSE2__) && !defined(P256_NO_ASM)
#include <emmintrin.h>
INLINE void select16(limb *out, const limb *tab, int w, unsigned mag)
{
    __m128i acc[SEL_MAXW * sizeof(limb) / 16];
    const __m128i want = _mm_set1_epi32((int) mag), one = _mm_set1_epi32(1);
    __m128i idx = one;
    int lanes = w * (int) sizeof(limb) / 16, j;

    HOT_UNROLL
    for (j = 0; j < lanes; j++) {
        acc[j] = _mm_setzero_si128();
    }
    for (unsigned e = 0; e < 16; e++) {
        const __m128i *t = (const __m128i *) (const void *) (tab + e * (unsigned) w);
        __m128i m = _mm_cmpeq_epi32(idx, want);
        HOT_UNROLL
        for (j = 0; j < lanes; j++) {
            acc[j] = _mm_or_si128(acc[j], _mm_and_si128(m, _mm_loadu_si128(t + j)));
        }
        idx = _mm_add_epi32(idx, one);
    }
    HOT_UNROLL
    for (j = 0; j < lanes; j++) {
        _mm_storeu_si128((__m128i *) (void *) out + j, acc[j]);
    }
}
#else
INLINE void select16(limb *out, const limb *tab, int w, unsigned mag)
{
    limb acc[SEL_MAXW];
    int j;

    for (j = 0; j < w; j++) {
        acc[j] = 0;
    }
    for (unsigned e = 0; e < 16; e++) {
        limb m = mask_zero((limb) (mag ^ (e + 1)));
        const limb *t = tab + e * (unsigned) w;
        HOT_UNROLL
        for (j = 0; j < w; j++) {
            acc[j] |= t[j] & m;
        }
    }
    memcpy(out, acc, (size_t) w * sizeof(limb));
}
#endif

/* (x, y) = tab[mag - 1], or 0 for mag = 0 */
static void wt_select(fe x, fe y, const limb tab[16][2][NL], unsigned mag)
{
    limb out[2 * NL];

    select16(out, &tab[0][0][0], 2 * NL, mag);
    memcpy(x, out, sizeof(fe));
    memcpy(y, out + NL, sizeof(fe));
}

/* r += d 2^(10 b) G with |d| = mag, d < 0 iff neg, in constant time: all 16
 * entries of block b read, the one wanted kept by masks, y negated by a
 * mask; d = 0 leaves r, r at infinity takes the entry (masks). The caller
 * (mul_base) rules out r = +-entry (both finite). */
static void wt_add_ct(jac *r, wt_scratch *s, int b, unsigned mag, unsigned neg)
{
    limb use = ~mask_zero((limb) mag);
    limb inf = fe_is_zero(r->z);

    wt_select(s->x, s->y, WTAB[b], mag);
    fe_sub(s->ny, ZERO_FE, s->y);
    fe_cmov(s->y, s->ny, (limb) 0 - (limb) neg);
    jac_madd_raw(&s->t, r, s->x, s->y, s->h, s->rr);
    fe_cmov(s->t.x, s->x, inf);
    fe_cmov(s->t.y, s->y, inf);
    fe_cmov(s->t.z, ONE_M, inf);
    jac_cmov(r, &s->t, use);
}

/* r = k G for a secret k in [1, n-1], constant time. With the digits d_i of
 * wt_recode: first the odd windows, blocks b = 0..25 upwards (r +=
 * d_(2b+1) 2^(10 b) G), then 5 doublings, then the even windows, blocks
 * b = 25..0 downwards (r += d_(2b) 2^(10 b) G). No addition meets r = +-E
 * with both finite (E the entry added), i.e. A -+ E = 0 mod n for the
 * integer A that r is a multiple of:
 * - odd pass, block b: A = sum over b' < b of d_(2b'+1) 2^(10 b'), so
 *   |A| < 16 2^(10 b) / 1023 < |E| = |d| 2^(10 b) <= 16 2^250: 0 < |A -+ E| < n.
 * - even pass, block b: A + E = k - L and A - E = k - L - 2E, L = sum over
 *   b' < b of d_(2b') 2^(10 b'), |L| < 2^244 and |2E| <= 2^255: both lie in
 *   (-n, 2n), so = 0 mod n means 0 or n. Neither is 0: written in base 32
 *   they have a nonzero digit (that of window 2b; a sum of digits of
 *   magnitude <= 16 times powers of 32, not all zero, is not zero). Neither is
 *   n: for b > 0 both are multiples of 32 (window 0 is not in them), and
 *   n = 17 mod 32; for b = 0, A + E = k < n, and A - E = k - 2 d_0 = n would
 *   need d_0 < 0 and (k = d_0 mod 32) d_0 = -n = 15 mod 32.
 * Points at infinity (all digits so far 0) and d = 0 are the masks of
 * wt_add_ct. (The same argument fails for 4-bit windows: k = n - 2.) */
static void mul_base(jac *r, const fe k)
{
    unsigned char mag[WT_WINDOWS], neg[WT_WINDOWS];
    wt_scratch s;
    int b;

    wt_recode(mag, neg, k);
    memset(r, 0, sizeof *r);
    for (b = 0; b < WT_BLOCKS; b++) {
        wt_add_ct(r, &s, b, mag[2 * b + 1], neg[2 * b + 1]);
    }
    for (b = 0; b < 5; b++) {
        jac_dbl(r, r);
    }
    for (b = WT_BLOCKS - 1; b >= 0; b--) {
        wt_add_ct(r, &s, b, mag[2 * b], neg[2 * b]);
    }
    zeroize(mag, sizeof mag);
    zeroize(neg, sizeof neg);
    zeroize(&s, sizeof s);
}
#else
/* r = k G for a secret k in [1, n-1], constant time. With k < n, the
 * accumulator before an addition is (after doubling) a multiple m of G with
 * m even in every 52-bit block, the table entry a multiple t with 0 or 1 in
 * each block, both < n: they are equal or opposite only if both are 0 (the
 * last column gives k, not 0). So the only special cases are the
 * accumulator at infinity and digit 0, handled by masks. */
static void mul_base(jac *r, const fe k)
{
    jac t;
    fe x, y, h, rr;
    int i;
    unsigned e;

    memset(r, 0, sizeof *r);
    for (i = COMB_COLS - 1; i >= 0; i--) {
        unsigned d = comb_digit(k, i);
        limb use = ~mask_zero((limb) d);
        limb inf = fe_is_zero(r->z);

        jac_dbl(r, r);
        memset(x, 0, sizeof x);
        memset(y, 0, sizeof y);
        for (e = 0; e < 31; e++) {
            limb m = mask_zero((limb) (d ^ (e + 1)));
            fe_cmov(x, COMB[e][0], m);
            fe_cmov(y, COMB[e][1], m);
        }
        jac_madd_raw(&t, r, x, y, h, rr);
        /* at infinity: the entry itself */
        fe_cmov(t.x, x, inf);
        fe_cmov(t.y, y, inf);
        fe_cmov(t.z, ONE_M, inf);
        jac_cmov(r, &t, use);
    }
    zeroize(&t, sizeof t);
    zeroize(x, sizeof x);
    zeroize(y, sizeof y);
    zeroize(h, sizeof h);
    zeroize(rr, sizeof rr);
}
#endif
#endif

#if P256_WTABLE && !defined(P256_GEN_TABLE)
/* select16 reads a jac as 3 x NL limbs in a row */
typedef char p256_jac_is_contiguous[sizeof(jac) == 3 * sizeof(fe) ? 1 : -1];

/* r = k (x, y) for a secret k in [1, n-1] and a point of order n, constant
 * time: the signed 5-bit digits of wt_recode, from the top: 5 doublings, then
 * r += d_i P with |d_i| P from a table of 1..16 times the point (public
 * values, Jacobian) read by a full scan, y negated by a mask: 255 doublings
 * and 52 additions. No addition meets r = +-entry with both finite: before
 * window i, r is A P with A = sum over j > i of d_j 32^(j - i), and
 * A +- d_i = (k - L) / 32^i (+ 0 or - 2 d_i), L the digits below i, |L| <
 * 32^i / 2: for i > 0 its magnitude is below n, and it is not 0 (a sum of
 * base-32 digits of magnitude <= 16 with d_i != 0); for i = 0, A + d_0 = k,
 * and A - d_0 = k - 2 d_0 is 0 (then d_0 = k = 2 d_0 mod 32) or n (then
 * d_0 = -n = 15 mod 32, but d_0 < 0) only if d_0 = 0. Infinity (no digit
 * yet) and d_i = 0 are masks, as in wt_add_ct. */
static void mul_var(jac *r, const fe k, const fe x, const fe y)
{
    jac tab[16], t, s;
    fe h, rr, ny;
    unsigned char mag[WT_WINDOWS], neg[WT_WINDOWS];
    int i;

    memcpy(tab[0].x, x, sizeof(fe));
    memcpy(tab[0].y, y, sizeof(fe));
    memcpy(tab[0].z, ONE_M, sizeof(fe));
    jac_dbl(&tab[1], &tab[0]);
    for (i = 2; i < 16; i++) {
        jac_add_vt(&tab[i], &tab[i - 1], &tab[0]);
    }
    wt_recode(mag, neg, k);
    memset(r, 0, sizeof *r);
    for (i = WT_WINDOWS - 1; i >= 0; i--) {
        if (i < WT_WINDOWS - 1) {
            jac_dbl(r, r);
            jac_dbl(r, r);
            jac_dbl(r, r);
            jac_dbl(r, r);
            jac_dbl(r, r);
        }
        limb use = ~mask_zero((limb) mag[i]);
        limb inf = fe_is_zero(r->z);

        select16((limb *) (void *) &s, (const limb *) (const void *) tab, 3 * NL, mag[i]);
        fe_sub(ny, ZERO_FE, s.y);
        fe_cmov(s.y, ny, (limb) 0 - (limb) neg[i]);
        jac_add_raw(&t, r, &s, h, rr);
        jac_cmov(&t, &s, inf);
        jac_cmov(r, &t, use);
    }
    zeroize(mag, sizeof mag);
    zeroize(neg, sizeof neg);
    zeroize(&t, sizeof t);
    zeroize(&s, sizeof s);
    zeroize(ny, sizeof ny);
    zeroize(h, sizeof h);
    zeroize(rr, sizeof rr);
}
#else
/* r = k (x, y) for a secret k in [1, n-1] and a point of order n, constant
 * time: 4-bit fixed window, table 1..15 times the point (public values),
 * read by a full scan. As for mul_base, with k < n the accumulator (16 m)
 * and the entry (1..15) are never equal or opposite unless zero, so only
 * infinity and digit 0 are special. */
static void mul_var(jac *r, const fe k, const fe x, const fe y)
{
    jac tab[15], t, s;
    fe h, rr;
    int i, e;

    memcpy(tab[0].x, x, sizeof(fe));
    memcpy(tab[0].y, y, sizeof(fe));
    memcpy(tab[0].z, ONE_M, sizeof(fe));
    jac_dbl(&tab[1], &tab[0]);
    for (i = 2; i < 15; i++) {
        jac_add_vt(&tab[i], &tab[i - 1], &tab[0]);
    }
    memset(r, 0, sizeof *r);
    for (i = 63; i >= 0; i--) {
        unsigned d = (unsigned) (k[(i * 4) / LB] >> ((i * 4) % LB)) & 15;
        limb use = ~mask_zero((limb) d);
        limb inf = fe_is_zero(r->z);

        jac_dbl(r, r);
        jac_dbl(r, r);
        jac_dbl(r, r);
        jac_dbl(r, r);
        memset(&s, 0, sizeof s);
        for (e = 0; e < 15; e++) {
            jac_cmov(&s, &tab[e], mask_zero((limb) (d ^ (unsigned) (e + 1))));
        }
        jac_add_raw(&t, r, &s, h, rr);
        jac_cmov(&t, &s, inf);
        jac_cmov(r, &t, use);
    }
    zeroize(&t, sizeof t);
    zeroize(&s, sizeof s);
    zeroize(h, sizeof h);
    zeroize(rr, sizeof rr);
}
#endif

#ifndef P256_GEN_TABLE
/* r = u1 G + u2 Q, variable time (verification: public values). u2 Q by
 * width-5 NAF with 1, 3, .., 15 times Q; u1 G by the fixed-base table: the
 * comb's 52 columns added during the last 52 doublings, or the windows' 52
 * entries at the last 6 (with every special case: jac_madd_vt). */
static void mul_double_vt(jac *r, const fe u1, const fe u2, const fe qx, const fe qy)
{
    jac tab[8], q2, neg;
    signed char naf[257];
    fe k;
    int i;
#if P256_WTABLE
    unsigned char mag[WT_WINDOWS], sgn[WT_WINDOWS];

    wt_recode(mag, sgn, u1);
#endif

    /* wNAF of u2 (< n) */
    memcpy(k, u2, sizeof k);
    for (i = 0; i < 257; i++) {
        int d = 0;
        if (k[0] & 1) {
            d = (int) (k[0] & 31);
            if (d >= 16) {
                d -= 32;
            }
            fe t = { 0 };
            if (d > 0) {
                t[0] = (limb) d;
                mp_sub(k, k, t);
            } else {
                t[0] = (limb) -d;
                mp_add(k, k, t);
            }
        }
        naf[i] = (signed char) d;
        UNROLL
        for (int j = 0; j < NL - 1; j++) {
            k[j] = (k[j] >> 1) | (k[j + 1] << (LB - 1));
        }
        k[NL - 1] >>= 1;
    }

    memcpy(tab[0].x, qx, sizeof(fe));
    memcpy(tab[0].y, qy, sizeof(fe));
    memcpy(tab[0].z, ONE_M, sizeof(fe));
    jac_dbl(&q2, &tab[0]);
    UNROLL
    for (i = 1; i < 8; i++) {
        jac_add_vt(&tab[i], &tab[i - 1], &q2);
    }

    memset(r, 0, sizeof *r);
    for (i = 256; i >= 0; i--) {
        if (!fe_is_zero(r->z)) {
            jac_dbl(r, r);
        }
        if (naf[i] > 0) {
            jac_add_vt(r, r, &tab[naf[i] >> 1]);
        } else if (naf[i] < 0) {
            neg = tab[(-naf[i]) >> 1];
            fe_sub(neg.y, P, neg.y);    /* P - y: y != 0 for order n */
            jac_add_vt(r, r, &neg);
        }
#if P256_WTABLE
        /* u1 G: the odd windows with 5 doublings to go, the even ones last */
        if (i == 5 || i == 0) {
            for (int b = 0; b < WT_BLOCKS; b++) {
                int w = 2 * b + (i == 5);
                if (mag[w] != 0) {
                    memcpy(neg.y, WTAB[b][mag[w] - 1][1], sizeof(fe));
                    if (sgn[w]) {
                        fe_sub(neg.y, ZERO_FE, neg.y);
                    }
                    jac_madd_vt(r, r, WTAB[b][mag[w] - 1][0], neg.y);
                }
            }
        }
#else
        if (i < COMB_COLS) {
            unsigned d = comb_digit(u1, i);
            if (d != 0) {
                jac_madd_vt(r, r, COMB[d - 1][0], COMB[d - 1][1]);
            }
        }
#endif
    }
}
#endif

/* ------------------------------------------------------------------------ */
/* The API                                                                   */

#ifndef P256_GEN_TABLE

/* x = affine x of k G as an integer (not Montgomery), pub = its encoding. */
static void base_point_out(uint8_t pub[64], fe xint, const fe k)
{
    jac r;
    fe x, y;

    mul_base(&r, k);
    jac_to_affine(x, y, &r);
    DECLASSIFY(x, sizeof x);        /* a public key, or r of a signature */
    DECLASSIFY(y, sizeof y);
    if (pub != NULL) {
        point_to_bytes(pub, x, y);
    }
    if (xint != NULL) {
        fe_from_mont(xint, x);
    }
    zeroize(&r, sizeof r);
}

/* A random scalar in [1, n-1] (at most 4 draws, like p256-m): 0 on success.
 * Only the accept/reject decision of each draw leaks, not the value. */
static int sc_random(uint8_t b[32], fe s)
{
    for (int tries = 0; tries < 4; tries++) {
        if (p256_generate_random(b, 32) != 0) {
            return -1;
        }
        if (sc_from_bytes(s, b) != 0) {
            return 0;
        }
    }
    return -1;
}

/*
 * The last key pair generated, for the export of its public key that follows
 * (README.md, "Key pair cache"): mbedTLS's driver glue drops the public key
 * that p256_gen_keypair computes, and psa_export_public_key asks
 * p256_public_from_private for it right after (TLS 1.3's ECDHE share). One
 * entry per thread (the host's tests run threads); written by a successful
 * p256_gen_keypair (replacing the previous entry), wiped by a failed one and
 * by every p256_public_from_private, which uses it only if its private key
 * equals the entry's (compared in constant time; only the verdict, "the key
 * just generated", decides). P256_NO_KEYCACHE leaves it out.
 */
#ifndef P256_NO_KEYCACHE
static _Thread_local struct {
    uint8_t priv[32];
    uint8_t pub[64];
    uint8_t full;           /* 1 when priv, pub hold a pair */
} keycache;
#endif

int p256_gen_keypair(uint8_t priv[32], uint8_t pub[64])
{
    fe s;
    int ret = P256_RANDOM_FAILED;

    if (sc_random(priv, s) == 0) {
        base_point_out(pub, NULL, s);
        ret = P256_SUCCESS;
    }
    zeroize(s, sizeof s);
#ifndef P256_NO_KEYCACHE
    if (ret == P256_SUCCESS) {
        memcpy(keycache.priv, priv, 32);
        memcpy(keycache.pub, pub, 64);
        keycache.full = 1;
    } else {
        zeroize(&keycache, sizeof keycache);
    }
#endif
    return ret;
}

int p256_public_from_private(uint8_t pub[64], const uint8_t priv[32])
{
    fe s;
    int ret = P256_INVALID_PRIVKEY;

#ifndef P256_NO_KEYCACHE
    unsigned diff = keycache.full ^ 1u;
    for (int i = 0; i < 32; i++) {
        diff |= (unsigned) (priv[i] ^ keycache.priv[i]);
    }
    DECLASSIFY(&diff, sizeof diff);     /* the verdict only: the pair just generated or not */
    if (diff == 0) {                    /* (the entry's key is valid: gen_keypair drew it) */
        memcpy(pub, keycache.pub, 64);
        zeroize(&keycache, sizeof keycache);
        return P256_SUCCESS;
    }
    zeroize(&keycache, sizeof keycache);
#endif
    if (sc_from_bytes(s, priv) != 0) {
        base_point_out(pub, NULL, s);
        ret = P256_SUCCESS;
    }
    zeroize(s, sizeof s);
    return ret;
}

int p256_ecdh_shared_secret(uint8_t secret[32],
                            const uint8_t priv[32], const uint8_t pub[64])
{
    fe s, qx, qy, x, y;
    jac r;
    int ret;

    if (sc_from_bytes(s, priv) == 0) {
        ret = P256_INVALID_PRIVKEY;
    } else if (point_from_bytes(qx, qy, pub) != 0) {
        ret = P256_INVALID_PUBKEY;
    } else {
        limb inf;

        mul_var(&r, s, qx, qy);
        inf = fe_is_zero(r.z);
        DECLASSIFY(&inf, sizeof inf);
        if (inf) {          /* impossible for k in [1, n-1] */
            ret = P256_INVALID_PUBKEY;
        } else {
            jac_to_affine(x, y, &r);
            fe_from_mont(x, x);
            mp_to_bytes(secret, x);
            ret = P256_SUCCESS;
        }
    }
    zeroize(s, sizeof s);
    zeroize(&r, sizeof r);
    zeroize(x, sizeof x);
    zeroize(y, sizeof y);
    return ret;
}

/* e: the hash's leftmost 256 bits (big-endian), reduced mod n. */
static void hash_to_scalar(fe e, const uint8_t *hash, size_t hlen)
{
    uint8_t b[32];
    fe t;

    memset(b, 0, sizeof b);
    if (hlen >= 32) {
        memcpy(b, hash, 32);
    } else {
        memcpy(b + 32 - hlen, hash, hlen);
    }
    mp_from_bytes(e, b);
    limb bo = mp_sub(t, e, N);
    fe_cmov(e, t, (limb) 0 - (bo ^ 1));
}

int p256_ecdsa_sign(uint8_t sig[64], const uint8_t priv[32],
                    const uint8_t *hash, size_t hlen)
{
    uint8_t kb[32];
    fe d, k, r, e, t;
    limb bo;
    int ret = P256_RANDOM_FAILED;

    if (sc_from_bytes(d, priv) == 0) {
        zeroize(d, sizeof d);
        return P256_INVALID_PRIVKEY;
    }
    if (sc_random(kb, k) != 0) {
        goto out;
    }
    base_point_out(NULL, r, k);             /* r = x(k G) < p */
    bo = mp_sub(t, r, N);
    fe_cmov(r, t, (limb) 0 - (bo ^ 1));     /* mod n */
    if (fe_is_zero(r)) {
        goto out;
    }
    hash_to_scalar(e, hash, hlen);

    sc_mul(k, k, RR_N);                     /* k R */
    sc_inv(k, k);                           /* k^-1 R */
    sc_mul(t, r, RR_N);                     /* r R */
    sc_mul(t, t, d);                        /* r d */
    sc_add(t, t, e);                        /* e + r d */
    sc_mul(t, t, k);                        /* s = k^-1 (e + r d) */
    DECLASSIFY(t, sizeof t);                /* s: the output */
    if (fe_is_zero(t)) {
        goto out;
    }
    mp_to_bytes(sig, r);
    mp_to_bytes(sig + 32, t);
    ret = P256_SUCCESS;
out:
    zeroize(kb, sizeof kb);
    zeroize(d, sizeof d);
    zeroize(k, sizeof k);
    zeroize(t, sizeof t);
    return ret;
}

int p256_ecdsa_verify(const uint8_t sig[64], const uint8_t pub[64],
                      const uint8_t *hash, size_t hlen)
{
    fe r, s, e, u1, u2, qx, qy, t;
    jac R;

    if (sc_from_bytes(r, sig) == 0 || sc_from_bytes(s, sig + 32) == 0) {
        return P256_INVALID_SIGNATURE;
    }
    if (point_from_bytes(qx, qy, pub) != 0) {
        return P256_INVALID_PUBKEY;
    }
    hash_to_scalar(e, hash, hlen);
    sc_mul(s, s, RR_N);
    sc_inv(s, s);                   /* s^-1 R */
    sc_mul(u1, e, s);               /* e / s */
    sc_mul(u2, r, s);               /* r / s */
    mul_double_vt(&R, u1, u2, qx, qy);
    if (fe_is_zero(R.z)) {
        return P256_INVALID_SIGNATURE;
    }
    /* x(R) = X / Z^2 in {r, r + n} (x < p < 2n), without inverting Z */
    fe_sqr(s, R.z);
    fe_to_mont(t, r);
    fe_mul(t, t, s);
    if (fe_eq(t, R.x)) {
        return P256_SUCCESS;
    }
    if (mp_lt(r, P_MINUS_N)) {
        mp_add(t, r, N);
        fe_to_mont(t, t);
        fe_mul(t, t, s);
        if (fe_eq(t, R.x)) {
            return P256_SUCCESS;
        }
    }
    return P256_INVALID_SIGNATURE;
}

int p256_validate_pubkey(const uint8_t pub[64])
{
    fe x, y;
    return point_from_bytes(x, y, pub) == 0 ? P256_SUCCESS : P256_INVALID_PUBKEY;
}

int p256_validate_privkey(const uint8_t priv[32])
{
    fe s;
    limb ok = sc_from_bytes(s, priv);
    zeroize(s, sizeof s);
    return ok != 0 ? P256_SUCCESS : P256_INVALID_PRIVKEY;
}

#endif /* P256_GEN_TABLE */
