/* Non-inline C helpers for agent. See include/CShims.h for the contracts. */
#include "CShims.h"
#include <limits.h>

#include <sys/random.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/platform.h>

const char *shim_mbedtls_version(void) { return MBEDTLS_VERSION_STRING; }

size_t shim_sizeof(int which) {
    switch (which) {
    case SHIM_SSL_CONTEXT: return sizeof(mbedtls_ssl_context);
    case SHIM_SSL_CONFIG: return sizeof(mbedtls_ssl_config);
    case SHIM_SSL_SESSION: return sizeof(mbedtls_ssl_session);
    case SHIM_X509_CRT: return sizeof(mbedtls_x509_crt);
    case SHIM_PK_CONTEXT: return sizeof(mbedtls_pk_context);
    case SHIM_SOCKADDR_IN: return sizeof(struct sockaddr_in);
    case SHIM_SOCKADDR_IN6: return sizeof(struct sockaddr_in6);
    case SHIM_SOCKADDR_STORAGE: return sizeof(struct sockaddr_storage);
    case SHIM_POLLFD: return sizeof(struct pollfd);
    default: return 0;
    }
}

/* ---- signals ---------------------------------------------------------- */
/* A handler may only touch sig_atomic_t flags and write(2) to a pipe; the
 * poll loop watches the pipe's read end, so a signal wakes it at once. */
static volatile sig_atomic_t pending[65];
static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig) {
    int saved = errno;
    if (sig > 0 && sig < 65) pending[sig] = 1;
    if (signal_pipe[1] >= 0) {
        char b = (char)sig;
        ssize_t r = write(signal_pipe[1], &b, 1);
        (void)r;
    }
    errno = saved;
}

int shim_install_signals(void) {
    if (signal_pipe[0] < 0) {
        if (pipe(signal_pipe) != 0) return -1;
        for (int i = 0; i < 2; i++) {
            shim_set_nonblock(signal_pipe[i]);
            shim_set_cloexec(signal_pipe[i]);
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &sa, NULL) != 0) return -1;
    if (sigaction(SIGTERM, &sa, NULL) != 0) return -1;
    if (sigaction(SIGHUP, &sa, NULL) != 0) return -1;
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    return sigaction(SIGPIPE, &ign, NULL);
}

int shim_take_signal(int sig) {
    if (sig <= 0 || sig >= 65 || !pending[sig]) return 0;
    pending[sig] = 0;
    return 1;
}

int shim_signal_pipe_fd(void) { return signal_pipe[0]; }

void shim_drain_signal_pipe(void) {
    char buf[64];
    while (signal_pipe[0] >= 0 && read(signal_pipe[0], buf, sizeof buf) > 0) {}
}

/* ---- entropy ---------------------------------------------------------- */
int shim_getentropy(void *buf, size_t len) {
    unsigned char *p = buf;
    while (len > 0) {
        size_t n = len > 256 ? 256 : len;   /* getentropy's limit per call */
        if (getentropy(p, n) != 0) return -1;
        p += n;
        len -= n;
    }
    return 0;
}

/* mbedTLS (MBEDTLS_PSA_CRYPTO_EXTERNAL_RNG, cross/mbedtls_config.h) takes
 * every random byte from here: the kernel's generator. */
psa_status_t mbedtls_psa_external_get_random(mbedtls_psa_external_random_context_t *context,
                                             uint8_t *output, size_t output_size, size_t *output_length) {
    (void)context;
    if (shim_getentropy(output, output_size) != 0) { *output_length = 0; return PSA_ERROR_INSUFFICIENT_ENTROPY; }
    *output_length = output_size;
    return PSA_SUCCESS;
}

#if !defined(__GLIBC__)
/* musl 1.2.3 has no arc4random_buf; the Swift runtime's Hasher seeding and
 * SystemRandomNumberGenerator need it. */
void arc4random_buf(void *buf, size_t len) {
    if (shim_getentropy(buf, len) != 0) abort();
}
#endif

/* ---- TLS choices ------------------------------------------------------ */
static const int suites[] = {
    MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256,
    0
};
const int *shim_ciphersuites(void) { return suites; }

static const uint16_t groups[] = { MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1, 0 };
const uint16_t *shim_groups(void) { return groups; }

static const uint16_t sig_algs[] = { MBEDTLS_TLS1_3_SIG_ECDSA_SECP256R1_SHA256, MBEDTLS_TLS1_3_SIG_NONE };
const uint16_t *shim_sig_algs(void) { return sig_algs; }

/* ---- PSA crypto and P-256 keys ---------------------------------------- */
int shim_psa_init(void) { return psa_crypto_init() == PSA_SUCCESS ? 0 : -1; }

int shim_pk_generate_p256(mbedtls_pk_context *pk) {
    psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&a, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_SECP_R1));
    psa_set_key_bits(&a, 256);
    psa_set_key_usage_flags(&a, PSA_KEY_USAGE_EXPORT | PSA_KEY_USAGE_SIGN_HASH | PSA_KEY_USAGE_VERIFY_HASH);
    psa_set_key_algorithm(&a, PSA_ALG_ECDSA(PSA_ALG_SHA_256));
    mbedtls_svc_key_id_t id;
    if (psa_generate_key(&a, &id) != PSA_SUCCESS) return MBEDTLS_ERR_PK_ALLOC_FAILED;
    int rc = mbedtls_pk_copy_from_psa(id, pk);
    psa_destroy_key(id);
    return rc;
}

