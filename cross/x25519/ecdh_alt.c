/*
 * mbedTLS's ECDH primitives, replaced through MBEDTLS_ECDH_GEN_PUBLIC_ALT and
 * MBEDTLS_ECDH_COMPUTE_SHARED_ALT (cross/config.h): curve25519 runs on our
 * X25519 (x25519.c), every other curve on mbedTLS's own code exactly as
 * library/ecdh.c would run it. See README.md.
 *
 * mbedTLS's representation for curve25519, which we keep:
 *   - the private key d is an mpi holding the clamped scalar itself (bit 254
 *     set, bits 0-2 and 255 clear; mbedtls_ecp_gen_privkey_mx, checked by
 *     mbedtls_ecp_check_privkey);
 *   - a public key or shared point has only X (the u coordinate) and Z = 1,
 *     Y is empty; on the wire X is 32 bytes little-endian
 *     (mbedtls_ecp_point_write_binary / read_binary, which clears bit 255).
 */
#include "mbedtls/ecdh.h"
#include "mbedtls/error.h"
#include "mbedtls/platform_util.h"

#include "x25519.h"

#if defined(MBEDTLS_ECDH_GEN_PUBLIC_ALT) || defined(MBEDTLS_ECDH_COMPUTE_SHARED_ALT)

/* The same parameter checks as library/ecdh.c (no-ops unless
 * MBEDTLS_CHECK_PARAMS). */
#define ECDH_VALIDATE_RET(cond) \
    MBEDTLS_INTERNAL_VALIDATE_RET(cond, MBEDTLS_ERR_ECP_BAD_INPUT_DATA)

#define X25519_BYTES 32

static int is_x25519(const mbedtls_ecp_group *grp)
{
#if defined(MBEDTLS_ECP_DP_CURVE25519_ENABLED)
    return grp->id == MBEDTLS_ECP_DP_CURVE25519;
#else
    (void) grp;
    return 0;
#endif
}

#endif

#if defined(MBEDTLS_ECDH_GEN_PUBLIC_ALT)
/*
 * Generate a key pair: d random, Q = d G.
 *
 * mbedTLS: mbedtls_ecp_gen_privkey, then mbedtls_ecp_mul(grp, Q, d, &grp->G)
 * (which is mbedtls_ecp_gen_keypair). For curve25519, d is drawn by the very
 * same mbedtls_ecp_gen_privkey (same bytes from f_rng, same bit fixes), and Q
 * is X25519(d, 9).
 */
int mbedtls_ecdh_gen_public(mbedtls_ecp_group *grp, mbedtls_mpi *d, mbedtls_ecp_point *Q,
                            int (*f_rng)(void *, unsigned char *, size_t),
                            void *p_rng)
{
    int ret = MBEDTLS_ERR_ERROR_CORRUPTION_DETECTED;
    unsigned char k[X25519_BYTES], u[X25519_BYTES];

    ECDH_VALIDATE_RET(grp != NULL);
    ECDH_VALIDATE_RET(d != NULL);
    ECDH_VALIDATE_RET(Q != NULL);
    ECDH_VALIDATE_RET(f_rng != NULL);

    if (!is_x25519(grp)) {
        return mbedtls_ecp_gen_keypair(grp, d, Q, f_rng, p_rng);
    }

    MBEDTLS_MPI_CHK(mbedtls_ecp_gen_privkey(grp, d, f_rng, p_rng));
    MBEDTLS_MPI_CHK(mbedtls_mpi_write_binary_le(d, k, sizeof(k)));
    agent_x25519_base(u, k);   /* cannot fail: the base point has large order */

    /* As mbedTLS's ladder leaves it: X, Z = 1, no Y. */
    MBEDTLS_MPI_CHK(mbedtls_mpi_read_binary_le(&Q->X, u, sizeof(u)));
    MBEDTLS_MPI_CHK(mbedtls_mpi_lset(&Q->Z, 1));
    mbedtls_mpi_free(&Q->Y);

cleanup:
    mbedtls_platform_zeroize(k, sizeof(k));
    return ret;
}
#endif /* MBEDTLS_ECDH_GEN_PUBLIC_ALT */

