/*
 * White-box tests of p256.c's internals (the file is included), for 64-bit
 * limbs: the divsteps inversions against the Fermat ones, mod p and mod n,
 * on edge and random inputs; the signed-window recoding of scalars; the
 * key pair cache (hits, misses, wipes, one per thread). Built by
 * p256.mk for x86_64 (natively, with its assembly) and aarch64 (under qemu,
 * the C code), with -DP256_SAFEGCD=1 -DP256_WTABLE=1.
 *
 *   internal_p256     prints "internal: N passed, M failed"
 */
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <sys/random.h>

#include "../p256.c"

#if !P256_SAFEGCD || !P256_WTABLE || LB != 64
#error "build with 64-bit limbs, -DP256_SAFEGCD=1 -DP256_WTABLE=1"
#endif

static int rng_fail;

int p256_generate_random(uint8_t *out, unsigned n)
{
    if (rng_fail) {
        return -1;
    }
    return getrandom(out, n, 0) == (ssize_t) n ? 0 : -1;
}

static unsigned long passed, failed;

static void check(int ok, const char *what, const fe x)
{
    if (ok) {
        passed++;
        return;
    }
    if (++failed < 20) {
        printf("FAIL %s: x = %016llx %016llx %016llx %016llx\n", what, (unsigned long long) x[3],
               (unsigned long long) x[2], (unsigned long long) x[1], (unsigned long long) x[0]);
    }
}

static void rnd_below(fe x, const fe m)
{
    do {
        if (getrandom(x, sizeof(fe), 0) != (ssize_t) sizeof(fe)) {
            abort();
        }
    } while (!mp_lt(x, m));
}

/* x < m: edge values (0, 1, 2, m - 1, m - 2, powers of two and runs of ones
 * below m, their complements m - v), then random ones */
static int inputs(fe out[], int max, const fe m)
{
    int c = 0;
    fe one = { 1 }, v;

    memset(out[c++], 0, sizeof(fe));
    for (int k = 0; k < 256 && c + 4 <= max; k++) {
        memset(v, 0, sizeof v);
        v[k / 64] = (limb) 1 << (k % 64);           /* 2^k */
        if (mp_lt(v, m)) {
            memcpy(out[c++], v, sizeof v);
            mp_sub(out[c++], m, v);                 /* m - 2^k */
        }
        mp_sub(v, v, one);                          /* 2^k - 1 (all ones below k) */
        if (mp_lt(v, m)) {
            memcpy(out[c++], v, sizeof v);
            if (k > 0) {
                mp_sub(out[c++], m, v);             /* m - 2^k + 1 */
            }
        }
    }
    while (c < max) {
        rnd_below(out[c++], m);
    }
    return c;
}

static void test_inv(void)
{
    static fe xs[3000];
    fe a, b, t;
    int cnt;

    cnt = inputs(xs, 3000, P);
    for (int i = 0; i < cnt; i++) {
        fe_inv(a, xs[i]);
        fe_inv_fermat(b, xs[i]);
        check(fe_eq(a, b) != 0, "fe_inv = Fermat", xs[i]);
        fe_mul(t, a, xs[i]);                        /* x x^-1 R^... = 1 in Montgomery form */
        check(fe_eq(t, fe_is_zero(xs[i]) ? ZERO_FE : ONE_M) != 0, "x fe_inv(x) = 1", xs[i]);
    }
    cnt = inputs(xs, 3000, N);
    for (int i = 0; i < cnt; i++) {
        sc_inv(a, xs[i]);
        sc_inv_fermat(b, xs[i]);
        check(fe_eq(a, b) != 0, "sc_inv = Fermat", xs[i]);
    }
}

static void test_recode(void)
{
    static fe ks[3000];
    int cnt = inputs(ks, 3000, N);
    fe all = { (limb) -1, (limb) -1, (limb) -1, (limb) -1 };

    memcpy(ks[cnt - 1], all, sizeof(fe));           /* 2^256 - 1: the top window's carry */
    for (int i = 0; i < cnt; i++) {
        unsigned char mag[WT_WINDOWS], neg[WT_WINDOWS];
        fe acc = { 0 }, pw = { 1 }, d, t;
        int ok = 1;

        wt_recode(mag, neg, ks[i]);
        /* sum over windows of +-mag 32^i, mod 2^256 (the top window carries nothing out) */
        for (int w = 0; w < WT_WINDOWS; w++) {
            ok &= mag[w] <= 16 && neg[w] <= 1;     /* (neg with mag 0: a zero digit) */
            memset(d, 0, sizeof d);
            for (unsigned j = 0; j < mag[w]; j++) {
                mp_add(d, d, pw);
            }
            if (neg[w]) {
                mp_sub(acc, acc, d);
            } else {
                mp_add(acc, acc, d);
            }
            for (int s = 0; s < 5; s++) {
                mp_add(pw, pw, pw);
            }
        }
        memcpy(t, ks[i], sizeof t);
        check(ok && fe_eq(acc, t) != 0, "recoding: digits in [-16, 16], sum = k", ks[i]);
    }
}

/* The key pair cache: filled by gen_keypair, used by public_from_private
 * only for the same key, wiped by every public_from_private and by a failed
 * gen_keypair; one per thread. */
