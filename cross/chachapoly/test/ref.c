/* Compiled like the reference sources: default mbedTLS config, ref_ names. */
#include "mbedtls/chachapoly.h"

#include "ref.h"

int ref_aead_encrypt(const unsigned char key[32], const unsigned char nonce[12],
                     const unsigned char *aad, size_t aad_len,
                     const unsigned char *input, size_t len,
                     unsigned char *output, unsigned char tag[16])
{
    mbedtls_chachapoly_context ctx;
    int ret;

    mbedtls_chachapoly_init(&ctx);
    ret = mbedtls_chachapoly_setkey(&ctx, key);
    if (ret == 0) {
        ret = mbedtls_chachapoly_encrypt_and_tag(&ctx, len, nonce, aad, aad_len,
                                                 input, output, tag);
    }
    mbedtls_chachapoly_free(&ctx);
    return ret;
}

static mbedtls_chachapoly_context bench_ctx;

void ref_bench_aead_setkey(const unsigned char key[32])
{
    mbedtls_chachapoly_init(&bench_ctx);
    mbedtls_chachapoly_setkey(&bench_ctx, key);
}

int ref_bench_aead_encrypt(const unsigned char nonce[12],
                           const unsigned char *aad, size_t aad_len,
                           const unsigned char *input, size_t len,
                           unsigned char *output, unsigned char tag[16])
{
    return mbedtls_chachapoly_encrypt_and_tag(&bench_ctx, len, nonce, aad, aad_len,
                                              input, output, tag);
}
