/*
 * CShims: the one place where agent touches C.
 *
 * POSIX (sockets, poll, files, signals, time) and mbedTLS headers, plus small
 * static inline getters for what Swift cannot import directly: errno (a
 * macro), socket constants whose C type differs between glibc and musl,
 * string macros. Non-inline helpers live in shims.c.
 */
#ifndef AGENT_CSHIMS_H
#define AGENT_CSHIMS_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <pthread.h>

#include <mbedtls/version.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>
#include <mbedtls/pk.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>
#include <mbedtls/base64.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/error.h>
#include <psa/crypto.h>
#include <mbedtls/psa_util.h>

/* ---- errno and constants whose type varies by libc ---- */
static inline int shim_errno(void) { return errno; }
static inline void shim_set_errno(int e) { errno = e; }
static inline int shim_sock_stream(void) { return SOCK_STREAM; }
static inline int shim_msg_nosignal(void) { return MSG_NOSIGNAL; }
static inline int shim_eagain(void) { return EAGAIN; }
static inline int shim_ewouldblock(void) { return EWOULDBLOCK; }
static inline int shim_set_nonblock(int fd) {
    int f = fcntl(fd, F_GETFL, 0);
    return f < 0 ? -1 : fcntl(fd, F_SETFL, f | O_NONBLOCK);
}
static inline int shim_set_cloexec(int fd) {
    int f = fcntl(fd, F_GETFD, 0);
    return f < 0 ? -1 : fcntl(fd, F_SETFD, f | FD_CLOEXEC);
}
static inline int shim_open(const char *path, int flags, int mode) { return open(path, flags, mode); }
static inline int shim_o_rdonly(void) { return O_RDONLY; }
static inline int shim_o_create_excl_wronly(void) { return O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC; }
static inline int shim_o_directory(void) { return O_RDONLY | O_DIRECTORY | O_CLOEXEC; }
static inline int shim_o_append_create(void) { return O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC; }
static inline int shim_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
static inline long long shim_file_mode(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)(st.st_mode & 07777) : -1;
}
static inline long long shim_monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static inline long long shim_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static inline long long shim_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- strings and sizes that Swift cannot read from macros ---- */
const char *shim_mbedtls_version(void);

/* sizeof() as the C compiler sees it with the same headers: the self-test
 * compares these with Swift's MemoryLayout to catch a stale module cache
 * or a header/library mismatch. */
enum shim_struct {
    SHIM_SSL_CONTEXT, SHIM_SSL_CONFIG, SHIM_SSL_SESSION,
    SHIM_X509_CRT, SHIM_PK_CONTEXT, SHIM_SOCKADDR_IN, SHIM_SOCKADDR_IN6,
    SHIM_SOCKADDR_STORAGE, SHIM_POLLFD, SHIM_STRUCT_COUNT
};
size_t shim_sizeof(int which);

/* ---- signals: handlers only set flags; the loop reads and clears them ---- */
int shim_install_signals(void);          /* SIGINT, SIGTERM, SIGHUP; SIGPIPE ignored */
int shim_take_signal(int sig);           /* 1 if sig arrived since the last call */
int shim_signal_pipe_fd(void);           /* readable end: wakes poll() on a signal */
void shim_drain_signal_pipe(void);

/* ---- entropy ---- */
/* Fill buf from the kernel (getrandom/getentropy); 0 on success. */
int shim_getentropy(void *buf, size_t len);

/* ---- TLS helpers ---- */
/* The TLS 1.3 ciphersuites agent offers (ChaCha20-Poly1305 only); terminated by 0. */
const int *shim_ciphersuites(void);
/* Groups for ECDHE (IANA numbers): P-256 only; terminated by 0. */
const uint16_t *shim_groups(void);
/* Signature algorithms (IANA numbers): ECDSA P-256 SHA-256 only; terminated by 0. */
const uint16_t *shim_sig_algs(void);

/* ---- session tickets (server) ---- */
/* Tickets that carry the peer's certificate chain (mbedTLS 3.6's own TLS 1.3
 * tickets leave it out, and a resumed session must still say who the peer
 * is). Keys rotate every `lifetime_seconds`; see shims.c. */
struct shim_tickets;
struct shim_tickets *shim_tickets_new(uint32_t lifetime_seconds);
void shim_tickets_free(struct shim_tickets *t);
int shim_ticket_write(void *ctx, const mbedtls_ssl_session *session, unsigned char *start,
                      const unsigned char *end, size_t *tlen, uint32_t *lifetime);
int shim_ticket_parse(void *ctx, mbedtls_ssl_session *session, unsigned char *buf, size_t len);
/* After each server handshake step: the chain of a ticket parsed in that step
 * becomes the resumed session's peer certificate chain. */
void shim_tickets_adopt(struct shim_tickets *t, mbedtls_ssl_context *ssl);

