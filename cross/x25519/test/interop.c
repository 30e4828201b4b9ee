/*
 * Interoperability: a TLS 1.2 client built from the release's mbedTLS (whose
 * ECDH on curve25519 is our X25519, behind the ALT hooks) does full
 * handshakes with `openssl s_server -rev` on 127.0.0.1, the ECDHE group forced
 * (s_server -groups): X25519 (OpenSSL's own X25519 computes the same shared
 * secret, or the Finished messages would not verify), or P-256 (the fallback
 * to mbedTLS's code).
 *
 * It then sends lines of pseudo-random text (1 byte to 8 KiB); s_server sends
 * each line back reversed, and every reply is checked: data both ways, under
 * the keys derived from the shared secret.
 *
 * The calls into our X25519 are counted (the link wraps agent_x25519 and
 * agent_x25519_base with -Wl,--wrap): one key pair and one shared secret with
 * X25519, none with P-256.
 *
 *   interop PORT CA.pem x25519|p256 [TOTAL_BYTES]
 *
 * Prints one "ok ..." line and exits 0, or "FAIL ..." and exits 1.
 */
#include "mbedtls/ctr_drbg.h"
#include "mbedtls/entropy.h"
#include "mbedtls/error.h"
#include "mbedtls/ssl.h"
#include "mbedtls/x509_crt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "x25519.h"

/* -Wl,--wrap: every call into our X25519 from ecdh_alt.c comes here. */
int __real_agent_x25519(unsigned char out[32], const unsigned char scalar[32], const unsigned char u[32]);
int __real_agent_x25519_base(unsigned char out[32], const unsigned char scalar[32]);
static int calls_shared, calls_base;

int __wrap_agent_x25519(unsigned char out[32], const unsigned char scalar[32], const unsigned char u[32])
{
    calls_shared++;
    return __real_agent_x25519(out, scalar, u);
}

int __wrap_agent_x25519_base(unsigned char out[32], const unsigned char scalar[32])
{
    calls_base++;
    return __real_agent_x25519_base(out, scalar);
}

/* cross/config.h takes entropy from mbedtls_hardware_poll (the release has it
 * in Sources/CShims/shims.c). */
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen)
{
    size_t done = 0;

    (void) data;
    while (done < len) {
        size_t n = len - done > 256 ? 256 : len - done;
        if (getentropy(output + done, n) != 0) {
            *olen = 0;
            return -1;
        }
        done += n;
    }
    *olen = len;
    return 0;
}

