/*
 * Run-time choice of the ChaCha20/Poly1305 implementation (README.md):
 *
 *   x86_64:  AVX2 if cpuid says so and the OS saves YMM state, else SSE2
 *            (part of x86_64, always there).
 *   aarch64: NEON (part of ARMv8-A, always there).
 *   armv7:   NEON if the kernel reports it (getauxval(AT_HWCAP) & HWCAP_NEON),
 *            else portable C: our armv7 baseline is VFPv3-D16 without NEON.
 *   other:   portable C.
 *
 * The choice is made on first use and never changes afterwards (agent is one
 * thread; a race would only compute the same answer twice).
 */
#include <string.h>

#include "chachapoly_internal.h"

#if defined(__arm__)
#include <sys/auxv.h>
#ifndef HWCAP_NEON
#define HWCAP_NEON (1 << 12)  /* Linux arm ABI: arch/arm/include/uapi/asm/hwcap.h */
#endif
#endif

#if defined(__x86_64__)
#include <cpuid.h>
#endif

static const struct agent_chachapoly_impl impls[] = {
#if defined(__x86_64__)
    { "avx2", agent_chacha20_blocks_avx2, agent_poly1305_blocks_avx2 },
    { "sse2", agent_chacha20_blocks_sse2, agent_poly1305_blocks_portable },
#endif
#if defined(__aarch64__)
    { "neon", agent_chacha20_blocks_neon, agent_poly1305_blocks_portable },
#endif
#if defined(__arm__)
    { "neon", agent_chacha20_blocks_neon, agent_poly1305_blocks_neon },
#endif
    { "portable", agent_chacha20_blocks_portable, agent_poly1305_blocks_portable },
};

#define NIMPLS (sizeof(impls) / sizeof(impls[0]))

#if defined(__x86_64__)
int agent_cpu_has_avx2(void)
{
    unsigned a, b, c, d;
    uint32_t xcr0_lo, xcr0_hi;

    if (!__get_cpuid(1, &a, &b, &c, &d)) {
        return 0;
    }
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX)) {
        return 0;
    }
    /* The OS must save and restore XMM and YMM state (XCR0 bits 1 and 2). */
    __asm__ volatile ("xgetbv" : "=a" (xcr0_lo), "=d" (xcr0_hi) : "c" (0));
    (void) xcr0_hi;
    if ((xcr0_lo & 6) != 6) {
        return 0;
    }
    if (__get_cpuid_max(0, NULL) < 7) {
        return 0;
    }
    __cpuid_count(7, 0, a, b, c, d);
    return (b & bit_AVX2) != 0;
}
#endif

#if defined(__aarch64__) || defined(__arm__)
int agent_cpu_has_neon(void)
{
#if defined(__aarch64__)
    return 1;
#else
    return (getauxval(AT_HWCAP) & HWCAP_NEON) != 0;
#endif
}
#endif

static int available(const struct agent_chachapoly_impl *impl)
{
#if defined(__x86_64__)
    if (strcmp(impl->name, "avx2") == 0) {
        return agent_cpu_has_avx2();
    }
#endif
#if defined(__aarch64__) || defined(__arm__)
    if (strcmp(impl->name, "neon") == 0) {
        return agent_cpu_has_neon();
    }
#endif
    return 1;
}

static const struct agent_chachapoly_impl *current;

/* The first available entry of impls[] (they are in order of preference). */
static const struct agent_chachapoly_impl *best(void)
{
    size_t i;

    for (i = 0; i < NIMPLS; i++) {
        if (available(&impls[i])) {
            return &impls[i];
        }
    }
    return &impls[NIMPLS - 1];
}

const struct agent_chachapoly_impl *agent_chachapoly_current(void)
{
    if (current == NULL) {
        current = best();
    }
    return current;
}

int agent_chachapoly_use(const char *name)
{
    size_t i;

    if (strcmp(name, "auto") == 0) {
        current = best();
        return 0;
    }
    for (i = 0; i < NIMPLS; i++) {
        if (strcmp(impls[i].name, name) == 0 && available(&impls[i])) {
            current = &impls[i];
            return 0;
        }
    }
    return -1;
}

const char *agent_chachapoly_name(void)
{
    return agent_chachapoly_current()->name;
}
