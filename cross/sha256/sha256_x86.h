/*
 * cross/sha256: SHA-256's compression function on x86_64 (README.md).
 * mbedTLS calls mbedtls_internal_sha256_process (MBEDTLS_SHA256_PROCESS_ALT);
 * the rest is for the tests and the benchmark (--gc-sections drops what the
 * release does not call).
 */
#ifndef AGENT_SHA256_X86_H
#define AGENT_SHA256_X86_H

#include <stddef.h>
#include <stdint.h>

/* nblocks 64-byte blocks into state[0..7] (A..H). */
void agent_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t nblocks);
void agent_sha256_blocks_portable(uint32_t state[8], const uint8_t *data, size_t nblocks);
void agent_sha256_blocks_shani(uint32_t state[8], const uint8_t *data, size_t nblocks);

/* 1 if the CPU has the SHA extensions, SSSE3 and SSE4.1. */
int agent_cpu_has_shani(void);

/* Test hook: force "shani" or "portable" ("auto" = the run-time choice).
 * Returns 0, or -1 if this CPU does not have it. */
int agent_sha256_use(const char *name);
const char *agent_sha256_name(void);

#endif
