/*
 * Tests of agent's X25519 (cross/x25519), built with the release compilers
 * against the release mbedTLS library (whose ECDH goes through our ALT
 * functions) and against the reference (mbedTLS's own ECDH/ECP code without
 * the ALT, every symbol renamed ref_mbedtls_*: ref.h, ref_config.h):
 *
 *   - every RFC 7748 test vector: section 5.2 (the two scalar
 *     multiplications, the iteration for 1 and 1,000 rounds, 1,000,000 with
 *     --million), section 6.1 (Alice's and Bob's key pairs, the shared
 *     secret), on each of our implementations and on the reference;
 *   - the points of small order (all of them, also non-canonical and with bit
 *     255 set): all-zero output and -1;
 *   - differential tests against the reference: random scalars with random
 *     points, with the base point, and edge values of u (p + k, 2^k, 2^k - 1,
 *     all bits set, bit 255 set); in 64-bit programs also our two radices
 *     against each other on many more random inputs;
 *   - mbedtls_ecdh_gen_public / mbedtls_ecdh_compute_shared of the release
 *     library (our ALT) against the reference's for curve25519 (same d from
 *     the same RNG bytes, same Q, same z, same error codes for invalid keys
 *     and points) and for secp256r1 and secp384r1 (mbedTLS's code behind our
 *     fallback); the mbedtls_ecdh_context functions the TLS layer uses.
 *
 *   test_x25519 [--quick] [--million] [--seed N]
 *
 * --quick: fewer random cases (under qemu). Prints "N passed, M failed";
 * exit status 1 if anything failed.
 */
#include "mbedtls/bignum.h"
#include "mbedtls/ecdh.h"
#include "mbedtls/ecp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecdh_io.h"
#include "ref.h"
#include "x25519.h"

/* 64-bit test programs also carry x25519.c built with -DAGENT_X25519_FE32
 * (the armv7 radix), its functions renamed fe32_* (x25519.mk). */
#if defined(X25519_TEST_FE32)
int fe32_x25519(unsigned char out[32], const unsigned char scalar[32], const unsigned char u[32]);
int fe32_x25519_base(unsigned char out[32], const unsigned char scalar[32]);
#endif

struct impl {
    const char *name;
    int (*x25519)(unsigned char *, const unsigned char *, const unsigned char *);
    int (*base)(unsigned char *, const unsigned char *);
};

static const struct impl impls[] = {
#if defined(__SIZEOF_INT128__)
    { "5x51", agent_x25519, agent_x25519_base },
#else
    { "10x25", agent_x25519, agent_x25519_base },
#endif
#if defined(X25519_TEST_FE32)
    { "10x25", fe32_x25519, fe32_x25519_base },
#endif
};
#define N_IMPLS (sizeof(impls) / sizeof(impls[0]))

static unsigned long passed, failed;
static int quick, million;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (cond) {                                                         \
            passed++;                                                       \
        } else {                                                            \
            failed++;                                                       \
            if (failed <= 30) {                                             \
                printf("FAIL ");                                            \
                printf(__VA_ARGS__);                                        \
                printf("\n");                                               \
            }                                                               \
        }                                                                   \
    } while (0)

/* --- helpers ---------------------------------------------------------------- */

static void unhex(const char *hex, unsigned char *out, size_t n)
{
    size_t i;

    if (strlen(hex) != 2 * n) {
        fprintf(stderr, "bad hex in a test vector: %.40s...\n", hex);
        exit(2);
    }
    for (i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char) v;
    }
}

static const char *tohex(const unsigned char *p, size_t n)
{
    static char buf[4][2 * ECDH_NB + 1];
    static int which;
    char *s = buf[which++ % 4];
    size_t i;

    for (i = 0; i < n && i < ECDH_NB; i++) {
        sprintf(s + 2 * i, "%02x", p[i]);
    }
    return s;
}

static uint64_t rng;

static uint64_t rnd(void)   /* splitmix64 */
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rnd_bytes(unsigned char *p, size_t n)
{
    while (n-- > 0) {
        *p++ = (unsigned char) rnd();
    }
}

/* An RNG for mbedTLS (f_rng): a splitmix64 stream from its own seed, so that
 * the reference and the release library can be given the same bytes. */
struct test_rng {
    uint64_t s;
};

static int test_rng_fill(void *ctx, unsigned char *out, size_t n)
{
    struct test_rng *r = (struct test_rng *) ctx;

    while (n-- > 0) {
        uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        *out++ = (unsigned char) (z ^ (z >> 31));
    }
    return 0;
}

static int all_zero(const unsigned char *p, size_t n)
{
    unsigned char acc = 0;

    while (n-- > 0) {
        acc |= *p++;
    }
    return acc == 0;
}

/* little-endian 32 bytes <-> big-endian ECDH_NB bytes (mpi values) */
static void le32_to_nb(const unsigned char le[32], unsigned char nb[ECDH_NB])
{
    int i;

    memset(nb, 0, ECDH_NB);
    for (i = 0; i < 32; i++) {
        nb[ECDH_NB - 1 - i] = le[i];
    }
}

