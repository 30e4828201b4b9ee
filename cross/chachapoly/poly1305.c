/*
 * Poly1305 (RFC 8439) behind mbedTLS's MBEDTLS_POLY1305_ALT hook: the
 * mbedtls_poly1305_* API (same behaviour as mbedTLS 2.28's library/poly1305.c)
 * and the portable implementation:
 *
 *   64-bit targets: h in two 64-bit limbs plus a few bits (h2), r in two
 *     64-bit limbs; 64x64->128 multiplies (unsigned __int128), 5 per block.
 *   32-bit targets: h and r in five 26-bit limbs, 32x32->64 multiplies,
 *     25 per block.
 *
 * Both reduce mod p = 2^130 - 5 only partially inside the loop (h < 2^131)
 * and completely in finish(). No branch or index depends on secret data.
 */
#include "mbedtls/poly1305.h"
#include "mbedtls/platform_util.h"

#include <string.h>

#include "chachapoly_internal.h"

#if !defined(MBEDTLS_POLY1305_ALT)
#error "cross/chachapoly needs MBEDTLS_POLY1305_ALT in the mbedTLS configuration"
#endif

#if defined(__SIZEOF_INT128__)

typedef unsigned __int128 u128;

void agent_poly1305_blocks_portable(uint64_t h[3], const uint64_t r[2],
                                    const uint8_t *m, size_t nblocks,
                                    uint32_t hibit)
{
    const uint64_t r0 = r[0], r1 = r[1];
    /* r1 is a multiple of 4 (clamping), so r1 * 2^128 = (r1/4) * 2^130
     * = 5 * (r1/4) = r1 + r1/4 (mod p). */
    const uint64_t s1 = r1 + (r1 >> 2);
    uint64_t h0 = h[0], h1 = h[1], h2 = h[2];

    while (nblocks-- > 0) {
        u128 d0, d1, t;
        uint64_t d2, c;

        /* h += m (+ 2^128) */
        t = (u128) h0 + agent_le64(m);
        h0 = (uint64_t) t;
        t = (u128) h1 + agent_le64(m + 8) + (uint64_t) (t >> 64);
        h1 = (uint64_t) t;
        h2 += (uint64_t) (t >> 64) + hibit;

        /* h *= r: h2 <= 7, r0, r1 < 2^60, so no sum below overflows. */
        d0 = (u128) h0 * r0 + (u128) h1 * s1;
        d1 = (u128) h0 * r1 + (u128) h1 * r0 + (u128) h2 * s1;
        d2 = h2 * r0;

        d1 += (uint64_t) (d0 >> 64);
        d2 += (uint64_t) (d1 >> 64);
        h0 = (uint64_t) d0;
        h1 = (uint64_t) d1;

        /* Partial reduction: bits 130 and up, times 5, go back to the bottom. */
        c = (d2 >> 2) + (d2 & ~(uint64_t) 3);
        h2 = d2 & 3;
        t = (u128) h0 + c;
        h0 = (uint64_t) t;
        t = (u128) h1 + (uint64_t) (t >> 64);
        h1 = (uint64_t) t;
        h2 += (uint64_t) (t >> 64);

        m += 16;
    }
    h[0] = h0;
    h[1] = h1;
    h[2] = h2;
}

#else /* 32-bit targets */

