/*
 * The reference: mbedTLS 2.28.3's own ECDH / ECP code (no ALT, see
 * ref_config.h), through functions that take and return plain bytes. The
 * reference's mbedTLS types are only seen by ref.c (compiled with the
 * reference configuration); the tests use the same structs below with the
 * release library (and our ALT functions), so both sides are compared byte
 * for byte.
 */
#ifndef X25519_TEST_REF_H
#define X25519_TEST_REF_H

#include <stddef.h>

/* Every mpi value crosses this interface as ECDH_NB bytes, big-endian
 * (mbedtls_mpi_write_binary), enough for P-384 and for 256-bit test values. */
#define ECDH_NB 66

/* A point as mbedTLS holds it: X, Y, Z. y_limbs = 0 means Y is empty (as
 * mbedTLS leaves it for curve25519). x_neg makes X negative (a test of
 * mbedTLS's check). */
struct ecdh_point {
    unsigned char x[ECDH_NB], y[ECDH_NB], z[ECDH_NB];
    size_t y_limbs;
    int x_neg;
};

typedef int (*ecdh_rng)(void *, unsigned char *, size_t);

/* RFC 7748 X25519 computed by mbedTLS: the scalar clamped as the RFC says,
 * u read with mbedtls_ecp_point_read_binary (which clears bit 255), then
 * mbedtls_ecp_mul; out is X little-endian. Returns mbedTLS's code. */
int ref_x25519(unsigned char out[32], const unsigned char scalar[32],
               const unsigned char u[32], ecdh_rng f_rng, void *p_rng);

/* mbedtls_ecdh_gen_public / mbedtls_ecdh_compute_shared of the reference on
 * the group grp_id (an mbedtls_ecp_group_id). */
int ref_ecdh_gen_public(int grp_id, unsigned char d[ECDH_NB], struct ecdh_point *q,
                        ecdh_rng f_rng, void *p_rng);
int ref_ecdh_compute_shared(int grp_id, const unsigned char d[ECDH_NB],
                            const struct ecdh_point *q, unsigned char z[ECDH_NB],
                            ecdh_rng f_rng, void *p_rng);

#endif