static const unsigned char nine[32] = { 9 };

/* p = 2^255 - 19, little-endian */
static void set_p(unsigned char out[32])
{
    memset(out, 0xff, 32);
    out[0] = 0xed;
    out[31] = 0x7f;
}

/* out = le + k (mod 2^256), little-endian */
static void add_small(unsigned char out[32], const unsigned char le[32], unsigned k)
{
    unsigned c = k;
    int i;

    for (i = 0; i < 32; i++) {
        c += le[i];
        out[i] = (unsigned char) c;
        c >>= 8;
    }
}

/* out = a + b, little-endian 32 bytes; returns the carry out of bit 255 */
static unsigned add_le(unsigned char out[32], const unsigned char a[32], const unsigned char b[32])
{
    unsigned c = 0;
    int i;

    for (i = 0; i < 32; i++) {
        c += (unsigned) a[i] + b[i];
        out[i] = (unsigned char) c;
        c >>= 8;
    }
    return c;
}

/* x mod p for a big-endian ECDH_NB value below 2^256 (= 2p + 38): at most
 * two subtractions. Independent of mbedTLS's bignum code. */
static void reduce_p_nb(unsigned char x[ECDH_NB])
{
    unsigned char p[32], pb[ECDH_NB];
    int i, round;

    set_p(p);
    le32_to_nb(p, pb);
    for (round = 0; round < 2; round++) {
        int borrow = 0;
        if (memcmp(x, pb, ECDH_NB) < 0) {
            return;
        }
        for (i = ECDH_NB - 1; i >= 0; i--) {
            int d = (int) x[i] - pb[i] - borrow;
            borrow = d < 0;
            x[i] = (unsigned char) (d + 256 * borrow);
        }
    }
}

/* --- the release library (our ALT) through the same byte interface as ref.h */

static int ours_gen_public(int grp_id, unsigned char d[ECDH_NB], struct ecdh_point *q,
                           ecdh_rng f_rng, void *p_rng)
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point p;
    mbedtls_mpi m;
    int ret;

    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&m);
    mbedtls_ecp_point_init(&p);
    MBEDTLS_MPI_CHK(mbedtls_ecp_group_load(&grp, (mbedtls_ecp_group_id) grp_id));
    MBEDTLS_MPI_CHK(mbedtls_ecdh_gen_public(&grp, &m, &p, f_rng, p_rng));
    MBEDTLS_MPI_CHK(mbedtls_mpi_write_binary(&m, d, ECDH_NB));
    MBEDTLS_MPI_CHK(ecdh_point_out(&p, q));
cleanup:
    mbedtls_ecp_group_free(&grp);
    mbedtls_mpi_free(&m);
    mbedtls_ecp_point_free(&p);
    return ret;
}

static int ours_compute_shared(int grp_id, const unsigned char d[ECDH_NB],
                               const struct ecdh_point *q, unsigned char z[ECDH_NB],
                               ecdh_rng f_rng, void *p_rng)
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point p;
    mbedtls_mpi m, s;
    int ret;

    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&m);
    mbedtls_mpi_init(&s);
    mbedtls_ecp_point_init(&p);
    MBEDTLS_MPI_CHK(mbedtls_ecp_group_load(&grp, (mbedtls_ecp_group_id) grp_id));
    MBEDTLS_MPI_CHK(mbedtls_mpi_read_binary(&m, d, ECDH_NB));
    MBEDTLS_MPI_CHK(ecdh_point_in(q, &p));
    MBEDTLS_MPI_CHK(mbedtls_ecdh_compute_shared(&grp, &s, &p, &m, f_rng, p_rng));
    MBEDTLS_MPI_CHK(mbedtls_mpi_write_binary(&s, z, ECDH_NB));
cleanup:
    mbedtls_ecp_group_free(&grp);
    mbedtls_mpi_free(&m);
    mbedtls_mpi_free(&s);
    mbedtls_ecp_point_free(&p);
    return ret;
}

/* --- RFC 7748 vectors --------------------------------------------------------- */

/* Section 5.2: two scalar multiplications (the second u has bit 255 set). */
static const struct {
    const char *scalar, *u, *out;
} rfc_mul[] = {
    { "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
      "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
      "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552" },
    { "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
      "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
      "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957" },
};

/* Section 5.2: k = u = 9, then k, u = X25519(k, u), k, repeated. */
static const char *rfc_iter1 = "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079";
static const char *rfc_iter1000 = "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51";
static const char *rfc_iter1000000 = "7c3911e0ab2586fd864497297e575e6f3bc601c0883c30df5f4dd2d24f665424";

/* Section 6.1: Diffie-Hellman. */
static const char *alice_priv = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
static const char *alice_pub = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
static const char *bob_priv = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
static const char *bob_pub = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
static const char *shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