void agent_poly1305_blocks_portable(uint64_t h[3], const uint64_t r[2],
                                    const uint8_t *m, size_t nblocks,
                                    uint32_t hibit)
{
    uint32_t rl[5], hl[5];
    uint32_t r0, r1, r2, r3, r4, s1, s2, s3, s4, h0, h1, h2, h3, h4, c;
    const uint32_t hi = hibit << 24;

    /* r in 26-bit limbs, and 5 * r for the products that wrap around 2^130. */
    agent_poly_to26(r[0], r[1], 0, rl);
    r0 = rl[0]; r1 = rl[1]; r2 = rl[2]; r3 = rl[3]; r4 = rl[4];
    s1 = r1 * 5; s2 = r2 * 5; s3 = r3 * 5; s4 = r4 * 5;
    agent_poly_to26(h[0], h[1], h[2], hl);
    h0 = hl[0]; h1 = hl[1]; h2 = hl[2]; h3 = hl[3]; h4 = hl[4];

    while (nblocks-- > 0) {
        uint64_t d0, d1, d2, d3, d4;

        h0 += agent_le32(m) & AGENT_M26;
        h1 += (agent_le32(m + 3) >> 2) & AGENT_M26;
        h2 += (agent_le32(m + 6) >> 4) & AGENT_M26;
        h3 += agent_le32(m + 9) >> 6;
        h4 += (agent_le32(m + 12) >> 8) | hi;

        d0 = (uint64_t) h0 * r0 + (uint64_t) h1 * s4 + (uint64_t) h2 * s3 +
             (uint64_t) h3 * s2 + (uint64_t) h4 * s1;
        d1 = (uint64_t) h0 * r1 + (uint64_t) h1 * r0 + (uint64_t) h2 * s4 +
             (uint64_t) h3 * s3 + (uint64_t) h4 * s2;
        d2 = (uint64_t) h0 * r2 + (uint64_t) h1 * r1 + (uint64_t) h2 * r0 +
             (uint64_t) h3 * s4 + (uint64_t) h4 * s3;
        d3 = (uint64_t) h0 * r3 + (uint64_t) h1 * r2 + (uint64_t) h2 * r1 +
             (uint64_t) h3 * r0 + (uint64_t) h4 * s4;
        d4 = (uint64_t) h0 * r4 + (uint64_t) h1 * r3 + (uint64_t) h2 * r2 +
             (uint64_t) h3 * r1 + (uint64_t) h4 * r0;

        c = (uint32_t) (d0 >> 26); h0 = (uint32_t) d0 & AGENT_M26;
        d1 += c; c = (uint32_t) (d1 >> 26); h1 = (uint32_t) d1 & AGENT_M26;
        d2 += c; c = (uint32_t) (d2 >> 26); h2 = (uint32_t) d2 & AGENT_M26;
        d3 += c; c = (uint32_t) (d3 >> 26); h3 = (uint32_t) d3 & AGENT_M26;
        d4 += c; c = (uint32_t) (d4 >> 26); h4 = (uint32_t) d4 & AGENT_M26;
        h0 += c * 5; c = h0 >> 26; h0 &= AGENT_M26;
        h1 += c;

        m += 16;
    }
    hl[0] = h0; hl[1] = h1; hl[2] = h2; hl[3] = h3; hl[4] = h4;
    agent_poly_from26(hl, h);
}

#endif

/* h mod p, plus s, mod 2^128. Constant time: the "h >= p" choice is a mask. */
static void poly1305_tag(const uint64_t hin[3], const uint64_t s[2],
                         uint8_t mac[16])
{
    uint64_t h0 = hin[0], h1 = hin[1], h2 = hin[2];
    uint64_t g0, g1, g2, c, mask;

    /* Fold bits 130 and up once more: now h < 2^130 + 2^64 < 2 p. */
    c = (h2 >> 2) * 5;
    h2 &= 3;
    h0 += c; c = (h0 < c);
    h1 += c; c = (h1 < c);
    h2 += c;

    /* g = h + 5 - 2^130; if that is not negative (bit 130 of h + 5 set),
     * h >= p and the result is g. */
    g0 = h0 + 5; c = (g0 < 5);
    g1 = h1 + c; c = (g1 < c);
    g2 = h2 + c;
    mask = (uint64_t) 0 - (g2 >> 2);      /* all ones if h >= p */
    h0 = (h0 & ~mask) | (g0 & mask);
    h1 = (h1 & ~mask) | (g1 & mask);

    /* + s mod 2^128 */
    h0 += s[0]; c = (h0 < s[0]);
    h1 += s[1] + c;
    agent_put_le64(mac, h0);
    agent_put_le64(mac + 8, h1);
}

/* --- mbedTLS API ---------------------------------------------------------- */

