/*
 * Tests of cross/p256 (run by test/run.sh on each architecture).
 *
 *   test_p256 [--quick] VECTORS OUT
 *
 * VECTORS: lines written by test/vectors.py gen from OpenSSL (python3
 * cryptography) at test time:
 *   K priv pub              pub = priv G
 *   E priv peer secret      ECDH
 *   S pub hash sig          an OpenSSL signature (hash of 20 to 64 bytes)
 * OUT: lines for test/vectors.py check, which verifies them with OpenSSL:
 *   V pub hash sig          our signatures
 *   P priv pub              our key pairs
 *   X priv peer secret      our ECDH with our key pairs
 *
 * Every implementation in IMPLS runs the same known answers, edge cases and
 * vectors: ours, as the release builds it for the target; ours with the
 * other fixed-base table and inversion (p256.mk's <arch>_P256ALT, renamed
 * alt_*); on 64-bit targets also ours in 32-bit limbs (the armv7 code,
 * built with -DP256_LIMB32 and renamed l32_*); p256-m (renamed ref_*) when
 * built with -DHAVE_REF. Each one after the first is also checked against
 * the first on random inputs and on edge scalars (keys and nonces near 0,
 * near n, powers of two, runs of ones; signatures with the same forced
 * nonce must be identical). Ends with "N passed, M failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "p256.h"

typedef struct {
    const char *name;
    int (*gen_keypair)(uint8_t *, uint8_t *);
    int (*ecdh)(uint8_t *, const uint8_t *, const uint8_t *);
    int (*sign)(uint8_t *, const uint8_t *, const uint8_t *, size_t);
    int (*verify)(const uint8_t *, const uint8_t *, const uint8_t *, size_t);
    int (*validate_pub)(const uint8_t *);
    int (*validate_priv)(const uint8_t *);
    int (*pub_from_priv)(uint8_t *, const uint8_t *);
} impl;

#define DECL(p) \
    int p##p256_gen_keypair(uint8_t *, uint8_t *); \
    int p##p256_ecdh_shared_secret(uint8_t *, const uint8_t *, const uint8_t *); \
    int p##p256_ecdsa_sign(uint8_t *, const uint8_t *, const uint8_t *, size_t); \
    int p##p256_ecdsa_verify(const uint8_t *, const uint8_t *, const uint8_t *, size_t); \
    int p##p256_validate_pubkey(const uint8_t *); \
    int p##p256_validate_privkey(const uint8_t *); \
    int p##p256_public_from_private(uint8_t *, const uint8_t *);
#define IMPL(n, p) { n, p##p256_gen_keypair, p##p256_ecdh_shared_secret, p##p256_ecdsa_sign, \
    p##p256_ecdsa_verify, p##p256_validate_pubkey, p##p256_validate_privkey, p##p256_public_from_private }

#ifdef TEST_ALT
DECL(alt_)
#endif
#ifdef TEST_LIMB32
DECL(l32_)
#endif
#ifdef HAVE_REF
DECL(ref_)
#endif

static const impl IMPLS[] = {
    IMPL("ours", ),
#ifdef TEST_ALT
    IMPL("ours-alt", alt_),
#endif
#ifdef TEST_LIMB32
    IMPL("ours-32bit", l32_),
#endif
#ifdef HAVE_REF
    IMPL("p256-m", ref_),
#endif
};
#define NIMPLS (sizeof IMPLS / sizeof IMPLS[0])

/* --- randomness: getrandom, or bytes forced by a test, or a failure ------ */
static const uint8_t *forced;
static size_t forced_len;
static int rng_fail;

int p256_generate_random(uint8_t *out, unsigned n)
{
    if (rng_fail) {
        return -1;
    }
    if (forced != NULL) {
        if (forced_len < n) {
            return -1;
        }
        memcpy(out, forced, n);
        forced += n;
        forced_len -= n;
        return 0;
    }
    while (n > 0) {
        ssize_t r = getrandom(out, n, 0);
        if (r <= 0) {
            return -1;
        }
        out += r;
        n -= (unsigned) r;
    }
    return 0;
}

/* p256-m's own p256_generate_random (renamed) gets here through its shim */
int test_p256_random(uint8_t *out, unsigned n);
int test_p256_random(uint8_t *out, unsigned n)
{
    return p256_generate_random(out, n);
}