int shim_pk_is_p256(const mbedtls_pk_context *pk) {
    return mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY && mbedtls_pk_get_bitlen(pk) == 256;
}

/* ---- session tickets that carry the peer's certificates ---------------- */
/* mbedTLS 3.6 leaves the peer's certificates out of a TLS 1.3 ticket, so a
 * resumed session would not know who the peer is. These callbacks seal the
 * session (mbedtls_ssl_session_save) and the peer's chain (DER) together:
 *
 *   ticket    = key name (4) | nonce (12) | ChaCha20-Poly1305(plain) | tag (16)
 *   plain     = session length (2) | session | per certificate: length (2) | DER
 *
 * with the 20 bytes before the ciphertext as additional data. Keys are made by
 * PSA, live `lifetime` seconds as the current key and as long again as the
 * previous one; a ticket older than `lifetime` is refused whatever its key. */
#define TICKET_HEAD 16
#define TICKET_TAG 16

struct shim_tickets {
    psa_key_id_t key[2];          /* current, previous (0: none) */
    unsigned char name[2][4];
    long long born_ms;            /* when key[0] was made */
    uint32_t lifetime;
    mbedtls_x509_crt *parsed;     /* the chain of the ticket parsed last, until adopted */
};

static int ticket_new_key(struct shim_tickets *t) {
    psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&a, PSA_KEY_TYPE_CHACHA20);
    psa_set_key_bits(&a, 256);
    psa_set_key_usage_flags(&a, PSA_KEY_USAGE_ENCRYPT | PSA_KEY_USAGE_DECRYPT);
    psa_set_key_algorithm(&a, PSA_ALG_CHACHA20_POLY1305);
    psa_key_id_t k;
    if (psa_generate_key(&a, &k) != PSA_SUCCESS) return -1;
    if (t->key[1] != 0) psa_destroy_key(t->key[1]);
    t->key[1] = t->key[0];
    memcpy(t->name[1], t->name[0], 4);
    t->key[0] = k;
    if (psa_generate_random(t->name[0], 4) != PSA_SUCCESS) return -1;
    t->born_ms = shim_wall_ms();
    return 0;
}

struct shim_tickets *shim_tickets_new(uint32_t lifetime_seconds) {
    struct shim_tickets *t = calloc(1, sizeof *t);
    if (t == NULL) return NULL;
    t->lifetime = lifetime_seconds;
    if (ticket_new_key(t) != 0) { shim_tickets_free(t); return NULL; }
    return t;
}

void shim_tickets_free(struct shim_tickets *t) {
    if (t == NULL) return;
    for (int i = 0; i < 2; i++) if (t->key[i] != 0) psa_destroy_key(t->key[i]);
    if (t->parsed != NULL) { mbedtls_x509_crt_free(t->parsed); mbedtls_free(t->parsed); }
    mbedtls_platform_zeroize(t, sizeof *t);
    free(t);
}

int shim_ticket_write(void *ctx, const mbedtls_ssl_session *session, unsigned char *start,
                      const unsigned char *end, size_t *tlen, uint32_t *lifetime) {
    struct shim_tickets *t = ctx;
    *tlen = 0;
    if (shim_wall_ms() - t->born_ms >= (long long)t->lifetime * 1000 && ticket_new_key(t) != 0)
        return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
    size_t room = (size_t)(end - start);
    if (room < TICKET_HEAD + 2 + TICKET_TAG) return MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL;
    unsigned char *plain = start + TICKET_HEAD;
    size_t cap = room - TICKET_HEAD - TICKET_TAG;   /* plaintext room (sealed in place) */
    size_t slen = 0;
    int rc = mbedtls_ssl_session_save(session, plain + 2, cap - 2, &slen);
    if (rc != 0) return rc;
    plain[0] = (unsigned char)(slen >> 8);
    plain[1] = (unsigned char)slen;
    size_t n = 2 + slen;
    for (const mbedtls_x509_crt *c = session->MBEDTLS_PRIVATE(peer_cert); c != NULL && c->raw.len > 0; c = c->next) {
        if (c->raw.len > 0xffff || cap - n < 2 + c->raw.len) return MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL;
        plain[n] = (unsigned char)(c->raw.len >> 8);
        plain[n + 1] = (unsigned char)c->raw.len;
        memcpy(plain + n + 2, c->raw.p, c->raw.len);
        n += 2 + c->raw.len;
    }
    memcpy(start, t->name[0], 4);
    if (psa_generate_random(start + 4, 12) != PSA_SUCCESS) return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
    size_t out = 0;
    /* PSA may not seal in place: through a heap copy. */
    unsigned char *copy = malloc(n);
    if (copy == NULL) return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    memcpy(copy, plain, n);
    psa_status_t st = psa_aead_encrypt(t->key[0], PSA_ALG_CHACHA20_POLY1305, start + 4, 12, start, TICKET_HEAD,
                                       copy, n, plain, cap + TICKET_TAG, &out);
    mbedtls_platform_zeroize(copy, n);
    free(copy);
    if (st != PSA_SUCCESS || out != n + TICKET_TAG) return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
    *tlen = TICKET_HEAD + out;
    *lifetime = t->lifetime;
    return 0;
}

