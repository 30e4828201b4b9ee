/*
 * agent's mbedTLS 2.28 configuration for the static release builds.
 *
 * Only what agent uses is enabled: TLS 1.2 client and server, ECDHE key
 * exchange with ECDSA (our own keys) or RSA (certificates of public CAs in
 * front of a relay), ChaCha20-Poly1305 first and AES-GCM for interoperability,
 * P-256 identities, X25519/P-256/P-384 for ECDHE, session tickets for cheap
 * end-to-end resumption, X.509 parsing and writing (self-signed and session-CA
 * certificates), PEM keys.
 *
 * Dropped on purpose: TLS < 1.2, DTLS, renegotiation, CBC/CCM/DES/ARC4/
 * Camellia/ARIA, MD5/SHA-1/RIPEMD, DHM and static ECDH, PSK, PSA, threading,
 * file and network I/O (agent does its own), debug and error strings, self-tests.
 *
 * Entropy comes from the kernel through getentropy() (mbedtls_hardware_poll in
 * Sources/CShims/shims.c): with musl, mbedTLS's platform source would fall
 * back to fopen("/dev/urandom"), which a device may not have.
 *
 * The host build uses Debian's libmbedtls (default configuration); Sources
 * compile against both. The release build passes -DAGENT_MBEDTLS_TRIMMED.
 */
#ifndef AGENT_MBEDTLS_CONFIG_H
#define AGENT_MBEDTLS_CONFIG_H

/* System support */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_HAVE_TIME_DATE
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_ENTROPY_HARDWARE_ALT

/* Ciphers, hashes, public key */
#define MBEDTLS_AES_C
#define MBEDTLS_AES_ROM_TABLES
#define MBEDTLS_AES_FEWER_TABLES
#if defined(__x86_64__)
#define MBEDTLS_AESNI_C
#endif
#define MBEDTLS_GCM_C
#define MBEDTLS_CHACHA20_C
#define MBEDTLS_POLY1305_C
/* Our SIMD ChaCha20 and Poly1305 instead of mbedTLS's portable code
 * (cross/chachapoly/README.md). */
#define MBEDTLS_CHACHA20_ALT
#define MBEDTLS_POLY1305_ALT
/* Our constant-time X25519 for ECDHE on curve25519 instead of mbedTLS's
 * generic bignum code; other curves fall back to mbedTLS's own code
 * (cross/x25519/README.md). */
#define MBEDTLS_ECDH_GEN_PUBLIC_ALT
#define MBEDTLS_ECDH_COMPUTE_SHARED_ALT
#define MBEDTLS_CHACHAPOLY_C
#define MBEDTLS_CIPHER_C
#define MBEDTLS_MD_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA512_C
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_DP_SECP384R1_ENABLED
#define MBEDTLS_ECP_DP_CURVE25519_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
/* A wider window for the variable-base scalar multiplications (signature
 * verification, ECDHE shared secrets): fewer point additions for a few KB of
 * temporary memory. The fixed-base ones (signing, key generation) use
 * mbedTLS's precomputed tables. */
#define MBEDTLS_ECP_WINDOW_SIZE 6
/* mbedTLS 2.28 caches its base-point table per group object, and a handshake
 * uses fresh ones (ephemeral keys, the peer's certificate): building a table
 * that is used once costs more than it saves. */
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
#define MBEDTLS_ECDH_C
#define MBEDTLS_ECDSA_C
#define MBEDTLS_OID_C
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_PK_WRITE_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_PEM_WRITE_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_CTR_DRBG_C

/* X.509 */
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C
#define MBEDTLS_X509_CREATE_C
#define MBEDTLS_X509_CRT_WRITE_C
#define MBEDTLS_X509_CHECK_KEY_USAGE
#define MBEDTLS_X509_CHECK_EXTENDED_KEY_USAGE

/* TLS 1.2 */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_SRV_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED
#define MBEDTLS_SSL_MAX_FRAGMENT_LENGTH
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET
#define MBEDTLS_SSL_SESSION_TICKETS
#define MBEDTLS_SSL_TICKET_C
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE
#define MBEDTLS_SSL_ALL_ALERT_MESSAGES

#include "mbedtls/check_config.h"

#endif /* AGENT_MBEDTLS_CONFIG_H */
