/*
 * Tests of agent's ChaCha20 / Poly1305 (cross/chachapoly) through the mbedTLS
 * API, for every implementation this CPU can run:
 *
 *   - every RFC 8439 test vector (block function, encryption, Poly1305,
 *     Poly1305 key generation, AEAD), against ours and against mbedTLS's
 *     portable code (the "reference", compiled in with ref_ names);
 *   - differential tests against the reference: random keys, nonces and
 *     counters (also next to the 2^32 wrap), lengths 0 to 70,000, misaligned
 *     and in-place buffers, the input split across update calls at every
 *     point for short inputs and at random points for long ones;
 *   - the AEAD (mbedTLS's chachapoly.c running on our primitives): encrypt
 *     against the reference, decrypt, and rejection of altered tag, data, AAD;
 *   - every output buffer has guard bytes after it (and, for streaming, after
 *     the bytes written so far) that must stay untouched.
 *
 *   test_chachapoly [--impl all|NAME[,NAME...]] [--quick] [--seed N]
 *
 * Prints "N passed, M failed"; exit status 1 if anything failed.
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
#include "rfc8439_vectors.h"

#define MAXLEN 70000
#define GUARD 64
#define SENTINEL 0xa5

static unsigned long passed, failed;
static const char *impl_name = "?";
static int quick;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (cond) {                                                         \
            passed++;                                                       \
        } else {                                                            \
            failed++;                                                       \
            if (failed <= 30) {                                             \
                printf("FAIL [%s] ", impl_name);                            \
                printf(__VA_ARGS__);                                        \
                printf("\n");                                               \
            }                                                               \
        }                                                                   \
    } while (0)

/* --- helpers ---------------------------------------------------------------- */

static size_t unhex(const char *hex, uint8_t *out, size_t max)
{
    size_t n = strlen(hex) / 2, i;

    if (strlen(hex) % 2 != 0 || n > max) {
        fprintf(stderr, "bad hex in a test vector: %.40s...\n", hex);
        exit(2);
    }
    for (i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t) v;
    }
    return n;
}

static uint64_t rng;

static uint64_t rnd(void)   /* splitmix64 */
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t rnd_below(size_t n)
{
    return n == 0 ? 0 : (size_t) (rnd() % n);
}

static void rnd_bytes(uint8_t *p, size_t n)
{
    while (n-- > 0) {
        *p++ = (uint8_t) rnd();
    }
}

/* A length with a bias towards the edges of blocks and SIMD batches. */
static size_t rnd_len(size_t max)
{
    static const size_t edges[] = { 16, 64, 128, 192, 256, 320, 448, 512, 576, 1024, 4096, 16384 };
    size_t len;

    switch (rnd() % 4) {
    case 0:
        len = edges[rnd_below(sizeof(edges) / sizeof(edges[0]))] * (1 + rnd_below(4));
        len = len + rnd_below(3) - 1;
        break;
    case 1:
        len = rnd_below(2048);
        break;
    default:
        len = rnd_below(max + 1);
        break;
    }
    return len > max ? max : len;
}

static uint32_t rnd_counter(void)
{
    switch (rnd() % 4) {
    case 0: return 0xffffffffu - (uint32_t) rnd_below(12);   /* wraps inside a batch */
    case 1: return (uint32_t) rnd_below(3);
    default: return (uint32_t) rnd();
    }
}

/* Output buffer with guard bytes on both sides; out = base + GUARD + misalign. */
static uint8_t *gbase;

static uint8_t *guarded(size_t len, size_t misalign)
{
    memset(gbase, SENTINEL, GUARD + 16 + len + GUARD);
    return gbase + GUARD + misalign;
}

/* Bytes before out and from out + from to out + len + GUARD are untouched. */
static int untouched(const uint8_t *out, size_t from, size_t len)
{
    const uint8_t *p;

    for (p = gbase; p < out; p++) {
        if (*p != SENTINEL) {
            return 0;
        }
    }
    for (p = out + from; p < out + len + GUARD; p++) {
        if (*p != SENTINEL) {
            return 0;
        }
    }
    return 1;
}