void shim_tickets_adopt(struct shim_tickets *t, mbedtls_ssl_context *ssl) {
    mbedtls_x509_crt *c = t->parsed;
    if (c == NULL) return;
    t->parsed = NULL;
    mbedtls_ssl_session *s = ssl->MBEDTLS_PRIVATE(session_negotiate);
    if (s != NULL && s->MBEDTLS_PRIVATE(peer_cert) == NULL) {
        s->MBEDTLS_PRIVATE(peer_cert) = c;   /* freed with the session */
    } else {
        mbedtls_x509_crt_free(c);
        mbedtls_free(c);
    }
}

int shim_ticket_parse(void *ctx, mbedtls_ssl_session *session, unsigned char *buf, size_t len) {
    struct shim_tickets *t = ctx;
    if (len < TICKET_HEAD + 2 + TICKET_TAG) return MBEDTLS_ERR_SSL_INVALID_MAC;
    int which = -1;
    for (int i = 0; i < 2; i++)
        if (t->key[i] != 0 && memcmp(buf, t->name[i], 4) == 0) which = i;
    if (which < 0) return MBEDTLS_ERR_SSL_INVALID_MAC;   /* another process's or a retired key */
    size_t clen = len - TICKET_HEAD, n = 0;
    mbedtls_x509_crt *chain = NULL;   /* before any goto out */
    unsigned char *plain = malloc(clen);
    if (plain == NULL) return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    int rc = MBEDTLS_ERR_SSL_INVALID_MAC;
    if (psa_aead_decrypt(t->key[which], PSA_ALG_CHACHA20_POLY1305, buf + 4, 12, buf, TICKET_HEAD,
                         buf + TICKET_HEAD, clen, plain, clen, &n) != PSA_SUCCESS) goto out;
    rc = MBEDTLS_ERR_SSL_DECODE_ERROR;
    if (n < 2) goto out;
    size_t slen = (size_t)plain[0] << 8 | plain[1];
    if (slen > n - 2) goto out;
    if ((rc = mbedtls_ssl_session_load(session, plain + 2, slen)) != 0) goto out;
    mbedtls_ms_time_t born;
    rc = MBEDTLS_ERR_SSL_SESSION_TICKET_EXPIRED;
    if (mbedtls_ssl_session_get_ticket_creation_time(session, &born) != 0) goto out;
    mbedtls_ms_time_t age = mbedtls_ms_time() - born;
    if (age < 0 || age > (mbedtls_ms_time_t)t->lifetime * 1000) goto out;
    rc = MBEDTLS_ERR_SSL_DECODE_ERROR;
    size_t p = 2 + slen;
    while (p < n) {
        if (n - p < 2) goto out;
        size_t clen1 = (size_t)plain[p] << 8 | plain[p + 1];
        if (clen1 == 0 || n - p - 2 < clen1) goto out;
        if (chain == NULL) {
            chain = mbedtls_calloc(1, sizeof *chain);
            if (chain == NULL) { rc = MBEDTLS_ERR_SSL_ALLOC_FAILED; goto out; }
            mbedtls_x509_crt_init(chain);
        }
        if (mbedtls_x509_crt_parse_der(chain, plain + p + 2, clen1) != 0) goto out;
        p += 2 + clen1;
    }
    /* mbedTLS copies only the ticket's keys out of `session`: the chain waits
     * for shim_tickets_adopt, right after this handshake step. */
    if (t->parsed != NULL) { mbedtls_x509_crt_free(t->parsed); mbedtls_free(t->parsed); }
    t->parsed = chain;
    chain = NULL;
    rc = 0;
out:
    if (chain != NULL) { mbedtls_x509_crt_free(chain); mbedtls_free(chain); }
    mbedtls_platform_zeroize(plain, clen);
    free(plain);
    return rc;
}

/* ---- resume credentials (relay) ---------------------------------------- */
/* A device admitted by a full hello gets (identity, psk) from the relay and
 * offers it as a TLS 1.3 external PSK on its next connection. The relay keeps
 * nothing per device: the identity is the claim sealed with a resume key.
 *
 *   identity = key id (4) | nonce (12) | ChaCha20-Poly1305(plain) (70) | tag (16)
 *   plain    = expiry u64 | psk (32) | format (1) = 1 | agent ID (20) | role (1) | issued-at u64
 *
 * (UNIX seconds, big-endian) with the 16 bytes before the ciphertext as
 * additional data. The keys live in the relay's --state file, whose image is
 *
 *   "AGRK" | format (1) = 1 | count (1...2) | count x (key id (4) | key (32) | created u64)
 *
 * current key first (it seals and opens), then the previous one (opens only). */
#define RESUME_ENTRY 44

struct shim_resume {
    psa_key_id_t key[2];
    unsigned char id[2][4];
    const mbedtls_ssl_config *psk_conf;      /* the listener's psk_ke-only twin */
    const mbedtls_ssl_context *claim_ssl;    /* the handshake `claim` is for */
    struct shim_resume_claim claim;
};

static void put_u64(unsigned char *p, unsigned long long v) {
    for (int i = 7; i >= 0; i--) { p[i] = (unsigned char)v; v >>= 8; }
}

static long long get_u64(const unsigned char *p) {
    unsigned long long v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return (long long)v;
}

struct shim_resume *shim_resume_new(void) { return calloc(1, sizeof(struct shim_resume)); }

static void resume_clear(struct shim_resume *r) {
    for (int i = 0; i < 2; i++) {
        if (r->key[i] != 0) psa_destroy_key(r->key[i]);
        r->key[i] = 0;
    }
}

void shim_resume_free(struct shim_resume *r) {
    if (r == NULL) return;
    resume_clear(r);
    shim_resume_detach(r);
    mbedtls_platform_zeroize(r, sizeof *r);
    free(r);
}