static void force(const uint8_t *b, size_t n)
{
    forced = b;
    forced_len = n;
}

static void rnd(uint8_t *b, size_t n)
{
    forced = NULL;
    if (p256_generate_random(b, (unsigned) n) != 0) {
        abort();
    }
}

/* --- reporting ----------------------------------------------------------- */
static unsigned long passed, failed;

static void check(int ok, const char *impl_name, const char *what, int line)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        if (failed < 50) {
            printf("FAIL %s: %s (line %d)\n", impl_name, what, line);
        }
    }
}
#define CHECK(c, what) check((c), im->name, (what), __LINE__)

static int unhex(uint8_t *out, size_t n, const char *s)
{
    if (strlen(s) != 2 * n) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        out[i] = (uint8_t) v;
    }
    return 0;
}

static void hex(FILE *f, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%02x", b[i]);
    }
}

static void H(uint8_t *out, size_t n, const char *s)
{
    if (unhex(out, n, s) != 0) {
        printf("bad hex constant %s\n", s);
        exit(2);
    }
}

/* --- constants ----------------------------------------------------------- */
static const char *N_HEX = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
static const char *P_HEX = "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff";
static const char *G_HEX =
    "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
    "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

/* big-endian 32-byte a = b - a (b > a) */
static void be_sub(uint8_t r[32], const uint8_t b[32], const uint8_t a[32])
{
    int c = 0;
    for (int i = 31; i >= 0; i--) {
        int v = b[i] - a[i] - c;
        c = v < 0;
        r[i] = (uint8_t) (v & 255);
    }
}

static void be_add_small(uint8_t r[32], unsigned v)
{
    for (int i = 31; i >= 0 && v; i--) {
        v += r[i];
        r[i] = (uint8_t) v;
        v >>= 8;
    }
}

/* --- known answers ------------------------------------------------------- */
static void test_kat(const impl *im)
{
    /* RFC 6979 A.2.5: key pair, and the SHA-256 signature of "sample" with
     * its k (fed through p256_generate_random) */
    uint8_t d[32], pub[64], out[64], hash[32], k[32], sig[64];
    H(d, 32, "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721");
    H(pub, 64, "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
               "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299");
    H(hash, 32, "af2bdbe1aa9b6ec1e2ade1d694f41fc71a831d0268e9891562113d8a62add1bf");
    H(k, 32, "a6e3c57dd01abe90086538398355dd4c3b17aa873382b0f24d6129493d8aad60");
    H(sig, 64, "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
               "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8");
    CHECK(im->pub_from_priv(out, d) == 0 && memcmp(out, pub, 64) == 0, "RFC 6979 public key");
    CHECK(im->validate_pub(pub) == 0, "RFC 6979 public key valid");
    CHECK(im->verify(sig, pub, hash, 32) == 0, "RFC 6979 signature verifies");
    force(k, 32);
    CHECK(im->sign(out, d, hash, 32) == 0 && memcmp(out, sig, 64) == 0, "RFC 6979 signature with its k");
    forced = NULL;
    /* the same k through gen_keypair: k G, whose x is r */
    force(k, 32);
    CHECK(im->gen_keypair(d, out) == 0 && memcmp(d, k, 32) == 0 && memcmp(out, sig, 32) == 0,
          "gen_keypair with forced bytes");
    forced = NULL;

    /* NIST CAVS ECC CDH primitive, P-256, COUNT = 0, 1, 2 */
    static const char *cdh[][4] = {
        { "700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287"
          "db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac",
          "7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534",
          "ead218590119e8876b29146ff89ca61770c4edbbf97d38ce385ed281d8a6b230"
          "28af61281fd35e2fa7002523acc85a429cb06ee6648325389f59edfce1405141",
          "46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b" },
        { "809f04289c64348c01515eb03d5ce7ac1a8cb9498f5caa50197e58d43a86a7ae"
          "b29d84e811197f25eba8f5194092cb6ff440e26d4421011372461f579271cda3",
          "38f65d6dce47676044d58ce5139582d568f64bb16098d179dbab07741dd5caf5",
          "119f2f047902782ab0c9e27a54aff5eb9b964829ca99c06b02ddba95b0a3f6d0"
          "8f52b726664cac366fc98ac7a012b2682cbd962e5acb544671d41b9445704d1d",
          "057d636096cb80b67a8c038c890e887d1adfa4195e9b3ce241c8a778c59cda67" },
        { "a2339c12d4a03c33546de533268b4ad667debf458b464d77443636440ee7fec3"
          "ef48a3ab26e20220bcda2c1851076839dae88eae962869a497bf73cb66faf536",
          "1accfaf1b97712b85a6f54b148985a1bdc4c9bec0bd258cad4b3d603f49f32c8",
          "d9f2b79c172845bfdb560bbb01447ca5ecc0470a09513b6126902c6b4f8d1051"
          "f815ef5ec32128d3487834764678702e64e164ff7315185e23aff5facd96d7bc",
          "2d457b78b4614132477618a5b077965ec90730a8c81a1c75d6d4ec68005d67ec" },
    };
    for (unsigned i = 0; i < 3; i++) {
        uint8_t q[64], di[32], qi[64], z[32], s[32];
        H(q, 64, cdh[i][0]);
        H(di, 32, cdh[i][1]);
        H(qi, 64, cdh[i][2]);
        H(z, 32, cdh[i][3]);
        CHECK(im->pub_from_priv(out, di) == 0 && memcmp(out, qi, 64) == 0, "CAVS CDH QIUT");
        CHECK(im->ecdh(s, di, q) == 0 && memcmp(s, z, 32) == 0, "CAVS CDH ZIUT");
    }
}

