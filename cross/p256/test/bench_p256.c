/*
 * Benchmark of cross/p256 against p256-m (when built with -DHAVE_REF).
 *
 *   bench_p256                 operations per second (wall time), a table
 *   bench_p256 --ops WHAT N    just N operations of WHAT (for counting guest
 *                              instructions under qemu, test/run.sh):
 *                              {ours,ref}-{sign,verify,keygen,ecdh}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "p256.h"

#ifdef HAVE_REF
int ref_p256_gen_keypair(uint8_t *, uint8_t *);
int ref_p256_ecdh_shared_secret(uint8_t *, const uint8_t *, const uint8_t *);
int ref_p256_ecdsa_sign(uint8_t *, const uint8_t *, const uint8_t *, size_t);
int ref_p256_ecdsa_verify(const uint8_t *, const uint8_t *, const uint8_t *, size_t);
#endif

int p256_generate_random(uint8_t *out, unsigned n)
{
    return getrandom(out, n, 0) == (ssize_t) n ? 0 : -1;
}

int test_p256_random(uint8_t *out, unsigned n);
int test_p256_random(uint8_t *out, unsigned n)
{
    return p256_generate_random(out, n);
}

typedef struct {
    int (*gen_keypair)(uint8_t *, uint8_t *);
    int (*ecdh)(uint8_t *, const uint8_t *, const uint8_t *);
    int (*sign)(uint8_t *, const uint8_t *, const uint8_t *, size_t);
    int (*verify)(const uint8_t *, const uint8_t *, const uint8_t *, size_t);
} impl;

static const impl OURS = { p256_gen_keypair, p256_ecdh_shared_secret, p256_ecdsa_sign, p256_ecdsa_verify };
#ifdef HAVE_REF
static const impl REF = { ref_p256_gen_keypair, ref_p256_ecdh_shared_secret, ref_p256_ecdsa_sign,
                          ref_p256_ecdsa_verify };
#endif

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

/* operations per second: the best of 3 runs of about 0.3 s */
static double rate(const impl *im, const char *what)
{
    double best = 0;
    for (int r = 0; r < 3; r++) {
        long n = 0;
        double t0 = now(), t;
        do {
            if (run(im, what, 16) != 0) {
                printf("%s failed\n", what);
                exit(1);
            }
            n += 16;
            t = now() - t0;
        } while (t < 0.3);
        if (n / t > best) {
            best = n / t;
        }
    }
    return best;
}

int main(int argc, char **argv)
{
    uint8_t d2[32];
    static const char *whats[] = { "sign", "verify", "keygen", "ecdh" };

    if (p256_gen_keypair(priv, pub) != 0 || p256_gen_keypair(d2, peer) != 0) {
        return 1;
    }
    p256_generate_random(hash, 32);
    if (p256_ecdsa_sign(sig, priv, hash, 32) != 0) {
        return 1;
    }
    if (argc == 4 && strcmp(argv[1], "--ops") == 0) {
        const impl *im = &OURS;
        const char *what = argv[2];
        if (strncmp(what, "ours-", 5) == 0) {
            what += 5;
        } else if (strncmp(what, "ref-", 4) == 0) {
#ifdef HAVE_REF
            im = &REF;
            what += 4;
#else
            return 3;
#endif
        }
        return run(im, what, atol(argv[3])) != 0;
    }
#ifndef HAVE_REF
    printf("p256-m reference: skipped (p256-m.c not found, see p256.mk)\n");
#endif
    printf("%-8s %12s %12s", "", "ours op/s", "us/op");
#ifdef HAVE_REF
    printf(" %12s %12s %8s", "p256-m op/s", "us/op", "speedup");
#endif
    printf("\n");
    for (int i = 0; i < 4; i++) {
        double o = rate(&OURS, whats[i]);
        printf("%-8s %12.0f %12.1f", whats[i], o, 1e6 / o);
#ifdef HAVE_REF
        double r = rate(&REF, whats[i]);
        printf(" %12.0f %12.1f %7.1fx", r, 1e6 / r, o / r);
#endif
        printf("\n");
    }
    return 0;
}
