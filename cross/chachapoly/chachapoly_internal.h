/*
 * Internal interface of agent's ChaCha20 and Poly1305 (see README.md).
 *
 * mbedTLS sees only the mbedtls_chacha20_* / mbedtls_poly1305_* functions
 * (chacha20.c, poly1305.c). Underneath, each algorithm has one "bulk"
 * function per implementation, chosen once at run time (dispatch.c):
 *
 *   chacha20 blocks: XOR nblocks * 64 bytes of keystream into out, starting
 *                    at block counter state[12]; advances state[12] by nblocks
 *                    (mod 2^32, like RFC 8439 and mbedTLS: no carry into the
 *                    nonce). in == out is allowed; other overlaps are not.
 *   poly1305 blocks: absorb nblocks full 16-byte blocks (hibit = 1 for
 *                    message blocks, 0 for the final padded block).
 *
 * Everything here is constant time: no branch and no memory index depends on
 * key, nonce, counter or data, only on lengths.
 */
#ifndef AGENT_CHACHAPOLY_INTERNAL_H
#define AGENT_CHACHAPOLY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

typedef void agent_chacha20_blocks_fn(uint32_t state[16], const uint8_t *in,
                                      uint8_t *out, size_t nblocks);
typedef void agent_poly1305_blocks_fn(uint64_t h[3], const uint64_t r[2],
                                      const uint8_t *m, size_t nblocks,
                                      uint32_t hibit);

/* One implementation of both algorithms. */
struct agent_chachapoly_impl {
    const char *name;                    /* "portable", "sse2", "avx2", "neon" */
    agent_chacha20_blocks_fn *chacha20;
    agent_poly1305_blocks_fn *poly1305;
};

/* The implementation in use (chosen on first use, see dispatch.c). */
const struct agent_chachapoly_impl *agent_chachapoly_current(void);

/* Test and benchmark hooks: force an implementation by name ("auto" = the
 * run-time choice). Returns 0, or -1 if this CPU or build does not have it.
 * Not used by agent itself; --gc-sections drops them from the release. */
int agent_chachapoly_use(const char *name);
const char *agent_chachapoly_name(void);

/* Implementations (each file compiles only what its target can run). */
agent_chacha20_blocks_fn agent_chacha20_blocks_portable;
agent_poly1305_blocks_fn agent_poly1305_blocks_portable;
#if defined(__x86_64__)
agent_chacha20_blocks_fn agent_chacha20_blocks_sse2;
agent_chacha20_blocks_fn agent_chacha20_blocks_avx2;
agent_poly1305_blocks_fn agent_poly1305_blocks_avx2;
int agent_cpu_has_avx2(void);
#endif
#if defined(__aarch64__) || defined(__arm__)
agent_chacha20_blocks_fn agent_chacha20_blocks_neon;
int agent_cpu_has_neon(void);
#endif
#if defined(__arm__)
agent_poly1305_blocks_fn agent_poly1305_blocks_neon;
#endif

/* Little-endian loads and stores, byte by byte: correct on any host, and
 * gcc turns them into single loads/stores on little-endian targets. */
static inline uint32_t agent_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8) |
           ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static inline uint64_t agent_le64(const uint8_t *p)
{
    return (uint64_t) agent_le32(p) | ((uint64_t) agent_le32(p + 4) << 32);
}

static inline void agent_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}

static inline void agent_put_le64(uint8_t *p, uint64_t v)
{
    agent_put_le32(p, (uint32_t) v);
    agent_put_le32(p + 4, (uint32_t) (v >> 32));
}

#endif /* AGENT_CHACHAPOLY_INTERNAL_H */
