/*
 * loadgen: many idle devices from one process, to load a relay (make bench-scale).
 *
 * Each device speaks the agent protocol (docs/PROTOCOL.md) exactly as bench/idle_devices.py
 * does, without any stream:
 *
 *   TCP from one of several loopback source addresses (127.0.0.2, 127.0.0.3, ...: one address
 *   has ~28,000 ephemeral ports), TLS 1.3 to the relay (the relay's key is checked against
 *   --pin, SHA-256 of its SPKI), the preamble "agent/1\n", CHALLENGE <- relay (its key = the
 *   TLS key, its signature over "agent relay challenge v2" || nonce || vmin || vmax checked, or
 *   none when the relay agreed to ALPN "agent-tls-key", offered like an agent without --ca),
 *   AUTH -> relay (role reverse, the device's P-256 key and a self-signed certificate, the
 *   signature over "agent auth v1" || nonce || SHA-256(relay SPKI) || SHA-256(AUTH without
 *   signature)), WELCOME <- relay (the ID in it is checked against the device's own), then it
 *   stays connected and answers every PING with a PONG.
 *
 * Device keys are not random: device i's private key is derived from --seed and i
 * (SHA-256("agent loadgen device key v1" || seed || i), reduced to a valid P-256 scalar), so a
 * device comes back with the same key, nothing per device is kept in memory between attempts,
 * and --write-registry can enroll the same keys in the relay's registry ahead of the run.
 *
 * One thread, non-blocking sockets, level-triggered epoll, a timer heap, OpenSSL with
 * SSL_MODE_RELEASE_BUFFERS (an idle connection holds no record buffers here). Handshakes
 * in progress are bounded (--concurrency in all, --per-source for each source address: the
 * relay closes a source's connections beyond 32 pending handshakes). Every loop is bounded:
 * the tool exits after --hold seconds, on a line "stop" on stdin, or at EOF on stdin.
 *
 * Progress goes to stdout as lines a harness reads (the same as idle_devices.py, with more
 * fields after them):
 *   connected N failed M seconds S ...   once every device has had its first attempt
 *   alive N pings P admissions A ...     in answer to a line "count" on stdin
 * Both lines go on with more "name value" pairs: in the "count" answer resumed (admissions
 * over a resumed TLS session), tls_resumed (TLS handshakes that resumed), enrolled (WELCOMEs
 * saying this connection enrolled the key), lost (tunnels lost after admission), attempts,
 * pending, id_mismatch (WELCOMEs with another ID than the device's: the run is wrong),
 * all_back_at (CLOCK_MONOTONIC seconds, the last time every device was up again after one was
 * lost; 0 if that never happened), last_loss_at, rss_kib and base_rss_kib (this process's
 * resident memory now and before the first connection).
 *
 * --reconnect: a device that loses the relay comes back with the same key after a backoff of
 * 0.5 s (doubling to 8 s after failed attempts), jittered to 50-100 %, as idle_devices.py does.
 * It offers the resume credential the relay gave it (RESUME, protocol version 2: a TLS 1.3
 * external PSK, psk_ke; the hello then goes unsigned both ways), as `agent --role reverse`
 * does; --no-resume: never (every return is a full handshake). A credential the relay does not
 * take is dropped. With no credential, its last TLS ticket (if any) is offered.
 *
 * Usage:
 *   loadgen --relay 127.0.0.1:PORT --pin sha256:HEX [--count 1000] [--index-base 0] [--seed S]
 *           [--sources N] [--first-source 2] [--concurrency 64] [--per-source 24] [--rate R]
 *           [--hold 300] [--timeout 20] [--reconnect] [--groups P-256] [--tls12] [--keepalive 240]
 *           [--no-resume]
 *   --keepalive: seconds between a device's own PINGs, announced to the relay after WELCOME
 *     (KEEPALIVE, as `agent --role reverse` does; the relay then does not ping it); 0: announce
 *     nothing and only answer the relay's PINGs (agents before KEEPALIVE);
 *   --sources: source addresses 127.0.0.<first-source> on (default: one per 25,000 devices);
 *   --rate: first attempts per second (default: as fast as the handshake slots allow);
 *   --timeout: seconds for TCP, TLS and hello together; --tls12: allow TLS 1.2 (older relays).
 *   loadgen --write-registry FILE [--count N] [--index-base 0] [--seed S]
 *
 * Build: cc -O2 -o build/loadgen bench/loadgen.c -lssl -lcrypto (bench/bench.mk).
 */
#define _GNU_SOURCE
/* EC_KEY and ECDSA_sign/verify are deprecated in OpenSSL 3.0 but several times cheaper per call
   than its EVP paths (see device_ec_key). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* ------------------------------------------------------------------------------------------ */
/* protocol constants (docs/PROTOCOL.md, Sources/Wire/Frame.swift)                             */

static const uint8_t PREAMBLE[8] = {'a', 'g', 'e', 'n', 't', '/', '1', '\n'};
enum { T_CHALLENGE = 0x01, T_AUTH = 0x02, T_WELCOME = 0x03, T_DENIED = 0x04 };
enum { T_PING = 0x20, T_PONG = 0x21, T_GOAWAY = 0x22, T_RESUME = 0x23, T_KEEPALIVE = 0x24 };
enum { ROLE_REVERSE = 1, MAX_PAYLOAD = 16376, HEADER = 8, ID_BYTES = 20 };
static const char AUTH_LABEL[] = "agent auth v1";                    /* 13 bytes, no NUL */
static const char CHALLENGE_LABEL[] = "agent relay challenge v2";     /* 24 bytes, no NUL */
static const char ALPN_TLS_KEY[] = "\x0d" "agent-tls-key";              /* ALPN wire form */
static const char KEY_LABEL[] = "agent loadgen device key v1";

/* DER SubjectPublicKeyInfo of a P-256 key: this prefix, then the 65-byte uncompressed point. */
static const uint8_t SPKI_P256_PREFIX[26] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
enum { SPKI_P256_BYTES = 26 + 65 };

/* ------------------------------------------------------------------------------------------ */
/* options and counters                                                                        */

static struct {
    struct sockaddr_in relay;
    uint8_t pin[32];
    int have_pin;
    long count, index_base;
    const char *seed;
    int sources, first_source, concurrency, per_source;
    double rate, hold, timeout, keepalive;
    int reconnect, tls12, no_resume;
    const char *groups;
    const char *write_registry;
} opt = {.count = 1000, .seed = "bench", .first_source = 2, .concurrency = 64, .per_source = 24, .hold = 300,
         .timeout = 20, .keepalive = 240, .groups = "P-256"};

