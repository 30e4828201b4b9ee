import CShims
import Wire

/// One TLS 1.3 session over mbedTLS, sans-IO: the caller moves ciphertext in and
/// out of two fixed byte queues and the session never touches a socket.
///
///     socket -> inbound.writable()/commit  -> [mbedTLS] -> read(into:)   (plaintext out)
///     write(_:) (plaintext in) -> [mbedTLS] -> outbound.readable/consume -> socket
///
/// "Needs I/O" is a value: `.needIO` means "feed more ciphertext, or drain
/// `outbound`", which the loop turns into poll interest (read if `wantsInput`,
/// write while `outbound` is not empty).
///
/// `write` only asks mbedTLS to encrypt as much as fits in `outbound` with room
/// for the record overhead, so mbedTLS never holds a half-flushed record and a
/// caller never has to repeat a call with the same arguments.
///
/// Failures are sticky: after `.failed`, every call returns the same failure.
public final class TLSSession {
    public enum Status: Equatable {
        case handshaking
        /// Handshake done. Each direction then closes on its own (see `peerClosed`,
        /// `sentClose`): close_notify is an authenticated half-close.
        case open
        case failed(Int32)
    }

    public enum Progress: Equatable {
        case done
        case needIO
        case failed(Int32)
    }

    public enum ReadResult: Equatable {
        case bytes(Int)
        case needIO
        case closed
        case failed(Int32)
    }

    public enum WriteResult: Equatable {
        case bytes(Int)
        case needIO
        case failed(Int32)
    }

    /// Ciphertext received from the peer, not yet processed. The caller fills it.
    public let inbound: ByteQueue
    /// Ciphertext to send to the peer. The caller drains it.
    public let outbound: ByteQueue
    public private(set) var status: Status = .handshaking
    /// The peer sent close_notify: it will send nothing more (we may still write).
    public private(set) var peerClosed = false
    /// We queued close_notify: we will send nothing more (we may still read).
    public private(set) var sentClose = false
    public let config: TLSConfig
    let ssl: UnsafeMutablePointer<mbedtls_ssl_context>
    var transportEnded = false
    /// True once the peer's certificate was parsed in this handshake (false on resumption).
    public private(set) var sawPeerCertificate = false
    /// Session tickets received (client; TLS 1.3 sends them after the handshake, read
    /// by `read`): a session saved after one can be resumed.
    public private(set) var ticketsReceived = 0
    /// Server: the resume credential this handshake accepted (its PSK authenticated the
    /// client); set once the handshake is done, nil after a full handshake.
    public private(set) var resumeClaim: ResumeClaim? = nil
    var claimSeen: ResumeClaim? = nil

    /// The failure code of a transport that ended without close_notify (in the handshake
    /// or in `read`): the peer's data may have been cut short. Callers that must tell a
    /// truncation from other TLS failures compare against it.
    public static let truncationError: Int32 = MBEDTLS_ERR_SSL_CONN_EOF

    /// Where the record buffers and the ciphertext queues come from while data moves, so
    /// `park()` can give them back when idle (nil: allocated once and kept).
    let cache: BlockCache?
    /// Where a parked session's pointers into its record buffers are kept (with a cache).
    let parkState: OpaquePointer?
    /// The record buffers are in the cache (`park()`); taken again before mbedTLS runs.
    public private(set) var recordsParked = false
    /// The ends of what mbedTLS read into / sent from its buffers since they were taken
    /// (addresses; the buffers are wiped up to there when parked).
    var inWrittenEnd: UInt = 0
    var outWrittenEnd: UInt = 0
    static let inBlock = Int(shim_ssl_in_block())
    static let outBlock = Int(shim_ssl_out_block())

    /// Upper bound on what mbedTLS adds to a record (header, content type, tag, and
    /// mbedTLS's allowance for padding).
    static let maxRecordOverhead = 5 + 1 + 16 + 256

