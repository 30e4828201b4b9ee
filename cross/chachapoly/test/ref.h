/*
 * The reference (mbedTLS 2.28.3's portable code, renamed by ref_rename.h),
 * through one-shot functions that need no context type: the reference's
 * context structs differ from ours, so only ref.c sees them.
 */
#ifndef CHACHAPOLY_TEST_REF_H
#define CHACHAPOLY_TEST_REF_H

#include <stddef.h>
#include <stdint.h>

int ref_chacha20_crypt(const unsigned char key[32], const unsigned char nonce[12],
                       uint32_t counter, size_t size,
                       const unsigned char *input, unsigned char *output);
int ref_poly1305_mac(const unsigned char key[32], const unsigned char *input,
                     size_t ilen, unsigned char mac[16]);
int ref_aead_encrypt(const unsigned char key[32], const unsigned char nonce[12],
                     const unsigned char *aad, size_t aad_len,
                     const unsigned char *input, size_t len,
                     unsigned char *output, unsigned char tag[16]);

/* Streaming (split) use of the reference, for the benchmark: one context of
 * each kind kept inside ref.c. */
void ref_bench_aead_setkey(const unsigned char key[32]);
int ref_bench_aead_encrypt(const unsigned char nonce[12],
                           const unsigned char *aad, size_t aad_len,
                           const unsigned char *input, size_t len,
                           unsigned char *output, unsigned char tag[16]);

#endif