static struct {
    long connected, failed;          /* first attempts: admitted / not */
    long alive, pings, admissions, resumed, tls_resumed, enrolled, lost, attempts;
    long credentials;                /* RESUME frames received */
    long id_mismatch;
    double all_back_at, last_loss_at;
} st;

/* Why a first attempt failed (stderr summary, like idle_devices.py's "errors" line). */
enum {
    E_CONNECT, E_CONNECT_TIMEOUT, E_TLS, E_PIN, E_CLOSED, E_PROTOCOL, E_CHALLENGE_KEY,
    E_CHALLENGE_SIG, E_VERSION, E_DENIED, E_TIMEOUT, E_NOPORT, E_INTERNAL, E_COUNT
};
static const char *E_NAMES[E_COUNT] = {
    "connect failed", "connect timed out", "TLS handshake failed", "relay TLS key does not match the pin",
    "connection closed by the relay", "unexpected frame", "challenge key differs from the TLS key",
    "challenge signature does not verify", "no common version", "DENIED", "hello timed out",
    "no source port left", "internal error"};
static long errors[E_COUNT];

static double mono(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* A small fast PRNG for jitter and certificate serials (nothing secret depends on it). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}
static double rnd_unit(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

/* ------------------------------------------------------------------------------------------ */
/* device keys: derived from --seed and the index                                              */

static EC_GROUP *p256;
static BIGNUM *p256_order;

/* Device `index`'s private scalar (32 bytes) and its uncompressed public point (65 bytes). */
static void device_key(long index, uint8_t priv[32], uint8_t pub[65]) {
    BN_CTX *bn = BN_CTX_new();
    BIGNUM *d = BN_new();
    EC_POINT *q = EC_POINT_new(p256);
    for (uint32_t counter = 0;; counter++) {
        uint8_t in[128];
        size_t n = 0, sl = strlen(opt.seed);
        if (sl > 64) sl = 64;
        memcpy(in + n, KEY_LABEL, sizeof KEY_LABEL - 1), n += sizeof KEY_LABEL - 1;
        memcpy(in + n, opt.seed, sl), n += sl;
        for (int k = 7; k >= 0; k--) in[n++] = (uint8_t)((uint64_t)index >> (8 * k));
        for (int k = 3; k >= 0; k--) in[n++] = (uint8_t)(counter >> (8 * k));
        SHA256(in, n, priv);
        BN_bin2bn(priv, 32, d);
        if (!BN_is_zero(d) && BN_cmp(d, p256_order) < 0) break;   /* almost always the first */
    }
    if (!EC_POINT_mul(p256, q, d, NULL, NULL, bn) ||
        EC_POINT_point2oct(p256, q, POINT_CONVERSION_UNCOMPRESSED, pub, 65, bn) != 65)
        die("EC_POINT_mul failed");
    EC_POINT_free(q);
    BN_clear_free(d);
    BN_CTX_free(bn);
}

static void spki_of(const uint8_t pub[65], uint8_t spki[SPKI_P256_BYTES]) {
    memcpy(spki, SPKI_P256_PREFIX, sizeof SPKI_P256_PREFIX);
    memcpy(spki + sizeof SPKI_P256_PREFIX, pub, 65);
}

/* The agent ID (docs/IDENTITY.md): the first 20 bytes of SHA-256 over the SPKI. */
static void agent_id(const uint8_t pub[65], uint8_t id[ID_BYTES]) {
    uint8_t spki[SPKI_P256_BYTES], h[32];
    spki_of(pub, spki);
    SHA256(spki, sizeof spki, h);
    memcpy(id, h, ID_BYTES);
}

/* RFC 4648 base32, lowercase, no padding: 20 bytes -> 32 characters (AgentID.text). */
static void base32(const uint8_t *in, size_t n, char *out) {
    static const char A[] = "abcdefghijklmnopqrstuvwxyz234567";
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = A[(acc >> bits) & 31];
        }
    }
    if (bits > 0) out[o++] = A[(acc << (5 - bits)) & 31];
    out[o] = 0;
}

/* Device `index`'s key as an EC_KEY (the low-level API: OpenSSL 3.0's EVP paths cost several
   times more per call, and a generator that spends more CPU per handshake than the relay
   measures itself). Its public point also into pub. */
static EC_KEY *device_ec_key(long index, uint8_t pub[65]) {
    uint8_t priv[32];
    device_key(index, priv, pub);
    EC_KEY *k = EC_KEY_new();
    BIGNUM *d = BN_bin2bn(priv, 32, NULL);
    EC_POINT *q = EC_POINT_new(p256);
    OPENSSL_cleanse(priv, sizeof priv);
    if (!k || !d || !q || EC_KEY_set_group(k, p256) != 1 || EC_KEY_set_private_key(k, d) != 1 ||
        EC_POINT_oct2point(p256, q, pub, 65, NULL) != 1 || EC_KEY_set_public_key(k, q) != 1)
        die("EC_KEY setup failed");
    EC_POINT_free(q);
    BN_clear_free(d);
    return k;
}

/* ECDSA P-256 with SHA-256 over msg, DER into sig (at most 72 bytes). Its length, or -1. */
static int sign(EC_KEY *k, const uint8_t *msg, size_t n, uint8_t sig[80]) {
    uint8_t h[32];
    unsigned int len = 80;
    SHA256(msg, n, h);
    if (ECDSA_size(k) > 80 || ECDSA_sign(0, h, 32, sig, &len, k) != 1) return -1;
    return (int)len;
}

/*
 * The self-signed certificate, as idle_devices.py makes one (CN "bench idle device", valid
 * from a day ago for 30 days, ecdsa-with-SHA256), from a template: OpenSSL builds one
 * certificate at start; each device's copy of its to-be-signed part gets the device's public
 * point and a serial of its own, and is signed with the device's key. (X509_sign costs ~0.8 ms
 * in OpenSSL 3.0, most of it outside the signature.)
 */
static uint8_t tbs_template[512];
static size_t tbs_len, tbs_point_off, tbs_serial_off;
static const uint8_t ECDSA_SHA256_ALG[12] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t TEMPLATE_SERIAL[10] = {0x02, 0x08, 0x01, 0, 0, 0, 0, 0, 0, 0};

static size_t find(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m) {
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0) return i;
    return (size_t)-1;
}