static void iterate(const struct impl *im, unsigned long n, unsigned char k[32])
{
    unsigned char u[32], t[32];
    unsigned long i;

    memcpy(k, nine, 32);
    memcpy(u, nine, 32);
    for (i = 0; i < n; i++) {
        im->x25519(t, k, u);
        memcpy(u, k, 32);
        memcpy(k, t, 32);
    }
}

static void test_rfc(const struct impl *im)
{
    unsigned char k[32], u[32], out[32], want[32], a[32], b[32], pa[32], pb[32];
    size_t i;

    for (i = 0; i < sizeof(rfc_mul) / sizeof(rfc_mul[0]); i++) {
        unhex(rfc_mul[i].scalar, k, 32);
        unhex(rfc_mul[i].u, u, 32);
        unhex(rfc_mul[i].out, want, 32);
        CHECK(im->x25519(out, k, u) == 0 && memcmp(out, want, 32) == 0,
              "[%s] RFC 7748 5.2 vector %zu: %s", im->name, i + 1, tohex(out, 32));
        /* in place */
        memcpy(out, u, 32);
        CHECK(im->x25519(out, k, out) == 0 && memcmp(out, want, 32) == 0,
              "[%s] RFC 7748 5.2 vector %zu, out = u", im->name, i + 1);
        memcpy(out, k, 32);
        CHECK(im->x25519(out, out, u) == 0 && memcmp(out, want, 32) == 0,
              "[%s] RFC 7748 5.2 vector %zu, out = scalar", im->name, i + 1);
    }

    iterate(im, 1, k);
    unhex(rfc_iter1, want, 32);
    CHECK(memcmp(k, want, 32) == 0, "[%s] RFC 7748 5.2 after 1 iteration: %s", im->name, tohex(k, 32));
    iterate(im, 1000, k);
    unhex(rfc_iter1000, want, 32);
    CHECK(memcmp(k, want, 32) == 0, "[%s] RFC 7748 5.2 after 1,000 iterations: %s", im->name, tohex(k, 32));
    if (million && im == &impls[0]) {   /* the target's own radix: about 30 s on x86_64 */
        iterate(im, 1000000, k);
        unhex(rfc_iter1000000, want, 32);
        CHECK(memcmp(k, want, 32) == 0, "[%s] RFC 7748 5.2 after 1,000,000 iterations: %s",
              im->name, tohex(k, 32));
    }

    unhex(alice_priv, a, 32);
    unhex(bob_priv, b, 32);
    unhex(alice_pub, want, 32);
    CHECK(im->base(pa, a) == 0 && memcmp(pa, want, 32) == 0, "[%s] RFC 7748 6.1 Alice's public key", im->name);
    CHECK(im->x25519(out, a, nine) == 0 && memcmp(out, want, 32) == 0,
          "[%s] RFC 7748 6.1 Alice's public key (u = 9 given)", im->name);
    unhex(bob_pub, want, 32);
    CHECK(im->base(pb, b) == 0 && memcmp(pb, want, 32) == 0, "[%s] RFC 7748 6.1 Bob's public key", im->name);
    unhex(shared, want, 32);
    CHECK(im->x25519(out, a, pb) == 0 && memcmp(out, want, 32) == 0, "[%s] RFC 7748 6.1 shared (Alice)", im->name);
    CHECK(im->x25519(out, b, pa) == 0 && memcmp(out, want, 32) == 0, "[%s] RFC 7748 6.1 shared (Bob)", im->name);
}

/* The same vectors on the reference: checks the typing and the reference. */
static void test_rfc_ref(void)
{
    struct test_rng r = { 1 };
    unsigned char k[32], u[32], t[32], out[32], want[32];
    size_t i;

    for (i = 0; i < sizeof(rfc_mul) / sizeof(rfc_mul[0]); i++) {
        unhex(rfc_mul[i].scalar, k, 32);
        unhex(rfc_mul[i].u, u, 32);
        unhex(rfc_mul[i].out, want, 32);
        CHECK(ref_x25519(out, k, u, test_rng_fill, &r) == 0 && memcmp(out, want, 32) == 0,
              "[ref] RFC 7748 5.2 vector %zu: %s", i + 1, tohex(out, 32));
    }
    ref_x25519(t, nine, nine, test_rng_fill, &r);
    unhex(rfc_iter1, want, 32);
    CHECK(memcmp(t, want, 32) == 0, "[ref] RFC 7748 5.2 after 1 iteration");
    unhex(alice_priv, k, 32);
    unhex(alice_pub, want, 32);
    CHECK(ref_x25519(out, k, nine, test_rng_fill, &r) == 0 && memcmp(out, want, 32) == 0,
          "[ref] RFC 7748 6.1 Alice's public key");
    unhex(bob_pub, u, 32);
    unhex(shared, want, 32);
    CHECK(ref_x25519(out, k, u, test_rng_fill, &r) == 0 && memcmp(out, want, 32) == 0,
          "[ref] RFC 7748 6.1 shared");
    unhex(bob_priv, k, 32);
    unhex(bob_pub, want, 32);
    CHECK(ref_x25519(out, k, nine, test_rng_fill, &r) == 0 && memcmp(out, want, 32) == 0,
          "[ref] RFC 7748 6.1 Bob's public key");
}

