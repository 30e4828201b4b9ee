/*
 * mbedtls_poly1305_context for MBEDTLS_POLY1305_ALT (cross/config.h).
 *
 * mbedTLS's include/mbedtls/poly1305.h includes this file when the ALT macro
 * is set; our mbedtls_poly1305_* functions are in poly1305.c. The numbers are
 * kept in 64-bit words on every target (the 32-bit code converts to 26-bit
 * limbs inside each call), so the layout does not depend on the target.
 */
#ifndef AGENT_POLY1305_ALT_H
#define AGENT_POLY1305_ALT_H

#include <stddef.h>
#include <stdint.h>

typedef struct mbedtls_poly1305_context {
    uint64_t h[3];       /* accumulator h[0] + h[1]*2^64 + h[2]*2^128, < 2^131 */
    uint64_t r[2];       /* clamped r, little-endian words */
    uint64_t s[2];       /* s, added at the end */
    uint8_t block[16];   /* bytes of an incomplete block */
    size_t block_len;    /* how many of block[] are in use (0..15) */
} mbedtls_poly1305_context;

#endif /* AGENT_POLY1305_ALT_H */