static void make_cert_template(void) {
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    BN_bin2bn(TEMPLATE_SERIAL + 2, 8, serial);
    if (!k || !x || !serial) die("certificate template: out of memory");
    X509_set_version(x, 2);
    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x));
    X509_gmtime_adj(X509_getm_notBefore(x), -86400L);
    X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400L);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"bench idle device", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, k);
    if (X509_sign(x, k, EVP_sha256()) <= 0) die("certificate template: X509_sign failed");
    int n = i2d_re_X509_tbs(x, NULL);
    if (n <= 0 || n > (int)sizeof tbs_template) die("certificate template: unexpected size %d", n);
    uint8_t *p = tbs_template;
    tbs_len = (size_t)i2d_re_X509_tbs(x, &p);
    tbs_point_off = find(tbs_template, tbs_len, SPKI_P256_PREFIX, sizeof SPKI_P256_PREFIX);
    tbs_serial_off = find(tbs_template, tbs_len, TEMPLATE_SERIAL, sizeof TEMPLATE_SERIAL);
    if (tbs_point_off == (size_t)-1 || tbs_serial_off == (size_t)-1 || tbs_point_off + 26 + 65 > tbs_len)
        die("certificate template: no P-256 key or serial where expected");
    tbs_point_off += sizeof SPKI_P256_PREFIX;
    tbs_serial_off += 2;
    BN_free(serial);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* Device `index`'s certificate (DER) into out; its length, or -1. */
static int device_cert(EC_KEY *k, const uint8_t pub[65], long index, uint8_t out[600]) {
    uint8_t tbs[sizeof tbs_template];
    memcpy(tbs, tbs_template, tbs_len);
    memcpy(tbs + tbs_point_off, pub, 65);
    for (int b = 0; b < 7; b++) tbs[tbs_serial_off + 1 + b] = (uint8_t)((uint64_t)index >> (8 * (6 - b)));
    uint8_t sig[80];
    int sl = sign(k, tbs, tbs_len, sig);
    if (sl <= 0) return -1;
    /* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature BIT STRING } */
    size_t body = tbs_len + sizeof ECDSA_SHA256_ALG + 3 + (size_t)sl;
    if (body < 256 || body > 600 - 4) return -1;
    size_t o = 0;
    out[o++] = 0x30, out[o++] = 0x82, out[o++] = (uint8_t)(body >> 8), out[o++] = (uint8_t)body;
    memcpy(out + o, tbs, tbs_len), o += tbs_len;
    memcpy(out + o, ECDSA_SHA256_ALG, sizeof ECDSA_SHA256_ALG), o += sizeof ECDSA_SHA256_ALG;
    out[o++] = 0x03, out[o++] = (uint8_t)(sl + 1), out[o++] = 0;
    memcpy(out + o, sig, (size_t)sl), o += (size_t)sl;
    return (int)o;
}

/* The relay's key: parsed once (every device talks to the same relay), compared by its bytes.
   A P-256 SPKI is the fixed prefix and the point: no ASN.1 decoder needed (d2i_PUBKEY costs
   ~0.4 ms in OpenSSL 3.0). */
static uint8_t relay_spki[SPKI_P256_BYTES];
static int relay_spki_len;
static EC_KEY *relay_key;

static int verify(const uint8_t *spki, int spki_len, const uint8_t *msg, size_t n, const uint8_t *sig, size_t sl) {
    if (!relay_key || spki_len != relay_spki_len || memcmp(spki, relay_spki, (size_t)spki_len) != 0) {
        if (spki_len != SPKI_P256_BYTES || memcmp(spki, SPKI_P256_PREFIX, sizeof SPKI_P256_PREFIX) != 0) return 0;
        EC_KEY *k = EC_KEY_new();
        EC_POINT *q = EC_POINT_new(p256);
        int ok = k && q && EC_KEY_set_group(k, p256) == 1 &&
                 EC_POINT_oct2point(p256, q, spki + sizeof SPKI_P256_PREFIX, 65, NULL) == 1 &&
                 EC_KEY_set_public_key(k, q) == 1;
        EC_POINT_free(q);
        if (!ok) {
            EC_KEY_free(k);
            return 0;
        }
        EC_KEY_free(relay_key);
        relay_key = k;
        memcpy(relay_spki, spki, (size_t)spki_len);
        relay_spki_len = spki_len;
    }
    uint8_t h[32];
    SHA256(msg, n, h);
    return ECDSA_verify(0, h, 32, sig, (int)sl, relay_key) == 1;
}

/* ------------------------------------------------------------------------------------------ */
/* --write-registry: the relay's registry snapshot (Sources/Roles/Relay/Registry.swift)        */

static int write_registry(const char *path) {
    double t0 = mono();
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) die("%s: %s", tmp, strerror(errno));
    FILE *f = fdopen(fd, "w");
    long now = (long)time(NULL);
    fprintf(f, "# agent relay registry v1\n");
    for (long i = 0; i < opt.count; i++) {
        uint8_t priv[32], pub[65], id[ID_BYTES];
        char text[40];
        device_key(opt.index_base + i, priv, pub);
        OPENSSL_cleanse(priv, sizeof priv);
        agent_id(pub, id);
        base32(id, ID_BYTES, text);
        /* <id> <role> <enrolled: Unix seconds> <via> <hostnames or -> */
        fprintf(f, "%s reverse %ld open -\n", text, now);
    }
    if (fflush(f) != 0 || fsync(fd) != 0 || fclose(f) != 0) die("%s: %s", tmp, strerror(errno));
    if (rename(tmp, path) != 0) die("rename %s: %s", path, strerror(errno));
    printf("registry keys %ld file %s seconds %.2f\n", opt.count, path, mono() - t0);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* devices                                                                                     */

enum { S_WAITING, S_QUEUED, S_CONNECTING, S_TLS, S_CHALLENGE, S_WELCOME, S_UP };

/*
 * The resume credential the relay hands a device after WELCOME (RESUME frame, protocol
 * version 2; docs/PROTOCOL.md "RESUME"): a TLS 1.3 external PSK and its identity, offered at
 * the device's next attempt (psk_ke, as `agent --role reverse` does), until it expires or the
 * relay does not take it. Allocated once per device, kept across attempts.
 */
struct resume_credential {
    double expires;                /* mono() time */
    uint8_t key[32];
    uint16_t identity_len;         /* 0: none held */
    uint8_t identity[256];
};

