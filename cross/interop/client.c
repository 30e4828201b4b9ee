/* See client.h. */
#include "client.h"

#include "mbedtls/error.h"
#include "mbedtls/psa_util.h"
#include "mbedtls/ssl.h"
#include "mbedtls/x509_crt.h"
#include "psa/crypto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* cross/mbedtls_config.h takes every random byte from the kernel through
 * this hook (the release has it in Sources/CShims/shims.c). */
psa_status_t mbedtls_psa_external_get_random(mbedtls_psa_external_random_context_t *context,
                                             uint8_t *output, size_t output_size, size_t *output_length)
{
    size_t done = 0;

    (void) context;
    while (done < output_size) {
        size_t n = output_size - done > 256 ? 256 : output_size - done;
        if (getentropy(output + done, n) != 0) {
            *output_length = 0;
            return PSA_ERROR_INSUFFICIENT_ENTROPY;
        }
        done += n;
    }
    *output_length = output_size;
    return PSA_SUCCESS;
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

/* Lines of text both ways until o->total bytes; each reply checked. */
static int exchange(mbedtls_ssl_context *ssl, const struct interop_options *o,
                    struct interop_result *r)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_+*/";
    static unsigned char line[8193], reply[8193];
    int ret;

    while (r->bytes < o->total) {
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
            ret = mbedtls_ssl_write(ssl, line + i, len + 1 - i);
            if (ret <= 0) {
                return fail("ssl_write", ret);
            }
        }
        while (got < len + 1) {
            ret = mbedtls_ssl_read(ssl, reply + got, len + 1 - got);
            if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
                continue;   /* TLS 1.3: s_server's tickets come after the handshake */
            }
            if (ret <= 0) {
                return fail("ssl_read", ret);
            }
            got += (size_t) ret;
        }
        for (i = 0; i < len; i++) {
            if (reply[i] != line[len - 1 - i]) {
                printf("FAIL interop: line %zu (%zu bytes) came back wrong at %zu\n",
                       r->lines, len, i);
                return 1;
            }
        }
        if (reply[len] != '\n') {
            printf("FAIL interop: line %zu: no newline\n", r->lines);
            return 1;
        }
        r->bytes += len + 1;
        r->lines++;
    }
    mbedtls_ssl_write(ssl, (const unsigned char *) "CLOSE\n", 6);
    mbedtls_ssl_close_notify(ssl);
    return 0;
}

int interop_session(const struct interop_options *o, struct interop_result *r)
{
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    mbedtls_x509_crt ca;
    struct sockaddr_in sa;
    unsigned char *pem = NULL;
    size_t pem_len;
    int fd = -1, ret, one = 1, status = 1;

    memset(r, 0, sizeof(*r));
    if (psa_crypto_init() != PSA_SUCCESS) {
        return fail("psa_crypto_init", 0);
    }
    mbedtls_ssl_config_init(&conf);
    mbedtls_ssl_init(&ssl);
    mbedtls_x509_crt_init(&ca);

    if (read_file(o->ca_file, &pem, &pem_len) != 0) {
        fail("cannot read the CA certificate", 0);
        goto done;
    }
    if ((ret = mbedtls_x509_crt_parse(&ca, pem, pem_len)) != 0) {
        fail("x509_crt_parse", ret);
        goto done;
    }
    if ((ret = mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                           MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        fail("ssl_config_defaults", ret);
        goto done;
    }
    mbedtls_ssl_conf_min_tls_version(&conf, MBEDTLS_SSL_VERSION_TLS1_3);
    mbedtls_ssl_conf_max_tls_version(&conf, MBEDTLS_SSL_VERSION_TLS1_3);
    if (o->suites != NULL) {
        mbedtls_ssl_conf_ciphersuites(&conf, o->suites);
    }
    if (o->groups != NULL) {
        mbedtls_ssl_conf_groups(&conf, o->groups);
    }
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
    mbedtls_ssl_conf_rng(&conf, mbedtls_psa_get_random, MBEDTLS_PSA_RANDOM_STATE);
    if ((ret = mbedtls_ssl_setup(&ssl, &conf)) != 0 ||
        (ret = mbedtls_ssl_set_hostname(&ssl, "localhost")) != 0) {
        fail("ssl_setup", ret);
        goto done;
    }

    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) atoi(o->port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        fail("connect to 127.0.0.1", 0);
        goto done;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    mbedtls_ssl_set_bio(&ssl, &fd, sock_send, sock_recv, NULL);

    if ((ret = mbedtls_ssl_handshake(&ssl)) != 0) {
        fail("handshake", ret);
        goto done;
    }
    snprintf(r->suite, sizeof(r->suite), "%s", mbedtls_ssl_get_ciphersuite(&ssl));
    status = exchange(&ssl, o, r);

done:
    if (fd >= 0) {
        close(fd);
    }
    free(pem);
    mbedtls_ssl_free(&ssl);
    mbedtls_ssl_config_free(&conf);
    mbedtls_x509_crt_free(&ca);
    return status;
}
