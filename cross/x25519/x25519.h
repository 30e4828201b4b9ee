/*
 * X25519 (RFC 7748, section 5) for agent's release builds: the function
 * behind mbedTLS's ECDH on curve25519 (ecdh_alt.c), see README.md.
 *
 * Byte strings are little-endian as in the RFC. The scalar is clamped
 * (bits 0-2 and 255 cleared, bit 254 set) and bit 255 of u is ignored,
 * as the RFC prescribes; u need not be reduced mod p.
 * Constant time: no branch and no memory index depends on the scalar or u.
 */
#ifndef AGENT_X25519_H
#define AGENT_X25519_H

/* out = X25519(scalar, u). Returns 0, or -1 when out is all zero (u is a
 * point of small order; RFC 7748 section 6.1 says to reject that); out is
 * written in both cases. out may be the same buffer as scalar or u. */
int agent_x25519(unsigned char out[32], const unsigned char scalar[32],
                 const unsigned char u[32]);

/* out = X25519(scalar, 9): the public key of scalar. Returns 0 (-1 cannot
 * happen for the base point, which has large order). */
int agent_x25519_base(unsigned char out[32], const unsigned char scalar[32]);

#endif /* AGENT_X25519_H */
