/* Non-inline C helpers for agent. See include/CShims.h for the contracts. */
#include "CShims.h"
#include <limits.h>

#include <sys/random.h>
#include <mbedtls/asn1write.h>

const char *shim_mbedtls_version(void) { return MBEDTLS_VERSION_STRING; }

size_t shim_sizeof(int which) {
    switch (which) {
    case SHIM_SSL_CONTEXT: return sizeof(mbedtls_ssl_context);
    case SHIM_SSL_CONFIG: return sizeof(mbedtls_ssl_config);
    case SHIM_SSL_SESSION: return sizeof(mbedtls_ssl_session);
    case SHIM_ENTROPY: return sizeof(mbedtls_entropy_context);
    case SHIM_CTR_DRBG: return sizeof(mbedtls_ctr_drbg_context);
    case SHIM_X509_CRT: return sizeof(mbedtls_x509_crt);
    case SHIM_PK_CONTEXT: return sizeof(mbedtls_pk_context);
    case SHIM_SSL_TICKET: return sizeof(mbedtls_ssl_ticket_context);
    case SHIM_SOCKADDR_IN: return sizeof(struct sockaddr_in);
    case SHIM_SOCKADDR_IN6: return sizeof(struct sockaddr_in6);
    case SHIM_SOCKADDR_STORAGE: return sizeof(struct sockaddr_storage);
    case SHIM_POLLFD: return sizeof(struct pollfd);
    default: return 0;
    }
}

/* ---- signals ---------------------------------------------------------- */
/* A handler may only touch sig_atomic_t flags and write(2) to a pipe; the
 * poll loop watches the pipe's read end, so a signal wakes it at once. */
static volatile sig_atomic_t pending[65];
static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig) {
    int saved = errno;
    if (sig > 0 && sig < 65) pending[sig] = 1;
    if (signal_pipe[1] >= 0) {
        char b = (char)sig;
        ssize_t r = write(signal_pipe[1], &b, 1);
        (void)r;
    }
    errno = saved;
}

int shim_install_signals(void) {
    if (signal_pipe[0] < 0) {
        if (pipe(signal_pipe) != 0) return -1;
        for (int i = 0; i < 2; i++) {
            shim_set_nonblock(signal_pipe[i]);
            shim_set_cloexec(signal_pipe[i]);
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &sa, NULL) != 0) return -1;
    if (sigaction(SIGTERM, &sa, NULL) != 0) return -1;
    if (sigaction(SIGHUP, &sa, NULL) != 0) return -1;
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    return sigaction(SIGPIPE, &ign, NULL);
}

int shim_take_signal(int sig) {
    if (sig <= 0 || sig >= 65 || !pending[sig]) return 0;
    pending[sig] = 0;
    return 1;
}

int shim_signal_pipe_fd(void) { return signal_pipe[0]; }

void shim_drain_signal_pipe(void) {
    char buf[64];
    while (signal_pipe[0] >= 0 && read(signal_pipe[0], buf, sizeof buf) > 0) {}
}

/* ---- entropy ---------------------------------------------------------- */
int shim_getentropy(void *buf, size_t len) {
    unsigned char *p = buf;
    while (len > 0) {
        size_t n = len > 256 ? 256 : len;   /* getentropy's limit per call */
        if (getentropy(p, n) != 0) return -1;
        p += n;
        len -= n;
    }
    return 0;
}

#if defined(MBEDTLS_ENTROPY_HARDWARE_ALT)
/* The release configuration sets MBEDTLS_NO_PLATFORM_ENTROPY (musl would
 * otherwise make mbedTLS fopen /dev/urandom) and takes the kernel's
 * randomness through this hook instead. */
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen) {
    (void)data;
    if (shim_getentropy(output, len) != 0) { *olen = 0; return -1; }
    *olen = len;
    return 0;
}
#endif

#if !defined(__GLIBC__)
/* musl 1.2.3 has no arc4random_buf; the Swift runtime's Hasher seeding and
 * SystemRandomNumberGenerator need it. */
void arc4random_buf(void *buf, size_t len) {
    if (shim_getentropy(buf, len) != 0) abort();
}
#endif

/* ---- TLS choices ------------------------------------------------------ */
static const int suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0
};
const int *shim_ciphersuites(void) { return suites; }

static const mbedtls_ecp_group_id curves[] = {
    MBEDTLS_ECP_DP_CURVE25519,
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_NONE
};
const mbedtls_ecp_group_id *shim_curves(void) { return curves; }

/* ---- certificates ----------------------------------------------------- */
int shim_x509write_issuer_from(mbedtls_x509write_cert *w, const mbedtls_x509_crt *ca) {
    mbedtls_asn1_free_named_data_list(&w->issuer);
    /* store_named_data prepends; x509write writes the list backwards: the DER
     * order of the CA's subject is kept. */
    for (const mbedtls_x509_name *n = &ca->subject; n != NULL; n = n->next) {
        if (n->oid.p == NULL || n->oid.len == 0) continue;
        mbedtls_asn1_named_data *d = mbedtls_asn1_store_named_data(&w->issuer, (const char *)n->oid.p, n->oid.len,
                                                                    n->val.p, n->val.len);
        if (d == NULL) return MBEDTLS_ERR_X509_ALLOC_FAILED;
        d->val.tag = n->val.tag;
    }
    return 0;
}