/* The hello bound to the TLS key (docs/PROTOCOL.md, section 2): an agent that checks the
 * relay's TLS key against the key in CHALLENGE offers this one ALPN protocol; a relay that
 * terminates the agent's TLS itself accepts it and then sends CHALLENGE unsigned. A server
 * with an ALPN list refuses a client that offers none of it (mbedTLS sends
 * no_application_protocol), so the relay also takes "http/1.1": curl, browsers and health
 * checks offer it and still get their 426 answer. The lists are static: mbedTLS keeps the
 * pointer, not a copy. */
static const char *alpn_client[] = { "agent-tls-key", NULL };
static const char *alpn_server[] = { "agent-tls-key", "http/1.1", NULL };

int shim_conf_alpn_tls_key(mbedtls_ssl_config *conf) {
    int server = mbedtls_ssl_conf_get_endpoint(conf) == MBEDTLS_SSL_IS_SERVER;
    return mbedtls_ssl_conf_alpn_protocols(conf, server ? alpn_server : alpn_client);
}

int shim_ssl_alpn_tls_key(const mbedtls_ssl_context *ssl) {
    const char *p = mbedtls_ssl_get_alpn_protocol(ssl);
    return p != NULL && strcmp(p, alpn_client[0]) == 0;
}

void shim_conf_kex_modes(mbedtls_ssl_config *conf, int psk) {
    mbedtls_ssl_conf_tls13_key_exchange_modes(conf, MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL |
        (psk ? MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK : MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL));
}

int shim_conf_resume_psk(mbedtls_ssl_config *conf, const unsigned char *msg, size_t len) {
    /* msg = RESUME payload: lifetime u32 | psk (32) | identity length u16 | identity */
    if (len < 39 || (size_t)(msg[36] << 8 | msg[37]) != len - 38) return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
    int rc = mbedtls_ssl_conf_psk(conf, msg + 4, 32, msg + 38, len - 38);
    shim_conf_kex_modes(conf, 1);
    return rc;
}

/* The twin is a shallow copy of the listener's finished config: it shares all
 * that config points to (own certificate, CA, lists), so it is released with
 * free() only, never mbedtls_ssl_config_free, and before the config itself. */
int shim_resume_attach(struct shim_resume *r, mbedtls_ssl_config *conf) {
    shim_conf_kex_modes(conf, 1);
    mbedtls_ssl_config *twin = malloc(sizeof *twin);
    if (twin == NULL) return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    memcpy(twin, conf, sizeof *twin);
    mbedtls_ssl_conf_tls13_key_exchange_modes(twin, MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK);
    mbedtls_ssl_conf_psk_cb(twin, NULL, NULL);
    mbedtls_ssl_conf_psk_cb(conf, shim_resume_psk_cb, r);
    shim_resume_detach(r);
    r->psk_conf = twin;
    return 0;
}

void shim_resume_detach(struct shim_resume *r) {
    free((void *)r->psk_conf);
    r->psk_conf = NULL;
}

long long shim_resume_load(struct shim_resume *r, const unsigned char *img, size_t len) {
    if (len < 6 || memcmp(img, "AGRK\1", 5) != 0 || img[5] < 1 || img[5] > 2 || len != 6 + (size_t)img[5] * RESUME_ENTRY)
        return -1;
    resume_clear(r);
    for (int i = 0; i < img[5]; i++) {
        const unsigned char *e = img + 6 + i * RESUME_ENTRY;
        psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
        psa_set_key_type(&a, PSA_KEY_TYPE_CHACHA20);
        psa_set_key_bits(&a, 256);
        psa_set_key_usage_flags(&a, PSA_KEY_USAGE_ENCRYPT | PSA_KEY_USAGE_DECRYPT);
        psa_set_key_algorithm(&a, PSA_ALG_CHACHA20_POLY1305);
        if (psa_import_key(&a, e + 4, 32, &r->key[i]) != PSA_SUCCESS) { resume_clear(r); return -1; }
        memcpy(r->id[i], e, 4);
    }
    return get_u64(img + 6 + 36);
}

size_t shim_resume_rotate(struct shim_resume *r, const unsigned char *img, size_t len, long long now, unsigned char *out) {
    int keep = len >= 6 + RESUME_ENTRY && memcmp(img, "AGRK\1", 5) == 0;
    memcpy(out, "AGRK\1", 5);
    out[5] = (unsigned char)(keep ? 2 : 1);
    do {
        if (psa_generate_random(out + 6, 36) != PSA_SUCCESS) return 0;
    } while (keep && memcmp(out + 6, img + 6, 4) == 0);
    put_u64(out + 6 + 36, (unsigned long long)now);
    if (keep) memcpy(out + 6 + RESUME_ENTRY, img + 6, RESUME_ENTRY);
    size_t n = 6 + (size_t)out[5] * RESUME_ENTRY;
    return shim_resume_load(r, out, n) < 0 ? 0 : n;
}

