/*
 * Benchmark: X25519 scalar multiplications per second, ours against mbedTLS
 * 2.28's generic code (the reference, ref.h): with a variable point (the
 * shared secret) and with the base point (the key pair), and both steps of
 * one side of an ECDHE key exchange through the mbedtls_ecdh_* API (ours: the
 * release library with our ALT; mbedTLS: the reference's own functions).
 *
 *   bench_x25519               the table (about 0.3 s per cell)
 *   bench_x25519 --ops WHAT N  N operations of one kind and nothing else, for
 *                              counting instructions under qemu; WHAT is
 *                              ours, ref (variable point), ours-base, ref-base
 */
#include "mbedtls/ecdh.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ecdh_io.h"
#include "ref.h"
#include "x25519.h"

static unsigned char k[32], u[32] = { 9 }, out[32];
static uint64_t rs = 1;

static int rng(void *ctx, unsigned char *p, size_t n)   /* splitmix64 bytes */
{
    (void) ctx;
    while (n-- > 0) {
        uint64_t z = (rs += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        *p++ = (unsigned char) (z ^ (z >> 31));
    }
    return 0;
}

/* CPU time of this process: the machine may be shared. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

enum what { OURS, REF, OURS_BASE, REF_BASE, OURS_ECDH, REF_ECDH };

static mbedtls_ecp_group grp;
static unsigned char peer_d[ECDH_NB];
static struct ecdh_point peer_q;

static void once(enum what w)
{
    switch (w) {
    case OURS:
        agent_x25519(out, k, u);
        break;
    case REF:
        ref_x25519(out, k, u, rng, NULL);
        break;
    case OURS_BASE:
        agent_x25519_base(out, k);
        break;
    case REF_BASE:
        ref_x25519(out, k, (const unsigned char[32]) { 9 }, rng, NULL);
        break;
    case OURS_ECDH: {   /* key pair, then the secret with the peer's key */
        mbedtls_mpi d, z;
        mbedtls_ecp_point q, qp;

        mbedtls_mpi_init(&d);
        mbedtls_mpi_init(&z);
        mbedtls_ecp_point_init(&q);
        mbedtls_ecp_point_init(&qp);
        ecdh_point_in(&peer_q, &qp);
        if (mbedtls_ecdh_gen_public(&grp, &d, &q, rng, NULL) != 0 ||
            mbedtls_ecdh_compute_shared(&grp, &z, &qp, &d, rng, NULL) != 0) {
            abort();
        }
        mbedtls_mpi_free(&d);
        mbedtls_mpi_free(&z);
        mbedtls_ecp_point_free(&q);
        mbedtls_ecp_point_free(&qp);
        break;
    }
    case REF_ECDH: {
        unsigned char d[ECDH_NB], z[ECDH_NB];
        struct ecdh_point q;

        if (ref_ecdh_gen_public(MBEDTLS_ECP_DP_CURVE25519, d, &q, rng, NULL) != 0 ||
            ref_ecdh_compute_shared(MBEDTLS_ECP_DP_CURVE25519, d, &peer_q, z, rng, NULL) != 0) {
            abort();
        }
        break;
    }
    }
    k[0] ^= out[1];   /* a new scalar each time */
}

/* One timed run of about 40 ms: operations per second of CPU time. */
static double run(enum what w)
{
    size_t n = 0, batch = (w == OURS || w == OURS_BASE) ? 64 : 2;
    double t0 = now(), t;

    do {
        size_t i;
        for (i = 0; i < batch; i++) {
            once(w);
        }
        n += batch;
        t = now() - t0;
    } while (t < 0.04);
    return (double) n / t;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        enum what ours, ref;
    } rows[] = {
        { "X25519, variable point", OURS, REF },
        { "X25519, base point", OURS_BASE, REF_BASE },
        { "ECDH gen_public + compute_shared", OURS_ECDH, REF_ECDH },
    };
    size_t r;
    int i;

    rng(NULL, k, 32);
    rng(NULL, u, 32);
    mbedtls_ecp_group_init(&grp);
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_CURVE25519) != 0 ||
        ref_ecdh_gen_public(MBEDTLS_ECP_DP_CURVE25519, peer_d, &peer_q, rng, NULL) != 0) {
        return 1;
    }

    if (argc == 4 && strcmp(argv[1], "--ops") == 0) {
        static const char *names[] = { "ours", "ref", "ours-base", "ref-base" };
        long n = atol(argv[3]);
        enum what w;

        for (w = OURS; w <= REF_BASE; w++) {
            if (strcmp(argv[2], names[w]) == 0) {
                while (n-- > 0) {
                    once(w);
                }
                return 0;
            }
        }
        return 2;
    }

    printf("%-34s %14s %14s %9s %13s\n", "operations per second (CPU time)", "mbedTLS 2.28", "ours", "speed-up",
           "ours: us/op");
    for (r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        double best_ours = 0, best_ref = 0;

        /* best of 7, interleaved: both see the same machine */
        for (i = 0; i < 7; i++) {
            double a = run(rows[r].ref), b = run(rows[r].ours);
            if (a > best_ref) {
                best_ref = a;
            }
            if (b > best_ours) {
                best_ours = b;
            }
        }
        printf("%-34s %14.0f %14.0f %8.1fx %13.1f\n", rows[r].name, best_ref, best_ours,
               best_ours / best_ref, 1e6 / best_ours);
    }
    return 0;
}
