/*
 * Constant time, checked with valgrind's memcheck (the "ctgrind" method): the
 * scalar and u are marked undefined (VALGRIND_MAKE_MEM_UNDEFINED), so memcheck
 * reports every conditional branch and every memory address that depends on
 * them ("Conditional jump or move depends on uninitialised value(s)", "Use of
 * uninitialised value of size N"). The output and the return value are then
 * declared defined: they are the result, public by design.
 *
 * Built for x86_64 only (run natively under valgrind) with both radices: the
 * release's 5 x 51 and the 10 x 25.5 of armv7 compiled for x86_64.
 *
 *   valgrind -q --error-exitcode=3 ct_x25519
 *
 * Prints "N passed, 0 failed" (memcheck's own reports, if any, make valgrind
 * exit with 3).
 */
#include <stdio.h>
#include <string.h>

#include "memcheck.h"   /* valgrind's, from /usr/include/valgrind */

#include "x25519.h"

int fe32_x25519(unsigned char out[32], const unsigned char scalar[32], const unsigned char u[32]);
int fe32_x25519_base(unsigned char out[32], const unsigned char scalar[32]);

int main(void)
{
    static const struct {
        const char *name;
        int (*x25519)(unsigned char *, const unsigned char *, const unsigned char *);
        int (*base)(unsigned char *, const unsigned char *);
    } impls[] = {
        { "5x51", agent_x25519, agent_x25519_base },
        { "10x25", fe32_x25519, fe32_x25519_base },
    };
    unsigned char k[32], u[32], out[32];
    unsigned long passed = 0;
    unsigned i, j, n;
    int ret;

    if (!RUNNING_ON_VALGRIND) {
        printf("FAIL: not running under valgrind\n");
        return 1;
    }
    for (i = 0; i < 2; i++) {
        for (n = 0; n < 4; n++) {
            for (j = 0; j < 32; j++) {
                k[j] = (unsigned char) (j * 37 + n * 101 + 1);
                u[j] = (unsigned char) (j * 59 + n * 13 + 7);
            }
            if (n == 3) {
                memset(u, 0, 32);   /* small order: the all-zero path too */
            }
            VALGRIND_MAKE_MEM_UNDEFINED(k, 32);
            VALGRIND_MAKE_MEM_UNDEFINED(u, 32);
            ret = impls[i].x25519(out, k, u);
            VALGRIND_MAKE_MEM_DEFINED(&ret, sizeof(ret));
            VALGRIND_MAKE_MEM_DEFINED(out, 32);
            passed += (ret == (n == 3 ? -1 : 0));

            VALGRIND_MAKE_MEM_UNDEFINED(k, 32);
            ret = impls[i].base(out, k);
            VALGRIND_MAKE_MEM_DEFINED(&ret, sizeof(ret));
            VALGRIND_MAKE_MEM_DEFINED(out, 32);
            passed += (ret == 0);
        }
        printf("ok   %s: no branch or address depends on the scalar or u (memcheck)\n", impls[i].name);
    }
    printf("%lu passed, %lu failed\n", passed, 16 - passed);
    return passed == 16 ? 0 : 1;
}
