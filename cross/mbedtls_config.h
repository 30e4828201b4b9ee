/*
 * agent's mbedTLS 3.6 LTS configuration: the release builds, the host build
 * (tests) and the fuzz build all use it (cross/release.mk, cross/host.mk).
 *
 * Only what agent uses is enabled:
 *   - TLS 1.3 client and server, nothing older: every TLS link is between two
 *     agents (agent <-> relay, the end-to-end session inside streams), and the
 *     fronts the relay is tested behind (nginx, tinyproxy) speak 1.3 or do not
 *     terminate TLS at all. ECDHE on P-256 (resumption too: psk_dhe_ke, never
 *     a bare PSK, so every session has forward secrecy), ECDSA
 *     P-256 signatures, ChaCha20-Poly1305 first, AES-128-GCM for
 *     Session tickets (resumption), SNI. ChaCha20-Poly1305 is the only cipher:
 *     every peer is an agent, and AES would cost about 10 KB of code and tables.
 *   - PSA Crypto with elliptic curves provided by a driver only
 *     (MBEDTLS_PSA_P256M_DRIVER_ENABLED: mbedTLS's glue, our P-256 code behind
 *     it, cross/p256/README.md). No ECP, ECDH, ECDSA or bignum code of mbedTLS
 *     is built: P-256 is the only curve, for keys, signatures and ECDHE.
 *   - X.509 parsing and writing (self-signed and session-CA certificates), PEM
 *     and DER keys, SHA-256, HMAC (token checks).
 *
 * Dropped on purpose: TLS 1.2 and older, DTLS, renegotiation, RSA, DHM, other
 * curves, AES (GCM, CBC, CCM), DES/Camellia/ARIA, MD5/SHA-1/SHA-512,
 * threading (but see the host build below), file and network I/O (agent does
 * its own), debug and error strings, self-tests, CTR_DRBG and the entropy pool.
 *
 * Randomness: every draw comes from the kernel's generator through
 * getentropy() (MBEDTLS_PSA_CRYPTO_EXTERNAL_RNG: mbedtls_psa_external_get_random
 * in Sources/CShims/shims.c), the generator a DRBG of our own would only
 * stretch. No entropy pool in RAM (mbedTLS's is 37 KB), no DRBG code, and no
 * /dev/urandom, which a device may not have.
 */
#ifndef AGENT_MBEDTLS_CONFIG_H
#define AGENT_MBEDTLS_CONFIG_H

/* System support */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_HAVE_TIME_DATE

/* The host build's tests run in parallel threads: there (only), mbedTLS and
 * PSA lock their shared state. The release binaries do all crypto on one
 * thread. Whatever includes mbedTLS headers must agree on this define
 * (Package.swift passes it to C and Swift alike; the self-test compares the
 * struct sizes). */
#if defined(AGENT_MBEDTLS_THREADING)
#define MBEDTLS_THREADING_C
#define MBEDTLS_THREADING_PTHREAD
#endif

/* PSA Crypto: PK, X.509 and TLS go through it (TLS 1.3 needs it); the
 * algorithms are chosen in cross/crypto_config.h. */
#define MBEDTLS_PSA_CRYPTO_C
#define MBEDTLS_USE_PSA_CRYPTO
#define MBEDTLS_PSA_CRYPTO_CONFIG
#define MBEDTLS_PSA_KEY_STORE_DYNAMIC      /* a relay holds many handshakes at once */
#define MBEDTLS_PSA_P256M_DRIVER_ENABLED
#define MBEDTLS_PSA_CRYPTO_EXTERNAL_RNG
/* PSA runs in the agent's own process, on its own buffers: no copy of every
 * input and output (that protection is for buffers shared across a trust
 * boundary). Measured: the copies more than doubled the instructions per
 * round trip through the tunnel. */
#define MBEDTLS_PSA_ASSUME_EXCLUSIVE_BUFFERS

/* Ciphers and hashes */
#define MBEDTLS_CHACHA20_C
#define MBEDTLS_POLY1305_C
#define MBEDTLS_CHACHAPOLY_C
/* Our SIMD ChaCha20 and Poly1305 instead of mbedTLS's portable code
 * (cross/chachapoly/README.md): PSA's built-in ChaCha20-Poly1305 calls them. */
#define MBEDTLS_CHACHA20_ALT
#define MBEDTLS_POLY1305_ALT
#define MBEDTLS_MD_C
#define MBEDTLS_SHA256_C
/* aarch64 is the build closest to its 512 KiB budget: SHA-256 as a loop (about
 * 1.3 KB smaller; SHA-256 only hashes handshakes here, records use ChaCha20-Poly1305). */
#if defined(__aarch64__)
#define MBEDTLS_SHA256_SMALLER
#endif
/* x86_64: our compression function (cross/sha256/README.md): the SHA
 * extensions when the CPU has them (chosen at run time), else portable C.
 * The ARM targets keep mbedTLS's code. */
#if defined(__x86_64__)
#define MBEDTLS_SHA256_PROCESS_ALT
#endif

/* Keys and certificates */
#define MBEDTLS_OID_C
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_PK_WRITE_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_PEM_WRITE_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C
#define MBEDTLS_X509_CREATE_C
#define MBEDTLS_X509_CRT_WRITE_C

/* TLS 1.3 */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_SRV_C
#define MBEDTLS_SSL_PROTO_TLS1_3
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ENABLED
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL_ENABLED
/* Plain PSK (psk_ke): only the relay's listener and a device returning with its
 * resume credential use it (Sources/CShims/shims.c, "resume credentials"); every
 * other config allows ephemeral and psk_dhe_ke only (TLSConfig). */
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_ENABLED
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
/* ALPN carries one thing: "agent-tls-key", offered by an agent that checks the relay's TLS key
 * itself (no front), so the relay's CHALLENGE needs no signature (docs/PROTOCOL.md, section 2). */
#define MBEDTLS_SSL_ALPN
#define MBEDTLS_SSL_MAX_FRAGMENT_LENGTH         /* caps the records this side sends */
#define MBEDTLS_SSL_SESSION_TICKETS
#define MBEDTLS_SSL_ALL_ALERT_MESSAGES
#define MBEDTLS_X509_CHECK_KEY_USAGE
#define MBEDTLS_X509_CHECK_EXTENDED_KEY_USAGE
/* No "middlebox compatibility mode" (RFC 8446 D.4): its dummy ChangeCipherSpec
 * records are ignored by design, so a record that may be dropped, copied or
 * moved in flight would carry no authentication; the agent's own links are
 * the only users of this TLS. */

/* No padding of TLS 1.3 records (mbedTLS pads to 16 bytes by default): the
 * many small records of an idle tunnel (keepalives, credit) stay small. */
#define MBEDTLS_SSL_CID_TLS1_3_PADDING_GRANULARITY 1

/* One NewSessionTicket per full handshake (a client resumes once per stream
 * open, with the newest ticket it holds). */
#define MBEDTLS_SSL_TLS1_3_DEFAULT_NEW_SESSION_TICKETS 1

#endif /* AGENT_MBEDTLS_CONFIG_H */