struct device {
    int fd;
    uint8_t state, src, first, want_out, offered;   /* offered: the resume credential, this attempt */
    uint32_t backoff_ms;
    double deadline;               /* handshake timeout or backoff end; 0: none */
    SSL *ssl;
    SSL_SESSION *session;          /* the relay's last ticket for this device, offered on reconnect */
    struct resume_credential *resume;  /* NULL until the relay hands one out */
    uint8_t *rx;                   /* bytes of an incomplete frame (NULL when none) */
    uint32_t rx_len;
    uint8_t *tx;                   /* bytes SSL_write could not take yet (NULL when none) */
    uint32_t tx_len;
    uint8_t nonce[32];             /* CHALLENGE's nonce until AUTH is sent, then the device's ID */
};

static struct device *dev;
static int ep;
static long pending_all;
static long *pending_src;
/* Per source address: a FIFO of devices waiting for a handshake slot. */
static struct fifo {
    uint32_t *q;
    long head, len;
} *ready;
static long released;            /* devices whose first attempt has been released (--rate) */
static double t_start;
static SSL_CTX *ctx;
static uint8_t iobuf[1 << 16];

/* timer heap: (deadline, device); an entry whose deadline differs from the device's is stale */
static struct tm_ent {
    double at;
    uint32_t d;
} *heap;
static long heap_len, heap_cap;

static void heap_push(double at, uint32_t d) {
    if (heap_len == heap_cap) {
        heap_cap = heap_cap ? 2 * heap_cap : 1024;
        heap = realloc(heap, (size_t)heap_cap * sizeof *heap);
        if (!heap) die("out of memory");
    }
    long i = heap_len++;
    while (i > 0) {
        long p = (i - 1) / 2;
        if (heap[p].at <= at) break;
        heap[i] = heap[p];
        i = p;
    }
    heap[i] = (struct tm_ent){at, d};
}

static struct tm_ent heap_pop(void) {
    struct tm_ent top = heap[0], last = heap[--heap_len];
    long i = 0;
    for (;;) {
        long c = 2 * i + 1;
        if (c >= heap_len) break;
        if (c + 1 < heap_len && heap[c + 1].at < heap[c].at) c++;
        if (heap[c].at >= last.at) break;
        heap[i] = heap[c];
        i = c;
    }
    if (heap_len > 0) heap[i] = last;
    return top;
}

static void set_deadline(struct device *d, double at) {
    d->deadline = at;
    if (at > 0) heap_push(at, (uint32_t)(d - dev));
}

static void enqueue(struct device *d) {
    struct fifo *f = &ready[d->src];
    f->q[(f->head + f->len) % opt.count] = (uint32_t)(d - dev);
    f->len++;
    d->state = S_QUEUED;
}

static void interest(struct device *d, int out) {
    if (d->want_out == out) return;
    struct epoll_event e = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u64 = (uint64_t)(d - dev)};
    epoll_ctl(ep, EPOLL_CTL_MOD, d->fd, &e);
    d->want_out = (uint8_t)out;
}

static void check_all_back(void) {
    if (st.alive == opt.count && st.lost > 0) st.all_back_at = mono();
}

/* Ends the connection of d; `err` >= 0 names the failure of an attempt before admission. */
static void drop(struct device *d, int err) {
    int was_up = d->state == S_UP;
    if (d->ssl) {
        /* Without this OpenSSL marks the session of a connection that ended without
           close_notify as not resumable; a TLS 1.3 ticket stays valid after any close. */
        SSL_set_shutdown(d->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(d->ssl);
    }
    d->ssl = NULL;
    if (d->fd >= 0) close(d->fd);   /* also leaves the epoll set */
    d->fd = -1;
    free(d->rx), d->rx = NULL, d->rx_len = 0;
    free(d->tx), d->tx = NULL, d->tx_len = 0;
    d->want_out = 0;
    if (was_up) {
        st.alive--;
        st.lost++;
        st.last_loss_at = mono();
    } else {
        pending_all--;
        pending_src[d->src]--;
        /* A resumed attempt that failed before WELCOME: the next one is full (no loop). */
        if (d->offered && d->resume) d->resume->identity_len = 0;
        if (d->first) {
            st.failed++;
            errors[err >= 0 ? err : E_INTERNAL]++;
        }
    }
    d->first = 0;
    d->state = S_WAITING;
    if (!opt.reconnect) {
        d->deadline = 0;
        return;
    }
    /* idle_devices.py's backoff: 0.5 s after a tunnel that was up, doubling to 8 s after failures. */
    d->backoff_ms = was_up ? 500 : (d->backoff_ms * 2 > 8000 ? 8000 : d->backoff_ms * 2);
    set_deadline(d, mono() + d->backoff_ms / 1000.0 * (0.5 + 0.5 * rnd_unit()));
}

/* Queues a frame for d (SSL_write now, or later when the socket takes it). 0 on failure. */
static int send_bytes(struct device *d, const uint8_t *b, size_t n) {
    if (!d->tx) {
        int w = SSL_write(d->ssl, b, (int)n);
        if (w > 0) return 1;   /* no partial writes: SSL_MODE_ENABLE_PARTIAL_WRITE is off */
        int e = SSL_get_error(d->ssl, w);
        if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) return 0;
    }
    uint8_t *t = realloc(d->tx, d->tx_len + n);
    if (!t) return 0;
    memcpy(t + d->tx_len, b, n);
    d->tx = t;
    d->tx_len += (uint32_t)n;
    interest(d, 1);
    return 1;
}

/* Writes what send_bytes kept. 0 if the connection failed. */
static int flush_tx(struct device *d) {
    if (!d->tx) return 1;
    int w = SSL_write(d->ssl, d->tx, (int)d->tx_len);
    if (w <= 0) {
        int e = SSL_get_error(d->ssl, w);
        return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ;
    }
    free(d->tx), d->tx = NULL, d->tx_len = 0;
    interest(d, 0);
    return 1;
}

static int send_frame(struct device *d, uint8_t type, uint32_t stream, const uint8_t *p, size_t n) {
    uint8_t f[HEADER + 800];
    if (n > sizeof f - HEADER) return 0;
    f[0] = type, f[1] = 0, f[2] = (uint8_t)(n >> 8), f[3] = (uint8_t)n;
    f[4] = (uint8_t)(stream >> 24), f[5] = (uint8_t)(stream >> 16), f[6] = (uint8_t)(stream >> 8), f[7] = (uint8_t)stream;
    memcpy(f + HEADER, p, n);
    return send_bytes(d, f, HEADER + n);
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* The TLS peer's SPKI (DER) into out; its length, or -1. */
static int peer_spki(SSL *ssl, uint8_t *out, int cap) {
    X509 *c = SSL_get0_peer_certificate(ssl);
    if (!c) return -1;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(c), NULL);
    if (n <= 0 || n > cap) return -1;
    uint8_t *p = out;
    return i2d_X509_PUBKEY(X509_get_X509_PUBKEY(c), &p);
}