int shim_resume_issue(struct shim_resume *r, const unsigned char *agent_id, int role, long long now, uint32_t lifetime,
                      unsigned char *out) {
    /* out = RESUME payload: lifetime u32 | psk (32) | identity length u16 | identity */
    unsigned char plain[SHIM_RESUME_PLAIN];
    unsigned char *psk = out + 4, *id = out + 38;
    if (r->key[0] == 0 || psa_generate_random(psk, 32) != PSA_SUCCESS) return -1;
    for (int i = 3; i >= 0; i--) out[3 - i] = (unsigned char)(lifetime >> (8 * i));
    out[36] = 0;
    out[37] = SHIM_RESUME_IDENTITY;
    put_u64(plain, (unsigned long long)(now + lifetime));
    memcpy(plain + 8, psk, 32);
    plain[40] = 1;
    memcpy(plain + 41, agent_id, 20);
    plain[61] = (unsigned char)role;
    put_u64(plain + 62, (unsigned long long)now);
    memcpy(id, r->id[0], 4);
    size_t n = 0;
    int ok = psa_generate_random(id + 4, 12) == PSA_SUCCESS &&
             psa_aead_encrypt(r->key[0], PSA_ALG_CHACHA20_POLY1305, id + 4, 12, id, 16, plain, sizeof plain,
                              id + 16, SHIM_RESUME_IDENTITY - 16, &n) == PSA_SUCCESS && n == SHIM_RESUME_IDENTITY - 16;
    mbedtls_platform_zeroize(plain, sizeof plain);
    return ok ? 0 : -1;
}

int shim_resume_open(struct shim_resume *r, const unsigned char *identity, size_t len, long long now_s,
                     struct shim_resume_claim *claim, unsigned char *psk) {
    if (len != SHIM_RESUME_IDENTITY) return SHIM_RESUME_MALFORMED;
    int which = -1;
    for (int i = 0; i < 2; i++)
        if (r->key[i] != 0 && memcmp(identity, r->id[i], 4) == 0) which = i;
    if (which < 0) return SHIM_RESUME_UNKNOWN_KEY;
    unsigned char plain[SHIM_RESUME_PLAIN];
    size_t n = 0;
    int rc = 0;
    if (psa_aead_decrypt(r->key[which], PSA_ALG_CHACHA20_POLY1305, identity + 4, 12, identity, 16, identity + 16,
                         len - 16, plain, sizeof plain, &n) != PSA_SUCCESS || n != sizeof plain) {
        rc = SHIM_RESUME_BAD_TAG;
    } else if (plain[40] != 1) {
        rc = SHIM_RESUME_MALFORMED;
    } else if (now_s < 0 || now_s >= get_u64(plain)) {
        rc = SHIM_RESUME_EXPIRED;
    } else {
        claim->expiry = get_u64(plain);
        claim->issued = get_u64(plain + 62);
        memcpy(claim->id, plain + 41, 20);
        claim->role = plain[61];
        memcpy(psk, plain + 8, 32);
    }
    mbedtls_platform_zeroize(plain, sizeof plain);
    return rc;
}

/* mbedtls_ssl_conf_psk_cb's callback. A credential that opens makes its PSK the
 * handshake's, and moves this handshake to the listener's twin config, which
 * allows psk_ke only: mbedTLS 3.6 prefers a certificate handshake to psk_ke
 * whenever the client also sent a key share (ssl_tls13_server.c, "order of
 * preference"), and a device sends one so that an unknown credential falls back
 * to a full handshake. The twin is the same config with only the key exchange
 * modes changed. A handshake finishing on the twin is therefore a psk_ke
 * handshake with this credential's PSK (binder and Finished checked by mbedTLS):
 * shim_resume_psk_used tells the relay so. */
int shim_resume_psk_cb(void *ctx, mbedtls_ssl_context *ssl, const unsigned char *identity, size_t len) {
    struct shim_resume *r = ctx;
    unsigned char psk[32];
    struct shim_resume_claim c;
    int rc = -1;
    if (r->psk_conf != NULL && shim_resume_open(r, identity, len, shim_wall_ms() / 1000, &c, psk) == 0 &&
        mbedtls_ssl_set_hs_psk(ssl, psk, 32) == 0) {
        ssl->MBEDTLS_PRIVATE(conf) = r->psk_conf;
        r->claim = c;
        r->claim_ssl = ssl;
        rc = 0;
    }
    mbedtls_platform_zeroize(psk, sizeof psk);
    return rc;
}

int shim_resume_take(struct shim_resume *r, const mbedtls_ssl_context *ssl, struct shim_resume_claim *claim) {
    if (r->claim_ssl != ssl) return 0;
    *claim = r->claim;
    r->claim_ssl = NULL;
    return 1;
}

int shim_resume_psk_used(const struct shim_resume *r, const mbedtls_ssl_context *ssl) {
    return r->psk_conf != NULL && ssl->MBEDTLS_PRIVATE(conf) == r->psk_conf;
}

/* ---- certificates ----------------------------------------------------- */
int shim_x509write_issuer_from(mbedtls_x509write_cert *w, const mbedtls_x509_crt *ca) {
    mbedtls_asn1_free_named_data_list(&w->MBEDTLS_PRIVATE(issuer));
    /* store_named_data prepends; x509write writes the list backwards: the DER
     * order of the CA's subject is kept. */
    for (const mbedtls_x509_name *n = &ca->subject; n != NULL; n = n->next) {
        if (n->oid.p == NULL || n->oid.len == 0) continue;
        mbedtls_asn1_named_data *d = mbedtls_asn1_store_named_data(&w->MBEDTLS_PRIVATE(issuer), (const char *)n->oid.p, n->oid.len,
                                                                    n->val.p, n->val.len);
        if (d == NULL) return MBEDTLS_ERR_X509_ALLOC_FAILED;
        d->val.tag = n->val.tag;
    }
    return 0;
}