/* --- edge cases ---------------------------------------------------------- */
static void test_edges(const impl *im)
{
    uint8_t n[32], p[32], g[64], d[32], pub[64], out[64], sig[64], bad[64], hash[64], s[32];
    int i;

    H(n, 32, N_HEX);
    H(p, 32, P_HEX);
    H(g, 64, G_HEX);

    /* private keys: 0, n, n + 1, all ones invalid; 1 and n - 1 valid */
    memset(d, 0, 32);
    CHECK(im->validate_priv(d) == P256_INVALID_PRIVKEY, "priv 0 invalid");
    CHECK(im->pub_from_priv(out, d) == P256_INVALID_PRIVKEY, "pub_from_priv(0)");
    CHECK(im->ecdh(s, d, g) == P256_INVALID_PRIVKEY, "ecdh priv 0");
    CHECK(im->sign(sig, d, hash, 32) == P256_INVALID_PRIVKEY, "sign priv 0");
    CHECK(im->validate_priv(n) == P256_INVALID_PRIVKEY, "priv n invalid");
    CHECK(im->pub_from_priv(out, n) == P256_INVALID_PRIVKEY, "pub_from_priv(n)");
    CHECK(im->ecdh(s, n, g) == P256_INVALID_PRIVKEY, "ecdh priv n");
    memcpy(d, n, 32);
    be_add_small(d, 1);
    CHECK(im->validate_priv(d) == P256_INVALID_PRIVKEY, "priv n+1 invalid");
    memset(d, 0xff, 32);
    CHECK(im->validate_priv(d) == P256_INVALID_PRIVKEY, "priv 2^256-1 invalid");
    CHECK(im->sign(sig, d, hash, 32) == P256_INVALID_PRIVKEY, "sign priv > n");
    memset(d, 0, 32);
    d[31] = 1;
    CHECK(im->validate_priv(d) == 0, "priv 1 valid");
    CHECK(im->pub_from_priv(out, d) == 0 && memcmp(out, g, 64) == 0, "1 G = G");
    CHECK(im->ecdh(s, d, g) == 0 && memcmp(s, g, 32) == 0, "ecdh 1 G");
    memcpy(d, n, 32);
    d[31] -= 1;   /* n - 1 (n ends in 0x51) */
    CHECK(im->validate_priv(d) == 0, "priv n-1 valid");
    {
        /* (n - 1) G = -G: x of G, y = p - y(G) */
        uint8_t neg[64];
        memcpy(neg, g, 32);
        be_sub(neg + 32, p, g + 32);
        CHECK(im->pub_from_priv(out, d) == 0 && memcmp(out, neg, 64) == 0, "(n-1) G = -G");
        CHECK(im->ecdh(s, d, g) == 0 && memcmp(s, g, 32) == 0, "ecdh (n-1) G");
        CHECK(im->validate_pub(neg) == 0, "-G valid");
    }
    /* small multiples: 2 G twice, via the comb and via ecdh from 1..15 */
    for (i = 2; i < 40; i++) {
        uint8_t a[64], b[32];
        memset(d, 0, 32);
        d[31] = (uint8_t) i;
        CHECK(im->pub_from_priv(a, d) == 0 && im->ecdh(b, d, g) == 0 && memcmp(a, b, 32) == 0,
              "small k: comb and window agree");
    }

    /* public keys */
    memset(bad, 0, 64);
    CHECK(im->validate_pub(bad) == P256_INVALID_PUBKEY, "all-zero point invalid");
    memcpy(bad, g, 64);
    bad[63] ^= 1;
    CHECK(im->validate_pub(bad) == P256_INVALID_PUBKEY, "off-curve point invalid");
    d[31] = 7;
    memset(d, 0, 31);
    CHECK(im->ecdh(s, d, bad) == P256_INVALID_PUBKEY, "ecdh off-curve point");
    {
        /* x + p, y + p would be the same point mod p: they must not pass */
        uint8_t big[64];
        memcpy(big, p, 32);
        memcpy(big + 32, g + 32, 32);
        CHECK(im->validate_pub(big) == P256_INVALID_PUBKEY, "x = p invalid");
        memcpy(big, g, 32);
        memset(big + 32, 0xff, 32);
        CHECK(im->validate_pub(big) == P256_INVALID_PUBKEY, "y = 2^256 - 1 invalid");
        memcpy(big + 32, p, 32);
        CHECK(im->validate_pub(big) == P256_INVALID_PUBKEY, "y = p invalid");
        /* (0, sqrt(b)) is on the curve: x = 0 is fine */
        uint8_t z0[64];
        H(z0, 64, "0000000000000000000000000000000000000000000000000000000000000000"
                  "66485c780e2f83d72433bd5d84a06bb6541c2af31dae871728bf856a174f93f4");
        CHECK(im->validate_pub(z0) == 0, "(0, sqrt b) valid");
    }

    /* signatures: a valid one, then r, s out of range and flipped bits */
    uint8_t priv[32];
    rnd(hash, 64);
    CHECK(im->gen_keypair(priv, pub) == 0, "gen_keypair");
    CHECK(im->validate_priv(priv) == 0 && im->validate_pub(pub) == 0, "generated keys valid");
    CHECK(im->pub_from_priv(out, priv) == 0 && memcmp(out, pub, 64) == 0, "gen_keypair pub = priv G");
    CHECK(im->sign(sig, priv, hash, 32) == 0, "sign");
    CHECK(im->verify(sig, pub, hash, 32) == 0, "verify own signature");
    memcpy(bad, sig, 64);
    memset(bad, 0, 32);
    CHECK(im->verify(bad, pub, hash, 32) == P256_INVALID_SIGNATURE, "r = 0");
    memcpy(bad, sig, 64);
    memset(bad + 32, 0, 32);
    CHECK(im->verify(bad, pub, hash, 32) == P256_INVALID_SIGNATURE, "s = 0");
    memcpy(bad, sig, 64);
    memcpy(bad, n, 32);
    CHECK(im->verify(bad, pub, hash, 32) == P256_INVALID_SIGNATURE, "r = n");
    memcpy(bad, sig, 64);
    memcpy(bad + 32, n, 32);
    CHECK(im->verify(bad, pub, hash, 32) == P256_INVALID_SIGNATURE, "s = n");
    memcpy(bad, sig, 64);
    memset(bad + 32, 0xff, 32);
    CHECK(im->verify(bad, pub, hash, 32) == P256_INVALID_SIGNATURE, "s > n");
    /* r + n, s + n: the same residues, must be rejected */
    memcpy(bad, sig, 64);
    {
        uint8_t t[32];
        be_sub(t, n, bad + 32);          /* n - s: the high/low twin */
        memcpy(bad + 32, t, 32);
        CHECK(im->verify(bad, pub, hash, 32) == 0, "s -> n - s still verifies (no low-S rule)");
    }
    for (i = 0; i < 8; i++) {
        uint8_t h2[32];
        memcpy(h2, hash, 32);
        h2[(i * 5) % 32] ^= (uint8_t) (1 << i);
        CHECK(im->verify(sig, pub, h2, 32) == P256_INVALID_SIGNATURE, "flipped hash bit");
        memcpy(bad, sig, 64);
        bad[(i * 9) % 64] ^= (uint8_t) (1 << (7 - i));
        CHECK(im->verify(bad, pub, hash, 32) != 0, "flipped signature bit");
    }
    memcpy(bad, g, 64);
    bad[40] ^= 1;
    CHECK(im->verify(sig, bad, hash, 32) == P256_INVALID_PUBKEY, "verify with an off-curve key");
    memset(bad, 0, 64);
    CHECK(im->verify(sig, bad, hash, 32) == P256_INVALID_PUBKEY, "verify with the zero point");
    memset(bad, 0, 64);
    memset(out, 0, 64);
    CHECK(im->verify(bad, out, hash, 32) == P256_INVALID_SIGNATURE, "signature checked before key");

    /* hash lengths: 20 (the integer itself), 32, 48 and 64 (leftmost 256 bits) */
    {
        static const size_t lens[] = { 1, 20, 31, 32, 33, 48, 64 };
        for (i = 0; i < (int) (sizeof lens / sizeof lens[0]); i++) {
            size_t l = lens[i];
            uint8_t padded[32];
            CHECK(im->sign(sig, priv, hash, l) == 0, "sign hash length");
            CHECK(im->verify(sig, pub, hash, l) == 0, "verify hash length");
            if (l >= 32) {
                CHECK(im->verify(sig, pub, hash, 32) == 0, "long hash = its first 32 bytes");
            } else {
                memset(padded, 0, 32);
                memcpy(padded + 32 - l, hash, l);
                CHECK(im->verify(sig, pub, padded, 32) == 0, "short hash = left-padded");
            }
        }
        /* a hash >= n is reduced: hash and hash - n give the same signature check */
        uint8_t hb[32], hr[32];
        memset(hb, 0xff, 32);
        be_sub(hr, hb, n);
        CHECK(im->sign(sig, priv, hb, 32) == 0 && im->verify(sig, pub, hr, 32) == 0, "hash >= n reduced mod n");
    }

    /* the random generator failing */
    rng_fail = 1;
    CHECK(im->gen_keypair(d, out) == P256_RANDOM_FAILED, "gen_keypair, RNG failure");
    CHECK(im->sign(sig, priv, hash, 32) == P256_RANDOM_FAILED, "sign, RNG failure");
    rng_fail = 0;
    /* 4 draws >= n: gen_keypair gives up; 3 then a valid one: accepted */
    {
        uint8_t draws[4 * 32];
        memset(draws, 0xff, sizeof draws);
        force(draws, sizeof draws);
        CHECK(im->gen_keypair(d, out) == P256_RANDOM_FAILED, "4 draws >= n: give up");
        memset(draws + 96, 0, 32);
        draws[127] = 2;
        force(draws, sizeof draws);
        CHECK(im->gen_keypair(d, out) == 0 && d[31] == 2 && d[0] == 0, "rejection sampling: 4th draw");
        forced = NULL;
    }
}

