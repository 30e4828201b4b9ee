/*
 * Forced-included (-include) when the test compiles mbedTLS's own portable
 * library/chacha20.c, poly1305.c and chachapoly.c (default upstream config,
 * no ALT) as the reference: every public symbol gets a ref_ prefix, so the
 * reference and our implementation live side by side in one test binary.
 */
#define mbedtls_chacha20_init            ref_chacha20_init
#define mbedtls_chacha20_free            ref_chacha20_free
#define mbedtls_chacha20_setkey          ref_chacha20_setkey
#define mbedtls_chacha20_starts          ref_chacha20_starts
#define mbedtls_chacha20_update          ref_chacha20_update
#define mbedtls_chacha20_crypt           ref_chacha20_crypt
#define mbedtls_chacha20_self_test       ref_chacha20_self_test
#define mbedtls_poly1305_init            ref_poly1305_init
#define mbedtls_poly1305_free            ref_poly1305_free
#define mbedtls_poly1305_starts          ref_poly1305_starts
#define mbedtls_poly1305_update          ref_poly1305_update
#define mbedtls_poly1305_finish          ref_poly1305_finish
#define mbedtls_poly1305_mac             ref_poly1305_mac
#define mbedtls_poly1305_self_test       ref_poly1305_self_test
#define mbedtls_chachapoly_init          ref_chachapoly_init
#define mbedtls_chachapoly_free          ref_chachapoly_free
#define mbedtls_chachapoly_setkey        ref_chachapoly_setkey
#define mbedtls_chachapoly_starts        ref_chachapoly_starts
#define mbedtls_chachapoly_update_aad    ref_chachapoly_update_aad
#define mbedtls_chachapoly_update        ref_chachapoly_update
#define mbedtls_chachapoly_finish        ref_chachapoly_finish
#define mbedtls_chachapoly_encrypt_and_tag ref_chachapoly_encrypt_and_tag
#define mbedtls_chachapoly_auth_decrypt  ref_chachapoly_auth_decrypt
#define mbedtls_chachapoly_self_test     ref_chachapoly_self_test
