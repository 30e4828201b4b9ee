/*
 * Interoperability: a TLS 1.2 client built from the release's mbedTLS (whose
 * ECDH on curve25519 is our X25519, behind the ALT hooks) does a full
 * handshake with `openssl s_server -rev` on 127.0.0.1, the ECDHE group forced
 * (s_server -groups): X25519 (OpenSSL's own X25519 computes the same shared
 * secret, or the Finished messages would not verify), or P-256 (the fallback
 * to mbedTLS's code). Then lines of text both ways, each reply checked
 * (cross/interop/client.c): data under the keys derived from the shared
 * secret.
 *
 * The calls into our X25519 are counted (the link wraps agent_x25519 and
 * agent_x25519_base with -Wl,--wrap): one key pair and one shared secret with
 * X25519, none with P-256.
 *
 *   interop PORT CA.pem x25519|p256 [TOTAL_BYTES]
 *
 * Prints one "ok ..." line and exits 0, or "FAIL ..." and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
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

int main(int argc, char **argv)
{
    /* TLS 1.2 clients list in supported_groups the curves of the server's
     * ECDSA certificate too (P-256 here), or the server has no certificate
     * it may use: x25519 offers X25519 and P-256 (and the server only
     * accepts X25519 for ECDHE), p256 offers P-256 alone. */
    static mbedtls_ecp_group_id groups[] = { MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
                                             MBEDTLS_ECP_DP_NONE };
    struct interop_options o = { 0 };
    struct interop_result r;
    int x25519;

    if (argc < 4 || (strcmp(argv[3], "x25519") != 0 && strcmp(argv[3], "p256") != 0)) {
        fprintf(stderr, "usage: %s PORT CA.pem x25519|p256 [TOTAL_BYTES]\n", argv[0]);
        return 2;
    }
    x25519 = strcmp(argv[3], "x25519") == 0;
    if (!x25519) {
        groups[0] = MBEDTLS_ECP_DP_SECP256R1;
        groups[1] = MBEDTLS_ECP_DP_NONE;
    }
    o.port = argv[1];
    o.ca_file = argv[2];
    o.total = argc > 4 ? strtoul(argv[4], NULL, 0) : (1u << 18);
    o.groups = groups;
    if (interop_session(&o, &r) != 0) {
        return 1;
    }
    /* ECDHE with our X25519: one key pair, one shared secret */
    if (calls_base != (x25519 ? 1 : 0) || calls_shared != (x25519 ? 1 : 0)) {
        printf("FAIL interop: %d key pairs and %d shared secrets by our X25519 in the handshake\n",
               calls_base, calls_shared);
        return 1;
    }
    if (strncmp(r.suite, "TLS-ECDHE-", 10) != 0) {
        printf("FAIL interop: negotiated %s\n", r.suite);
        return 1;
    }
    printf("ok   interop %s: %s with openssl s_server, %d key pair%s and %d shared secret%s by our X25519, "
           "%zu lines, %zu bytes each way\n", x25519 ? "X25519" : "P-256", r.suite,
           calls_base, calls_base == 1 ? "" : "s", calls_shared, calls_shared == 1 ? "" : "s", r.lines, r.bytes);
    return 0;
}