/* CHALLENGE: check it, answer AUTH. Returns an error code, or -1 if all went well. */
static int on_challenge(struct device *d, const uint8_t *p, size_t n) {
    if (n < 36) return E_PROTOCOL;
    uint8_t vmin = p[0], vmax = p[1];
    memcpy(d->nonce, p + 2, 32);
    size_t off = 34;
    size_t klen = be16(p + off);
    const uint8_t *key = p + off + 2;
    off += 2 + klen;
    if (off + 2 > n) return E_PROTOCOL;
    size_t slen = be16(p + off);
    const uint8_t *sig = p + off + 2;
    if (off + 2 + slen != n || klen == 0 || vmin > vmax) return E_PROTOCOL;

    /* Its key is the TLS key (already checked against the pin). On a resumed session the
       relay sent no certificate: its key must then be the one a full handshake showed. */
    uint8_t tls[256];
    int tl = SSL_session_reused(d->ssl) ? -1 : peer_spki(d->ssl, tls, sizeof tls);
    if (tl >= 0) {
        if ((size_t)tl != klen || memcmp(tls, key, klen) != 0) return E_CHALLENGE_KEY;
        if (relay_spki_len == 0 && klen <= sizeof relay_spki) memcpy(relay_spki, key, klen), relay_spki_len = (int)klen;
    } else if ((int)klen != relay_spki_len || memcmp(relay_spki, key, klen) != 0) {
        return E_CHALLENGE_KEY;
    }
    if (opt.have_pin) {
        uint8_t h[32];
        SHA256(key, klen, h);
        if (memcmp(h, opt.pin, 32) != 0) return E_PIN;
    }
    uint8_t msg[24 + 32 + 2];
    memcpy(msg, CHALLENGE_LABEL, 24);
    memcpy(msg + 24, d->nonce, 32);
    msg[56] = vmin, msg[57] = vmax;
    /* ALPN agent-tls-key agreed on a full handshake: TLS 1.3's CertificateVerify proved the
       relay's key (the TLS key, compared above), so CHALLENGE comes unsigned (PROTOCOL.md 2). */
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(d->ssl, &alpn, &alpn_len);
    int tls_key = tl >= 0 && alpn_len == sizeof ALPN_TLS_KEY - 2 && memcmp(alpn, ALPN_TLS_KEY + 1, alpn_len) == 0;
    /* A session resumed with the device's credential (psk_ke): the PSK proved the relay. */
    int resumed = tl < 0;
    if (!((tls_key || resumed) && slen == 0) && !verify(key, (int)klen, msg, sizeof msg, sig, slen)) return E_CHALLENGE_SIG;
    uint8_t version = vmax < 2 ? vmax : 2;   /* 2: resume credentials */
    if (version < vmin || (resumed && version < 2)) return E_VERSION;

    /* AUTH: version | role | n=1 | cert u16-len | token u16-len (empty) | m=0 | sig u16-len */
    long index = opt.index_base + (d - dev);
    uint8_t pub[65];
    EC_KEY *k = device_ec_key(index, pub);
    uint8_t cert[600];
    int cl = device_cert(k, pub, index, cert);
    uint8_t auth[800];
    size_t a = 0;
    int err = -1;
    if (cl <= 0) {
        err = E_INTERNAL;
        goto out;
    }
    auth[a++] = version, auth[a++] = ROLE_REVERSE, auth[a++] = 1;
    auth[a++] = (uint8_t)(cl >> 8), auth[a++] = (uint8_t)cl;
    memcpy(auth + a, cert, (size_t)cl), a += (size_t)cl;
    auth[a++] = 0, auth[a++] = 0;   /* no token */
    auth[a++] = 0;                  /* no hostnames */
    uint8_t signed_msg[13 + 32 + 32 + 32];
    memcpy(signed_msg, AUTH_LABEL, 13);
    memcpy(signed_msg + 13, d->nonce, 32);
    SHA256(key, klen, signed_msg + 45);
    SHA256(auth, a, signed_msg + 77);
    uint8_t s[80];
    int sl = resumed ? 0 : sign(k, signed_msg, sizeof signed_msg, s);   /* resumed: AUTH unsigned */
    if (sl < 0 || (sl == 0 && !resumed)) {
        err = E_INTERNAL;
        goto out;
    }
    auth[a++] = (uint8_t)(sl >> 8), auth[a++] = (uint8_t)sl;
    memcpy(auth + a, s, (size_t)sl), a += (size_t)sl;
    if (!send_frame(d, T_AUTH, 0, auth, a)) err = E_CLOSED;
    agent_id(pub, d->nonce);   /* the nonce is spent: keep the ID to check WELCOME's */
out:
    EC_KEY_free(k);
    return err;
}

/* One whole frame for d. Returns an error code (the connection ends), or -1. */
static int on_frame(struct device *d, uint8_t type, uint32_t stream, const uint8_t *p, size_t n) {
    switch (d->state) {
    case S_CHALLENGE:
        if (type != T_CHALLENGE || stream != 0) return E_PROTOCOL;
        {
            int e = on_challenge(d, p, n);
            if (e >= 0) return e;
        }
        d->state = S_WELCOME;
        return -1;
    case S_WELCOME:
        if (type == T_DENIED) return E_DENIED;
        if (type != T_WELCOME || stream != 0 || n < ID_BYTES + 1) return E_PROTOCOL;
        if (memcmp(d->nonce, p, ID_BYTES) != 0) st.id_mismatch++;   /* reported: the run is wrong */
        if (p[ID_BYTES]) st.enrolled++;
        if (SSL_session_reused(d->ssl)) st.resumed++;
        d->state = S_UP;
        d->deadline = 0;
        d->backoff_ms = 500;
        pending_all--;
        pending_src[d->src]--;
        st.admissions++;
        st.alive++;
        if (d->first) st.connected++;
        d->first = 0;
        check_all_back();
        if (opt.keepalive > 0) {
            uint32_t ms = (uint32_t)(opt.keepalive * 1000);
            uint8_t k[4] = {(uint8_t)(ms >> 24), (uint8_t)(ms >> 16), (uint8_t)(ms >> 8), (uint8_t)ms};
            if (!send_frame(d, T_KEEPALIVE, 0, k, 4)) return E_CLOSED;
            set_deadline(d, mono() + opt.keepalive);
        }
        return -1;
    case S_UP:
        if (type == T_PING && stream == 0) {
            st.pings++;
            return send_frame(d, T_PONG, 0, p, n) ? -1 : E_CLOSED;
        }
        if (type == T_GOAWAY) return E_CLOSED;
        if (type == T_RESUME && stream == 0) {
            /* lifetime u32 (s) | psk[32] | identity u16-len */
            if (n < 38 || (size_t)be16(p + 36) != n - 38 || n - 38 > sizeof d->resume->identity || n == 38)
                return E_PROTOCOL;
            if (!d->resume && !(d->resume = malloc(sizeof *d->resume))) return E_INTERNAL;
            uint32_t life = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            d->resume->expires = mono() + life;
            memcpy(d->resume->key, p + 4, 32);
            d->resume->identity_len = (uint16_t)(n - 38);
            memcpy(d->resume->identity, p + 38, n - 38);
            st.credentials++;
            return -1;
        }
        return -1;   /* anything else is ignored, as idle_devices.py does */
    }
    return E_INTERNAL;
}