/* --- vectors from OpenSSL, and ours for OpenSSL -------------------------- */
static void test_vectors(const impl *im, const char *path, FILE *outf)
{
    FILE *f = fopen(path, "r");
    char line[1024], t[8], a[300], b[300], c[300], d2[300];
    uint8_t priv[32], pub[64], out[64], hash[64], sig[64], sec[32];

    if (f == NULL) {
        CHECK(0, "vector file");
        return;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        int n = sscanf(line, "%7s %299s %299s %299s %299s", t, a, b, c, d2);
        if (n >= 3 && t[0] == 'K') {
            H(priv, 32, a);
            H(pub, 64, b);
            CHECK(im->pub_from_priv(out, priv) == 0 && memcmp(out, pub, 64) == 0, "OpenSSL key pair");
            if (outf != NULL) {
                /* our signature of a random hash, for OpenSSL to check */
                size_t l = (size_t[]){ 20, 32, 48, 64 }[out[0] & 3];
                rnd(hash, l);
                CHECK(im->sign(sig, priv, hash, l) == 0, "sign");
                fprintf(outf, "V ");
                hex(outf, pub, 64);
                fprintf(outf, " ");
                hex(outf, hash, l);
                fprintf(outf, " ");
                hex(outf, sig, 64);
                fprintf(outf, "\n");
            }
        } else if (n >= 4 && t[0] == 'E') {
            H(priv, 32, a);
            H(pub, 64, b);
            H(out, 32, c);
            CHECK(im->ecdh(sec, priv, pub) == 0 && memcmp(sec, out, 32) == 0, "OpenSSL ECDH");
        } else if (n >= 4 && t[0] == 'S') {
            size_t l = strlen(b) / 2;
            H(pub, 64, a);
            H(hash, l, b);
            H(sig, 64, c);
            CHECK(im->verify(sig, pub, hash, l) == 0, "OpenSSL signature verifies");
            if (l > 32) {
                /* past the leftmost 256 bits: ignored */
                hash[l - 1] ^= 0x10;
                CHECK(im->verify(sig, pub, hash, l) == 0, "OpenSSL signature, hash altered past 32 bytes");
            }
            hash[l / 3] ^= 0x10;
            CHECK(im->verify(sig, pub, hash, l) == P256_INVALID_SIGNATURE, "OpenSSL signature, altered hash");
        }
    }
    fclose(f);
    if (outf != NULL) {
        /* our key pairs and ECDH between two of them */
        for (int i = 0; i < 8; i++) {
            uint8_t p2[32], q2[64];
            CHECK(im->gen_keypair(priv, pub) == 0 && im->gen_keypair(p2, q2) == 0, "gen_keypair");
            CHECK(im->ecdh(sec, priv, q2) == 0, "ecdh");
            CHECK(im->ecdh(out, p2, pub) == 0 && memcmp(out, sec, 32) == 0, "ECDH both ways agree");
            fprintf(outf, "P ");
            hex(outf, priv, 32);
            fprintf(outf, " ");
            hex(outf, pub, 64);
            fprintf(outf, "\nX ");
            hex(outf, priv, 32);
            fprintf(outf, " ");
            hex(outf, q2, 64);
            fprintf(outf, " ");
            hex(outf, sec, 32);
            fprintf(outf, "\n");
        }
    }
}

