/*
 * Constant time, checked with valgrind's memcheck (the "ctgrind" method):
 * private keys and the random bytes behind nonces and new keys are marked
 * undefined (VALGRIND_MAKE_MEM_UNDEFINED), so memcheck reports every
 * conditional branch and every memory address that depends on them. p256.c
 * is built with -DP256_CT_VALGRIND, which declares defined the values that
 * are public by design where they become so (a validity verdict, a public
 * key, r and s); the test declares the outputs defined.
 *
 * Built for x86_64 only (run natively under valgrind), in every
 * configuration the release builds and the alternates the tests run
 * (p256.mk, CT_VARIANTS): x86_64's (4 x 64 with its assembly, window table,
 * divsteps inversion), aarch64's (4 x 64 in C, P256_SMALL, comb, Fermat),
 * armv7's (8 x 32, P256_SMALL, window table), and the 4 x 64 C code with
 * the table and divsteps; each renamed <prefix>_p256_*.
 *
 *   valgrind -q --error-exitcode=3 ct_p256
 *
 * Prints "N passed, 0 failed" (memcheck's own reports, if any, make valgrind
 * exit with 3).
 */
#include <stdio.h>
#include <string.h>

#include "memcheck.h"   /* valgrind's, from /usr/include/valgrind */

#include "p256.h"

#define DECL(p) \
    int p##_p256_gen_keypair(uint8_t *, uint8_t *); \
    int p##_p256_ecdh_shared_secret(uint8_t *, const uint8_t *, const uint8_t *); \
    int p##_p256_ecdsa_sign(uint8_t *, const uint8_t *, const uint8_t *, size_t); \
    int p##_p256_public_from_private(uint8_t *, const uint8_t *);
#define IMPL(p) { #p, p##_p256_gen_keypair, p##_p256_ecdh_shared_secret, p##_p256_ecdsa_sign, \
    p##_p256_public_from_private }
DECL(x64)
DECL(a64)
DECL(a32)
DECL(c64)

static unsigned counter;

/* deterministic bytes, then undefined: secrets from here on */
int p256_generate_random(uint8_t *out, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        out[i] = (uint8_t) (counter * 131 + i * 29 + 7);
    }
    out[0] &= 0x7f;     /* below n: accepted at the first draw */
    counter++;
    VALGRIND_MAKE_MEM_UNDEFINED(out, n);
    return 0;
}

int main(void)
{
    static const struct {
        const char *name;
        int (*gen_keypair)(uint8_t *, uint8_t *);
        int (*ecdh)(uint8_t *, const uint8_t *, const uint8_t *);
        int (*sign)(uint8_t *, const uint8_t *, const uint8_t *, size_t);
        int (*pub_from_priv)(uint8_t *, const uint8_t *);
    } impls[] = { IMPL(x64), IMPL(a64), IMPL(a32), IMPL(c64) };
    uint8_t priv[32], pub[64], peer[64], out[64], hash[32];
    unsigned long passed = 0, failed = 0;
    int ret;

    if (!RUNNING_ON_VALGRIND) {
        printf("FAIL: not running under valgrind\n");
        return 1;
    }
    for (unsigned i = 0; i < sizeof impls / sizeof impls[0]; i++) {
        for (unsigned n = 0; n < 3; n++) {
            /* a peer key (public) */
            uint8_t d2[32];
            ret = impls[i].gen_keypair(d2, peer);
            VALGRIND_MAKE_MEM_DEFINED(&ret, sizeof ret);
            VALGRIND_MAKE_MEM_DEFINED(peer, 64);
            if (ret != 0) {
                failed++;
                continue;
            }
            for (unsigned j = 0; j < 32; j++) {
                priv[j] = (uint8_t) (j * 37 + n * 101 + 1);
                hash[j] = (uint8_t) (j * 11 + n);
            }
            priv[0] &= 0x7f;
            if (n == 2) {
                memset(priv, 0, 31);    /* a small key: leading zero windows */
            }

            VALGRIND_MAKE_MEM_UNDEFINED(priv, 32);
            ret = impls[i].pub_from_priv(pub, priv);
            VALGRIND_MAKE_MEM_DEFINED(&ret, sizeof ret);
            VALGRIND_MAKE_MEM_DEFINED(pub, 64);
            passed += ret == 0;
            failed += ret != 0;

            VALGRIND_MAKE_MEM_UNDEFINED(priv, 32);
            ret = impls[i].ecdh(out, priv, peer);
            VALGRIND_MAKE_MEM_DEFINED(&ret, sizeof ret);
            VALGRIND_MAKE_MEM_DEFINED(out, 32);
            passed += ret == 0;
            failed += ret != 0;

            VALGRIND_MAKE_MEM_UNDEFINED(priv, 32);
            ret = impls[i].sign(out, priv, hash, 32);
            VALGRIND_MAKE_MEM_DEFINED(&ret, sizeof ret);
            VALGRIND_MAKE_MEM_DEFINED(out, 64);
            passed += ret == 0;
            failed += ret != 0;

            ret = impls[i].gen_keypair(priv, pub);
            VALGRIND_MAKE_MEM_DEFINED(&ret, sizeof ret);
            VALGRIND_MAKE_MEM_DEFINED(pub, 64);
            passed += ret == 0;
            failed += ret != 0;

            /* the export right after: the key pair cache's hit (the first
             * public_from_private of the next turn is a miss) */
            ret = impls[i].pub_from_priv(out, priv);
            VALGRIND_MAKE_MEM_DEFINED(&ret, sizeof ret);
            VALGRIND_MAKE_MEM_DEFINED(out, 64);
            passed += ret == 0 && memcmp(out, pub, 64) == 0;
            failed += ret != 0 || memcmp(out, pub, 64) != 0;
        }
        printf("%s: sign, gen_keypair, ecdh, public_from_private (cache hit and miss)\n", impls[i].name);
    }
    printf("%lu passed, %lu failed\n", passed, failed);
    return failed != 0;
}