/* Frames in buf[0..n): complete ones handled, the rest kept in d->rx. Error code or -1. */
static int on_bytes(struct device *d, const uint8_t *buf, size_t n) {
    uint8_t *joined = NULL;
    if (d->rx) {
        joined = malloc(d->rx_len + n);
        if (!joined) return E_INTERNAL;
        memcpy(joined, d->rx, d->rx_len);
        memcpy(joined + d->rx_len, buf, n);
        n += d->rx_len;
        buf = joined;
        free(d->rx), d->rx = NULL, d->rx_len = 0;
    }
    size_t off = 0;
    int err = -1;
    while (n - off >= HEADER) {
        const uint8_t *h = buf + off;
        size_t len = be16(h + 2);
        if (len > MAX_PAYLOAD) {
            err = E_PROTOCOL;
            break;
        }
        if (n - off < HEADER + len) break;
        uint32_t stream = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
        err = on_frame(d, h[0], stream, h + HEADER, len);
        off += HEADER + len;
        if (err >= 0) break;
    }
    if (err < 0 && off < n) {
        d->rx = malloc(n - off);
        if (!d->rx) err = E_INTERNAL;
        else memcpy(d->rx, buf + off, n - off), d->rx_len = (uint32_t)(n - off);
    }
    free(joined);
    return err;
}

/* New session from the relay (a ticket): kept for the device's next attempt. */
static int on_new_session(SSL *ssl, SSL_SESSION *s) {
    struct device *d = SSL_get_app_data(ssl);
    if (!d) return 0;
    if (d->session) SSL_SESSION_free(d->session);
    d->session = s;
    return 1;   /* we keep the reference */
}

/* OpenSSL asks which PSK to offer: the device's resume credential, as a TLS 1.3 session with
   ChaCha20-Poly1305 (the relay's only suite; its hash, SHA-256, is the PSK's). */
static int use_credential(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen, SSL_SESSION **sess) {
    (void)md;
    struct device *d = SSL_get_app_data(ssl);
    *sess = NULL;
    if (!d || !d->resume || d->resume->identity_len == 0) return 1;
    static const unsigned char chacha[2] = {0x13, 0x03};
    const SSL_CIPHER *c = SSL_CIPHER_find(ssl, chacha);
    SSL_SESSION *s = SSL_SESSION_new();
    if (!c || !s || SSL_SESSION_set1_master_key(s, d->resume->key, 32) != 1 || SSL_SESSION_set_cipher(s, c) != 1 ||
        SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1) {
        SSL_SESSION_free(s);
        return 0;
    }
    *id = d->resume->identity;
    *idlen = d->resume->identity_len;
    *sess = s;
    return 1;
}

static void start_tls(struct device *d) {
    d->ssl = SSL_new(ctx);
    if (!d->ssl) {
        drop(d, E_INTERNAL);
        return;
    }
    SSL_set_fd(d->ssl, d->fd);
    SSL_set_app_data(d->ssl, d);
    SSL_set_connect_state(d->ssl);
    d->offered = 0;
    if (d->resume && d->resume->identity_len > 0 && mono() < d->resume->expires && !opt.no_resume) {
        /* The resume credential (psk_ke, with a key share so a full handshake can follow in the
           same connection). A resumed session shows no certificate; on_challenge then holds
           the CHALLENGE's key to the one a full handshake showed (relay_spki). */
        SSL_set_options(d->ssl, SSL_OP_ALLOW_NO_DHE_KEX);
        SSL_set_psk_use_session_callback(d->ssl, use_credential);
        d->offered = 1;
    } else if (d->session && SSL_SESSION_is_resumable(d->session)) {
        SSL_set_session(d->ssl, d->session);
    }
    d->state = S_TLS;
}

/* Drives d after its socket became ready (or right after a state change). */
static void drive(struct device *d, uint32_t events) {
    if (d->state == S_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0 || err != 0) {
            drop(d, E_CONNECT);
            return;
        }
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        start_tls(d);
        if (!d->ssl) return;
    }
    if (d->state == S_TLS) {
        ERR_clear_error();
        int r = SSL_connect(d->ssl);
        if (r != 1) {
            int e = SSL_get_error(d->ssl, r);
            if (e == SSL_ERROR_WANT_READ) interest(d, 0);
            else if (e == SSL_ERROR_WANT_WRITE) interest(d, 1);
            else drop(d, E_TLS);
            return;
        }
        if (SSL_session_reused(d->ssl)) {
            st.tls_resumed++;
        } else {
            if (d->offered && d->resume) d->resume->identity_len = 0;   /* not taken: drop it */
            uint8_t spki[256];
            int n = peer_spki(d->ssl, spki, sizeof spki);
            uint8_t h[32];
            if (n <= 0) {
                drop(d, E_PIN);
                return;
            }
            SHA256(spki, (size_t)n, h);
            if (opt.have_pin && memcmp(h, opt.pin, 32) != 0) {
                drop(d, E_PIN);
                return;
            }
        }
        d->state = S_CHALLENGE;
        interest(d, 0);
        if (!send_bytes(d, PREAMBLE, sizeof PREAMBLE)) {
            drop(d, E_CLOSED);
            return;
        }
    }
    if (!flush_tx(d)) {
        drop(d, E_CLOSED);
        return;
    }
    /* Read until OpenSSL wants more from the socket (level-triggered: nothing is left behind). */
    for (;;) {
        ERR_clear_error();
        int r = SSL_read(d->ssl, iobuf, sizeof iobuf);
        if (r > 0) {
            int e = on_bytes(d, iobuf, (size_t)r);
            if (e >= 0) {
                drop(d, e);
                return;
            }
            continue;
        }
        int e = SSL_get_error(d->ssl, r);
        if (e == SSL_ERROR_WANT_READ) break;
        if (e == SSL_ERROR_WANT_WRITE) {
            interest(d, 1);
            break;
        }
        drop(d, E_CLOSED);
        return;
    }
    if (!flush_tx(d)) drop(d, E_CLOSED);
}

