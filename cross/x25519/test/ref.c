/* Compiled like the reference sources (ref_config.h); its calls into
 * mbedTLS are renamed ref_mbedtls_* with them. */
#include "mbedtls/ecdh.h"

#include <string.h>

#include "ecdh_io.h"
#include "ref.h"

/* Groups loaded once per id: the benchmark should time the multiplication. */
static mbedtls_ecp_group groups[MBEDTLS_ECP_DP_CURVE448 + 1];
static int loaded[MBEDTLS_ECP_DP_CURVE448 + 1];

static mbedtls_ecp_group *group(int id)
{
    if (id < 0 || id > MBEDTLS_ECP_DP_CURVE448) {
        return NULL;
    }
    if (!loaded[id]) {
        mbedtls_ecp_group_init(&groups[id]);
        if (mbedtls_ecp_group_load(&groups[id], (mbedtls_ecp_group_id) id) != 0) {
            return NULL;
        }
        loaded[id] = 1;
    }
    return &groups[id];
}

int ref_x25519(unsigned char out[32], const unsigned char scalar[32],
               const unsigned char u[32], ecdh_rng f_rng, void *p_rng)
{
    mbedtls_ecp_group *grp = group(MBEDTLS_ECP_DP_CURVE25519);
    mbedtls_ecp_point p, r;
    mbedtls_mpi d;
    unsigned char k[32];
    int ret;

    if (grp == NULL) {
        return -1;
    }
    memcpy(k, scalar, 32);
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    mbedtls_mpi_init(&d);
    mbedtls_ecp_point_init(&p);
    mbedtls_ecp_point_init(&r);
    MBEDTLS_MPI_CHK(mbedtls_mpi_read_binary_le(&d, k, 32));
    MBEDTLS_MPI_CHK(mbedtls_ecp_point_read_binary(grp, &p, u, 32));
    MBEDTLS_MPI_CHK(mbedtls_ecp_mul(grp, &r, &d, &p, f_rng, p_rng));
    MBEDTLS_MPI_CHK(mbedtls_mpi_write_binary_le(&r.X, out, 32));
cleanup:
    mbedtls_mpi_free(&d);
    mbedtls_ecp_point_free(&p);
    mbedtls_ecp_point_free(&r);
    return ret;
}

int ref_ecdh_gen_public(int grp_id, unsigned char d[ECDH_NB], struct ecdh_point *q,
                        ecdh_rng f_rng, void *p_rng)
{
    mbedtls_ecp_group *grp = group(grp_id);
    mbedtls_ecp_point p;
    mbedtls_mpi m;
    int ret;

    if (grp == NULL) {
        return -1;
    }
    mbedtls_mpi_init(&m);
    mbedtls_ecp_point_init(&p);
    MBEDTLS_MPI_CHK(mbedtls_ecdh_gen_public(grp, &m, &p, f_rng, p_rng));
    MBEDTLS_MPI_CHK(mbedtls_mpi_write_binary(&m, d, ECDH_NB));
    MBEDTLS_MPI_CHK(ecdh_point_out(&p, q));
cleanup:
    mbedtls_mpi_free(&m);
    mbedtls_ecp_point_free(&p);
    return ret;
}

int ref_ecdh_compute_shared(int grp_id, const unsigned char d[ECDH_NB],
                            const struct ecdh_point *q, unsigned char z[ECDH_NB],
                            ecdh_rng f_rng, void *p_rng)
{
    mbedtls_ecp_group *grp = group(grp_id);
    mbedtls_ecp_point p;
    mbedtls_mpi m, s;
    int ret;

    if (grp == NULL) {
        return -1;
    }
    mbedtls_mpi_init(&m);
    mbedtls_mpi_init(&s);
    mbedtls_ecp_point_init(&p);
    MBEDTLS_MPI_CHK(mbedtls_mpi_read_binary(&m, d, ECDH_NB));
    MBEDTLS_MPI_CHK(ecdh_point_in(q, &p));
    MBEDTLS_MPI_CHK(mbedtls_ecdh_compute_shared(grp, &s, &p, &m, f_rng, p_rng));
    MBEDTLS_MPI_CHK(mbedtls_mpi_write_binary(&s, z, ECDH_NB));
cleanup:
    mbedtls_mpi_free(&m);
    mbedtls_mpi_free(&s);
    mbedtls_ecp_point_free(&p);
    return ret;
}
