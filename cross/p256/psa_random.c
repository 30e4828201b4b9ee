/*
 * The random source of p256.c in the release: PSA's (mbedTLS 3.6), as
 * p256-m.c's own p256_generate_random does. Compiled only in the release
 * build, against the mbedTLS 3.6 headers (the tests have their own).
 */
#include <stdint.h>

#include "psa/crypto.h"

#include "p256.h"

int p256_generate_random(uint8_t *output, unsigned output_size)
{
    return psa_generate_random(output, output_size) == PSA_SUCCESS ? P256_SUCCESS : P256_RANDOM_FAILED;
}