/* Starts d's attempt: a socket bound to its source address, a non-blocking connect. */
static void start(struct device *d) {
    pending_all++;
    pending_src[d->src]++;
    st.attempts++;
    d->state = S_CONNECTING;
    d->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->fd < 0) {
        drop(d, errno == EMFILE || errno == ENFILE ? E_NOPORT : E_CONNECT);
        return;
    }
    int one = 1;
    setsockopt(d->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);   /* port chosen at connect */
    setsockopt(d->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000000u + (uint32_t)opt.first_source + d->src);   /* 127.0.0.2, 127.0.0.3, ... */
    if (bind(d->fd, (struct sockaddr *)&src, sizeof src) != 0) {
        drop(d, E_NOPORT);
        return;
    }
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.u64 = (uint64_t)(d - dev)};
    d->want_out = 1;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, d->fd, &e) != 0) {
        drop(d, E_INTERNAL);
        return;
    }
    set_deadline(d, mono() + opt.timeout);
    if (connect(d->fd, (struct sockaddr *)&opt.relay, sizeof opt.relay) != 0 && errno != EINPROGRESS) {
        drop(d, errno == EADDRNOTAVAIL ? E_NOPORT : E_CONNECT);
        return;
    }
}

/* Starts queued attempts while there are handshake slots, round robin over the sources. */
static void dispatch(void) {
    int progress = 1;
    while (progress && pending_all < opt.concurrency) {
        progress = 0;
        for (int s = 0; s < opt.sources && pending_all < opt.concurrency; s++) {
            struct fifo *f = &ready[s];
            if (f->len == 0 || pending_src[s] >= opt.per_source) continue;
            struct device *d = &dev[f->q[f->head]];
            f->head = (f->head + 1) % opt.count;
            f->len--;
            start(d);
            progress = 1;
        }
    }
}

/* First attempts released so far: all at once, or --rate a second. */
static void release(double now) {
    long due = opt.count;
    if (opt.rate > 0) {
        double x = (now - t_start) * opt.rate + 1;
        due = x < (double)opt.count ? (long)x : opt.count;
    }
    while (released < due) enqueue(&dev[released++]);
}

static void on_timers(double now) {
    while (heap_len > 0 && heap[0].at <= now) {
        struct tm_ent t = heap_pop();
        struct device *d = &dev[t.d];
        if (d->deadline != t.at) continue;   /* stale */
        d->deadline = 0;
        if (d->state == S_WAITING) {
            enqueue(d);                       /* backoff over */
        } else if (d->state >= S_CONNECTING && d->state < S_UP) {
            drop(d, d->state == S_CONNECTING ? E_CONNECT_TIMEOUT : E_TIMEOUT);
        } else if (d->state == S_UP && opt.keepalive > 0) {
            static const uint8_t ping[8] = {0, 0, 0, 0, 0, 0, 0, 1};   /* the relay's PONG is ignored */
            if (!send_frame(d, T_PING, 0, ping, 8)) drop(d, E_CLOSED);
            else set_deadline(d, now + opt.keepalive);
        }
    }
}

/* This process's resident memory (KiB). */
static long rss_kib(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}
static long base_rss;   /* before the first connection: (rss - base) / alive is the cost of a device */

static void print_count(void) {
    printf("alive %ld pings %ld admissions %ld resumed %ld tls_resumed %ld credentials %ld enrolled %ld lost %ld attempts %ld "
           "pending %ld id_mismatch %ld all_back_at %.3f last_loss_at %.3f rss_kib %ld base_rss_kib %ld\n",
           st.alive, st.pings, st.admissions, st.resumed, st.tls_resumed, st.credentials, st.enrolled, st.lost, st.attempts, pending_all,
           st.id_mismatch, st.all_back_at, st.last_loss_at, rss_kib(), base_rss);
    fflush(stdout);
}

/* stdin: "count" prints the counters, "stop" (or EOF) ends the run. 1 if the run must stop. */
static int on_stdin(void) {
    static char line[256];
    static size_t have;
    ssize_t r = read(0, line + have, sizeof line - 1 - have);
    if (r <= 0) return r == 0 || (errno != EAGAIN && errno != EINTR);
    have += (size_t)r;
    for (;;) {
        char *nl = memchr(line, '\n', have);
        if (!nl) {
            if (have == sizeof line - 1) have = 0;   /* an overlong line: dropped */
            return 0;
        }
        *nl = 0;
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        size_t l = strlen(s);
        while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\r')) s[--l] = 0;
        int stop = strcmp(s, "stop") == 0;
        if (strcmp(s, "count") == 0) print_count();
        size_t used = (size_t)(nl - line) + 1;
        memmove(line, line + used, have - used);
        have -= used;
        if (stop) return 1;
    }
}

static void usage(void) {
    fputs("usage: loadgen --relay 127.0.0.1:PORT --pin sha256:HEX [--count N] [--index-base I] [--seed S]\n"
          "               [--sources N] [--first-source N] [--concurrency N] [--per-source N] [--rate R]\n"
          "               [--hold SECONDS] [--timeout SECONDS] [--reconnect] [--groups LIST] [--tls12] [--no-resume]\n"
          "       loadgen --write-registry FILE [--count N] [--index-base I] [--seed S]\n", stderr);
    exit(2);
}