/* --- points of small order ------------------------------------------------------ */

/* Every u (below 2^255) whose point, on the curve or its twist, has order
 * dividing 8: 0, 1, the two points of order 8, p - 1, and the non-canonical
 * p (= 0) and p + 1 (= 1). X25519 with any clamped scalar gives 0. */
static void small_order_points(unsigned char pts[7][32])
{
    unsigned char p[32];

    memset(pts, 0, 7 * 32);
    pts[1][0] = 1;
    unhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", pts[2], 32);
    unhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", pts[3], 32);
    set_p(p);
    memcpy(pts[4], p, 32);
    pts[4][0] -= 1;                           /* p - 1 (low byte 0xed: no borrow) */
    memcpy(pts[5], p, 32);                    /* p */
    add_small(pts[6], p, 1);                  /* p + 1 */
}

static void test_small_order(const struct impl *im)
{
    unsigned char pts[7][32], u[32], k[32], out[32];
    int i, j, top;

    small_order_points(pts);
    for (i = 0; i < 7; i++) {
        for (top = 0; top < 2; top++) {
            memcpy(u, pts[i], 32);
            u[31] |= (unsigned char) (top << 7);   /* bit 255 is ignored */
            for (j = 0; j < 4; j++) {
                rnd_bytes(k, 32);
                memset(out, 0x5a, 32);
                CHECK(im->x25519(out, k, u) == -1 && all_zero(out, 32),
                      "[%s] small-order u %d (bit 255 %d): want all zero and -1, got %s",
                      im->name, i, top, tohex(out, 32));
            }
        }
    }
}

/* --- differential tests against the reference --------------------------------- */

static void compare_one(const struct impl *im, const unsigned char k[32], const unsigned char u[32],
                        const char *what)
{
    struct test_rng r = { rnd() };
    unsigned char o1[32], o2[32];
    int ret1, ret2;

    ret1 = im->x25519(o1, k, u);
    ret2 = ref_x25519(o2, k, u, test_rng_fill, &r);
    CHECK(ret2 == 0 && ret1 == 0 && memcmp(o1, o2, 32) == 0,
          "[%s] %s: k %s u %s: ours %d %s, mbedTLS %d %s", im->name, what,
          tohex(k, 32), tohex(u, 32), ret1, tohex(o1, 32), ret2, tohex(o2, 32));
}

static void test_random(const struct impl *im, int n, int nbase)
{
    struct test_rng r;
    unsigned char k[32], u[32], o1[32], o2[32];
    int i;

    for (i = 0; i < n; i++) {
        rnd_bytes(k, 32);
        rnd_bytes(u, 32);   /* bit 255 random too: both ignore it */
        compare_one(im, k, u, "random");
    }
    for (i = 0; i < nbase; i++) {
        rnd_bytes(k, 32);
        r.s = rnd();
        CHECK(im->base(o1, k) == 0 && ref_x25519(o2, k, nine, test_rng_fill, &r) == 0 &&
              memcmp(o1, o2, 32) == 0, "[%s] base point: k %s", im->name, tohex(k, 32));
    }
}

/* u near the limb boundaries and the modulus: 2^j and 2^j - 1 (every limb
 * size), p + 2 .. 2^255 - 1 (not reduced: = 2 .. 18), all bits set,
 * 2 .. 18; each also with bit 255 set; with random scalars and the extreme
 * ones (all zero, all one bits: 2^254 and 2^255 - 8 after clamping). */
static void test_edges(const struct impl *im, int step)
{
    unsigned char u[32], k[3][32], p[32], uu[32];
    int j, v, top, s;

    set_p(p);
    memset(k[0], 0, 32);
    memset(k[1], 0xff, 32);
    for (j = 0; j < 255; j += step) {
        for (v = 0; v < 2; v++) {
            memset(u, 0, 32);
            if (v == 0) {
                u[j / 8] = (unsigned char) (1 << (j % 8));         /* 2^j */
            } else {
                memset(u, 0xff, (size_t) j / 8);                  /* 2^j - 1 */
                u[j / 8] = (unsigned char) ((1 << (j % 8)) - 1);
            }
            if (all_zero(u, 32) || (u[0] == 1 && all_zero(u + 1, 31))) {
                continue;   /* 0 and 1: small order, tested above */
            }
            for (top = 0; top < 2; top++) {
                memcpy(uu, u, 32);
                uu[31] |= (unsigned char) (top << 7);
                rnd_bytes(k[2], 32);
                for (s = 0; s < 3; s++) {
                    compare_one(im, k[s], uu, "edge 2^j or 2^j - 1");
                }
            }
        }
    }
    for (v = 2; v <= 18; v++) {
        for (top = 0; top < 2; top++) {
            add_small(u, p, (unsigned) v);     /* p + v: bit 255 clear */
            u[31] |= (unsigned char) (top << 7);
            rnd_bytes(k[2], 32);
            for (s = 0; s < 3; s++) {
                compare_one(im, k[s], u, "edge p + v");
            }
            memset(u, 0, 32);
            u[0] = (unsigned char) v;
            u[31] |= (unsigned char) (top << 7);
            compare_one(im, k[2], u, "edge small v");
        }
        /* p + v and v are the same number mod p */
        {
            unsigned char o1[32], o2[32];
            add_small(u, p, (unsigned) v);
            memset(uu, 0, 32);
            uu[0] = (unsigned char) v;
            CHECK(im->x25519(o1, k[2], u) == 0 && im->x25519(o2, k[2], uu) == 0 &&
                  memcmp(o1, o2, 32) == 0, "[%s] p + %d and %d differ", im->name, v, v);
        }
    }
    memset(u, 0xff, 32);
    for (s = 0; s < 3; s++) {
        compare_one(im, k[s], u, "edge all ones");
    }
}