/* --- differential: each implementation against the first ---------------- */
static void test_diff(const impl *im, int rounds)
{
    const impl *o = &IMPLS[0];
    uint8_t priv[32], pub[64], a[64], b[64], hash[64], sig[64], p2[32], q2[64];

    for (int i = 0; i < rounds; i++) {
        rnd(priv, 32);
        if (i % 16 == 0) {
            memset(priv, i % 32 == 0 ? 0xff : 0, 16);     /* near n, or small */
        }
        int ra = im->pub_from_priv(a, priv), rb = o->pub_from_priv(b, priv);
        CHECK(ra == rb && (ra != 0 || memcmp(a, b, 64) == 0), "pub_from_priv = ours");
        if (ra != 0) {
            continue;
        }
        memcpy(pub, a, 64);
        CHECK(o->gen_keypair(p2, q2) == 0, "gen_keypair");
        CHECK(im->ecdh(a, priv, q2) == 0 && o->ecdh(b, p2, pub) == 0 && memcmp(a, b, 32) == 0,
              "ecdh = ours");
        size_t l = 20 + (size_t) (i % 45);
        rnd(hash, l);
        CHECK(im->sign(sig, priv, hash, l) == 0 && o->verify(sig, pub, hash, l) == 0, "sign -> ours verifies");
        CHECK(o->sign(sig, priv, hash, l) == 0 && im->verify(sig, pub, hash, l) == 0, "ours signs -> verify");
        sig[i % 64] ^= 4;
        CHECK(im->verify(sig, pub, hash, l) == o->verify(sig, pub, hash, l), "same verdict on a bad signature");
        rnd(a, 64);
        if (i % 4 == 0) {
            memcpy(a, pub, 32);     /* x of a point, random y */
        }
        CHECK(im->validate_pub(a) == o->validate_pub(a), "same verdict on a random key");
    }
}

