/*
 * ChaCha20 (RFC 8439) behind mbedTLS's MBEDTLS_CHACHA20_ALT hook: the
 * mbedtls_chacha20_* API (same behaviour as mbedTLS 2.28's library/chacha20.c)
 * and the portable one-block-at-a-time implementation. The SIMD versions are
 * in chacha20_x86.c and chacha20_neon.c; dispatch.c picks one at run time.
 */
#include "mbedtls/chacha20.h"
#include "mbedtls/platform_util.h"

#include <string.h>

#include "chachapoly_internal.h"

#if !defined(MBEDTLS_CHACHA20_ALT)
#error "cross/chachapoly needs MBEDTLS_CHACHA20_ALT in the mbedTLS configuration"
#endif

#define ROTL32(v, n) (((v) << (n)) | ((v) >> (32 - (n))))

#define QUARTERROUND(a, b, c, d)                    \
    do {                                            \
        a += b; d ^= a; d = ROTL32(d, 16);          \
        c += d; b ^= c; b = ROTL32(b, 12);          \
        a += b; d ^= a; d = ROTL32(d, 8);           \
        c += d; b ^= c; b = ROTL32(b, 7);           \
    } while (0)

/* Portable C: one block at a time, the state in 16 locals. */
void agent_chacha20_blocks_portable(uint32_t st[16], const uint8_t *in,
                                    uint8_t *out, size_t nblocks)
{
    uint32_t ctr = st[12];

    while (nblocks-- > 0) {
        uint32_t x[16];
        uint32_t x0 = st[0], x1 = st[1], x2 = st[2], x3 = st[3];
        uint32_t x4 = st[4], x5 = st[5], x6 = st[6], x7 = st[7];
        uint32_t x8 = st[8], x9 = st[9], x10 = st[10], x11 = st[11];
        uint32_t x12 = ctr, x13 = st[13], x14 = st[14], x15 = st[15];
        int i;

        for (i = 0; i < 10; i++) {
            QUARTERROUND(x0, x4, x8, x12);
            QUARTERROUND(x1, x5, x9, x13);
            QUARTERROUND(x2, x6, x10, x14);
            QUARTERROUND(x3, x7, x11, x15);
            QUARTERROUND(x0, x5, x10, x15);
            QUARTERROUND(x1, x6, x11, x12);
            QUARTERROUND(x2, x7, x8, x13);
            QUARTERROUND(x3, x4, x9, x14);
        }
        x[0] = x0 + st[0];    x[1] = x1 + st[1];
        x[2] = x2 + st[2];    x[3] = x3 + st[3];
        x[4] = x4 + st[4];    x[5] = x5 + st[5];
        x[6] = x6 + st[6];    x[7] = x7 + st[7];
        x[8] = x8 + st[8];    x[9] = x9 + st[9];
        x[10] = x10 + st[10]; x[11] = x11 + st[11];
        x[12] = x12 + ctr;    x[13] = x13 + st[13];
        x[14] = x14 + st[14]; x[15] = x15 + st[15];
        for (i = 0; i < 16; i++) {
            agent_put_le32(out + 4 * i, agent_le32(in + 4 * i) ^ x[i]);
        }
        ctr++;
        in += 64;
        out += 64;
    }
    st[12] = ctr;
}

/* --- mbedTLS API ---------------------------------------------------------- */

void mbedtls_chacha20_init(mbedtls_chacha20_context *ctx)
{
    if (ctx == NULL) {
        return;
    }
    mbedtls_platform_zeroize(ctx, sizeof(*ctx));
    ctx->keystream_used = sizeof(ctx->keystream);
}

void mbedtls_chacha20_free(mbedtls_chacha20_context *ctx)
{
    if (ctx != NULL) {
        mbedtls_platform_zeroize(ctx, sizeof(*ctx));
    }
}

int mbedtls_chacha20_setkey(mbedtls_chacha20_context *ctx,
                            const unsigned char key[32])
{
    int i;

    if (ctx == NULL || key == NULL) {
        return MBEDTLS_ERR_CHACHA20_BAD_INPUT_DATA;
    }
    /* "expand 32-byte k" */
    ctx->state[0] = 0x61707865;
    ctx->state[1] = 0x3320646e;
    ctx->state[2] = 0x79622d32;
    ctx->state[3] = 0x6b206574;
    for (i = 0; i < 8; i++) {
        ctx->state[4 + i] = agent_le32(key + 4 * i);
    }
    return 0;
}

int mbedtls_chacha20_starts(mbedtls_chacha20_context *ctx,
                            const unsigned char nonce[12],
                            uint32_t counter)
{
    if (ctx == NULL || nonce == NULL) {
        return MBEDTLS_ERR_CHACHA20_BAD_INPUT_DATA;
    }
    ctx->state[12] = counter;
    ctx->state[13] = agent_le32(nonce);
    ctx->state[14] = agent_le32(nonce + 4);
    ctx->state[15] = agent_le32(nonce + 8);
    mbedtls_platform_zeroize(ctx->keystream, sizeof(ctx->keystream));
    ctx->keystream_used = sizeof(ctx->keystream);
    return 0;
}

int mbedtls_chacha20_update(mbedtls_chacha20_context *ctx,
                            size_t size,
                            const unsigned char *input,
                            unsigned char *output)
{
    size_t done = 0, nblocks;

    if (ctx == NULL) {
        return MBEDTLS_ERR_CHACHA20_BAD_INPUT_DATA;
    }
    if (size == 0) {
        return 0;
    }
    if (input == NULL || output == NULL) {
        return MBEDTLS_ERR_CHACHA20_BAD_INPUT_DATA;
    }

    /* Keystream left over from the previous call. */
    while (done < size && ctx->keystream_used < sizeof(ctx->keystream)) {
        output[done] = input[done] ^ ctx->keystream[ctx->keystream_used++];
        done++;
    }

    /* Whole blocks: straight from input to output. */
    nblocks = (size - done) / 64;
    if (nblocks > 0) {
        agent_chachapoly_current()->chacha20(ctx->state, input + done,
                                             output + done, nblocks);
        done += nblocks * 64;
    }

    /* A last partial block: keep the rest of its keystream for the next call. */
    if (done < size) {
        size_t i, rest = size - done;

        memset(ctx->keystream, 0, sizeof(ctx->keystream));
        agent_chachapoly_current()->chacha20(ctx->state, ctx->keystream,
                                             ctx->keystream, 1);
        for (i = 0; i < rest; i++) {
            output[done + i] = input[done + i] ^ ctx->keystream[i];
        }
        ctx->keystream_used = rest;
    }
    return 0;
}

int mbedtls_chacha20_crypt(const unsigned char key[32],
                           const unsigned char nonce[12],
                           uint32_t counter,
                           size_t size,
                           const unsigned char *input,
                           unsigned char *output)
{
    mbedtls_chacha20_context ctx;
    int ret;

    mbedtls_chacha20_init(&ctx);
    ret = mbedtls_chacha20_setkey(&ctx, key);
    if (ret == 0) {
        ret = mbedtls_chacha20_starts(&ctx, nonce, counter);
    }
    if (ret == 0) {
        ret = mbedtls_chacha20_update(&ctx, size, input, output);
    }
    mbedtls_chacha20_free(&ctx);
    return ret;
}