int shim_x509write_set_cn(mbedtls_x509write_cert *w, int issuer, const unsigned char *cn, size_t len) {
    mbedtls_asn1_named_data **head = issuer ? &w->MBEDTLS_PRIVATE(issuer) : &w->MBEDTLS_PRIVATE(subject);
    mbedtls_asn1_free_named_data_list(head);
    mbedtls_asn1_named_data *d = mbedtls_asn1_store_named_data(head, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN),
                                                                cn, len);
    if (d == NULL) return MBEDTLS_ERR_X509_ALLOC_FAILED;
    d->val.tag = MBEDTLS_ASN1_UTF8_STRING;   /* as mbedtls_x509_string_to_names writes "CN=" */
    return 0;
}

/* ---- epoll ------------------------------------------------------------ */
int shim_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int shim_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &ev);
}

int shim_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        tokens[i] = evs[i].data.u64;
        events[i] = evs[i].events;
    }
    return n;
}

long shim_raise_nofile(long want, long *hard) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) { *hard = -1; return -1; }
    *hard = r.rlim_max == RLIM_INFINITY ? -1 : (long)r.rlim_max;
    if (r.rlim_cur != RLIM_INFINITY && (long)r.rlim_cur < want) {
        rlim_t target = (rlim_t)want;
        if (r.rlim_max != RLIM_INFINITY && target > r.rlim_max) target = r.rlim_max;
        r.rlim_cur = target;
        if (setrlimit(RLIMIT_NOFILE, &r) != 0) getrlimit(RLIMIT_NOFILE, &r);
    }
    return r.rlim_cur == RLIM_INFINITY ? want : (long)r.rlim_cur;
}

/* ---- names resolved off the loop ------------------------------------- */
struct resolve_job {
    int fd;          /* write end */
    int delay_ms;
    char host[256];
};

struct resolve_answer {
    int count;
    socklen_t lens[SHIM_RESOLVE_MAX_ADDRS];
    struct sockaddr_storage addrs[SHIM_RESOLVE_MAX_ADDRS];
};

static int resolve_active;

static void *resolve_thread(void *arg) {
    struct resolve_job *job = arg;
    if (job->delay_ms > 0) {
        struct timespec ts = { job->delay_ms / 1000, (long)(job->delay_ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
    struct resolve_answer ans;
    memset(&ans, 0, sizeof ans);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(job->host, NULL, &hints, &res) == 0) {
        for (int pass = 0; pass < 2; pass++) {          /* IPv4 first, then IPv6 */
            int want = pass == 0 ? AF_INET : AF_INET6;
            for (struct addrinfo *ai = res; ai && ans.count < SHIM_RESOLVE_MAX_ADDRS; ai = ai->ai_next) {
                if (ai->ai_family != want || ai->ai_addrlen > sizeof(struct sockaddr_storage)) continue;
                memcpy(&ans.addrs[ans.count], ai->ai_addr, ai->ai_addrlen);
                ans.lens[ans.count] = ai->ai_addrlen;
                ans.count++;
            }
        }
        freeaddrinfo(res);
    }
    /* The work is done: counted out before the answer is readable, so a caller that has read
     * it may start another resolution at once. */
    __atomic_fetch_sub(&resolve_active, 1, __ATOMIC_SEQ_CST);
    /* One write under PIPE_BUF is atomic; if the loop gave up (closed its end), EPIPE. */
    ssize_t n = write(job->fd, &ans, sizeof ans);
    (void)n;
    close(job->fd);
    free(job);
    return NULL;
}

int shim_resolve_active(void) { return __atomic_load_n(&resolve_active, __ATOMIC_SEQ_CST); }

int shim_resolve_start(const char *host, int max_active, int delay_ms) {
    _Static_assert(sizeof(struct resolve_answer) <= PIPE_BUF, "one atomic write");
    if (strlen(host) >= sizeof(((struct resolve_job *)0)->host)) return -1;
    if (__atomic_add_fetch(&resolve_active, 1, __ATOMIC_SEQ_CST) > max_active) {
        __atomic_fetch_sub(&resolve_active, 1, __ATOMIC_SEQ_CST);
        return -2;
    }
    int p[2];
    if (pipe(p) != 0) goto fail;
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    struct resolve_job *job = calloc(1, sizeof *job);
    if (!job) { close(p[0]); close(p[1]); goto fail; }
    job->fd = p[1];
    job->delay_ms = delay_ms;
    strcpy(job->host, host);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);      /* the thread starts with every signal blocked */
    pthread_t t;
    int rc = pthread_create(&t, &attr, resolve_thread, job);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) { free(job); close(p[0]); close(p[1]); goto fail; }
    return p[0];
fail:
    __atomic_fetch_sub(&resolve_active, 1, __ATOMIC_SEQ_CST);
    return -1;
}

int shim_resolve_finish(int fd, struct sockaddr_storage *out, socklen_t *lens) {
    struct resolve_answer ans;
    ssize_t n = read(fd, &ans, sizeof ans);
    if (n < 0) return errno == EAGAIN || errno == EINTR ? -1 : 0;
    if (n != (ssize_t)sizeof ans || ans.count < 0 || ans.count > SHIM_RESOLVE_MAX_ADDRS) return 0;
    for (int i = 0; i < ans.count; i++) { out[i] = ans.addrs[i]; lens[i] = ans.lens[i]; }
    return ans.count;
}