static uint8_t *in_buf, *expect_buf, *tmp_buf;

/* --- RFC 8439 vectors --------------------------------------------------------- */

static void test_vectors(void)
{
    static uint8_t key[32], nonce[12], pt[512], ct[512], out[512], tag[16], mac[16];
    static uint8_t aad[64];
    size_t i, n, m;

    for (i = 0; i < sizeof(chacha_vectors) / sizeof(chacha_vectors[0]); i++) {
        const struct chacha_vector *v = &chacha_vectors[i];

        unhex(v->key, key, 32);
        unhex(v->nonce, nonce, 12);
        n = unhex(v->plaintext, pt, sizeof(pt));
        m = unhex(v->ciphertext, ct, sizeof(ct));
        CHECK(n == m, "%s: vector lengths differ", v->name);
        CHECK(mbedtls_chacha20_crypt(key, nonce, v->counter, n, pt, out) == 0 &&
              memcmp(out, ct, n) == 0, "%s: encrypt", v->name);
        CHECK(mbedtls_chacha20_crypt(key, nonce, v->counter, n, ct, out) == 0 &&
              memcmp(out, pt, n) == 0, "%s: decrypt", v->name);
        CHECK(ref_chacha20_crypt(key, nonce, v->counter, n, pt, out) == 0 &&
              memcmp(out, ct, n) == 0, "%s: reference encrypt", v->name);
    }

    for (i = 0; i < sizeof(keygen_vectors) / sizeof(keygen_vectors[0]); i++) {
        const struct keygen_vector *v = &keygen_vectors[i];

        unhex(v->key, key, 32);
        unhex(v->nonce, nonce, 12);
        unhex(v->otk, ct, 32);
        memset(pt, 0, 64);
        CHECK(mbedtls_chacha20_crypt(key, nonce, 0, 64, pt, out) == 0 &&
              memcmp(out, ct, 32) == 0, "%s", v->name);
        CHECK(ref_chacha20_crypt(key, nonce, 0, 64, pt, out) == 0 &&
              memcmp(out, ct, 32) == 0, "%s: reference", v->name);
    }

    for (i = 0; i < sizeof(poly_vectors) / sizeof(poly_vectors[0]); i++) {
        const struct poly_vector *v = &poly_vectors[i];

        unhex(v->key, key, 32);
        n = unhex(v->msg, pt, sizeof(pt));
        unhex(v->tag, tag, 16);
        CHECK(mbedtls_poly1305_mac(key, pt, n, mac) == 0 && memcmp(mac, tag, 16) == 0,
              "%s", v->name);
        CHECK(ref_poly1305_mac(key, pt, n, mac) == 0 && memcmp(mac, tag, 16) == 0,
              "%s: reference", v->name);
    }

    for (i = 0; i < sizeof(aead_vectors) / sizeof(aead_vectors[0]); i++) {
        const struct aead_vector *v = &aead_vectors[i];
        mbedtls_chachapoly_context ctx;
        size_t alen;

        unhex(v->key, key, 32);
        unhex(v->nonce, nonce, 12);
        alen = unhex(v->aad, aad, sizeof(aad));
        n = unhex(v->plaintext, pt, sizeof(pt));
        m = unhex(v->ciphertext, ct, sizeof(ct));
        unhex(v->tag, tag, 16);
        CHECK(n == m, "%s: vector lengths differ", v->name);

        mbedtls_chachapoly_init(&ctx);
        mbedtls_chachapoly_setkey(&ctx, key);
        CHECK(mbedtls_chachapoly_encrypt_and_tag(&ctx, n, nonce, aad, alen, pt, out, mac) == 0 &&
              memcmp(out, ct, n) == 0 && memcmp(mac, tag, 16) == 0, "%s: encrypt", v->name);
        CHECK(mbedtls_chachapoly_auth_decrypt(&ctx, n, nonce, aad, alen, tag, ct, out) == 0 &&
              memcmp(out, pt, n) == 0, "%s: decrypt", v->name);
        tag[5] ^= 0x10;
        CHECK(mbedtls_chachapoly_auth_decrypt(&ctx, n, nonce, aad, alen, tag, ct, out) ==
              MBEDTLS_ERR_CHACHAPOLY_AUTH_FAILED, "%s: altered tag accepted", v->name);
        tag[5] ^= 0x10;
        mbedtls_chachapoly_free(&ctx);
        CHECK(ref_aead_encrypt(key, nonce, aad, alen, pt, n, out, mac) == 0 &&
              memcmp(out, ct, n) == 0 && memcmp(mac, tag, 16) == 0, "%s: reference", v->name);
    }
}

