import CShims

/// Shared TLS settings for many sessions: side, own certificate and key,
/// how the peer is checked, record size, session tickets. Wraps
/// `mbedtls_ssl_config`; keeps alive everything the config points to.
///
/// Protocol choices are fixed here for every use in agent: TLS 1.3 only,
/// ECDHE on P-256 (forward secrecy; also on resumption, except with a relay's resume
/// credential: psk_ke),
/// ECDSA P-256 signatures, ChaCha20-Poly1305 preferred, then AES-128-GCM.
/// (mbedTLS 3.6, configured in cross/mbedtls_config.h.)
public final class TLSConfig {
    public enum Side { case client, server }

    /// How the peer's certificate is treated during the handshake.
    public enum PeerCheck {
        /// No certificate is asked for (a server that does not authenticate clients).
        case none
        /// A certificate is asked for and checked against `trusted` if given, but the
        /// handshake completes either way; the caller MUST check the peer (by key, ID,
        /// pin or `verifyResult`) before trusting anything from it.
        case afterHandshake(trusted: Certificate?)
        /// The handshake fails unless the peer's chain verifies against `trusted`
        /// (and, on a client, its name matches the server name given to the session).
        case required(trusted: Certificate)
    }

    /// The largest record this side sends. TLS 1.3 negotiates no smaller size in
    /// mbedTLS 3.6 (its record_size_limit is fixed at build time), so each side caps
    /// its own records: agents that talk to a small peer set it on both ends.
    public enum MaxFragment {
        case full, b512, b1024, b2048, b4096

        var code: UInt8 {
            switch self {
            case .full: return UInt8(MBEDTLS_SSL_MAX_FRAG_LEN_NONE)
            case .b512: return UInt8(MBEDTLS_SSL_MAX_FRAG_LEN_512)
            case .b1024: return UInt8(MBEDTLS_SSL_MAX_FRAG_LEN_1024)
            case .b2048: return UInt8(MBEDTLS_SSL_MAX_FRAG_LEN_2048)
            case .b4096: return UInt8(MBEDTLS_SSL_MAX_FRAG_LEN_4096)
            }
        }

        public var bytes: Int {
            switch self {
            case .full: return 16384
            case .b512: return 512
            case .b1024: return 1024
            case .b2048: return 2048
            case .b4096: return 4096
            }
        }

        public static func forBytes(_ n: Int) -> MaxFragment? {
            switch n {
            case 16384: return .full
            case 512: return .b512
            case 1024: return .b1024
            case 2048: return .b2048
            case 4096: return .b4096
            default: return nil
            }
        }
    }

    public let conf: UnsafeMutablePointer<mbedtls_ssl_config>
    public let side: Side
    let rng: Rng
    let certificate: Certificate?
    let key: PrivateKey?
    let trusted: Certificate?
    var tickets: OpaquePointer?
    /// Server: the resume credentials it accepts (psk_ke; see shims.c, "resume credentials").
    public let resume: ResumeKeys?
    /// Client: this config offers a resume credential (an external PSK).
    public let offersPSK: Bool

    /// - Parameters:
    ///   - certificate, key: what this side presents (required on a server).
    ///   - maxFragment: the largest record this side sends (see `MaxFragment`).
    ///   - ticketLifetimeSeconds: on a server, enables session tickets valid this long
    ///     (resumption skips the public-key work; after it a full handshake renews keys).
    ///   - resume: on a server, accepts the resume credentials these keys open (psk_ke).
    ///   - resumeCredential: on a client, offers the resume credential of this RESUME payload
    ///     (psk_ke), with a full handshake in the same connection if the server does not take it.
    ///   - tlsKeyHello: offers (client) or accepts (server) the ALPN protocol `agent-tls-key`:
    ///     the client checks the server's TLS key itself, so the hello's CHALLENGE may go
    ///     unsigned (`TLSSession.tlsKeyHello`; docs/PROTOCOL.md, section 2).
    public init(side: Side, rng: Rng, certificate: Certificate?, key: PrivateKey?, peerCheck: PeerCheck,
                maxFragment: MaxFragment = .full, ticketLifetimeSeconds: UInt32? = nil, resume: ResumeKeys? = nil,
                resumeCredential: [UInt8]? = nil, tlsKeyHello: Bool = false) throws(CryptoError) {
        self.resume = side == .server ? resume : nil
        offersPSK = side == .client && resumeCredential != nil
        self.side = side
        self.rng = rng
        self.certificate = certificate
        self.key = key
        conf = .allocate(capacity: 1)
        mbedtls_ssl_config_init(conf)
        switch peerCheck {
        case .none: trusted = nil
        case .afterHandshake(let t): trusted = t
        case .required(let t): trusted = t
        }
        let endpoint = side == .client ? MBEDTLS_SSL_IS_CLIENT : MBEDTLS_SSL_IS_SERVER
        try check("ssl config", mbedtls_ssl_config_defaults(conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                                            MBEDTLS_SSL_PRESET_DEFAULT))
        mbedtls_ssl_conf_rng(conf, mbedtls_psa_get_random, nil)
        mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_3)
        mbedtls_ssl_conf_max_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_3)
        mbedtls_ssl_conf_ciphersuites(conf, shim_ciphersuites())
        mbedtls_ssl_conf_groups(conf, shim_groups())
        mbedtls_ssl_conf_sig_algs(conf, shim_sig_algs())
        if side == .client {
            // A client learns of a session ticket (TLS 1.3 sends it after the handshake)
            // through `TLSSession.ticketsReceived`, and saves the session then.
            mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
                conf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED)
        }
        switch peerCheck {
        case .none:
            mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_NONE)
        case .afterHandshake:
            mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_OPTIONAL)
        case .required:
            mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED)
        }
        if let t = trusted { mbedtls_ssl_conf_ca_chain(conf, t.crt, nil) }
        if let c = certificate, let k = key {
            try check("own certificate", mbedtls_ssl_conf_own_cert(conf, c.crt, k.pk))
        }
        if maxFragment != .full {
            try check("max fragment", mbedtls_ssl_conf_max_frag_len(conf, maxFragment.code))
        }
        // Before the resume credentials: their config is a copy of this one.
        if tlsKeyHello { try check("alpn", shim_conf_alpn_tls_key(conf)) }
        // Forward secrecy wherever a PSK is used (psk_dhe_ke), except for resume
        // credentials (psk_ke): a resumed tunnel's ECDHE would cost the relay what it saves.
        if let r = self.resume {
            try check("resume credentials", shim_resume_attach(r.raw, conf))
        } else if let p = resumeCredential {
            try check("resume credential", shim_conf_resume_psk(conf, p, p.count))
        } else {
            shim_conf_kex_modes(conf, 0)
        }
        if side == .server, let life = ticketLifetimeSeconds {
            guard let t = shim_tickets_new(life) else {  // deinit frees conf
                throw CryptoError("ticket setup", MBEDTLS_ERR_SSL_ALLOC_FAILED)
            }
            tickets = t
            mbedtls_ssl_conf_session_tickets_cb(conf, shim_ticket_write, shim_ticket_parse, UnsafeMutableRawPointer(t))
        }
    }

    deinit {
        if let r = resume { shim_resume_detach(r.raw) }
        mbedtls_ssl_config_free(conf)
        conf.deallocate()
        shim_tickets_free(tickets)
    }
}
