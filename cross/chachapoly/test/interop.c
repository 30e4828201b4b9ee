/*
 * Interoperability: a TLS 1.2 client built from the release's mbedTLS (with
 * our ChaCha20/Poly1305 behind the ALT hooks) talks to `openssl s_server -rev`
 * (OpenSSL's own ChaCha20-Poly1305) on 127.0.0.1, with the cipher suite forced
 * to TLS1-3-CHACHA20-POLY1305-SHA256 (TLS 1.3): lines of text of 1 byte
 * to 8 KiB (records of many sizes) both ways, each reply checked
 * (cross/interop/client.c), so both implementations encrypt and decrypt real
 * records for each other.
 *
 *   interop PORT CA.pem [TOTAL_BYTES] [IMPL]
 *
 * IMPL forces one of our implementations (default: the run-time choice).
 * Prints one "ok ..." line and exits 0, or "FAIL ..." and exits 1.
 */
#include "mbedtls/ssl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chachapoly_internal.h"
#include "client.h"

int main(int argc, char **argv)
{
    static const int suites[] = { MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256, 0 };
    struct interop_options o = { 0 };
    struct interop_result r;

    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT CA.pem [TOTAL_BYTES] [IMPL]\n", argv[0]);
        return 2;
    }
    if (argc > 4 && agent_chachapoly_use(argv[4]) != 0) {
        printf("FAIL interop: implementation %s not available\n", argv[4]);
        return 1;
    }
    o.port = argv[1];
    o.ca_file = argv[2];
    o.total = argc > 3 ? strtoul(argv[3], NULL, 0) : (1u << 20);
    o.suites = suites;
    if (interop_session(&o, &r) != 0) {
        return 1;
    }
    if (strcmp(r.suite, "TLS1-3-CHACHA20-POLY1305-SHA256") != 0) {
        printf("FAIL interop: negotiated %s\n", r.suite);
        return 1;
    }
    printf("ok   interop (%s): %s with openssl s_server, %zu lines, %zu bytes each way\n",
           agent_chachapoly_name(), r.suite, r.lines, r.bytes);
    return 0;
}