/* --- the bulk functions directly, against the portable one ------------------- */

static void test_blocks(void)
{
    const struct agent_chachapoly_impl *impl = agent_chachapoly_current();
    uint32_t st[16], st2[16];
    size_t nb, k;

    for (nb = 0; nb <= 40; nb++) {
        for (k = 0; k < (quick ? 2u : 6u); k++) {
            size_t mi = rnd_below(16), mo = rnd_below(16);
            uint8_t *out = guarded(nb * 64, mo);
            uint8_t *in = in_buf + mi;

            rnd_bytes((uint8_t *) st, sizeof(st));
            st[12] = rnd_counter();
            memcpy(st2, st, sizeof(st));
            rnd_bytes(in, nb * 64);
            agent_chacha20_blocks_portable(st2, in, expect_buf, nb);
            impl->chacha20(st, in, out, nb);
            CHECK(memcmp(out, expect_buf, nb * 64) == 0 && memcmp(st, st2, sizeof(st)) == 0 &&
                  untouched(out, nb * 64, nb * 64),
                  "chacha20 blocks: %zu blocks, counter %08x", nb, (unsigned) st2[12]);
            /* in place */
            memcpy(st, st2, sizeof(st));
            memcpy(tmp_buf, expect_buf, nb * 64);
            impl->chacha20(st, tmp_buf, tmp_buf, nb);
            agent_chacha20_blocks_portable(st2, expect_buf, expect_buf, nb);
            CHECK(memcmp(tmp_buf, expect_buf, nb * 64) == 0 && memcmp(st, st2, sizeof(st)) == 0,
                  "chacha20 blocks in place: %zu blocks", nb);
        }
    }
}

/* h mod p, fully reduced (the implementations may leave the accumulator in
 * different but equal forms). */
static void poly_canonical(const uint64_t hin[3], uint64_t out[3])
{
    uint64_t h0 = hin[0], h1 = hin[1], h2 = hin[2], g0, g1, g2, c;
    int i;

    for (i = 0; i < 2; i++) {   /* fold bits 130 and up */
        c = (h2 >> 2) * 5;
        h2 &= 3;
        h0 += c; c = h0 < c;
        h1 += c; c = h1 < c;
        h2 += c;
    }
    for (i = 0; i < 2; i++) {   /* subtract p while h >= p */
        g0 = h0 + 5; c = g0 < 5;
        g1 = h1 + c; c = g1 < c;
        g2 = h2 + c;
        if (g2 >> 2) {
            h0 = g0; h1 = g1; h2 = g2 & 3;
        }
    }
    out[0] = h0;
    out[1] = h1;
    out[2] = h2;
}

