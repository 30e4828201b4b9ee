/*
 * Benchmark: ChaCha20-Poly1305 AEAD encryption of one TLS record (13-byte
 * AAD, like TLS 1.2) of 64 B, 1 KiB and 16 KiB, through mbedTLS's
 * chachapoly.c: on our primitives (each implementation this CPU has) and on
 * mbedTLS's portable chacha20.c/poly1305.c (the reference). Also ChaCha20 and
 * Poly1305 alone at 16 KiB.
 *
 *   bench_chachapoly                 MB/s table (about 0.3 s per cell)
 *   bench_chachapoly --ops IMPL SIZE N [aead|chacha20|poly1305]
 *                                    N operations (default AEAD encryption)
 *                                    on SIZE bytes with IMPL ("ref" =
 *                                    mbedTLS) and nothing else; for counting
 *                                    instructions under qemu
 */
#include "mbedtls/chacha20.h"
#include "mbedtls/chachapoly.h"
#include "mbedtls/poly1305.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chachapoly_internal.h"
#include "ref.h"

static uint8_t key[32], nonce[12], aad[13], tag[16];
static uint8_t *in, *out;
static mbedtls_chachapoly_context ours;

/* CPU time of this process: the machine may be shared (other builds), and
 * time spent waiting for a CPU is not the code's. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

enum what { AEAD, CHACHA, POLY };

static void once(int ref, enum what w, size_t len)
{
    nonce[0]++;   /* a new nonce per record, as in TLS */
    switch (w) {
    case AEAD:
        if (ref) {
            ref_bench_aead_encrypt(nonce, aad, sizeof(aad), in, len, out, tag);
        } else {
            mbedtls_chachapoly_encrypt_and_tag(&ours, len, nonce, aad, sizeof(aad), in, out, tag);
        }
        break;
    case CHACHA:
        if (ref) {
            ref_chacha20_crypt(key, nonce, 1, len, in, out);
        } else {
            mbedtls_chacha20_crypt(key, nonce, 1, len, in, out);
        }
        break;
    case POLY:
        if (ref) {
            ref_poly1305_mac(key, in, len, tag);
        } else {
            mbedtls_poly1305_mac(key, in, len, tag);
        }
        break;
    }
}

/* One timed run of about 20 ms: MB/s (10^6 bytes per second of CPU time). */
static double run(int ref, enum what w, size_t len)
{
    size_t n = 0, batch = 1 + (1 << 18) / len;
    double t0 = now(), t;

    do {
        size_t i;
        for (i = 0; i < batch; i++) {
            once(ref, w, len);
        }
        n += batch;
        t = now() - t0;
    } while (t < 0.02);
    return (double) n * (double) len / t / 1e6;
}

/* Best of 7 runs each of the reference and of ours, interleaved, so that both
 * see the same machine. */
static void measure(enum what w, size_t len, double *ref, double *ours_mbps)
{
    int i;

    *ref = *ours_mbps = 0;
    for (i = 0; i < 7; i++) {
        double r = run(1, w, len), o = run(0, w, len);
        if (r > *ref) {
            *ref = r;
        }
        if (o > *ours_mbps) {
            *ours_mbps = o;
        }
    }
}

int main(int argc, char **argv)
{
    static const char *impls[] = { "portable", "sse2", "avx2", "neon" };
    static const size_t sizes[] = { 64, 1024, 16384 };
    size_t i, j;

    in = calloc(1, 16384 + 64);
    out = calloc(1, 16384 + 64);
    memset(key, 7, sizeof(key));
    memset(aad, 3, sizeof(aad));
    mbedtls_chachapoly_init(&ours);
    mbedtls_chachapoly_setkey(&ours, key);
    ref_bench_aead_setkey(key);

    if ((argc == 5 || argc == 6) && strcmp(argv[1], "--ops") == 0) {
        int ref = strcmp(argv[2], "ref") == 0;
        size_t len = strtoul(argv[3], NULL, 0), n = strtoul(argv[4], NULL, 0);
        enum what w = argc == 5 || strcmp(argv[5], "aead") == 0 ? AEAD :
                      strcmp(argv[5], "chacha20") == 0 ? CHACHA : POLY;

        if (!ref && agent_chachapoly_use(argv[2]) != 0) {
            fprintf(stderr, "%s: not available\n", argv[2]);
            return 1;
        }
        for (i = 0; i < n; i++) {
            once(ref, w, len);
        }
        return 0;
    }

    printf("ChaCha20-Poly1305 AEAD encrypt of one TLS record (13-byte AAD); "
           "MB/s of CPU time, best of 7; run-time choice \"%s\"\n", agent_chachapoly_name());
    printf("  %-24s %9s %9s %9s   %9s %9s\n", "", "64 B", "1 KiB", "16 KiB",
           "chacha20", "poly1305");
    for (i = 0; i < sizeof(impls) / sizeof(impls[0]); i++) {
        double r[5], o[5];

        if (agent_chachapoly_use(impls[i]) != 0) {
            continue;
        }
        for (j = 0; j < 3; j++) {
            measure(AEAD, sizes[j], &r[j], &o[j]);
        }
        measure(CHACHA, 16384, &r[3], &o[3]);
        measure(POLY, 16384, &r[4], &o[4]);
        printf("  %-24s %9.0f %9.0f %9.0f   %9.0f %9.0f\n", "mbedTLS 2.28 portable",
               r[0], r[1], r[2], r[3], r[4]);
        printf("  ours: %-18s %9.0f %9.0f %9.0f   %9.0f %9.0f\n", impls[i],
               o[0], o[1], o[2], o[3], o[4]);
        printf("  %-24s %8.2fx %8.2fx %8.2fx   %8.2fx %8.2fx\n", "  ours / mbedTLS",
               o[0] / r[0], o[1] / r[1], o[2] / r[2], o[3] / r[3], o[4] / r[4]);
    }
    agent_chachapoly_use("auto");
    return 0;
}
