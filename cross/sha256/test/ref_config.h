/* MBEDTLS_USER_CONFIG_FILE of the reference build of mbedTLS's sha256.c (ref_rename.h). */
#undef MBEDTLS_SHA256_PROCESS_ALT