static void test_poly_blocks(void)
{
    const struct agent_chachapoly_impl *impl = agent_chachapoly_current();
    size_t nb, k;

    for (nb = 0; nb <= 70; nb++) {
        for (k = 0; k < (quick ? 2u : 6u); k++) {
            uint64_t h[3], h2[3], r[2], a[3], b[3];
            uint32_t hibit = rnd() % 4 != 0;
            uint8_t *in = in_buf + rnd_below(16);

            rnd_bytes((uint8_t *) h, sizeof(h));
            h[2] = rnd_below(5);           /* as the scalar code leaves it */
            rnd_bytes((uint8_t *) r, sizeof(r));
            r[0] &= 0x0ffffffc0fffffffULL;
            r[1] &= 0x0ffffffc0ffffffcULL;
            if (k == 0) {
                memset(in, 0xff, nb * 16);   /* every carry */
            } else {
                rnd_bytes(in, nb * 16);
            }
            memcpy(h2, h, sizeof(h));
            impl->poly1305(h, r, in, nb, hibit);
            agent_poly1305_blocks_portable(h2, r, in, nb, hibit);
            poly_canonical(h, a);
            poly_canonical(h2, b);
            CHECK(memcmp(a, b, sizeof(a)) == 0 && h[2] <= 4,
                  "poly1305 blocks: %zu blocks, hibit %u", nb, (unsigned) hibit);
        }
    }
}

/* --- ChaCha20 against the reference -------------------------------------------- */

/* One message: one-shot, in place, and split at the given cut points. */
static void chacha_case(size_t len, const size_t *cuts, size_t ncuts)
{
    uint8_t key[32], nonce[12];
    uint32_t counter = rnd_counter();
    size_t mi = rnd_below(16), mo = rnd_below(16), i, pos;
    uint8_t *in = in_buf + mi, *out;
    mbedtls_chacha20_context ctx;
    int ok = 1;

    rnd_bytes(key, 32);
    rnd_bytes(nonce, 12);
    rnd_bytes(in, len);
    ref_chacha20_crypt(key, nonce, counter, len, in, expect_buf);

    out = guarded(len, mo);
    CHECK(mbedtls_chacha20_crypt(key, nonce, counter, len, in, out) == 0 &&
          memcmp(out, expect_buf, len) == 0 && untouched(out, len, len),
          "chacha20: len %zu counter %08x", len, (unsigned) counter);

    out = guarded(len, mo);
    memcpy(out, in, len);
    CHECK(mbedtls_chacha20_crypt(key, nonce, counter, len, out, out) == 0 &&
          memcmp(out, expect_buf, len) == 0 && untouched(out, len, len),
          "chacha20 in place: len %zu", len);

    if (ncuts == 0) {
        return;
    }
    out = guarded(len, mo);
    mbedtls_chacha20_init(&ctx);
    mbedtls_chacha20_setkey(&ctx, key);
    mbedtls_chacha20_starts(&ctx, nonce, counter);
    for (i = 0, pos = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;

        ok &= mbedtls_chacha20_update(&ctx, end - pos, in + pos, out + pos) == 0;
        ok &= untouched(out, end, len);
        pos = end;
    }
    mbedtls_chacha20_free(&ctx);
    CHECK(ok && memcmp(out, expect_buf, len) == 0,
          "chacha20 split: len %zu, %zu cuts, first at %zu", len, ncuts, cuts[0]);
}

/* --- Poly1305 against the reference ---------------------------------------------- */

static void poly_case(size_t len, const size_t *cuts, size_t ncuts)
{
    uint8_t key[32], expect[16], *mac;
    size_t mi = rnd_below(16), i, pos;
    uint8_t *in = in_buf + mi;
    mbedtls_poly1305_context ctx;
    int ok = 1;

    rnd_bytes(key, 32);
    if (rnd() % 8 == 0) {
        memset(in, 0xff, len);   /* carries everywhere */
    } else {
        rnd_bytes(in, len);
    }
    ref_poly1305_mac(key, in, len, expect);

    mac = guarded(16, rnd_below(16));
    CHECK(mbedtls_poly1305_mac(key, in, len, mac) == 0 && memcmp(mac, expect, 16) == 0 &&
          untouched(mac, 16, 16), "poly1305: len %zu", len);

    if (ncuts == 0) {
        return;
    }
    mac = guarded(16, rnd_below(16));
    mbedtls_poly1305_init(&ctx);
    mbedtls_poly1305_starts(&ctx, key);
    for (i = 0, pos = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;

        ok &= mbedtls_poly1305_update(&ctx, in + pos, end - pos) == 0;
        pos = end;
    }
    ok &= mbedtls_poly1305_finish(&ctx, mac) == 0;
    mbedtls_poly1305_free(&ctx);
    CHECK(ok && memcmp(mac, expect, 16) == 0 && untouched(mac, 16, 16),
          "poly1305 split: len %zu, %zu cuts, first at %zu", len, ncuts, cuts[0]);
}