/* ---- record buffers lent while data moves ---- */
/* A session's two record buffers can be taken out while nothing is buffered
 * (an idle tunnel) and put back before the next call into mbedTLS. Block sizes
 * of the buffers the caller provides; see shims.c. */
size_t shim_ssl_in_block(void);
size_t shim_ssl_out_block(void);
struct shim_parked;
size_t shim_parked_size(void);
int shim_ssl_can_park(const mbedtls_ssl_context *ssl);
int shim_ssl_park(mbedtls_ssl_context *ssl, struct shim_parked *p, unsigned char **in, unsigned char **out);
void shim_ssl_unpark(mbedtls_ssl_context *ssl, const struct shim_parked *p, unsigned char *ib, unsigned char *ob);
int shim_ssl_adopt_buffers(mbedtls_ssl_context *ssl, unsigned char *ib, unsigned char *ob);
void shim_ssl_detach(mbedtls_ssl_context *ssl, unsigned char **in, unsigned char **out);
/* A server's handshake parameters, freed once its handshake is over. */
void shim_ssl_server_done(mbedtls_ssl_context *ssl);

/* ---- resume credentials (relay): TLS 1.3 external PSKs sealed by the relay ---- */
/* Layouts: shims.c. */
#define SHIM_RESUME_PLAIN 70
#define SHIM_RESUME_IDENTITY 102      /* 16 + SHIM_RESUME_PLAIN + 16 */
#define SHIM_RESUME_MESSAGE 140       /* RESUME payload: 4 + 32 + 2 + SHIM_RESUME_IDENTITY */
#define SHIM_RESUME_FILE_MAX 94       /* key file: 6 + 2 x 44 */
#define SHIM_RESUME_UNKNOWN_KEY 1
#define SHIM_RESUME_BAD_TAG 2
#define SHIM_RESUME_EXPIRED 3
#define SHIM_RESUME_MALFORMED 4
struct shim_resume_claim {
    unsigned char id[20];
    int role;
    long long issued, expiry;   /* UNIX seconds */
};
struct shim_resume;
struct shim_resume *shim_resume_new(void);
void shim_resume_free(struct shim_resume *r);
/* Installs the keys of a key file image; the current key's creation time, or -1 if the
 * image is not a key file (no key is installed then). */
long long shim_resume_load(struct shim_resume *r, const unsigned char *img, size_t len);
/* A fresh current key made at `now` (the current key of `img`, if it is a key file,
 * becomes the previous one): its image in out (SHIM_RESUME_FILE_MAX bytes), installed.
 * Returns the image's length, 0 on failure. */
size_t shim_resume_rotate(struct shim_resume *r, const unsigned char *img, size_t len, long long now, unsigned char *out);
/* A credential for agent_id (20 bytes) in `role`, valid `lifetime` seconds from `now`,
 * as a RESUME payload (SHIM_RESUME_MESSAGE bytes at out). 0 on success. */
int shim_resume_issue(struct shim_resume *r, const unsigned char *agent_id, int role, long long now, uint32_t lifetime,
                      unsigned char *out);
/* Opens an identity: 0 with the claim and its psk (32 bytes), or SHIM_RESUME_* why not. */
int shim_resume_open(struct shim_resume *r, const unsigned char *identity, size_t len, long long now_s,
                     struct shim_resume_claim *claim, unsigned char *psk);
/* A config's TLS 1.3 key exchange modes: ECDHE, and PSK with ECDHE (psk 0) or
 * plain PSK (psk 1: resume credentials only). */
void shim_conf_kex_modes(mbedtls_ssl_config *conf, int psk);
/* ALPN "agent-tls-key": offer (client) or accept (server) it; whether a session negotiated it. */
int shim_conf_alpn_tls_key(mbedtls_ssl_config *conf);
int shim_ssl_alpn_tls_key(const mbedtls_ssl_context *ssl);
/* Client: offers the credential of a RESUME payload (docs/PROTOCOL.md) as its external
 * PSK, with key exchange modes psk_ke and ECDHE. 0, or an mbedTLS error (malformed). */
int shim_conf_resume_psk(mbedtls_ssl_config *conf, const unsigned char *msg, size_t len);
/* Makes a finished server config accept credentials these keys open (psk_ke), with a
 * twin of it that allows psk_ke only (shims.c). 0 on success. */
int shim_resume_attach(struct shim_resume *r, mbedtls_ssl_config *conf);
/* Forgets the twin (before the config it copied is freed): credentials are refused. */
void shim_resume_detach(struct shim_resume *r);
/* mbedtls_ssl_conf_psk_cb's callback (server). */
int shim_resume_psk_cb(void *ctx, mbedtls_ssl_context *ssl, const unsigned char *identity, size_t len);
/* After each server handshake step: 1 and the claim if this step accepted a credential for `ssl`. */
int shim_resume_take(struct shim_resume *r, const mbedtls_ssl_context *ssl, struct shim_resume_claim *claim);
/* 1 if `ssl` runs on the psk_ke-only twin (its handshake used a credential's PSK). */
int shim_resume_psk_used(const struct shim_resume *r, const mbedtls_ssl_context *ssl);