/* --- differential on edge scalars ---------------------------------------- */
static int n_edge_scalars(uint8_t out[][32], int max)
{
    uint8_t n[32];
    int c = 0, i;

    H(n, 32, N_HEX);
#define ADD() do { if (c < max) c++; } while (0)
    for (i = 1; i <= 40; i++) {                 /* 1..40 */
        memset(out[c], 0, 32);
        out[c][31] = (uint8_t) i;
        ADD();
    }
    for (i = 1; i <= 40; i++) {                 /* n - 40 .. n - 1 */
        uint8_t v[32] = { 0 };
        v[31] = (uint8_t) i;
        be_sub(out[c], n, v);
        ADD();
    }
    for (i = 0; i < 256; i += 5) {              /* 2^i, 2^i - 1, n - 2^i: window edges */
        uint8_t v[32] = { 0 };
        v[31 - i / 8] = (uint8_t) (1 << (i % 8));
        memcpy(out[c], v, 32);
        ADD();
        if (i > 0) {
            uint8_t one[32] = { 0 };
            one[31] = 1;
            be_sub(out[c], v, one);
            ADD();
        }
        be_sub(out[c], n, v);
        ADD();
    }
    for (i = 0; i < 256; i += 10) {             /* 2^(i+4) and 2^(i+5): digit 16 and a carry */
        uint8_t v[32] = { 0 };
        int b = i + 4;
        v[31 - b / 8] = (uint8_t) (1 << (b % 8));
        memcpy(out[c], v, 32);
        ADD();
    }
    /* every 5-bit window 16 (0b10000): 0x842108421...; and 15, 17 */
    {
        static const unsigned pat[] = { 16, 15, 17, 31 };
        for (unsigned pi = 0; pi < 4; pi++) {
            uint8_t v[32] = { 0 };
            for (int w = 0; w < 51; w++) {
                for (int bit = 0; bit < 5; bit++) {
                    if (pat[pi] >> bit & 1) {
                        int pos = 5 * w + bit;
                        v[31 - pos / 8] |= (uint8_t) (1 << (pos % 8));
                    }
                }
            }
            memcpy(out[c], v, 32);
            ADD();
        }
    }
    /* 2^256 mod n = 2^256 - n, and n - (2^256 - n) */
    {
        uint8_t z[32] = { 0 }, v[32];
        be_sub(v, z, n);            /* 0 - n mod 2^256 */
        memcpy(out[c], v, 32);
        ADD();
        be_sub(out[c], n, v);
        ADD();
    }
#undef ADD
    return c;
}