/* --- AEAD (mbedTLS's chachapoly.c on our primitives) against the reference ------- */

static void aead_case(size_t len, const size_t *cuts, size_t ncuts)
{
    uint8_t key[32], nonce[12], aad[48], tag[16], expect_tag[16];
    size_t alen = rnd_below(sizeof(aad) + 1), mi = rnd_below(16), mo = rnd_below(16), i, pos;
    uint8_t *in = in_buf + mi, *out;
    mbedtls_chachapoly_context ctx;
    int ok = 1;

    rnd_bytes(key, 32);
    rnd_bytes(nonce, 12);
    rnd_bytes(aad, alen);
    rnd_bytes(in, len);
    ref_aead_encrypt(key, nonce, aad, alen, in, len, expect_buf, expect_tag);

    mbedtls_chachapoly_init(&ctx);
    mbedtls_chachapoly_setkey(&ctx, key);
    out = guarded(len, mo);
    CHECK(mbedtls_chachapoly_encrypt_and_tag(&ctx, len, nonce, aad, alen, in, out, tag) == 0 &&
          memcmp(out, expect_buf, len) == 0 && memcmp(tag, expect_tag, 16) == 0 &&
          untouched(out, len, len), "aead encrypt: len %zu aad %zu", len, alen);

    /* decrypt the reference's ciphertext */
    out = guarded(len, mo);
    CHECK(mbedtls_chachapoly_auth_decrypt(&ctx, len, nonce, aad, alen, expect_tag,
                                          expect_buf, out) == 0 &&
          memcmp(out, in, len) == 0 && untouched(out, len, len),
          "aead decrypt: len %zu aad %zu", len, alen);

    /* any altered bit must be refused */
    switch (rnd() % 3) {
    case 0:
        expect_tag[rnd_below(16)] ^= (uint8_t) (1u << rnd_below(8));
        break;
    case 1:
        if (len > 0) {
            expect_buf[rnd_below(len)] ^= (uint8_t) (1u << rnd_below(8));
            break;
        }
        /* fall through */
    default:
        if (alen > 0) {
            aad[rnd_below(alen)] ^= (uint8_t) (1u << rnd_below(8));
        } else {
            expect_tag[0] ^= 1;
        }
        break;
    }
    CHECK(mbedtls_chachapoly_auth_decrypt(&ctx, len, nonce, aad, alen, expect_tag,
                                          expect_buf, tmp_buf) ==
          MBEDTLS_ERR_CHACHAPOLY_AUTH_FAILED, "aead: altered message accepted, len %zu", len);

    if (ncuts > 0) {
        /* streaming: AAD in two pieces, the message split at the cuts */
        size_t acut = rnd_below(alen + 1);

        ref_aead_encrypt(key, nonce, aad, alen, in, len, expect_buf, expect_tag);
        out = guarded(len, mo);
        ok &= mbedtls_chachapoly_starts(&ctx, nonce, MBEDTLS_CHACHAPOLY_ENCRYPT) == 0;
        ok &= mbedtls_chachapoly_update_aad(&ctx, aad, acut) == 0;
        ok &= mbedtls_chachapoly_update_aad(&ctx, aad + acut, alen - acut) == 0;
        for (i = 0, pos = 0; i <= ncuts; i++) {
            size_t end = i < ncuts ? cuts[i] : len;

            ok &= mbedtls_chachapoly_update(&ctx, end - pos, in + pos, out + pos) == 0;
            ok &= untouched(out, end, len);
            pos = end;
        }
        ok &= mbedtls_chachapoly_finish(&ctx, tag) == 0;
        CHECK(ok && memcmp(out, expect_buf, len) == 0 && memcmp(tag, expect_tag, 16) == 0,
              "aead split: len %zu, %zu cuts", len, ncuts);
    }
    mbedtls_chachapoly_free(&ctx);
}