/* strerror's text for the errors a tunnel meets (musl's words), NULL for others. */
const char *shim_strerror(int e);

/* ---- PSA crypto and P-256 keys ---- */
/* psa_crypto_init(): once per process, before any key or TLS work (safe to repeat). */
int shim_psa_init(void);
/* Makes `pk` (initialized, not set up) a fresh P-256 key pair: generated by
 * PSA (the P-256 driver), copied into the pk context, the PSA key destroyed. */
int shim_pk_generate_p256(mbedtls_pk_context *pk);
/* 1 if `pk` holds an EC key on P-256 (the only curve this build has). */
int shim_pk_is_p256(const mbedtls_pk_context *pk);
/* Subject public key info (DER) of a certificate: pointer and length. */
static inline const unsigned char *shim_crt_raw(const mbedtls_x509_crt *c, size_t *len) {
    *len = c->raw.len; return c->raw.p;
}
static inline const mbedtls_x509_crt *shim_crt_next(const mbedtls_x509_crt *c) { return c->next; }
static inline mbedtls_pk_context *shim_crt_pk(mbedtls_x509_crt *c) { return &c->pk; }
static inline int shim_crt_is_ca(const mbedtls_x509_crt *c) { return c->MBEDTLS_PRIVATE(ca_istrue); }

/* The largest signature mbedtls_pk_sign() makes (a macro Swift cannot import
 * when it is defined through other macros). */
static inline size_t shim_pk_signature_max(void) { return MBEDTLS_PK_SIGNATURE_MAX_SIZE; }

/* Sets a certificate writer's issuer name to the exact subject name of `ca`
 * (attribute by attribute, string types kept), so the chain links by name.
 * (mbedtls_x509_dn_gets would do it through text, and pull printf into the
 * static binary.) 0 on success. */
int shim_x509write_issuer_from(mbedtls_x509write_cert *w, const mbedtls_x509_crt *ca);

/* Sets a certificate writer's subject (issuer: its issuer) name to CN=`cn`, a UTF8String,
 * as mbedtls_x509write_crt_set_subject_name("CN=...") writes it, without mbedTLS's name
 * parser and attribute table (about 2.5 KB of the release binary). 0 on success. */
int shim_x509write_set_cn(mbedtls_x509write_cert *w, int issuer, const unsigned char *cn, size_t len);

/* ---- misc ---- */
#ifndef TCP_NOTSENT_LOWAT
#define TCP_NOTSENT_LOWAT 25
#endif
static inline int shim_tcp_notsent_lowat(void) { return TCP_NOTSENT_LOWAT; }
static inline int shim_sigterm(void) { return SIGTERM; }
static inline int shim_sigint(void) { return SIGINT; }
static inline int shim_sighup(void) { return SIGHUP; }
static inline int shim_sigpipe(void) { return SIGPIPE; }

/* ---- names resolved off the loop (the reverse's targets) ----
 * getaddrinfo() blocks for as long as the DNS takes, so it runs in a detached thread of
 * its own (signals blocked there: they go to the loop's thread). The answer comes through
 * a pipe, written at once (under PIPE_BUF): the loop polls the returned fd and reads it
 * with shim_resolve_finish. At most `max_active` threads at once. */
#define SHIM_RESOLVE_MAX_ADDRS 8
/* The pipe's read end (nonblocking), -1 on error, -2 when max_active threads are busy.
 * delay_ms: a test hook that makes the thread wait first (0 normally). */
int shim_resolve_start(const char *host, int max_active, int delay_ms);
/* Reads the answer: up to SHIM_RESOLVE_MAX_ADDRS addresses (IPv4 first), their lengths in
 * lens; returns how many (0: the name did not resolve), or -1 if not there yet. */
int shim_resolve_finish(int fd, struct sockaddr_storage *out, socklen_t *lens);
/* Resolver threads running now. */
int shim_resolve_active(void);

/* ---- epoll (the relay's loop) ----
 * Interest and readiness bits are poll()'s (POLLIN, POLLOUT, POLLERR, POLLHUP have the
 * same values as EPOLLIN...EPOLLHUP on Linux); each fd carries a 64-bit token. The
 * kernel's struct epoll_event is packed on x86_64 only, so Swift never sees it. */
int shim_epoll_create(void);
/* op: EPOLL_CTL_ADD (1), EPOLL_CTL_DEL (2) or EPOLL_CTL_MOD (3). 0, or -1 with errno. */
int shim_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token);
/* Waits up to timeout_ms (-1: forever) for at most max events; fills tokens and events.
 * The number of events, 0 on EINTR, -1 with errno on error. */
int shim_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int max, int timeout_ms);
/* The soft and hard limits of open files; raises the soft one to `want` (at most the
 * hard one). Returns the soft limit in force afterwards. */
long shim_raise_nofile(long want, long *hard);

#endif