static void test_edge_scalars(const impl *im)
{
    const impl *o = &IMPLS[0];
    static uint8_t ks[400][32];
    uint8_t a[64], b[64], s1[64], s2[64], hash[32], g[64];
    int cnt = n_edge_scalars(ks, 400);

    H(g, 64, G_HEX);
    rnd(hash, 32);
    for (int i = 0; i < cnt; i++) {
        uint8_t kk[32];
        memcpy(kk, ks[i], 32);
        CHECK(im->pub_from_priv(a, ks[i]) == 0 && o->pub_from_priv(b, ks[i]) == 0 && memcmp(a, b, 64) == 0,
              "edge scalar: k G = ours");
        CHECK(im->ecdh(s1, ks[i], g) == 0 && memcmp(s1, a, 32) == 0, "edge scalar: ecdh(k, G) = x(k G)");
        /* the same forced nonce: the same signature (k^-1 and x(k G) at edges) */
        force(kk, 32);
        int r1 = im->sign(s1, ks[(i + 7) % cnt], hash, 32);
        force(kk, 32);
        int r2 = o->sign(s2, ks[(i + 7) % cnt], hash, 32);
        forced = NULL;
        CHECK(r1 == 0 && r2 == 0 && memcmp(s1, s2, 64) == 0, "edge nonce: same signature as ours");
        CHECK(memcmp(s1, a, 32) == 0, "edge nonce: r = x(k G)");
        CHECK(im->verify(s1, b, hash, 32) == P256_INVALID_SIGNATURE || memcmp(ks[(i + 7) % cnt], ks[i], 32) == 0,
              "edge nonce: not a signature by the nonce's key");
        CHECK(o->pub_from_priv(b, ks[(i + 7) % cnt]) == 0 && im->verify(s1, b, hash, 32) == 0,
              "edge nonce: signature verifies");
    }
}

/* The key pair cache (README.md, "Key pair cache"): public_from_private
 * after gen_keypair gives the same result as computed, whatever came in
 * between (another key pair, a failed generation, another key, the same key
 * twice). The implementation without a cache (p256-m) answers the same; the
 * hits and wipes themselves are checked by internal_p256. */