/* --- drivers --------------------------------------------------------------------- */

typedef void case_fn(size_t len, const size_t *cuts, size_t ncuts);

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *) a, y = *(const size_t *) b;
    return x < y ? -1 : x > y;
}

static void run_cases(case_fn *fn, size_t every_split_max, unsigned nrandom)
{
    size_t len, cut, cuts[16];
    unsigned i;

    /* every length up to every_split_max, cut at every point */
    for (len = 0; len <= every_split_max; len++) {
        fn(len, NULL, 0);
        for (cut = 0; cut <= len; cut++) {
            cuts[0] = cut;
            fn(len, cuts, 1);
        }
    }
    /* the longest message */
    cuts[0] = 1;
    cuts[1] = 1 + 64 * 3;
    cuts[2] = MAXLEN - 5;
    fn(MAXLEN, cuts, 3);
    /* random lengths up to MAXLEN, cut at 1..15 random points (repeats allowed) */
    for (i = 0; i < nrandom; i++) {
        size_t n = 1 + rnd_below(15), k;

        len = rnd_len(MAXLEN);
        for (k = 0; k < n; k++) {
            cuts[k] = rnd_below(len + 1);
        }
        qsort(cuts, n, sizeof(cuts[0]), cmp_size);
        fn(len, cuts, n);
    }
}

static void run_all(void)
{
    clock_t t0 = clock();
    unsigned long p0 = passed, f0 = failed;

    test_vectors();
    test_blocks();
    test_poly_blocks();
    run_cases(chacha_case, quick ? 160 : 256, quick ? 400 : 1500);
    run_cases(poly_case, quick ? 128 : 200, quick ? 400 : 1500);
    run_cases(aead_case, quick ? 64 : 128, quick ? 250 : 1000);
    printf("  %-8s %lu passed, %lu failed (%.1f s)\n", impl_name, passed - p0, failed - f0,
           (double) (clock() - t0) / CLOCKS_PER_SEC);
}

int main(int argc, char **argv)
{
    const char *impls = "all";
    static const char *all[] = { "portable", "sse2", "avx2", "neon" };
    uint64_t seed = 0x5eed5eed;
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--impl") == 0 && i + 1 < argc) {
            impls = argv[++i];
        } else if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 0);
        } else {
            fprintf(stderr, "usage: %s [--impl all|NAME[,NAME]] [--quick] [--seed N]\n", argv[0]);
            return 2;
        }
    }
    gbase = malloc(GUARD + 16 + MAXLEN + GUARD);
    in_buf = malloc(MAXLEN + 16);
    expect_buf = malloc(MAXLEN + 16);
    tmp_buf = malloc(MAXLEN + 16);
    if (!gbase || !in_buf || !expect_buf || !tmp_buf) {
        return 2;
    }
    printf("chachapoly test: run-time choice \"%s\", seed %#llx%s\n", agent_chachapoly_name(),
           (unsigned long long) seed, quick ? ", quick" : "");

    for (i = 0; i < (int) (sizeof(all) / sizeof(all[0])); i++) {
        const char *name = all[i];
        size_t nl = strlen(name);
        const char *p = strstr(impls, name);
        int wanted = strcmp(impls, "all") == 0 ||
                     (p != NULL && (p == impls || p[-1] == ',') && (p[nl] == 0 || p[nl] == ','));

        if (!wanted) {
            continue;
        }
        if (agent_chachapoly_use(name) != 0) {
            if (strcmp(impls, "all") != 0) {
                printf("  %-8s not available here\n", name);
                failed++;
            }
            continue;
        }
        impl_name = name;
        rng = seed;
        run_all();
    }
    agent_chachapoly_use("auto");
    printf("%lu passed, %lu failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