static void parse(int argc, char **argv) {
    const char *relay = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (ARG("--relay")) relay = v;
        else if (ARG("--pin")) {
            if (strncmp(v, "sha256:", 7) != 0 || strlen(v) != 7 + 64) die("--pin: sha256:HEX (64 hex digits)");
            for (int k = 0; k < 32; k++) {
                unsigned x;
                if (sscanf(v + 7 + 2 * k, "%2x", &x) != 1) die("--pin: not hex");
                opt.pin[k] = (uint8_t)x;
            }
            opt.have_pin = 1;
        } else if (ARG("--count")) opt.count = atol(v);
        else if (ARG("--index-base")) opt.index_base = atol(v);
        else if (ARG("--seed")) opt.seed = v;
        else if (ARG("--sources")) opt.sources = atoi(v);
        else if (ARG("--first-source")) opt.first_source = atoi(v);
        else if (ARG("--concurrency")) opt.concurrency = atoi(v);
        else if (ARG("--per-source")) opt.per_source = atoi(v);
        else if (ARG("--rate")) opt.rate = atof(v);
        else if (ARG("--hold")) opt.hold = atof(v);
        else if (ARG("--timeout")) opt.timeout = atof(v);
        else if (ARG("--keepalive")) opt.keepalive = atof(v);
        else if (ARG("--groups")) opt.groups = v;
        else if (ARG("--write-registry")) opt.write_registry = v;
        else if (strcmp(a, "--reconnect") == 0) opt.reconnect = 1;
        else if (strcmp(a, "--tls12") == 0) opt.tls12 = 1;
        else if (strcmp(a, "--no-resume") == 0) opt.no_resume = 1;
        else usage();
#undef ARG
    }
    if (opt.count < 1 || opt.count > 4000000 || opt.index_base < 0) die("--count: 1 to 4,000,000; --index-base >= 0");
    if (opt.write_registry) return;
    if (!relay) usage();
    char host[64];
    const char *colon = strrchr(relay, ':');
    if (!colon || (size_t)(colon - relay) >= sizeof host) die("--relay HOST:PORT");
    memcpy(host, relay, (size_t)(colon - relay));
    host[colon - relay] = 0;
    opt.relay.sin_family = AF_INET;
    opt.relay.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &opt.relay.sin_addr) != 1) die("--relay: an IPv4 address");
    /* The relay's data path runs on loopback only in these benchmarks. */
    if ((ntohl(opt.relay.sin_addr.s_addr) >> 24) != 127) die("--relay: 127.x.x.x only");
    /* ~28,000 ephemeral ports per source address; 25,000 devices each leaves room for TIME_WAIT. */
    if (opt.sources <= 0) opt.sources = (int)((opt.count + 24999) / 25000);
    if (opt.first_source < 2 || opt.first_source + opt.sources > 255)
        die("--first-source, --sources: source addresses 127.0.0.2 ... 127.0.0.254");
    if (opt.concurrency < 1 || opt.per_source < 1) die("--concurrency and --per-source: at least 1");
}

int main(int argc, char **argv) {
    parse(argc, argv);
    p256 = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    p256_order = BN_new();
    EC_GROUP_get_order(p256, p256_order, NULL);
    rng_state ^= (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
    if (opt.write_registry) return write_registry(opt.write_registry);
    make_cert_template();

    signal(SIGPIPE, SIG_IGN);
    /* One descriptor per device plus a few: raise the soft limit to the hard one. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = (rlim_t)opt.count + 32;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want)
        die("%ld devices need %lu open files; the hard limit is %lu (ulimit -Hn)", opt.count, (unsigned long)want,
            (unsigned long)rl.rlim_max);

    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) die("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ctx, opt.tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);   /* the relay's key is checked against the pin */
    if (SSL_CTX_set1_groups_list(ctx, opt.groups) != 1) die("--groups %s: not accepted by OpenSSL", opt.groups);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* Like an agent without --ca: it checks the relay's TLS key itself (older relays ignore this). */
    if (SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)ALPN_TLS_KEY, sizeof ALPN_TLS_KEY - 1) != 0)
        die("ALPN setup failed");
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);

    dev = calloc((size_t)opt.count, sizeof *dev);
    pending_src = calloc((size_t)opt.sources, sizeof *pending_src);
    ready = calloc((size_t)opt.sources, sizeof *ready);
    if (!dev || !pending_src || !ready) die("out of memory");
    for (int s = 0; s < opt.sources; s++)
        if (!(ready[s].q = malloc((size_t)opt.count * sizeof(uint32_t)))) die("out of memory");

    ep = epoll_create1(EPOLL_CLOEXEC);
    int have_stdin = 1;
    {
        fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
        struct epoll_event e = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &e) != 0) have_stdin = 0;   /* a file or /dev/null: no commands */
    }

    /* Touch the per-device table so that it counts in the base, not in the devices' cost. */
    for (long i = 0; i < opt.count; i++) {
        dev[i].fd = -1;
        dev[i].first = 1;
        dev[i].backoff_ms = 500;
        dev[i].src = (uint8_t)(i % opt.sources);
    }
    base_rss = rss_kib();
    t_start = mono();
    int reported = 0;
    struct epoll_event evs[1024];
    for (;;) {
        double now = mono();
        if (now - t_start >= opt.hold) break;
        release(now);
        on_timers(now);
        dispatch();
        if (!reported && st.connected + st.failed >= opt.count) {
            reported = 1;
            printf("connected %ld failed %ld seconds %.2f enrolled %ld id_mismatch %ld\n", st.connected, st.failed,
                   now - t_start, st.enrolled, st.id_mismatch);
            fflush(stdout);
            if (st.failed) {
                fputs("errors", stderr);
                const char *sep = " ";
                for (int k = 0; k < E_COUNT; k++)
                    if (errors[k]) fprintf(stderr, "%s%s x%ld", sep, E_NAMES[k], errors[k]), sep = "; ";
                fputc('\n', stderr);
            }
        }
        /* Sleep until the next timer, the next release, or at most 100 ms. */
        double wake = now + 0.1;
        if (heap_len > 0 && heap[0].at < wake) wake = heap[0].at;
        if (opt.rate > 0 && released < opt.count) {
            double next = t_start + (double)released / opt.rate;
            if (next < wake) wake = next;
        }
        int ms = (int)((wake - now) * 1000.0 + 0.999);
        if (ms < 0) ms = 0;
        int n = epoll_wait(ep, evs, 1024, ms);
        if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
        int stop = 0;
        for (int i = 0; i < n; i++) {
            uint64_t k = evs[i].data.u64;
            if (k == UINT64_MAX) {
                if (have_stdin && on_stdin()) stop = 1;
                continue;
            }
            struct device *d = &dev[k];
            if (d->fd < 0 || d->state < S_CONNECTING) continue;   /* dropped earlier in this batch */
            drive(d, evs[i].events);
        }
        if (stop) break;
    }
    if (!reported) {
        printf("connected %ld failed %ld seconds %.2f enrolled %ld id_mismatch %ld\n", st.connected, st.failed,
               mono() - t_start, st.enrolled, st.id_mismatch);
    }
    print_count();
    /* The kernel closes every socket at exit; the relay sees the tunnels end. */
    return 0;
}