#if defined(MBEDTLS_ECDH_COMPUTE_SHARED_ALT)
/*
 * Compute the shared secret z = X(d Q) (SEC1 3.3.1; RFC 7748 section 6.1).
 *
 * mbedTLS: mbedtls_ecp_mul(grp, &P, d, Q, f_rng, p_rng), which first checks
 * d (mbedtls_ecp_check_privkey) and Q (mbedtls_ecp_check_pubkey: Z = 1, X of
 * at most 32 bytes and not one of the points of small order, also in their
 * non-canonical forms X + p); then MBEDTLS_ERR_ECP_BAD_INPUT_DATA if P is
 * zero; then z = P.X. For curve25519 we make the same checks with the same
 * functions, then run X25519 on X mod p (mbedTLS's ladder reduces X mod p
 * too, before any use, so even an X with bit 255 set, which only the C API
 * can pass, gives the same result), and reject an all-zero result as
 * mbedTLS rejects the zero point.
 */
int mbedtls_ecdh_compute_shared(mbedtls_ecp_group *grp, mbedtls_mpi *z,
                                const mbedtls_ecp_point *Q, const mbedtls_mpi *d,
                                int (*f_rng)(void *, unsigned char *, size_t),
                                void *p_rng)
{
    int ret = MBEDTLS_ERR_ERROR_CORRUPTION_DETECTED;
    unsigned char k[X25519_BYTES], u[X25519_BYTES], s[X25519_BYTES];
    mbedtls_ecp_point P;
    mbedtls_mpi X;

    ECDH_VALIDATE_RET(grp != NULL);
    ECDH_VALIDATE_RET(Q != NULL);
    ECDH_VALIDATE_RET(d != NULL);
    ECDH_VALIDATE_RET(z != NULL);

    mbedtls_ecp_point_init(&P);
    mbedtls_mpi_init(&X);

    if (!is_x25519(grp)) {
        /* library/ecdh.c, ecdh_compute_shared_restartable without restart */
        MBEDTLS_MPI_CHK(mbedtls_ecp_mul(grp, &P, d, Q, f_rng, p_rng));
        if (mbedtls_ecp_is_zero(&P)) {
            ret = MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
            goto cleanup;
        }
        MBEDTLS_MPI_CHK(mbedtls_mpi_copy(z, &P.X));
        goto cleanup;
    }

    /* mbedtls_ecp_mul's checks, in its order */
    MBEDTLS_MPI_CHK(mbedtls_ecp_check_privkey(grp, d));
    MBEDTLS_MPI_CHK(mbedtls_ecp_check_pubkey(grp, Q));

    /* Q is public: reducing it with mbedTLS's (variable-time) bignum code
     * leaks nothing. d passed check_privkey: below 2^255, 32 bytes. */
    MBEDTLS_MPI_CHK(mbedtls_mpi_mod_mpi(&X, &Q->X, &grp->P));
    MBEDTLS_MPI_CHK(mbedtls_mpi_write_binary_le(&X, u, sizeof(u)));
    MBEDTLS_MPI_CHK(mbedtls_mpi_write_binary_le(d, k, sizeof(k)));

    if (agent_x25519(s, k, u) != 0) {
        /* all zero: Q of small order (check_pubkey already rejects every
         * such point; this stays as the RFC 7748 section 6.1 check) */
        ret = MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
        goto cleanup;
    }
    MBEDTLS_MPI_CHK(mbedtls_mpi_read_binary_le(z, s, sizeof(s)));

cleanup:
    mbedtls_platform_zeroize(k, sizeof(k));
    mbedtls_platform_zeroize(s, sizeof(s));
    mbedtls_ecp_point_free(&P);
    mbedtls_mpi_free(&X);
    return ret;
}
#endif /* MBEDTLS_ECDH_COMPUTE_SHARED_ALT */