/* ---- record buffers lent while data moves ------------------------------ */
/* mbedTLS keeps a record buffer each way for the whole life of a session. A
 * relay's idle tunnel needs neither between heartbeats, so the buffers can be
 * taken out while nothing is buffered (shim_ssl_park) and given back before
 * the next call into mbedTLS (shim_ssl_unpark). The pointers into a buffer (the
 * 8-byte record counter lives at its start) are kept as offsets, with the bytes
 * before the message (counter, header, IV). */
#if defined(MBEDTLS_SSL_DTLS_CONNECTION_ID) || defined(MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH)
#error "record buffer parking assumes fixed-size buffers without CID"
#endif
/* mbedTLS's buffers are content + header + at most 16 (IV) + 48 (MAC) + 256
 * (padding) + 13 bytes: 512 covers them. */
size_t shim_ssl_in_block(void) { return MBEDTLS_SSL_IN_CONTENT_LEN + 512; }
size_t shim_ssl_out_block(void) { return MBEDTLS_SSL_OUT_CONTENT_LEN + 512; }

#define PARK_PREFIX 64

struct shim_parked {
    size_t in_ctr, in_hdr, in_len, in_iv, in_msg;
    size_t out_ctr, out_hdr, out_len, out_iv, out_msg;
    unsigned char in_prefix[PARK_PREFIX], out_prefix[PARK_PREFIX];
};

size_t shim_parked_size(void) { return sizeof(struct shim_parked); }

int shim_ssl_can_park(const mbedtls_ssl_context *ssl) {
    return ssl->MBEDTLS_PRIVATE(in_buf) != NULL && ssl->MBEDTLS_PRIVATE(out_buf) != NULL
        && mbedtls_ssl_is_handshake_over((mbedtls_ssl_context *)ssl)
        && ssl->MBEDTLS_PRIVATE(in_left) == 0 && ssl->MBEDTLS_PRIVATE(in_offt) == NULL
        /* nothing left of the last record, or only a handled handshake message that
         * its next read drops without looking at the buffer */
        && (ssl->MBEDTLS_PRIVATE(in_msglen) == 0
            || (ssl->MBEDTLS_PRIVATE(in_hslen) != 0 && ssl->MBEDTLS_PRIVATE(in_hslen) >= ssl->MBEDTLS_PRIVATE(in_msglen)
                && ssl->MBEDTLS_PRIVATE(badmac_seen_or_in_hsfraglen) == 0))
        && ssl->MBEDTLS_PRIVATE(keep_current_message) == 0 && ssl->MBEDTLS_PRIVATE(out_left) == 0
        && (size_t)(ssl->MBEDTLS_PRIVATE(in_msg) - ssl->MBEDTLS_PRIVATE(in_buf)) <= PARK_PREFIX
        && (size_t)(ssl->MBEDTLS_PRIVATE(out_msg) - ssl->MBEDTLS_PRIVATE(out_buf)) <= PARK_PREFIX;
}

/* Records where the session's pointers are in its buffers, and the bytes before
 * the message (counter, header, IV). 0 if they do not fit in the prefix. */
static int park_save(const mbedtls_ssl_context *ssl, struct shim_parked *p) {
    const unsigned char *ib = ssl->MBEDTLS_PRIVATE(in_buf), *ob = ssl->MBEDTLS_PRIVATE(out_buf);
    p->in_ctr = (size_t)(ssl->MBEDTLS_PRIVATE(in_ctr) - ib);
    p->in_hdr = (size_t)(ssl->MBEDTLS_PRIVATE(in_hdr) - ib);
    p->in_len = (size_t)(ssl->MBEDTLS_PRIVATE(in_len) - ib);
    p->in_iv = (size_t)(ssl->MBEDTLS_PRIVATE(in_iv) - ib);
    p->in_msg = (size_t)(ssl->MBEDTLS_PRIVATE(in_msg) - ib);
    p->out_ctr = (size_t)(ssl->MBEDTLS_PRIVATE(out_ctr) - ob);
    p->out_hdr = (size_t)(ssl->MBEDTLS_PRIVATE(out_hdr) - ob);
    p->out_len = (size_t)(ssl->MBEDTLS_PRIVATE(out_len) - ob);
    p->out_iv = (size_t)(ssl->MBEDTLS_PRIVATE(out_iv) - ob);
    p->out_msg = (size_t)(ssl->MBEDTLS_PRIVATE(out_msg) - ob);
    if (p->in_msg > PARK_PREFIX || p->out_msg > PARK_PREFIX) return 0;
    memcpy(p->in_prefix, ib, PARK_PREFIX);
    memcpy(p->out_prefix, ob, PARK_PREFIX);
    return 1;
}

/* Takes both buffers out (into *in, *out; the caller wipes and keeps them) if
 * nothing is buffered: 1 if parked, 0 if not. */
int shim_ssl_park(mbedtls_ssl_context *ssl, struct shim_parked *p, unsigned char **in, unsigned char **out) {
    if (!shim_ssl_can_park(ssl) || !park_save(ssl, p)) return 0;
    *in = ssl->MBEDTLS_PRIVATE(in_buf);
    *out = ssl->MBEDTLS_PRIVATE(out_buf);
    ssl->MBEDTLS_PRIVATE(in_buf) = NULL;
    ssl->MBEDTLS_PRIVATE(out_buf) = NULL;
    return 1;
}

/* Puts buffers of shim_ssl_in_block()/shim_ssl_out_block() bytes back into a
 * parked session. */