/* Our two radices against each other (64-bit programs): cheap, so many. */
static void test_impls_agree(int n)
{
    unsigned char k[32], u[32], o1[32], o2[32];
    size_t a;
    int i, r1, r2;

    for (a = 1; a < N_IMPLS; a++) {
        for (i = 0; i < n; i++) {
            rnd_bytes(k, 32);
            rnd_bytes(u, 32);
            if (i % 8 == 0) {   /* limbs at their largest */
                memset(u, 0xff, 32);
                u[rnd() % 32] = (unsigned char) rnd();
            }
            r1 = impls[0].x25519(o1, k, u);
            r2 = impls[a].x25519(o2, k, u);
            CHECK(r1 == r2 && memcmp(o1, o2, 32) == 0, "%s and %s differ: k %s u %s",
                  impls[0].name, impls[a].name, tohex(k, 32), tohex(u, 32));
            /* chain: the output is the next u */
            r1 = impls[0].x25519(o1, k, o1);
            r2 = impls[a].x25519(o2, k, o2);
            CHECK(r1 == r2 && memcmp(o1, o2, 32) == 0, "%s and %s differ (chained)",
                  impls[0].name, impls[a].name);
            r1 = impls[0].base(o1, k);
            r2 = impls[a].base(o2, k);
            CHECK(r1 == r2 && memcmp(o1, o2, 32) == 0, "%s and %s differ (base): k %s",
                  impls[0].name, impls[a].name, tohex(k, 32));
        }
    }
}

/* --- mbedtls_ecdh_gen_public / compute_shared: ours (ALT) vs mbedTLS's ---- */

static const char *grp_name(int id)
{
    switch (id) {
    case MBEDTLS_ECP_DP_CURVE25519: return "curve25519";
    case MBEDTLS_ECP_DP_SECP256R1: return "secp256r1";
    case MBEDTLS_ECP_DP_SECP384R1: return "secp384r1";
    default: return "?";
    }
}

static unsigned long ref_x256_failures;

/* Both functions on the same inputs and the same RNG bytes: same return
 * code, and the same z when it succeeds.
 *
 * One exception, on curve25519 with X of 256 bits (bit 255 set, which only
 * the C API can give; mbedtls_ecp_point_read_binary clears it): mbedTLS's
 * ladder reduces X mod p for its own use but multiplies by the unreduced X
 * as well, and its modular multiplication refuses products over 510 bits
 * (MBEDTLS_ERR_ECP_BAD_INPUT_DATA); whether that happens depends on the
 * random projective coordinates, almost surely for large X, never for X just
 * above 2^255. Ours always computes on X mod p, which is what mbedTLS gives
 * when it succeeds: then we compare with the reference on X mod p. */
static void compare_shared(int id, const unsigned char d[ECDH_NB], const struct ecdh_point *q,
                           const char *what)
{
    unsigned char z1[ECDH_NB], z2[ECDH_NB];
    uint64_t seed = rnd();
    struct test_rng r1 = { seed }, r2 = { seed };
    int ret1, ret2;

    memset(z1, 0x11, sizeof(z1));
    memset(z2, 0x11, sizeof(z2));
    ret1 = ours_compute_shared(id, d, q, z1, test_rng_fill, &r1);
    ret2 = ref_ecdh_compute_shared(id, d, q, z2, test_rng_fill, &r2);
    if (id == MBEDTLS_ECP_DP_CURVE25519 && ret2 == MBEDTLS_ERR_ECP_BAD_INPUT_DATA &&
        all_zero(q->x, ECDH_NB - 32) && (q->x[ECDH_NB - 32] & 0x80) != 0 && !q->x_neg) {
        struct ecdh_point qr = *q;

        reduce_p_nb(qr.x);
        ref_x256_failures++;
        ret2 = ref_ecdh_compute_shared(id, d, &qr, z2, test_rng_fill, &r2);
    }
    CHECK(ret1 == ret2 && (ret1 != 0 || memcmp(z1, z2, ECDH_NB) == 0),
          "compute_shared %s, %s: ours -0x%04x z %s, mbedTLS -0x%04x z %s", grp_name(id), what,
          (unsigned) -ret1, tohex(z1 + ECDH_NB - 32, 32), (unsigned) -ret2, tohex(z2 + ECDH_NB - 32, 32));
}

