/*
 * Conversions between mbedTLS's mpi / point types and the plain bytes of
 * ref.h, included both by ref.c (reference configuration) and by the tests
 * (release configuration): the same code on each side of the comparison.
 */
#ifndef X25519_TEST_ECDH_IO_H
#define X25519_TEST_ECDH_IO_H

#include <string.h>

#include "mbedtls/ecp.h"

#include "ref.h"

static inline int ecdh_point_out(const mbedtls_ecp_point *p, struct ecdh_point *q)
{
    int ret;

    memset(q, 0, sizeof(*q));
    MBEDTLS_MPI_CHK(mbedtls_mpi_write_binary(&p->X, q->x, ECDH_NB));
    MBEDTLS_MPI_CHK(mbedtls_mpi_write_binary(&p->Y, q->y, ECDH_NB));
    MBEDTLS_MPI_CHK(mbedtls_mpi_write_binary(&p->Z, q->z, ECDH_NB));
    q->y_limbs = p->Y.n;
    q->x_neg = p->X.s < 0;
cleanup:
    return ret;
}

static inline int ecdh_point_in(const struct ecdh_point *q, mbedtls_ecp_point *p)
{
    int ret;

    MBEDTLS_MPI_CHK(mbedtls_mpi_read_binary(&p->X, q->x, ECDH_NB));
    if (q->y_limbs > 0) {
        MBEDTLS_MPI_CHK(mbedtls_mpi_read_binary(&p->Y, q->y, ECDH_NB));
    }
    MBEDTLS_MPI_CHK(mbedtls_mpi_read_binary(&p->Z, q->z, ECDH_NB));
    if (q->x_neg) {
        p->X.s = -1;
    }
cleanup:
    return ret;
}

#endif