static void test_keycache(const impl *im)
{
    uint8_t a[32], pa[64], b[32], pb[64], out[64], x[32], px[64];

    rnd(x, 32);
    x[0] &= 0x7f;
    CHECK(IMPLS[0].pub_from_priv(px, x) == 0, "cache: a key");
    for (int round = 0; round < 8; round++) {
        /* generated, then exported: the cached pair, then computed again */
        forced = NULL;
        CHECK(im->gen_keypair(a, pa) == 0, "cache: gen_keypair");
        CHECK(im->pub_from_priv(out, a) == 0 && memcmp(out, pa, 64) == 0, "cache: export after gen");
        CHECK(im->pub_from_priv(out, a) == 0 && memcmp(out, pa, 64) == 0, "cache: export again");
        /* two pairs, exported in the other order */
        CHECK(im->gen_keypair(a, pa) == 0 && im->gen_keypair(b, pb) == 0, "cache: two pairs");
        CHECK(im->pub_from_priv(out, a) == 0 && memcmp(out, pa, 64) == 0, "cache: the older pair");
        CHECK(im->pub_from_priv(out, b) == 0 && memcmp(out, pb, 64) == 0, "cache: the newer pair");
        /* another key after a generation, then the generated one */
        CHECK(im->gen_keypair(a, pa) == 0, "cache: gen_keypair");
        CHECK(im->pub_from_priv(out, x) == 0 && memcmp(out, px, 64) == 0, "cache: another key");
        CHECK(im->pub_from_priv(out, a) == 0 && memcmp(out, pa, 64) == 0, "cache: generated key later");
        /* the generated key with one bit flipped: not the cached pair */
        CHECK(im->gen_keypair(a, pa) == 0, "cache: gen_keypair");
        memcpy(b, a, 32);
        b[round * 4 + 1] ^= (uint8_t) (1u << round);
        int rb = IMPLS[0].pub_from_priv(pb, b);
        CHECK(im->pub_from_priv(out, b) == rb && (rb != 0 || memcmp(out, pb, 64) == 0),
              "cache: a key one bit away");
        CHECK(rb != 0 || memcmp(out, pa, 64) != 0, "cache: a key one bit away, another public key");
        /* a failed generation after a good one */
        CHECK(im->gen_keypair(a, pa) == 0, "cache: gen_keypair");
        memcpy(b, a, 32);
        rng_fail = 1;
        CHECK(im->gen_keypair(b, out) == P256_RANDOM_FAILED, "cache: RNG failure");
        rng_fail = 0;
        CHECK(im->pub_from_priv(out, a) == 0 && memcmp(out, pa, 64) == 0, "cache: after a failure");
        /* invalid private keys are still rejected (0, n) after a generation */
        CHECK(im->gen_keypair(a, pa) == 0, "cache: gen_keypair");
        memset(b, 0, 32);
        CHECK(im->pub_from_priv(out, b) == P256_INVALID_PRIVKEY, "cache: 0 still invalid");
    }
}

int main(int argc, char **argv)
{
    int quick = 0, ai = 1;
    FILE *outf = NULL;

    if (argc > ai && strcmp(argv[ai], "--quick") == 0) {
        quick = 1;
        ai++;
    }
    if (argc > ai + 1) {
        outf = fopen(argv[ai + 1], "w");
        if (outf == NULL) {
            perror(argv[ai + 1]);
            return 2;
        }
    }
#ifndef HAVE_REF
    printf("p256-m reference: skipped (p256-m.c not found, see p256.mk)\n");
#endif
    for (unsigned i = 0; i < NIMPLS; i++) {
        const impl *im = &IMPLS[i];
        unsigned long f0 = failed, p0 = passed;
        test_kat(im);
        test_edges(im);
        test_keycache(im);
        if (argc > ai) {
            test_vectors(im, argv[ai], i == 0 ? outf : NULL);
        }
        if (i > 0) {
            test_diff(im, quick ? 64 : 400);
            test_edge_scalars(im);
        }
        printf("%s: %lu passed, %lu failed\n", im->name, passed - p0, failed - f0);
    }
    if (outf != NULL) {
        /* our k G for the edge scalars, for OpenSSL to check */
        static uint8_t ks[400][32];
        int cnt = n_edge_scalars(ks, 400);
        for (int i = 0; i < cnt; i++) {
            uint8_t pub[64];
            if (IMPLS[0].pub_from_priv(pub, ks[i]) != 0) {
                check(0, IMPLS[0].name, "edge scalar public key", __LINE__);
                continue;
            }
            fprintf(outf, "P ");
            hex(outf, ks[i], 32);
            fprintf(outf, " ");
            hex(outf, pub, 64);
            fprintf(outf, "\n");
        }
        fclose(outf);
    }
    printf("%lu passed, %lu failed\n", passed, failed);
    return failed != 0;
}