void shim_ssl_unpark(mbedtls_ssl_context *ssl, const struct shim_parked *p, unsigned char *ib, unsigned char *ob) {
    memcpy(ib, p->in_prefix, PARK_PREFIX);
    memcpy(ob, p->out_prefix, PARK_PREFIX);
    ssl->MBEDTLS_PRIVATE(in_buf) = ib;
    ssl->MBEDTLS_PRIVATE(in_ctr) = ib + p->in_ctr;
    ssl->MBEDTLS_PRIVATE(in_hdr) = ib + p->in_hdr;
    ssl->MBEDTLS_PRIVATE(in_len) = ib + p->in_len;
    ssl->MBEDTLS_PRIVATE(in_iv) = ib + p->in_iv;
    ssl->MBEDTLS_PRIVATE(in_msg) = ib + p->in_msg;
    ssl->MBEDTLS_PRIVATE(out_buf) = ob;
    ssl->MBEDTLS_PRIVATE(out_ctr) = ob + p->out_ctr;
    ssl->MBEDTLS_PRIVATE(out_hdr) = ob + p->out_hdr;
    ssl->MBEDTLS_PRIVATE(out_len) = ob + p->out_len;
    ssl->MBEDTLS_PRIVATE(out_iv) = ob + p->out_iv;
    ssl->MBEDTLS_PRIVATE(out_msg) = ob + p->out_msg;
}

/* Replaces the buffers mbedTLS allocated in mbedtls_ssl_setup (freed here:
 * nothing was written to them yet) by the caller's, so that every buffer of
 * the session comes from the caller's cache. 0 if the session is not fresh. */
int shim_ssl_adopt_buffers(mbedtls_ssl_context *ssl, unsigned char *ib, unsigned char *ob) {
    struct shim_parked p;
    if (ssl->MBEDTLS_PRIVATE(in_buf) == NULL || ssl->MBEDTLS_PRIVATE(out_buf) == NULL
        || ssl->MBEDTLS_PRIVATE(in_left) != 0 || ssl->MBEDTLS_PRIVATE(out_left) != 0 || !park_save(ssl, &p)) return 0;
    mbedtls_free(ssl->MBEDTLS_PRIVATE(in_buf));
    mbedtls_free(ssl->MBEDTLS_PRIVATE(out_buf));
    shim_ssl_unpark(ssl, &p, ib, ob);
    return 1;
}

/* Takes the buffers out of a session about to be freed (mbedtls_ssl_free must
 * not free blocks that belong to the caller's cache); NULL while parked. */
void shim_ssl_detach(mbedtls_ssl_context *ssl, unsigned char **in, unsigned char **out) {
    *in = ssl->MBEDTLS_PRIVATE(in_buf);
    *out = ssl->MBEDTLS_PRIVATE(out_buf);
    ssl->MBEDTLS_PRIVATE(in_buf) = NULL;
    ssl->MBEDTLS_PRIVATE(out_buf) = NULL;
}
/* mbedTLS 3.6 keeps a TLS 1.3 session's handshake parameters (transcript, key
 * exchange, certificates in flight: several KiB) after the handshake, because
 * a client may still get a NewSessionTicket. A server has no use for them (it
 * refuses every post-handshake message), so they are freed once its handshake
 * is over, as mbedTLS does itself for TLS 1.2. */
void mbedtls_ssl_handshake_free(mbedtls_ssl_context *ssl);   /* ssl_misc.h */
void shim_ssl_server_done(mbedtls_ssl_context *ssl) {
    if (ssl->MBEDTLS_PRIVATE(conf)->MBEDTLS_PRIVATE(endpoint) != MBEDTLS_SSL_IS_SERVER
        || !mbedtls_ssl_is_handshake_over(ssl) || ssl->MBEDTLS_PRIVATE(handshake) == NULL) return;
    mbedtls_ssl_handshake_free(ssl);
    mbedtls_free(ssl->MBEDTLS_PRIVATE(handshake));
    ssl->MBEDTLS_PRIVATE(handshake) = NULL;
}

/* ---- errno texts ------------------------------------------------------- */
/* The errors a tunnel tool meets, in musl's words; others print as "errno N".
 * (musl's whole strerror table is 1.9 KB of the aarch64 budget.) */
const char *shim_strerror(int e) {
    switch (e) {
    case EPERM: return "Operation not permitted";
    case ENOENT: return "No such file or directory";
    case EINTR: return "Interrupted system call";
    case EIO: return "I/O error";
    case EBADF: return "Bad file descriptor";
    case EAGAIN: return "Resource temporarily unavailable";
    case ENOMEM: return "Out of memory";
    case EACCES: return "Permission denied";
    case EEXIST: return "File exists";
    case ENOTDIR: return "Not a directory";
    case EISDIR: return "Is a directory";
    case EINVAL: return "Invalid argument";
    case ENFILE: return "Too many open files in system";
    case EMFILE: return "No file descriptors available";
    case ENOSPC: return "No space left on device";
    case EROFS: return "Read-only file system";
    case EPIPE: return "Broken pipe";
    case EAFNOSUPPORT: return "Address family not supported by protocol";
    case EADDRINUSE: return "Address in use";
    case EADDRNOTAVAIL: return "Address not available";
    case ENETDOWN: return "Network is down";
    case ENETUNREACH: return "Network unreachable";
    case ECONNABORTED: return "Connection aborted";
    case ECONNRESET: return "Connection reset by peer";
    case ENOBUFS: return "No buffer space available";
    case ETIMEDOUT: return "Operation timed out";
    case ECONNREFUSED: return "Connection refused";
    case EHOSTUNREACH: return "Host is unreachable";
    default: return NULL;
    }
}