static void test_alt_keys(int id, int n)
{
    unsigned char d1[ECDH_NB], d2[ECDH_NB], da[ECDH_NB];
    struct ecdh_point q1, q2, qa;
    int i, ret1, ret2;

    for (i = 0; i < n; i++) {
        uint64_t seed = rnd();
        struct test_rng r1 = { seed }, r2 = { seed };

        memset(d1, 0, sizeof(d1));
        memset(d2, 0, sizeof(d2));
        ret1 = ours_gen_public(id, d1, &q1, test_rng_fill, &r1);
        ret2 = ref_ecdh_gen_public(id, d2, &q2, test_rng_fill, &r2);
        CHECK(ret1 == 0 && ret2 == 0, "gen_public %s: ours -0x%04x, mbedTLS -0x%04x", grp_name(id),
              (unsigned) -ret1, (unsigned) -ret2);
        CHECK(memcmp(d1, d2, ECDH_NB) == 0, "gen_public %s: d differs (same RNG bytes): %s vs %s",
              grp_name(id), tohex(d1 + ECDH_NB - 32, 32), tohex(d2 + ECDH_NB - 32, 32));
        CHECK(memcmp(q1.x, q2.x, ECDH_NB) == 0 && memcmp(q1.y, q2.y, ECDH_NB) == 0 &&
              memcmp(q1.z, q2.z, ECDH_NB) == 0 && q1.y_limbs == q2.y_limbs && q1.x_neg == q2.x_neg,
              "gen_public %s: Q differs: X %s vs %s, Y limbs %zu vs %zu", grp_name(id),
              tohex(q1.x + ECDH_NB - 32, 32), tohex(q2.x + ECDH_NB - 32, 32), q1.y_limbs, q2.y_limbs);
        if (id == MBEDTLS_ECP_DP_CURVE25519) {
            unsigned char k[32], u[32];
            int j;

            for (j = 0; j < 32; j++) {
                k[j] = d1[ECDH_NB - 1 - j];
                u[j] = q1.x[ECDH_NB - 1 - j];
            }
            CHECK(q1.y_limbs == 0 && q1.z[ECDH_NB - 1] == 1 && all_zero(q1.z, ECDH_NB - 1),
                  "gen_public curve25519: Q not (X, -, 1)");
            CHECK((k[0] & 7) == 0 && (k[31] & 0xc0) == 0x40 && all_zero(d1, ECDH_NB - 32),
                  "gen_public curve25519: d not a clamped scalar: %s", tohex(k, 32));
            {
                unsigned char o[32];
                CHECK(agent_x25519_base(o, k) == 0 && memcmp(o, u, 32) == 0,
                      "gen_public curve25519: Q is not X25519(d, 9)");
            }
        }
        if (i > 0) {
            /* this key pair with the previous one, both ways */
            compare_shared(id, d1, &qa, "generated keys");
            compare_shared(id, da, &q1, "generated keys, other side");
            {
                unsigned char z1[ECDH_NB], z2[ECDH_NB];
                struct test_rng r = { 5 };
                CHECK(ours_compute_shared(id, d1, &qa, z1, test_rng_fill, &r) == 0 &&
                      ours_compute_shared(id, da, &q1, z2, test_rng_fill, &r) == 0 &&
                      memcmp(z1, z2, ECDH_NB) == 0, "compute_shared %s: the two sides differ",
                      grp_name(id));
            }
        }
        memcpy(da, d1, ECDH_NB);
        qa = q1;
    }
}

/* curve25519 public values the reference sees only through the C API:
 * random X (bit 255 clear, as read from the wire, or set: a 256-bit X),
 * X = p + v, small-order X in every form mbedTLS rejects, X of more than 32
 * bytes, negative X, Z other than 1, Y present; and invalid private keys. */
