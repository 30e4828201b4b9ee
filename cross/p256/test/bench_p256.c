/*
 * Benchmark of cross/p256, against cross/p256 at an earlier revision (built
 * with -DHAVE_BASE: p256.mk's P256_BASE, renamed base_*) and p256-m (built
 * with -DHAVE_REF, renamed ref_*).
 *
 *   bench_p256                 microseconds per operation (wall time, the
 *                              best of 3 runs of 0.3 s), the operations of
 *                              each implementation interleaved
 *   bench_p256 --ops WHAT N    just N operations of WHAT (for counting guest
 *                              instructions under qemu, test/run.sh):
 *                              {ours,base,ref}-{sign,verify,keygen,keyshare,ecdh}
 *                              (keyshare: gen_keypair then public_from_private,
 *                              as PSA makes an ECDHE share),
 *                              with the same keys and hash in every run
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "p256.h"

#define DECL(p) \
    int p##p256_gen_keypair(uint8_t *, uint8_t *); \
    int p##p256_ecdh_shared_secret(uint8_t *, const uint8_t *, const uint8_t *); \
    int p##p256_ecdsa_sign(uint8_t *, const uint8_t *, const uint8_t *, size_t); \
    int p##p256_ecdsa_verify(const uint8_t *, const uint8_t *, const uint8_t *, size_t); \
    int p##p256_public_from_private(uint8_t *, const uint8_t *);
#define IMPL(n, p) { n, p##p256_gen_keypair, p##p256_ecdh_shared_secret, p##p256_ecdsa_sign, \
    p##p256_ecdsa_verify, p##p256_public_from_private }
#ifdef HAVE_BASE
DECL(base_)
#endif
#ifdef HAVE_REF
DECL(ref_)
#endif

/* --ops: the same keys, hash and nonces in every run (xorshift64*, fixed
 * seed), so that instruction counts of two builds compare the same work
 * (verification's cost depends on the key and the signature) */
static int deterministic;
static uint64_t xs_state = 0x9e3779b97f4a7c15ULL;

int p256_generate_random(uint8_t *out, unsigned n)
{
    if (deterministic) {
        for (unsigned i = 0; i < n; i++) {
            xs_state ^= xs_state >> 12;
            xs_state ^= xs_state << 25;
            xs_state ^= xs_state >> 27;
            out[i] = (uint8_t) ((xs_state * 0x2545f4914f6cdd1dULL) >> 56);
        }
        return 0;
    }
    return getrandom(out, n, 0) == (ssize_t) n ? 0 : -1;
}

int test_p256_random(uint8_t *out, unsigned n);
int test_p256_random(uint8_t *out, unsigned n)
{
    return p256_generate_random(out, n);
}

typedef struct {
    const char *name;
    int (*gen_keypair)(uint8_t *, uint8_t *);
    int (*ecdh)(uint8_t *, const uint8_t *, const uint8_t *);
    int (*sign)(uint8_t *, const uint8_t *, const uint8_t *, size_t);
    int (*verify)(const uint8_t *, const uint8_t *, const uint8_t *, size_t);
    int (*pub_from_priv)(uint8_t *, const uint8_t *);
} impl;

static const impl IMPLS[] = {
    IMPL("ours", ),
#ifdef HAVE_BASE
    IMPL("base", base_),
#endif
#ifdef HAVE_REF
    IMPL("ref", ref_),
#endif
};
#define NIMPLS (sizeof IMPLS / sizeof IMPLS[0])

static uint8_t priv[32], pub[64], peer[64], hash[32], sig[64], out[64];

static int run(const impl *im, const char *what, long n)
{
    int bad = 0;
    for (long i = 0; i < n; i++) {
        if (strcmp(what, "sign") == 0) {
            bad |= im->sign(out, priv, hash, 32);
        } else if (strcmp(what, "verify") == 0) {
            bad |= im->verify(sig, pub, hash, 32);
        } else if (strcmp(what, "keygen") == 0) {
            uint8_t d[32];
            bad |= im->gen_keypair(d, out);
        } else if (strcmp(what, "keyshare") == 0) {
            /* what PSA does for an ECDHE share: generate, then export */
            uint8_t d[32];
            bad |= im->gen_keypair(d, out);
            bad |= im->pub_from_priv(out, d);
        } else if (strcmp(what, "ecdh") == 0) {
            bad |= im->ecdh(out, priv, peer);
        } else {
            return -1;
        }
    }
    return bad;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* operations per second of one run of about 0.3 s */
static double rate(const impl *im, const char *what)
{
    long n = 0;
    double t0 = now(), t;
    do {
        if (run(im, what, 16) != 0) {
            printf("%s %s failed\n", im->name, what);
            exit(1);
        }
        n += 16;
        t = now() - t0;
    } while (t < 0.3);
    return n / t;
}

int main(int argc, char **argv)
{
    uint8_t d2[32];
    static const char *whats[] = { "sign", "verify", "keygen", "keyshare", "ecdh" };

    deterministic = argc == 4 && strcmp(argv[1], "--ops") == 0;
    if (p256_gen_keypair(priv, pub) != 0 || p256_gen_keypair(d2, peer) != 0) {
        return 1;
    }
    p256_generate_random(hash, 32);
    if (p256_ecdsa_sign(sig, priv, hash, 32) != 0) {
        return 1;
    }
    if (argc == 4 && strcmp(argv[1], "--ops") == 0) {
        const char *dash = strchr(argv[2], '-');
        if (dash == NULL) {
            return 2;
        }
        for (unsigned i = 0; i < NIMPLS; i++) {
            if (strncmp(argv[2], IMPLS[i].name, (size_t) (dash - argv[2])) == 0
                && IMPLS[i].name[dash - argv[2]] == 0) {
                return run(&IMPLS[i], dash + 1, atol(argv[3])) != 0;
            }
        }
        return 3;   /* not built in */
    }
#ifndef HAVE_BASE
    printf("before (base): not built (make bench-p256 P256_BASE=<git revision>)\n");
#endif
#ifndef HAVE_REF
    printf("p256-m reference: skipped (p256-m.c not found, see p256.mk)\n");
#endif
    printf("%-8s %10s", "us/op", "ours");
#ifdef HAVE_BASE
    printf(" %10s %8s", "before", "speedup");
#endif
#ifdef HAVE_REF
    printf(" %10s", "p256-m");
#endif
    printf("\n");
    for (int i = 0; i < 5; i++) {
        /* best of 3 rounds, the implementations interleaved in each round */
        double best[NIMPLS] = { 0 };
        for (int r = 0; r < 3; r++) {
            for (unsigned j = 0; j < NIMPLS; j++) {
                double v = rate(&IMPLS[j], whats[i]);
                if (v > best[j]) {
                    best[j] = v;
                }
            }
        }
        printf("%-8s %10.1f", whats[i], 1e6 / best[0]);
#ifdef HAVE_BASE
        printf(" %10.1f %7.2fx", 1e6 / best[1], best[0] / best[1]);
#endif
#ifdef HAVE_REF
        printf(" %10.1f", 1e6 / best[NIMPLS - 1]);
#endif
        printf("\n");
    }
    return 0;
}