void mbedtls_poly1305_init(mbedtls_poly1305_context *ctx)
{
    if (ctx != NULL) {
        mbedtls_platform_zeroize(ctx, sizeof(*ctx));
    }
}

void mbedtls_poly1305_free(mbedtls_poly1305_context *ctx)
{
    if (ctx != NULL) {
        mbedtls_platform_zeroize(ctx, sizeof(*ctx));
    }
}

int mbedtls_poly1305_starts(mbedtls_poly1305_context *ctx,
                            const unsigned char key[32])
{
    if (ctx == NULL || key == NULL) {
        return MBEDTLS_ERR_POLY1305_BAD_INPUT_DATA;
    }
    /* r &= 0x0ffffffc0ffffffc0ffffffc0fffffff */
    ctx->r[0] = agent_le64(key) & 0x0ffffffc0fffffffULL;
    ctx->r[1] = agent_le64(key + 8) & 0x0ffffffc0ffffffcULL;
    ctx->s[0] = agent_le64(key + 16);
    ctx->s[1] = agent_le64(key + 24);
    ctx->h[0] = ctx->h[1] = ctx->h[2] = 0;
    mbedtls_platform_zeroize(ctx->block, sizeof(ctx->block));
    ctx->block_len = 0;
    return 0;
}

int mbedtls_poly1305_update(mbedtls_poly1305_context *ctx,
                            const unsigned char *input,
                            size_t ilen)
{
    agent_poly1305_blocks_fn *blocks;
    size_t nblocks;

    if (ctx == NULL) {
        return MBEDTLS_ERR_POLY1305_BAD_INPUT_DATA;
    }
    if (ilen == 0) {
        return 0;
    }
    if (input == NULL) {
        return MBEDTLS_ERR_POLY1305_BAD_INPUT_DATA;
    }
    blocks = agent_chachapoly_current()->poly1305;

    /* Complete a pending partial block first. */
    if (ctx->block_len > 0) {
        size_t take = 16 - ctx->block_len;

        if (ilen < take) {
            memcpy(ctx->block + ctx->block_len, input, ilen);
            ctx->block_len += ilen;
            return 0;
        }
        memcpy(ctx->block + ctx->block_len, input, take);
        blocks(ctx->h, ctx->r, ctx->block, 1, 1);
        ctx->block_len = 0;
        input += take;
        ilen -= take;
    }

    nblocks = ilen / 16;
    if (nblocks > 0) {
        blocks(ctx->h, ctx->r, input, nblocks, 1);
        input += nblocks * 16;
        ilen -= nblocks * 16;
    }

    if (ilen > 0) {
        memcpy(ctx->block, input, ilen);
        ctx->block_len = ilen;
    }
    return 0;
}

int mbedtls_poly1305_finish(mbedtls_poly1305_context *ctx,
                            unsigned char mac[16])
{
    if (ctx == NULL || mac == NULL) {
        return MBEDTLS_ERR_POLY1305_BAD_INPUT_DATA;
    }
    if (ctx->block_len > 0) {
        /* The last block: its bytes, a 1 byte, zeros; no 2^128 bit. */
        ctx->block[ctx->block_len] = 1;
        memset(ctx->block + ctx->block_len + 1, 0, 15 - ctx->block_len);
        agent_chachapoly_current()->poly1305(ctx->h, ctx->r, ctx->block, 1, 0);
        ctx->block_len = 0;
    }
    poly1305_tag(ctx->h, ctx->s, mac);
    return 0;
}

int mbedtls_poly1305_mac(const unsigned char key[32],
                         const unsigned char *input,
                         size_t ilen,
                         unsigned char mac[16])
{
    mbedtls_poly1305_context ctx;
    int ret;

    mbedtls_poly1305_init(&ctx);
    ret = mbedtls_poly1305_starts(&ctx, key);
    if (ret == 0) {
        ret = mbedtls_poly1305_update(&ctx, input, ilen);
    }
    if (ret == 0) {
        ret = mbedtls_poly1305_finish(&ctx, mac);
    }
    mbedtls_poly1305_free(&ctx);
    return ret;
}