static void test_alt_x25519_inputs(int n)
{
    const int id = MBEDTLS_ECP_DP_CURVE25519;
    unsigned char d[ECDH_NB], d_bad[ECDH_NB], pts[7][32], p[32], u[32];
    struct ecdh_point q, g;
    struct test_rng r = { 77 };
    int i, v;

    ours_gen_public(id, d, &g, test_rng_fill, &r);

    memset(&q, 0, sizeof(q));
    q.z[ECDH_NB - 1] = 1;
    for (i = 0; i < n; i++) {
        rnd_bytes(u, 32);
        u[31] &= 0x7f;
        le32_to_nb(u, q.x);
        compare_shared(id, d, &q, "random X");
        u[31] |= 0x80;
        le32_to_nb(u, q.x);
        compare_shared(id, d, &q, "random 256-bit X");
    }
    set_p(p);
    for (v = 2; v <= 18; v++) {
        add_small(u, p, (unsigned) v);
        le32_to_nb(u, q.x);
        compare_shared(id, d, &q, "X = p + v");
        u[31] |= 0x80;   /* 2^255 + p + v = 2p + 19 + v */
        le32_to_nb(u, q.x);
        compare_shared(id, d, &q, "X = 2^255 + p + v");
    }
    /* The points of small order as mbedTLS sees them: every value v + j p
     * below 2^256 (j = 0, 1, 2) of a small-order v; mbedtls_ecp_check_pubkey
     * rejects them all (MBEDTLS_ERR_ECP_INVALID_KEY), before any
     * multiplication. (With bit 255 set, v + 2^255 = v + 19 + p is a
     * different point: covered by the 256-bit cases above.) */
    small_order_points(pts);
    for (i = 0; i < 5; i++) {
        unsigned char x[32];
        int j;

        memcpy(x, pts[i], 32);
        for (j = 0; j < 3; j++) {
            unsigned char z[ECDH_NB];
            struct test_rng r2 = { 3 };
            int ret;

            le32_to_nb(x, q.x);
            compare_shared(id, d, &q, "small-order X");
            ret = ours_compute_shared(id, d, &q, z, test_rng_fill, &r2);
            CHECK(ret == MBEDTLS_ERR_ECP_INVALID_KEY,
                  "compute_shared curve25519: small-order X %d + %d p gave -0x%04x", i, j, (unsigned) -ret);
            if (add_le(x, x, p) != 0) {
                break;   /* beyond 2^256 */
            }
        }
    }
    /* X just above 2^255 (the reference succeeds there) */
    for (v = 0; v < 40; v++) {
        memset(u, 0, 32);
        u[0] = (unsigned char) v;
        u[31] = 0x80;
        le32_to_nb(u, q.x);
        compare_shared(id, d, &q, "X = 2^255 + v");
    }
    /* X of 33 bytes; negative X */
    memset(&q, 0, sizeof(q));
    q.z[ECDH_NB - 1] = 1;
    q.x[ECDH_NB - 33] = 1;
    q.x[ECDH_NB - 1] = 9;
    compare_shared(id, d, &q, "X of 33 bytes");
    memset(q.x, 0, ECDH_NB);
    q.x[ECDH_NB - 1] = 9;
    q.x_neg = 1;
    compare_shared(id, d, &q, "negative X");
    q.x_neg = 0;
    /* Z = 0, Z = 2; Y present (ignored) */
    q.z[ECDH_NB - 1] = 0;
    compare_shared(id, d, &q, "Z = 0");
    q.z[ECDH_NB - 1] = 2;
    compare_shared(id, d, &q, "Z = 2");
    q.z[ECDH_NB - 1] = 1;
    q.y_limbs = 1;
    q.y[ECDH_NB - 1] = 5;
    compare_shared(id, d, &q, "Y present");
    q.y_limbs = 0;
    q.y[ECDH_NB - 1] = 0;
    compare_shared(id, d, &q, "X = 9");

    /* private keys mbedtls_ecp_check_privkey rejects */
    for (i = 0; i < 7; i++) {
        memcpy(d_bad, d, ECDH_NB);
        switch (i) {
        case 0: d_bad[ECDH_NB - 1] |= 1; break;                      /* bit 0 */
        case 1: d_bad[ECDH_NB - 1] |= 2; break;                      /* bit 1 */
        case 2: d_bad[ECDH_NB - 1] |= 4; break;                      /* bit 2 */
        case 3: d_bad[ECDH_NB - 32] &= 0xbf; break;                  /* bit 254 clear */
        case 4: d_bad[ECDH_NB - 32] |= 0x80; break;                  /* bit 255 set */
        case 5: memset(d_bad, 0, ECDH_NB); break;                    /* 0 */
        case 6: d_bad[ECDH_NB - 33] = 1; break;                      /* 2^256 + d */
        }
        compare_shared(id, d_bad, &g, "invalid private key");
        {
            unsigned char z[ECDH_NB];
            struct test_rng r2 = { 3 };
            int ret = ours_compute_shared(id, d_bad, &g, z, test_rng_fill, &r2);
            CHECK(ret == MBEDTLS_ERR_ECP_INVALID_KEY, "compute_shared curve25519: invalid d %d gave -0x%04x",
                  i, (unsigned) -ret);
        }
    }
}

/* Weierstrass curves (our fallback to mbedTLS's code): invalid inputs give
 * the reference's errors. */
static void test_alt_sw_inputs(int id)
{
    unsigned char d[ECDH_NB], d_bad[ECDH_NB];
    struct ecdh_point g, q;
    struct test_rng r = { 99 };

    ours_gen_public(id, d, &g, test_rng_fill, &r);
    q = g;
    q.y[ECDH_NB - 1] ^= 1;   /* not on the curve */
    compare_shared(id, d, &q, "point not on the curve");
    q = g;
    memset(q.z, 0, ECDH_NB);   /* the point at infinity */
    compare_shared(id, d, &q, "zero point");
    memset(d_bad, 0, ECDH_NB);
    compare_shared(id, d_bad, &g, "d = 0");
    memset(d_bad, 0xff, ECDH_NB);
    compare_shared(id, d_bad, &g, "d too large");
}

