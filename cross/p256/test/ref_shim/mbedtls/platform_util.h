/* Just enough of mbedTLS for p256-m.c built as the tests' reference
 * (test/p256.mk: its symbols renamed ref_*). */
#ifndef REF_SHIM_PLATFORM_UTIL_H
#define REF_SHIM_PLATFORM_UTIL_H
#include <stddef.h>
static inline void mbedtls_platform_zeroize(void *p, size_t n)
{
    volatile unsigned char *v = (volatile unsigned char *) p;
    while (n--) {
        *v++ = 0;
    }
}
#endif