/* ---- epoll ------------------------------------------------------------ */
int shim_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int shim_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &ev);
}

int shim_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        tokens[i] = evs[i].data.u64;
        events[i] = evs[i].events;
    }
    return n;
}

long shim_raise_nofile(long want, long *hard) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) { *hard = -1; return -1; }
    *hard = r.rlim_max == RLIM_INFINITY ? -1 : (long)r.rlim_max;
    if (r.rlim_cur != RLIM_INFINITY && (long)r.rlim_cur < want) {
        rlim_t target = (rlim_t)want;
        if (r.rlim_max != RLIM_INFINITY && target > r.rlim_max) target = r.rlim_max;
        r.rlim_cur = target;
        if (setrlimit(RLIMIT_NOFILE, &r) != 0) getrlimit(RLIMIT_NOFILE, &r);
    }
    return r.rlim_cur == RLIM_INFINITY ? want : (long)r.rlim_cur;
}

/* ---- names resolved off the loop ------------------------------------- */
struct resolve_job {
    int fd;          /* write end */
    int delay_ms;
    char host[256];
};

struct resolve_answer {
    int count;
    socklen_t lens[SHIM_RESOLVE_MAX_ADDRS];
    struct sockaddr_storage addrs[SHIM_RESOLVE_MAX_ADDRS];
};

static int resolve_active;

static void *resolve_thread(void *arg) {
    struct resolve_job *job = arg;
    if (job->delay_ms > 0) {
        struct timespec ts = { job->delay_ms / 1000, (long)(job->delay_ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
    struct resolve_answer ans;
    memset(&ans, 0, sizeof ans);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(job->host, NULL, &hints, &res) == 0) {
        for (int pass = 0; pass < 2; pass++) {          /* IPv4 first, then IPv6 */
            int want = pass == 0 ? AF_INET : AF_INET6;
            for (struct addrinfo *ai = res; ai && ans.count < SHIM_RESOLVE_MAX_ADDRS; ai = ai->ai_next) {
                if (ai->ai_family != want || ai->ai_addrlen > sizeof(struct sockaddr_storage)) continue;
                memcpy(&ans.addrs[ans.count], ai->ai_addr, ai->ai_addrlen);
                ans.lens[ans.count] = ai->ai_addrlen;
                ans.count++;
            }
        }
        freeaddrinfo(res);
    }
    /* The work is done: counted out before the answer is readable, so a caller that has read
     * it may start another resolution at once. */
    __atomic_fetch_sub(&resolve_active, 1, __ATOMIC_SEQ_CST);
    /* One write under PIPE_BUF is atomic; if the loop gave up (closed its end), EPIPE. */
    ssize_t n = write(job->fd, &ans, sizeof ans);
    (void)n;
    close(job->fd);
    free(job);
    return NULL;
}

int shim_resolve_active(void) { return __atomic_load_n(&resolve_active, __ATOMIC_SEQ_CST); }

int shim_resolve_start(const char *host, int max_active, int delay_ms) {
    _Static_assert(sizeof(struct resolve_answer) <= PIPE_BUF, "one atomic write");
    if (strlen(host) >= sizeof(((struct resolve_job *)0)->host)) return -1;
    if (__atomic_add_fetch(&resolve_active, 1, __ATOMIC_SEQ_CST) > max_active) {
        __atomic_fetch_sub(&resolve_active, 1, __ATOMIC_SEQ_CST);
        return -2;
    }
    int p[2];
    if (pipe(p) != 0) goto fail;
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    struct resolve_job *job = calloc(1, sizeof *job);
    if (!job) { close(p[0]); close(p[1]); goto fail; }
    job->fd = p[1];
    job->delay_ms = delay_ms;
    strcpy(job->host, host);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);      /* the thread starts with every signal blocked */
    pthread_t t;
    int rc = pthread_create(&t, &attr, resolve_thread, job);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) { free(job); close(p[0]); close(p[1]); goto fail; }
    return p[0];
fail:
    __atomic_fetch_sub(&resolve_active, 1, __ATOMIC_SEQ_CST);
    return -1;
}

int shim_resolve_finish(int fd, struct sockaddr_storage *out, socklen_t *lens) {
    struct resolve_answer ans;
    ssize_t n = read(fd, &ans, sizeof ans);
    if (n < 0) return errno == EAGAIN || errno == EINTR ? -1 : 0;
    if (n != (ssize_t)sizeof ans || ans.count < 0 || ans.count > SHIM_RESOLVE_MAX_ADDRS) return 0;
    for (int i = 0; i < ans.count; i++) { out[i] = ans.addrs[i]; lens[i] = ans.lens[i]; }
    return ans.count;
}
