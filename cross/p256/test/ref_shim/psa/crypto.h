/* Just enough of PSA for p256-m.c as the tests' reference: its
 * p256_generate_random (renamed ref_p256_generate_random) calls
 * psa_generate_random, which draws from the test's p256_generate_random
 * through test_p256_random (p256_generate_random itself is renamed here). */
#ifndef REF_SHIM_PSA_CRYPTO_H
#define REF_SHIM_PSA_CRYPTO_H
#include <stddef.h>
#include <stdint.h>
typedef int psa_status_t;
int test_p256_random(uint8_t *output, unsigned output_size);
static inline psa_status_t psa_generate_random(uint8_t *output, size_t output_size)
{
    return test_p256_random(output, (unsigned) output_size);
}
#endif