/* The mbedtls_ecdh_context functions the TLS layer calls (ServerKeyExchange:
 * make_params / read_params; ClientKeyExchange: make_public / read_public;
 * calc_secret), both sides in the release library. */
static void test_context(int id, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        mbedtls_ecdh_context srv, cli;
        unsigned char buf[200], s1[66], s2[66];
        const unsigned char *p;
        size_t len, l1, l2;
        struct test_rng r = { rnd() };
        int ret = 0;

        mbedtls_ecdh_init(&srv);
        mbedtls_ecdh_init(&cli);
        if (ret == 0) ret = mbedtls_ecdh_setup(&srv, (mbedtls_ecp_group_id) id);
        if (ret == 0) ret = mbedtls_ecdh_make_params(&srv, &len, buf, sizeof(buf), test_rng_fill, &r);
        p = buf;
        if (ret == 0) ret = mbedtls_ecdh_read_params(&cli, &p, buf + len);
        if (ret == 0) ret = mbedtls_ecdh_make_public(&cli, &len, buf, sizeof(buf), test_rng_fill, &r);
        if (ret == 0) ret = mbedtls_ecdh_read_public(&srv, buf, len);
        if (ret == 0) ret = mbedtls_ecdh_calc_secret(&srv, &l1, s1, sizeof(s1), test_rng_fill, &r);
        if (ret == 0) ret = mbedtls_ecdh_calc_secret(&cli, &l2, s2, sizeof(s2), test_rng_fill, &r);
        CHECK(ret == 0 && l1 == l2 && memcmp(s1, s2, l1) == 0 &&
              l1 == (id == MBEDTLS_ECP_DP_SECP384R1 ? 48u : 32u),
              "ecdh context %s: -0x%04x, secrets of %zu and %zu bytes", grp_name(id),
              (unsigned) -ret, l1, l2);
        if (id == MBEDTLS_ECP_DP_CURVE25519 && ret == 0) {
            /* the client's public key on the wire is 32 bytes (after a
             * length byte); the secret is X25519(d_srv, Q_cli) */
            unsigned char k[32], o[32];
            CHECK(len == 33 && buf[0] == 32, "ecdh context: public key of %zu bytes", len);
            CHECK(mbedtls_mpi_write_binary_le(&srv.ctx.mbed_ecdh.d, k, 32) == 0 &&
                  agent_x25519(o, k, buf + 1) == 0 && memcmp(o, s1, 32) == 0,
                  "ecdh context: the secret is not X25519(d, Q)");
        }
        mbedtls_ecdh_free(&srv);
        mbedtls_ecdh_free(&cli);
    }
}

int main(int argc, char **argv)
{
    uint64_t seed = 0x7748;
    size_t a;
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--million") == 0) {
            million = 1;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 0);
        } else {
            fprintf(stderr, "usage: %s [--quick] [--million] [--seed N]\n", argv[0]);
            return 2;
        }
    }
    rng = seed;

    test_rfc_ref();
    for (a = 0; a < N_IMPLS; a++) {
        unsigned long before = passed;
        test_rfc(&impls[a]);
        test_small_order(&impls[a]);
        test_edges(&impls[a], quick ? 17 : 1);
        test_random(&impls[a], quick ? 60 : 1500, quick ? 20 : 500);
        printf("ok   %s: RFC 7748 vectors, small-order points, edges and random inputs against mbedTLS (%lu checks)\n",
               impls[a].name, passed - before);
    }
    if (N_IMPLS > 1) {
        unsigned long before = passed;
        test_impls_agree(quick ? 500 : 5000);
        printf("ok   the two radices agree (%lu checks)\n", passed - before);
    }
    {
        unsigned long before = passed;
        test_alt_keys(MBEDTLS_ECP_DP_CURVE25519, quick ? 16 : 200);
        test_alt_x25519_inputs(quick ? 8 : 100);
        test_context(MBEDTLS_ECP_DP_CURVE25519, quick ? 4 : 50);
        printf("ok   mbedtls_ecdh_* on curve25519 (our ALT) against mbedTLS's own (%lu checks; mbedTLS failed"
               " on %lu 256-bit X, compared on X mod p)\n", passed - before, ref_x256_failures);
        before = passed;
        test_alt_keys(MBEDTLS_ECP_DP_SECP256R1, quick ? 3 : 20);
        test_alt_sw_inputs(MBEDTLS_ECP_DP_SECP256R1);
        test_context(MBEDTLS_ECP_DP_SECP256R1, quick ? 1 : 5);
        test_alt_keys(MBEDTLS_ECP_DP_SECP384R1, quick ? 2 : 10);
        test_alt_sw_inputs(MBEDTLS_ECP_DP_SECP384R1);
        test_context(MBEDTLS_ECP_DP_SECP384R1, quick ? 1 : 3);
        printf("ok   mbedtls_ecdh_* on secp256r1 / secp384r1 (fallback) against mbedTLS's own (%lu checks)\n",
               passed - before);
    }
    printf("%lu passed, %lu failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