    /// With `cache`, an idle session's buffers can go back to it (`park()`).
    public init(config: TLSConfig, serverName: String? = nil,
                inboundCapacity: Int = 16384 + 512, outboundCapacity: Int = 2 * (16384 + 512),
                cache: BlockCache? = nil) throws(CryptoError) {
        self.config = config
        self.cache = cache
        inbound = ByteQueue(capacity: inboundCapacity, cache: cache)
        outbound = ByteQueue(capacity: outboundCapacity, cache: cache)
        ssl = .allocate(capacity: 1)
        mbedtls_ssl_init(ssl)
        parkState = cache == nil ? nil : OpaquePointer(UnsafeMutableRawPointer.allocate(byteCount: shim_parked_size(), alignment: 16))
        let rc = mbedtls_ssl_setup(ssl, config.conf)
        if rc != 0 { throw CryptoError("ssl setup", rc) }  // deinit frees ssl
        if let c = cache {
            // Every record buffer of this session comes from the cache from now on.
            let ib = c.take(TLSSession.inBlock), ob = c.take(TLSSession.outBlock)
            if shim_ssl_adopt_buffers(ssl, ib.assumingMemoryBound(to: UInt8.self), ob.assumingMemoryBound(to: UInt8.self)) != 1 {
                c.give(ib, size: TLSSession.inBlock, written: 0)
                c.give(ob, size: TLSSession.outBlock, written: 0)
                throw CryptoError("ssl buffers", MBEDTLS_ERR_SSL_INTERNAL_ERROR)
            }
        }
        if let name = serverName {
            let rc = name.withCString { mbedtls_ssl_set_hostname(ssl, $0) }
            if rc != 0 { status = .failed(rc) }
        } else if config.side == .client {
            // No name to check: the caller checks the peer by key, pin or its own IP
            // check (mbedTLS 3.6 refuses a verifying client that says nothing).
            _ = mbedtls_ssl_set_hostname(ssl, nil)
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        mbedtls_ssl_set_bio(ssl, me, { ctx, buf, len in
            let s = Unmanaged<TLSSession>.fromOpaque(ctx!).takeUnretainedValue()
            let n = s.outbound.append(UnsafeRawBufferPointer(start: buf, count: len))
            if n > 0 { s.outWrittenEnd = max(s.outWrittenEnd, UInt(bitPattern: buf) + UInt(n)) }
            return n == 0 ? MBEDTLS_ERR_SSL_WANT_WRITE : Int32(n)
        }, { ctx, buf, len in
            let s = Unmanaged<TLSSession>.fromOpaque(ctx!).takeUnretainedValue()
            if s.inbound.isEmpty { return s.transportEnded ? 0 : MBEDTLS_ERR_SSL_WANT_READ }
            let n = s.inbound.read(into: UnsafeMutableRawBufferPointer(start: buf, count: len))
            s.inWrittenEnd = max(s.inWrittenEnd, UInt(bitPattern: buf) + UInt(n))
            return Int32(n)
        }, nil)
        mbedtls_ssl_set_verify(ssl, { ctx, crt, depth, flags in
            if depth == 0 {
                Unmanaged<TLSSession>.fromOpaque(ctx!).takeUnretainedValue().sawPeerCertificate = true
            }
            return 0
        }, me)
    }

    deinit {
        if let c = cache {
            // The record buffers belong to the cache: taken out before mbedTLS frees the rest.
            var ib: UnsafeMutablePointer<UInt8>? = nil
            var ob: UnsafeMutablePointer<UInt8>? = nil
            shim_ssl_detach(ssl, &ib, &ob)
            if let b = ib { c.give(UnsafeMutableRawPointer(b), size: TLSSession.inBlock, written: TLSSession.inBlock) }
            if let b = ob { c.give(UnsafeMutableRawPointer(b), size: TLSSession.outBlock, written: TLSSession.outBlock) }
        }
        mbedtls_ssl_free(ssl)  // zeroizes keys and record buffers
        ssl.deallocate()
        if let p = parkState { UnsafeMutableRawPointer(p).deallocate() }
    }

    /// Gives what an idle session holds back to the cache: the ciphertext queues if they
    /// are empty, the record buffers if mbedTLS has nothing buffered in them (both are
    /// taken again when bytes move). Without a cache it does nothing. Returns true if
    /// everything is parked.
    @discardableResult
    public func park() -> Bool {
        guard let c = cache, let p = parkState else { return false }
        let queues = inbound.park() && outbound.park()
        if recordsParked { return queues }
        var ib: UnsafeMutablePointer<UInt8>? = nil
        var ob: UnsafeMutablePointer<UInt8>? = nil
        guard shim_ssl_park(ssl, p, &ib, &ob) == 1, let i = ib, let o = ob else { return false }
        c.give(UnsafeMutableRawPointer(i), size: TLSSession.inBlock, written: TLSSession.written(inWrittenEnd, i, TLSSession.inBlock))
        c.give(UnsafeMutableRawPointer(o), size: TLSSession.outBlock, written: TLSSession.written(outWrittenEnd, o, TLSSession.outBlock))
        inWrittenEnd = 0
        outWrittenEnd = 0
        recordsParked = true
        return queues
    }

    /// How much of a buffer at `base` was written, given the end address seen (at least
    /// the bytes kept across a park: record counter, header, IV).
    static func written(_ end: UInt, _ base: UnsafeMutablePointer<UInt8>, _ size: Int) -> Int {
        let start = UInt(bitPattern: base)
        let n = end > start ? Int(end - start) : 0
        return min(size, max(n, 64))
    }

    /// The record buffers back from the cache before mbedTLS runs.
    func unpark() {
        guard recordsParked, let c = cache, let p = parkState else { return }
        let ib = c.take(TLSSession.inBlock), ob = c.take(TLSSession.outBlock)
        shim_ssl_unpark(ssl, p, ib.assumingMemoryBound(to: UInt8.self), ob.assumingMemoryBound(to: UInt8.self))
        recordsParked = false
    }

    /// Tells the session the transport delivered EOF: once `inbound` is used up,
    /// reads end (cleanly only if close_notify came first).
    public func transportEOF() { transportEnded = true }

    public var isHandshaking: Bool { status == .handshaking }
    public var isOpen: Bool { status == .open }
    public var isFailed: Bool {
        if case .failed = status { return true }
        return false
    }

    /// True when the session can use more ciphertext from the peer.
    public var wantsInput: Bool {
        switch status {
        case .handshaking: return !transportEnded
        case .open: return !transportEnded && !peerClosed
        case .failed: return false
        }
    }

    /// Plaintext or ciphertext already inside the session that `read` can use
    /// without more input from the socket.
    public var hasBufferedInput: Bool {
        mbedtls_ssl_get_bytes_avail(ssl) > 0 || mbedtls_ssl_check_pending(ssl) != 0 || !inbound.isEmpty
    }

    /// Drives the handshake as far as the bytes allow.
    public func handshake() -> Progress {
        switch status {
        case .open: return .done
        case .failed(let e): return .failed(e)
        case .handshaking: break
        }
        unpark()
        let rc = mbedtls_ssl_handshake(ssl)
        if let t = config.tickets { shim_tickets_adopt(t, ssl) }
        if let r = config.resume {
            var c = shim_resume_claim()
            if shim_resume_take(r.raw, ssl, &c) == 1 { claimSeen = ResumeClaim(c) }
        }
        if rc == 0 {
            status = .open
            // Only a handshake that ran on the psk_ke-only twin used the credential.
            if let r = config.resume, shim_resume_psk_used(r.raw, ssl) == 1 { resumeClaim = claimSeen }
            shim_ssl_server_done(ssl)
            return .done
        }
        if rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE {
            if transportEnded && inbound.isEmpty && rc == MBEDTLS_ERR_SSL_WANT_READ {
                return fail(MBEDTLS_ERR_SSL_CONN_EOF)
            }
            return .needIO
        }
        return fail(rc)
    }

    func fail(_ code: Int32) -> Progress {
        status = .failed(code)
        return .failed(code)
    }

    /// Decrypts into `into`. `.bytes(n)` with n > 0; `.needIO` when more ciphertext is
    /// needed; `.closed` once the peer's close_notify has been read. A transport EOF
    /// without close_notify is a failure (`MBEDTLS_ERR_SSL_CONN_EOF`): the data may
    /// have been cut short.
    public func read(into: UnsafeMutableRawBufferPointer) -> ReadResult {
        switch status {
        case .handshaking: return .needIO
        case .failed(let e): return .failed(e)
        case .open: break
        }
        if peerClosed { return .closed }
        if into.count == 0 { return .needIO }
        // TLS 1.3 has records after the handshake that carry no data (a session
        // ticket): mbedTLS may consume one and ask for more input although more is
        // already queued, and it reports a ticket on a call of its own. Go on while
        // input is being used up.
        unpark()
        var rc: Int32
        while true {
            let before = inbound.count
            rc = mbedtls_ssl_read(ssl, into.baseAddress!.assumingMemoryBound(to: UInt8.self), into.count)
            if rc == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET {
                ticketsReceived += 1
                continue
            }
            if rc == MBEDTLS_ERR_SSL_WANT_READ && !inbound.isEmpty && inbound.count < before { continue }
            break
        }
        if rc > 0 { return .bytes(Int(rc)) }
        if rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE { return .needIO }
        if rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY {
            peerClosed = true
            return .closed
        }
        let code = rc == 0 ? MBEDTLS_ERR_SSL_CONN_EOF : rc
        status = .failed(code)
        return .failed(code)
    }

    /// The largest plaintext one record carries on this session.
    public var maxRecordPayload: Int {
        let n = mbedtls_ssl_get_max_out_record_payload(ssl)
        return n > 0 ? Int(n) : 16384
    }

    /// Encrypts as much of `data` as fits in `outbound`; `.needIO` if nothing fits
    /// (drain `outbound` first). Never partially consumes a record.
    public func write(_ data: UnsafeRawBufferPointer) -> WriteResult {
        switch status {
        case .handshaking: return .needIO
        case .failed(let e): return .failed(e)
        case .open: break
        }
        if sentClose { return .failed(MBEDTLS_ERR_SSL_BAD_INPUT_DATA) }
        if data.count == 0 { return .bytes(0) }
        unpark()
        var total = 0
        let maxPayload = maxRecordPayload
        while total < data.count {
            let room = outbound.freeSpace - TLSSession.maxRecordOverhead
            if room <= 0 { break }
            let chunk = min(data.count - total, maxPayload, room)
            let rc = mbedtls_ssl_write(ssl, data.baseAddress!.assumingMemoryBound(to: UInt8.self) + total, chunk)
            if rc > 0 {
                total += Int(rc)
                continue
            }
            if rc == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET {  // queued input, taken in by write
                ticketsReceived += 1
                continue
            }
            if rc == MBEDTLS_ERR_SSL_WANT_WRITE || rc == MBEDTLS_ERR_SSL_WANT_READ { break }
            status = .failed(rc)
            return .failed(rc)
        }
        return total > 0 ? .bytes(total) : .needIO
    }

    public func write(_ data: [UInt8]) -> WriteResult {
        data.withUnsafeBytes { write($0) }
    }

    /// Queues close_notify (our last record). Reading may continue. Needs room in
    /// `outbound` for one small record; returns false if there was none (call again
    /// after draining).
    @discardableResult
    public func sendCloseNotify() -> Bool {
        if status == .handshaking { return false }  // nothing can be sent yet
        guard status == .open, !sentClose else { return true }
        if outbound.freeSpace < TLSSession.maxRecordOverhead { return false }
        unpark()
        let rc = mbedtls_ssl_close_notify(ssl)
        if rc != 0 && rc != MBEDTLS_ERR_SSL_WANT_WRITE {
            status = .failed(rc)
            return true
        }
        sentClose = true
        return true
    }

    /// Client: the handshake was authenticated by the resume credential this config
    /// offered (psk_ke). A TLS 1.3 server sends a certificate in every handshake but a
    /// PSK one, and this config holds no other PSK (no ticket is ever set on it).
    public var resumedWithPSK: Bool {
        config.offersPSK && status == .open && !sawPeerCertificate && mbedtls_ssl_get_peer_cert(ssl) == nil
    }

    /// Both sides agreed on ALPN `agent-tls-key` (`TLSConfig(tlsKeyHello:)`): the client
    /// checks this server's TLS key against the relay key of the hello.
    public var tlsKeyHello: Bool { status == .open && shim_ssl_alpn_tls_key(ssl) != 0 }

    /// mbedTLS's verification flags for the peer's certificate (0 = chain valid).
    public var verifyResult: UInt32 { mbedtls_ssl_get_verify_result(ssl) }

    /// The peer's certificate (leaf) as presented in this session, if any.
    public var peerCertificateDER: [UInt8]? {
        guard let c = mbedtls_ssl_get_peer_cert(ssl) else { return nil }
        var len = 0
        guard let p = shim_crt_raw(c, &len), len > 0 else { return nil }
        return Array(UnsafeBufferPointer(start: p, count: len))
    }

    /// DER SubjectPublicKeyInfo of the peer's certificate, if any.
    public var peerPublicKeyDER: [UInt8]? {
        guard let c = mbedtls_ssl_get_peer_cert(ssl) else { return nil }
        return spkiDER(shim_crt_pk(UnsafeMutablePointer(mutating: c)))
    }

    /// The peer's full chain as parsed (leaf first), for CA checks.
    public var peerChain: UnsafePointer<mbedtls_x509_crt>? { mbedtls_ssl_get_peer_cert(ssl) }

    public var ciphersuite: String {
        guard let p = mbedtls_ssl_get_ciphersuite(ssl) else { return "none" }
        return String(cString: p)
    }

    /// A copy of the session for later resumption (client side).
    public func saveSession() -> SavedSession? {
        let s = SavedSession()
        return mbedtls_ssl_get_session(ssl, s.session) == 0 ? s : nil
    }

    /// Offers a saved session for resumption; call before the first `handshake()`.
    public func resume(_ saved: SavedSession) {
        _ = mbedtls_ssl_set_session(ssl, saved.session)
    }
}

/// A TLS session kept by a client for resumption (master secret, ticket, peer certificate).
public final class SavedSession {
    let session: UnsafeMutablePointer<mbedtls_ssl_session>

    init() {
        session = .allocate(capacity: 1)
        mbedtls_ssl_session_init(session)
    }

    deinit {
        mbedtls_ssl_session_free(session)  // zeroizes the master secret
        session.deallocate()
    }
}