static int sock_send(void *ctx, const unsigned char *buf, size_t len)
{
    ssize_t n;
    do {
        n = send(*(int *) ctx, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? MBEDTLS_ERR_SSL_INTERNAL_ERROR : (int) n;
}

static int sock_recv(void *ctx, unsigned char *buf, size_t len)
{
    ssize_t n;
    do {
        n = recv(*(int *) ctx, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? MBEDTLS_ERR_SSL_INTERNAL_ERROR : (int) n;
}

static int fail(const char *what, int ret)
{
    printf("FAIL interop: %s (-0x%04x)\n", what, (unsigned) -ret);
    return 1;
}

static int read_file(const char *path, unsigned char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        return -1;
    }
    *buf = malloc((size_t) n + 1);
    if (*buf == NULL || fread(*buf, 1, (size_t) n, f) != (size_t) n) {
        return -1;
    }
    (*buf)[n] = 0;   /* PEM parsing wants the NUL, counted in the length */
    *len = (size_t) n + 1;
    fclose(f);
    return 0;
}

static uint64_t rng = 0x1234567;

static uint32_t rnd(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t) (rng >> 33);
}

int main(int argc, char **argv)
{
    /* TLS 1.2 clients list in supported_groups the curves of the server's
     * ECDSA certificate too (P-256 here), or the server has no certificate
     * it may use: x25519 offers X25519 and P-256 (and the server only
     * accepts X25519 for ECDHE), p256 offers P-256 alone. */
    static mbedtls_ecp_group_id groups[] = { MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
                                             MBEDTLS_ECP_DP_NONE };
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_+*/";
    static unsigned char line[8193], reply[8193];
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    mbedtls_x509_crt ca;
    struct sockaddr_in sa;
    unsigned char *pem;
    size_t pem_len, total, sent = 0, received = 0, lines = 0;
    int fd, ret, one = 1, x25519;

    if (argc < 4 || (strcmp(argv[3], "x25519") != 0 && strcmp(argv[3], "p256") != 0)) {
        fprintf(stderr, "usage: %s PORT CA.pem x25519|p256 [TOTAL_BYTES]\n", argv[0]);
        return 2;
    }
    x25519 = strcmp(argv[3], "x25519") == 0;
    if (!x25519) {
        groups[0] = MBEDTLS_ECP_DP_SECP256R1;
        groups[1] = MBEDTLS_ECP_DP_NONE;
    }
    total = argc > 4 ? strtoul(argv[4], NULL, 0) : (1u << 18);

    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_ssl_config_init(&conf);
    mbedtls_ssl_init(&ssl);
    mbedtls_x509_crt_init(&ca);

    if (read_file(argv[2], &pem, &pem_len) != 0) {
        return fail("cannot read the CA certificate", 0);
    }
    if ((ret = mbedtls_x509_crt_parse(&ca, pem, pem_len)) != 0) {
        return fail("x509_crt_parse", ret);
    }
    if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                     (const unsigned char *) "interop", 7)) != 0) {
        return fail("ctr_drbg_seed", ret);
    }
    if ((ret = mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                           MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        return fail("ssl_config_defaults", ret);
    }
    mbedtls_ssl_conf_min_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_curves(&conf, groups);
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
    mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
    if ((ret = mbedtls_ssl_setup(&ssl, &conf)) != 0 ||
        (ret = mbedtls_ssl_set_hostname(&ssl, "localhost")) != 0) {
        return fail("ssl_setup", ret);
    }

    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        return fail("connect to 127.0.0.1", 0);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    mbedtls_ssl_set_bio(&ssl, &fd, sock_send, sock_recv, NULL);

    if ((ret = mbedtls_ssl_handshake(&ssl)) != 0) {
        return fail("handshake", ret);
    }
    /* ECDHE with our X25519: one key pair, one shared secret */
    if (calls_base != (x25519 ? 1 : 0) || calls_shared != (x25519 ? 1 : 0)) {
        printf("FAIL interop: %d key pairs and %d shared secrets by our X25519 in the handshake\n",
               calls_base, calls_shared);
        return 1;
    }
    if (strncmp(mbedtls_ssl_get_ciphersuite(&ssl), "TLS-ECDHE-", 10) != 0) {
        printf("FAIL interop: negotiated %s\n", mbedtls_ssl_get_ciphersuite(&ssl));
        return 1;
    }

    while (sent < total) {
        /* A line of 1..8191 characters (some short, some near a record),
         * then '\n'; the server answers with the characters reversed. */
        size_t len = rnd() % 4 == 0 ? 1 + rnd() % 64 : 1 + rnd() % 8191, i, got = 0;

        for (i = 0; i < len; i++) {
            line[i] = (unsigned char) alphabet[rnd() % (sizeof(alphabet) - 1)];
        }
        line[len] = '\n';
        if (len == 5 && memcmp(line, "CLOSE", 5) == 0) {
            continue;
        }
        for (i = 0; i <= len; i += (size_t) ret) {
            ret = mbedtls_ssl_write(&ssl, line + i, len + 1 - i);
            if (ret <= 0) {
                return fail("ssl_write", ret);
            }
        }
        while (got < len + 1) {
            ret = mbedtls_ssl_read(&ssl, reply + got, len + 1 - got);
            if (ret <= 0) {
                return fail("ssl_read", ret);
            }
            got += (size_t) ret;
        }
        for (i = 0; i < len; i++) {
            if (reply[i] != line[len - 1 - i]) {
                printf("FAIL interop: line %zu (%zu bytes) came back wrong at %zu\n",
                       lines, len, i);
                return 1;
            }
        }
        if (reply[len] != '\n') {
            printf("FAIL interop: line %zu: no newline\n", lines);
            return 1;
        }
        sent += len + 1;
        received += got;
        lines++;
    }
    mbedtls_ssl_write(&ssl, (const unsigned char *) "CLOSE\n", 6);
    mbedtls_ssl_close_notify(&ssl);
    close(fd);
    printf("ok   interop %s: %s with openssl s_server, %d key pair%s and %d shared secret%s by our X25519, "
           "%zu lines, %zu bytes each way\n", x25519 ? "X25519" : "P-256", mbedtls_ssl_get_ciphersuite(&ssl),
           calls_base, calls_base == 1 ? "" : "s", calls_shared, calls_shared == 1 ? "" : "s", lines, sent);
    (void) received;
    mbedtls_ssl_free(&ssl);
    mbedtls_ssl_config_free(&conf);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    mbedtls_x509_crt_free(&ca);
    return 0;
}
