/*
 * mbedtls_chacha20_context for MBEDTLS_CHACHA20_ALT (cross/config.h).
 *
 * mbedTLS's include/mbedtls/chacha20.h includes this file when the ALT macro
 * is set; our mbedtls_chacha20_* functions are in chacha20.c. The layout is
 * the same on every target and is imported by the Swift release build too,
 * so keep it plain C (no attributes, no unions).
 */
#ifndef AGENT_CHACHA20_ALT_H
#define AGENT_CHACHA20_ALT_H

#include <stddef.h>
#include <stdint.h>

typedef struct mbedtls_chacha20_context {
    uint32_t state[16];      /* constants, key, block counter (word 12), nonce */
    uint8_t keystream[64];   /* keystream of the last, partly used block */
    size_t keystream_used;   /* bytes of keystream[] already used; 64 = none */
} mbedtls_chacha20_context;

#endif /* AGENT_CHACHA20_ALT_H */
