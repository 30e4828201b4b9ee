/*
 * NIST P-256 ECDH and ECDSA: the agent's own implementation (p256.c), with the
 * interface of p256-m (mbedTLS 3.6, 3rdparty/p256-m/p256-m/p256-m.h), so that
 * it links in place of p256-m.c under mbedTLS's PSA driver glue
 * (MBEDTLS_PSA_P256M_DRIVER_ENABLED). See README.md.
 *
 * Encodings are big-endian: a private key is 32 bytes, a public key X || Y
 * (64 bytes, no 0x04 prefix), a signature r || s (64 bytes).
 */
#ifndef AGENT_P256_H
#define AGENT_P256_H

#include <stddef.h>
#include <stdint.h>

#define P256_SUCCESS             0
#define P256_RANDOM_FAILED      -1
#define P256_INVALID_PUBKEY     -2
#define P256_INVALID_PRIVKEY    -3
#define P256_INVALID_SIGNATURE  -4

#ifdef __cplusplus
extern "C" {
#endif

/* Provided by the caller (psa_random.c in the release, the tests' own):
 * fills output with output_size random bytes; 0 on success. */
extern int p256_generate_random(uint8_t *output, unsigned output_size);

/* A new key pair: priv in [1, n-1] (rejection sampling, at most 4 draws).
 * P256_SUCCESS or P256_RANDOM_FAILED. */
int p256_gen_keypair(uint8_t priv[32], uint8_t pub[64]);

/* secret = x(priv * pub). P256_SUCCESS, P256_INVALID_PRIVKEY (priv not in
 * [1, n-1], checked first) or P256_INVALID_PUBKEY (pub not on the curve). */
int p256_ecdh_shared_secret(uint8_t secret[32],
                            const uint8_t priv[32], const uint8_t pub[64]);

/* ECDSA signature of hash (its leftmost 256 bits when longer; a shorter hash
 * is the integer it encodes) with a random nonce. P256_SUCCESS,
 * P256_RANDOM_FAILED (also when r or s would be 0) or P256_INVALID_PRIVKEY. */
int p256_ecdsa_sign(uint8_t sig[64], const uint8_t priv[32],
                    const uint8_t *hash, size_t hlen);

/* P256_SUCCESS if sig is a valid signature of hash under pub;
 * P256_INVALID_SIGNATURE (also r or s not in [1, n-1], checked first) or
 * P256_INVALID_PUBKEY. High s is accepted (no low-S rule). */
int p256_ecdsa_verify(const uint8_t sig[64], const uint8_t pub[64],
                      const uint8_t *hash, size_t hlen);

/* P256_SUCCESS or P256_INVALID_PUBKEY (coordinates >= p, not on the curve). */
int p256_validate_pubkey(const uint8_t pub[64]);

/* P256_SUCCESS or P256_INVALID_PRIVKEY (not in [1, n-1]). */
int p256_validate_privkey(const uint8_t priv[32]);

/* pub = priv * G. P256_SUCCESS or P256_INVALID_PRIVKEY. */
int p256_public_from_private(uint8_t pub[64], const uint8_t priv[32]);

#ifdef __cplusplus
}
#endif

#endif
