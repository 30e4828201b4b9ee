/*
 * mbedTLS configuration of the reference (cross/x25519/x25519.mk): mbedTLS
 * 2.28.3's own bignum, ECP and ECDH code with the ECC options of
 * cross/config.h but WITHOUT MBEDTLS_ECDH_GEN_PUBLIC_ALT /
 * MBEDTLS_ECDH_COMPUTE_SHARED_ALT, so library/ecdh.c keeps its
 * mbedtls_ecdh_gen_public / mbedtls_ecdh_compute_shared and curve25519 runs
 * on mbedTLS's generic Montgomery ladder. Every global mbedtls_* symbol of the
 * reference objects is then renamed ref_mbedtls_* (objcopy), so that the
 * reference and the release library live side by side in one test program.
 *
 * MBEDTLS_ECP_NO_INTERNAL_RNG: the tests always pass an RNG, so mbedTLS's
 * internal one (which would pull in a DRBG, AES or a hash) is never used.
 */
#ifndef X25519_TEST_REF_CONFIG_H
#define X25519_TEST_REF_CONFIG_H

#define MBEDTLS_HAVE_ASM
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_DP_SECP384R1_ENABLED
#define MBEDTLS_ECP_DP_CURVE25519_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECP_WINDOW_SIZE 6
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
#define MBEDTLS_ECP_NO_INTERNAL_RNG
#define MBEDTLS_ECDH_C

#include "mbedtls/check_config.h"

#endif /* X25519_TEST_REF_CONFIG_H */
