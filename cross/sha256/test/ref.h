/* The reference: mbedTLS's own sha256.c (no ALT), renamed (ref_rename.h). */
#ifndef AGENT_SHA256_REF_H
#define AGENT_SHA256_REF_H

#include "mbedtls/sha256.h"

void ref_sha256_init(mbedtls_sha256_context *ctx);
int ref_sha256(const unsigned char *input, size_t ilen, unsigned char *output, int is224);
int ref_internal_sha256_process(mbedtls_sha256_context *ctx, const unsigned char data[64]);

#endif
