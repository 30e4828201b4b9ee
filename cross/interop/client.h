/*
 * The TLS 1.2 client of the release builds' interoperability tests
 * (cross/chachapoly/test/interop.c, cross/x25519/test/interop.c): built from
 * the release's mbedTLS with the project's ALT code inside, it talks to
 * `openssl s_server -rev` on 127.0.0.1 (started by s_server.sh).
 */
#ifndef AGENT_INTEROP_CLIENT_H
#define AGENT_INTEROP_CLIENT_H

#include <stddef.h>

#include <stdint.h>

struct interop_options {
    const char *port;                        /* s_server's port on 127.0.0.1 */
    const char *ca_file;                     /* PEM: s_server's self-signed certificate */
    size_t total;                            /* bytes of text to send (and get back) */
    const int *suites;                       /* NULL: mbedTLS's default list */
    const uint16_t *groups;                  /* IANA group numbers, 0-terminated; NULL: mbedTLS's default list */
};

struct interop_result {
    char suite[80];                          /* the negotiated cipher suite */
    size_t lines;                            /* lines sent, each checked on its way back */
    size_t bytes;                            /* bytes sent (and received) */
};

/*
 * One session: a full handshake (the server's certificate verified against
 * ca_file, host name "localhost"), then lines of pseudo-random text of 1 byte
 * to 8 KiB (records of many sizes) until `total` bytes; s_server sends each
 * line back reversed and every reply is checked; then "CLOSE" and
 * close_notify. Returns 0, or prints one "FAIL interop: ..." line and
 * returns 1.
 */
int interop_session(const struct interop_options *o, struct interop_result *r);

#endif
