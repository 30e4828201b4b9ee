/*
 * Tests and benchmark of cross/sha256 (README.md), x86_64 only. Linked with
 * the release's libmbedcrypto.a (its sha256.c calls our compression function
 * through MBEDTLS_SHA256_PROCESS_ALT), our object as the release builds it,
 * and mbedTLS's own sha256.c without the ALT, built at -Os like the release's
 * mbedTLS and renamed ref_* (ref_rename.h): the reference and "before".
 *
 *   test_sha256 [--impl all|shani|portable]   ends with "N passed, M failed"
 *   test_sha256 --bench                       ns per block, MB/s, short hashes
 */
#define MBEDTLS_ALLOW_PRIVATE_ACCESS
#include "mbedtls/sha256.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sha256_x86.h"
#include "ref.h"

static int passed, failed;

static void check(int ok, const char *impl, const char *what, long arg)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s: %s (%ld)\n", impl, what, arg);
    }
}

static void hex32(const char *hex, uint8_t out[32])
{
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t) v;
    }
}

/* xorshift64*: deterministic test data */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}
static void rnd_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t) (rnd() >> 56);
    }
}

/* Hashes msg through the mbedtls_sha256_* API in pieces of random sizes
 * (or in one piece when split is 0). */
static void hash_split(const uint8_t *msg, size_t len, int split, uint8_t out[32])
{
    mbedtls_sha256_context ctx;
    mbedtls_sha256_init(&ctx);
    mbedtls_sha256_starts(&ctx, 0);
    size_t off = 0;
    while (off < len) {
        size_t n = len - off;
        if (split && n > 1) {
            n = (size_t) (rnd() % (n < 200 ? n : 200)) + 1;
        }
        mbedtls_sha256_update(&ctx, msg + off, n);
        off += n;
    }
    mbedtls_sha256_finish(&ctx, out);
    mbedtls_sha256_free(&ctx);
}