static int cache_empty(void)
{
    static const uint8_t zero[sizeof keycache];
    return memcmp(&keycache, zero, sizeof keycache) == 0;
}

static void *other_thread(void *arg)
{
    uint8_t d[32], q[64];
    int *ok = arg;
    *ok = cache_empty() && p256_gen_keypair(d, q) == 0 && keycache.full == 1
          && memcmp(keycache.priv, d, 32) == 0;
    return NULL;
}

static void test_keycache(void)
{
    static const fe none;
    uint8_t a[32], pa[64], b[32], pb[64], out[64];

    for (int round = 0; round < 50; round++) {
        int ok;
        ok = p256_gen_keypair(a, pa) == 0;
        check(ok && keycache.full == 1 && memcmp(keycache.priv, a, 32) == 0
              && memcmp(keycache.pub, pa, 64) == 0, "cache: filled by gen_keypair", none);
        /* a hit: the cached public key; the entry wiped */
        memset(out, 0xaa, sizeof out);
        ok = p256_public_from_private(out, a) == 0 && memcmp(out, pa, 64) == 0;
        check(ok && cache_empty(), "cache: hit, then wiped", none);
        /* a miss (another key): computed; the entry wiped too */
        ok = p256_gen_keypair(a, pa) == 0 && p256_gen_keypair(b, pb) == 0;
        check(ok && memcmp(keycache.priv, b, 32) == 0, "cache: replaced by the next pair", none);
        ok = p256_public_from_private(out, a) == 0 && memcmp(out, pa, 64) == 0;
        check(ok && cache_empty(), "cache: miss computes, and wipes", none);
        /* a key that differs in one bit from the cached one: a miss */
        ok = p256_gen_keypair(a, pa) == 0;
        memcpy(b, a, 32);
        b[31 - (round % 32)] ^= (uint8_t) (1u << (round % 8));
        p256_public_from_private(out, b);
        check(ok && cache_empty() && memcmp(out, pa, 64) != 0, "cache: one bit away is a miss", none);
        /* a failed generation wipes the entry */
        ok = p256_gen_keypair(a, pa) == 0;
        rng_fail = 1;
        ok = ok && p256_gen_keypair(b, pb) == P256_RANDOM_FAILED;
        rng_fail = 0;
        check(ok && cache_empty(), "cache: wiped by a failed gen_keypair", none);
    }
    /* one entry per thread: another thread starts empty and leaves ours */
    uint8_t d[32], q[64];
    int ok = p256_gen_keypair(d, q) == 0, ok2 = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, other_thread, &ok2) != 0 || pthread_join(t, NULL) != 0) {
        ok = 0;
    }
    check(ok && ok2 && keycache.full == 1 && memcmp(keycache.priv, d, 32) == 0,
          "cache: one per thread", none);
    ok = p256_public_from_private(out, d) == 0 && memcmp(out, q, 64) == 0;
    check(ok && cache_empty(), "cache: hit after the other thread", none);
}

#ifdef P256_FE_MUL_SMALL
/* x86_64's fe_mul_small(z, a, c) against c - 1 additions, c = 1..8. */
static void test_mul_small(void)
{
    fe xs[64], one = { 1 };
    int cnt = 0;
    memset(xs[cnt++], 0, sizeof(fe));
    memcpy(xs[cnt++], one, sizeof(fe));
    mp_sub(xs[cnt++], P, one);                  /* p - 1 */
    memcpy(xs[cnt], P, sizeof(fe));
    xs[cnt][0] -= 2;                            /* p - 2 */
    cnt++;
    for (int i = 0; i < 8; i++) {               /* around p / c for the reductions */
        fe t = { 0 };
        t[NL - 1] = (limb) 1 << (LB - 1 - (i % 4));
        mp_sub(xs[cnt++], P, t);
        memcpy(xs[cnt++], t, sizeof(fe));
    }
    for (int i = 0; i < 3; i++) {               /* all ones in one limb (limb 3: >= p) */
        memset(xs[cnt], 0, sizeof(fe));
        xs[cnt++][i] = (limb) -1;
    }
    memset(xs[cnt], 0, sizeof(fe));
    xs[cnt++][3] = (limb) 0xfffffffeffffffffULL;
    while (cnt < 64) {
        rnd_below(xs[cnt++], P);
    }
    for (int rep = 0; rep < 20; rep++) {
        for (int k = 0; k < 64; k++) {
            if (rep > 0 && k < 24) {     /* the edge values once */
                continue;
            }
            if (rep > 0) {
                rnd_below(xs[k], P);
            }
            fe want, got;
            memcpy(want, xs[k], sizeof(fe));
            for (limb c = 1; c <= 8; c++) {
                if (c > 1) {
                    fe_add(want, want, xs[k]);
                }
                fe_mul_small(got, xs[k], c);
                check(fe_eq(got, want) != 0, "fe_mul_small against additions", xs[k]);
                memcpy(got, xs[k], sizeof(fe));
                fe_mul_small(got, got, c);          /* in place */
                check(fe_eq(got, want) != 0, "fe_mul_small in place", xs[k]);
            }
        }
    }
}
#endif

int main(void)
{
    test_inv();
    test_recode();
    test_keycache();
#ifdef P256_FE_MUL_SMALL
    test_mul_small();
#endif
    printf("internal: %lu passed, %lu failed\n", passed, failed);
    return failed != 0;
}
