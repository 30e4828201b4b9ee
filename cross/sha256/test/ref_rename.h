/*
 * Forced-included (-include) when the test compiles mbedTLS's own
 * library/sha256.c as the reference: its public symbols get a ref_ prefix,
 * and ref_config.h (MBEDTLS_USER_CONFIG_FILE) takes MBEDTLS_SHA256_PROCESS_ALT
 * out again, so that this copy has mbedTLS's C compression function.
 */
#define mbedtls_sha256_init              ref_sha256_init
#define mbedtls_sha256_free              ref_sha256_free
#define mbedtls_sha256_clone             ref_sha256_clone
#define mbedtls_sha256_starts            ref_sha256_starts
#define mbedtls_sha256_update            ref_sha256_update
#define mbedtls_sha256_finish            ref_sha256_finish
#define mbedtls_sha256                   ref_sha256
#define mbedtls_internal_sha256_process  ref_internal_sha256_process
#define mbedtls_sha224_self_test         ref_sha224_self_test
#define mbedtls_sha256_self_test         ref_sha256_self_test