static void test_impl(const char *impl)
{
    uint8_t d[32], want[32];
    static uint8_t buf[1000000];

    /* FIPS 180-4 examples (NIST's "SHA256.pdf" example values). */
    mbedtls_sha256((const uint8_t *) "abc", 3, d, 0);
    hex32("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want);
    check(memcmp(d, want, 32) == 0, impl, "FIPS 180-4 \"abc\"", 3);

    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    mbedtls_sha256((const uint8_t *) m448, strlen(m448), d, 0);
    hex32("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", want);
    check(memcmp(d, want, 32) == 0, impl, "FIPS 180-4 448-bit message", 56);

    memset(buf, 'a', sizeof(buf));
    hex32("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", want);
    mbedtls_sha256(buf, sizeof(buf), d, 0);
    check(memcmp(d, want, 32) == 0, impl, "FIPS 180-4 1,000,000 x 'a', one call", 1000000);
    hash_split(buf, sizeof(buf), 1, d);
    check(memcmp(d, want, 32) == 0, impl, "FIPS 180-4 1,000,000 x 'a', random pieces", 1000000);

    hex32("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want);
    mbedtls_sha256(buf, 0, d, 0);
    check(memcmp(d, want, 32) == 0, impl, "empty message", 0);

    /* Lengths 0..200 (every padding case: 55, 56, 63, 64, 119, 120, ...):
     * against the reference one by one, and all together against Python's
     * hashlib (OpenSSL): the SHA-256 of the 201 digests of
     *   bytes(((i*7 + n*13 + 1) & 0xff) for i in range(n)), n = 0..200. */
    mbedtls_sha256_context all;
    mbedtls_sha256_init(&all);
    mbedtls_sha256_starts(&all, 0);
    for (int n = 0; n <= 200; n++) {
        uint8_t msg[200], r[32];
        for (int i = 0; i < n; i++) {
            msg[i] = (uint8_t) ((i * 7 + n * 13 + 1) & 0xff);
        }
        mbedtls_sha256(msg, (size_t) n, d, 0);
        ref_sha256(msg, (size_t) n, r, 0);
        check(memcmp(d, r, 32) == 0, impl, "length against the reference", n);
        hash_split(msg, (size_t) n, 1, r);
        check(memcmp(d, r, 32) == 0, impl, "length, in random pieces", n);
        mbedtls_sha256_update(&all, d, 32);
    }
    mbedtls_sha256_finish(&all, d);
    mbedtls_sha256_free(&all);
    hex32("8332820e71d30883197cfc81c2b35436c7c2d706ab42b2ec6be6f735323ddefc", want);
    check(memcmp(d, want, 32) == 0, impl, "lengths 0..200 against hashlib", 200);

    /* Random messages up to 5,000 bytes, in random pieces, against the reference. */
    for (int t = 0; t < 300; t++) {
        size_t n = (size_t) (rnd() % 5000);
        uint8_t r[32];
        rnd_bytes(buf, n);
        hash_split(buf, n, (int) (t & 1), d);
        ref_sha256(buf, n, r, 0);
        check(memcmp(d, r, 32) == 0, impl, "random message against the reference", (long) n);
    }

    /* SHA-224 (the same compression, other initial values) if it is built. */
#if defined(MBEDTLS_SHA224_C)
    mbedtls_sha256((const uint8_t *) "abc", 3, d, 1);
    hex32("23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7", want);
    check(memcmp(d, want, 28) == 0, impl, "SHA-224 \"abc\"", 3);
#endif
}

/* The block functions directly: random states and blocks, both against the
 * reference's compression (mbedTLS's C). */
static void test_blocks(int have_shani)
{
    for (int t = 0; t < 2000; t++) {
        uint8_t data[64 * 4];
        uint32_t s0[8], s1[8], s2[8];
        size_t nb = (size_t) (t % 4) + 1;
        rnd_bytes(data, sizeof(data));
        for (int i = 0; i < 8; i++) {
            s0[i] = (uint32_t) rnd();
        }
        memcpy(s1, s0, sizeof(s0));
        memcpy(s2, s0, sizeof(s0));
        mbedtls_sha256_context ref;
        ref_sha256_init(&ref);
        memcpy(ref.state, s0, sizeof(s0));
        for (size_t b = 0; b < nb; b++) {
            ref_internal_sha256_process(&ref, data + 64 * b);
        }
        agent_sha256_blocks_portable(s1, data, nb);
        check(memcmp(s1, ref.state, 32) == 0, "portable", "blocks against the reference", t);
        if (have_shani) {
            agent_sha256_blocks_shani(s2, data, nb);
            check(memcmp(s2, ref.state, 32) == 0, "shani", "blocks against the reference", t);
        }
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef void block_fn(uint32_t state[8], const uint8_t *data, size_t nblocks);

static void ref_blocks(uint32_t state[8], const uint8_t *data, size_t nblocks)
{
    mbedtls_sha256_context c;
    memcpy(c.state, state, 32);
    while (nblocks-- > 0) {
        ref_internal_sha256_process(&c, data);
        data += 64;
    }
    memcpy(state, c.state, 32);
}

/* The best of 5 rounds of ~0.2 s. */
static double bench_blocks(block_fn *f, const uint8_t *buf, size_t nb)
{
    uint32_t st[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        long iters = 0;
        double t0 = now(), t1;
        do {
            for (int i = 0; i < 64; i++) {
                if (f == ref_blocks) {
                    ref_blocks(st, buf, nb);
                } else {
                    f(st, buf, nb);
                }
            }
            iters += 64;
            t1 = now();
        } while (t1 - t0 < 0.2);
        double ns = (t1 - t0) * 1e9 / (double) (iters * (long) nb);
        if (ns < best) {
            best = ns;
        }
    }
    __asm__ volatile ("" : : "r" (st) : "memory");
    return best;
}

/* A whole short hash (32 bytes: one compression plus mbedTLS's glue). */
static double bench_short(int ref)
{
    uint8_t msg[32] = { 1 }, d[32];
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        long iters = 0;
        double t0 = now(), t1;
        do {
            for (int i = 0; i < 256; i++) {
                if (ref) {
                    ref_sha256(msg, sizeof(msg), d, 0);
                } else {
                    mbedtls_sha256(msg, sizeof(msg), d, 0);
                }
                msg[0] ^= d[0];
            }
            iters += 256;
            t1 = now();
        } while (t1 - t0 < 0.2);
        double ns = (t1 - t0) * 1e9 / (double) iters;
        if (ns < best) {
            best = ns;
        }
    }
    return best;
}

static void bench(void)
{
    static uint8_t buf[64 * 64];
    int have = agent_cpu_has_shani();
    rnd_bytes(buf, sizeof(buf));
    printf("SHA-256 on x86_64, best of 5 rounds of 0.2 s:\n");
    printf("%-34s %10s %10s %12s\n", "", "ns/block", "MB/s", "32-byte hash");
    const struct { const char *name; block_fn *f; } rows[] = {
        { "mbedTLS C at -Os (before)", ref_blocks },
        { "ours, portable C", agent_sha256_blocks_portable },
        { "ours, SHA extensions", agent_sha256_blocks_shani },
    };
    for (int i = 0; i < 3; i++) {
        if (i == 2 && !have) {
            printf("%-34s (this CPU has no SHA extensions)\n", rows[i].name);
            continue;
        }
        double ns = bench_blocks(rows[i].f, buf, 64);
        double sh;
        if (i == 0) {
            sh = bench_short(1);
        } else {
            agent_sha256_use(i == 1 ? "portable" : "shani");
            sh = bench_short(0);
        }
        printf("%-34s %10.1f %10.1f %9.1f ns\n", rows[i].name, ns, 64e3 / ns, sh);
    }
    agent_sha256_use("auto");
}

int main(int argc, char **argv)
{
    const char *which = "all";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bench") == 0) {
            bench();
            return 0;
        } else if (strcmp(argv[i], "--impl") == 0 && i + 1 < argc) {
            which = argv[++i];
        }
    }
    int have = agent_cpu_has_shani();
    printf("CPU: SHA extensions %s; run-time choice: %s\n", have ? "yes" : "no", agent_sha256_name());
    if (!have) {
        printf("shani: skipped (not available on this CPU)\n");
    }
    const char *impls[] = { "shani", "portable" };
    for (int i = 0; i < 2; i++) {
        if (strcmp(which, "all") != 0 && strcmp(which, impls[i]) != 0) {
            continue;
        }
        if (agent_sha256_use(impls[i]) != 0) {
            continue;
        }
        int p0 = passed, f0 = failed;
        test_impl(impls[i]);
        printf("%s: %d passed, %d failed\n", impls[i], passed - p0, failed - f0);
    }
    agent_sha256_use("auto");
    int p0 = passed, f0 = failed;
    test_blocks(have);
    printf("blocks: %d passed, %d failed\n", passed - p0, failed - f0);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
