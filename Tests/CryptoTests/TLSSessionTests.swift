import CShims
import Crypto
import Testing
import Wire

/// TLSSession in memory: a client and a server session joined by a pump that copies
/// each side's `outbound` ciphertext into the other's `inbound` (rustls `do_handshake` /
/// `transfer_altered`, swift-nio-ssl `interactInMemory`). No sockets, no clock, no
/// sleeps; chunk sizes come from a seeded generator so a failure reproduces.
@Suite struct TLSSessionTests {
    // MARK: Harness

    /// Deterministic generator (SplitMix64).
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// One endpoint's identity.
    final class Party {
        let key: PrivateKey
        let cert: Certificate
        init(rng: Rng, key: PrivateKey? = nil, cert: Certificate? = nil) throws {
            let k = try key ?? PrivateKey.generate(rng: rng)
            self.key = k
            self.cert = try cert ?? CertificateWriter.selfSigned(key: k, rng: rng)
        }
    }

    /// A session CA for the `.required` tests.
    final class CA {
        let key: PrivateKey
        let cert: Certificate
        init(_ name: String, rng: Rng) throws {
            key = try PrivateKey.generate(rng: rng)
            cert = try CertificateWriter.selfSigned(key: key, rng: rng, commonName: name, isCA: true)
        }

        func issue(name: String, rng: Rng) throws -> Party {
            let k = try PrivateKey.generate(rng: rng)
            let der = try CertificateWriter.make(subjectKey: k.pk, options: .init(commonName: name),
                                                 issuerKey: key, issuer: cert, rng: rng)
            return try Party(rng: rng, key: k, cert: Certificate.parse(der))
        }
    }

    /// Moves ciphertext between two sessions, in random-size pieces when `maxChunk` > 0.
    struct Pump {
        var rng: SplitMix
        var maxChunk: Int

        init(seed: UInt64 = 1, maxChunk: Int = 0) {
            rng = SplitMix(state: seed)
            self.maxChunk = maxChunk
        }

        /// Copies what fits from `from.outbound` to `to.inbound`; returns the byte count.
        @discardableResult
        mutating func move(_ from: TLSSession, _ to: TLSSession) -> Int {
            var n = min(from.outbound.count, to.inbound.freeSpace)
            if n > 0 && maxChunk > 0 { n = min(n, Int.random(in: 1...maxChunk, using: &rng)) }
            if n == 0 { return 0 }
            let r = from.outbound.readable
            let took = to.inbound.append(UnsafeRawBufferPointer(rebasing: r[0..<n]))
            #expect(took == n)
            from.outbound.consume(took)
            return took
        }
    }

    static func config(_ side: TLSConfig.Side, _ rng: Rng, _ id: Party?,
                       _ check: TLSConfig.PeerCheck = .afterHandshake(trusted: nil),
                       maxFragment: TLSConfig.MaxFragment = .full,
                       tickets: UInt32? = nil) throws -> TLSConfig {
        try TLSConfig(side: side, rng: rng, certificate: id?.cert, key: id?.key, peerCheck: check,
                      maxFragment: maxFragment, ticketLifetimeSeconds: tickets)
    }

    /// Drives both handshakes until both are done, one fails, or nothing moves.
    @discardableResult
    static func handshake(_ c: TLSSession, _ s: TLSSession, pump: inout Pump)
        -> (client: TLSSession.Progress, server: TLSSession.Progress) {
        var cp = c.handshake()
        var sp = s.handshake()
        for _ in 0..<10_000 {
            if case .failed = cp { break }
            if case .failed = sp { break }
            let moved = pump.move(c, s) + pump.move(s, c)
            cp = c.handshake()
            sp = s.handshake()
            if cp == .done && sp == .done && c.outbound.isEmpty && s.outbound.isEmpty { break }
            if moved == 0 && c.outbound.isEmpty && s.outbound.isEmpty { break }
        }
        return (cp, sp)
    }

    /// A client and a server session with fresh self-signed identities, mutually
    /// authenticated by key (`.afterHandshake(trusted: nil)`), handshake done.
    final class Connected {
        let rng: Rng
        let clientID: Party
        let serverID: Party
        let clientConfig: TLSConfig
        let serverConfig: TLSConfig
        let client: TLSSession
        let server: TLSSession

        init(serverTickets: UInt32? = nil, outboundCapacity: Int? = nil, inboundCapacity: Int? = nil,
             maxFragment: TLSConfig.MaxFragment = .full, maxFragmentOnServer: Bool = false,
             cache: BlockCache? = nil) throws {
            rng = try Rng()
            clientID = try Party(rng: rng)
            serverID = try Party(rng: rng)
            clientConfig = try TLSSessionTests.config(.client, rng, clientID,
                                                      maxFragment: maxFragmentOnServer ? .full : maxFragment)
            serverConfig = try TLSSessionTests.config(.server, rng, serverID,
                                                      maxFragment: maxFragmentOnServer ? maxFragment : .full,
                                                      tickets: serverTickets)
            if let cache {
                client = try TLSSession(config: clientConfig, cache: cache)
                server = try TLSSession(config: serverConfig, cache: cache)
            } else {
                client = try TLSSessionTests.session(clientConfig, inbound: inboundCapacity, outbound: outboundCapacity)
                server = try TLSSessionTests.session(serverConfig, inbound: inboundCapacity, outbound: outboundCapacity)
            }
            var pump = Pump()
            let (cp, sp) = TLSSessionTests.handshake(client, server, pump: &pump)
            #expect(cp == .done)
            #expect(sp == .done)
        }
    }

    static func session(_ config: TLSConfig, serverName: String? = nil, inbound: Int? = nil,
                        outbound: Int? = nil) throws -> TLSSession {
        switch (inbound, outbound) {
        case (nil, nil): return try TLSSession(config: config, serverName: serverName)
        case (let i?, nil): return try TLSSession(config: config, serverName: serverName, inboundCapacity: i)
        case (nil, let o?): return try TLSSession(config: config, serverName: serverName, outboundCapacity: o)
        case (let i?, let o?):
            return try TLSSession(config: config, serverName: serverName, inboundCapacity: i, outboundCapacity: o)
        }
    }

    static func pattern(_ n: Int, seed: UInt8) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        var x = UInt32(seed) &* 2_654_435_761 | 1
        for i in 0..<n {
            x ^= x << 13
            x ^= x >> 17
            x ^= x << 5
            out[i] = UInt8(truncatingIfNeeded: x)
        }
        return out
    }

    /// Reads everything available; nil result if the read ended otherwise than `.needIO`.
    static func readAll(_ s: TLSSession, into out: inout [UInt8], window: Int = 20_000) -> TLSSession.ReadResult {
        var buf = [UInt8](repeating: 0, count: window)
        while true {
            let r = buf.withUnsafeMutableBytes { s.read(into: $0) }
            guard case .bytes(let n) = r else { return r }
            #expect(n > 0 && n <= window)
            out += buf[0..<n]
        }
    }

    /// Writes all of `data` through `s`, pumping to the peer (which reads into `got`).
    static func send(_ data: [UInt8], from s: TLSSession, to peer: TLSSession, got: inout [UInt8]) {
        var sent = 0
        var pump = Pump()
        for _ in 0..<100_000 where sent < data.count || !s.outbound.isEmpty {
            if sent < data.count {
                let r = data[sent...].withUnsafeBytes { s.write($0) }
                switch r {
                case .bytes(let n):
                    #expect(n > 0 && n <= data.count - sent)
                    sent += n
                case .needIO: break
                case .failed(let e):
                    Issue.record("write failed: \(e)")
                    return
                }
            }
            pump.move(s, peer)
            _ = readAll(peer, into: &got)
        }
        _ = readAll(peer, into: &got)
    }

    /// Splits ciphertext into TLS records by their 5-byte headers.
    static func records(_ bytes: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var i = 0
        while i + 5 <= bytes.count {
            let len = Int(bytes[i + 3]) << 8 | Int(bytes[i + 4])
            out.append(Array(bytes[i..<min(bytes.count, i + 5 + len)]))
            i += 5 + len
        }
        return out
    }

    /// Takes everything in `s.outbound`.
    static func take(_ s: TLSSession) -> [UInt8] {
        let b = s.outbound.peekAll()
        s.outbound.consume(b.count)
        return b
    }

    static func expectStickyFailure(_ s: TLSSession, _ code: Int32) {
        #expect(s.status == .failed(code))
        #expect(s.isFailed)
        #expect(!s.isOpen)
        #expect(!s.wantsInput)
        var buf = [UInt8](repeating: 0, count: 64)
        #expect(buf.withUnsafeMutableBytes { s.read(into: $0) } == .failed(code))
        #expect(buf.withUnsafeMutableBytes { s.read(into: $0) } == .failed(code))
        #expect(s.write([1, 2, 3]) == .failed(code))
        #expect(s.handshake() == .failed(code))
        #expect(s.status == .failed(code))
    }

    // MARK: Handshake and identities

    @Test func mutualAuthenticationByKey() throws {
        let c = try Connected()
        #expect(c.client.isOpen && c.server.isOpen)
        #expect(c.client.status == .open)
        // Each side sees the other's key, hence its ID.
        let serverSeen = try #require(c.client.peerPublicKeyDER)
        let clientSeen = try #require(c.server.peerPublicKeyDER)
        #expect(serverSeen == c.serverID.key.publicKeyDER())
        #expect(clientSeen == c.clientID.key.publicKeyDER())
        #expect(Identity.id(spki: serverSeen) == c.serverID.key.id)
        #expect(Identity.id(spki: clientSeen) == c.clientID.key.id)
        #expect(c.client.peerCertificateDER == c.serverID.cert.leafDER)
        #expect(c.server.peerCertificateDER == c.clientID.cert.leafDER)
        #expect(c.client.sawPeerCertificate)
        #expect(c.server.sawPeerCertificate)
        // Self-signed and no trust anchors: the chain does not verify, which is why
        // callers check the key instead.
        #expect(c.client.verifyResult != 0)
        #expect(c.server.verifyResult != 0)
        // TLS 1.3, ChaCha20-Poly1305 preferred (ECDHE and ECDSA on P-256).
        #expect(c.client.ciphersuite == "TLS1-3-CHACHA20-POLY1305-SHA256")
        #expect(c.server.ciphersuite == c.client.ciphersuite)
        // 16 KiB of inner plaintext, less its content type byte.
        #expect(c.client.maxRecordPayload == 16383)
    }

    @Test(arguments: [1 as UInt64, 2, 3])
    func handshakeWithRandomChunking(seed: UInt64) throws {
        let rng = try Rng()
        let client = try TLSSession(config: Self.config(.client, rng, Party(rng: rng)))
        let server = try TLSSession(config: Self.config(.server, rng, Party(rng: rng)))
        #expect(client.isHandshaking && server.isHandshaking)
        #expect(client.wantsInput && server.wantsInput)
        var pump = Pump(seed: seed, maxChunk: 7)
        let (cp, sp) = Self.handshake(client, server, pump: &pump)
        #expect(cp == .done && sp == .done)
        #expect(client.write([42]) == .bytes(1))
        var got: [UInt8] = []
        pump.maxChunk = 0
        pump.move(client, server)
        #expect(Self.readAll(server, into: &got) == .needIO)
        #expect(got == [42])
    }

    @Test func readAndWriteBeforeTheHandshakeAskForIO() throws {
        let rng = try Rng()
        let client = try TLSSession(config: Self.config(.client, rng, Party(rng: rng)))
        var buf = [UInt8](repeating: 0, count: 16)
        #expect(buf.withUnsafeMutableBytes { client.read(into: $0) } == .needIO)
        #expect(client.write([1]) == .needIO)
        #expect(client.outbound.isEmpty)  // nothing was encrypted
    }

    @Test func serverWithAfterHandshakeAcceptsAClientWithoutCertificate() throws {
        // `.afterHandshake` completes without a client certificate: the caller MUST
        // then refuse a peer whose key it cannot see.
        let rng = try Rng()
        let client = try TLSSession(config: Self.config(.client, rng, nil))
        let server = try TLSSession(config: Self.config(.server, rng, Party(rng: rng)))
        var pump = Pump()
        let (cp, sp) = Self.handshake(client, server, pump: &pump)
        #expect(cp == .done && sp == .done)
        #expect(server.peerPublicKeyDER == nil)
        #expect(server.peerCertificateDER == nil)
        #expect(!server.sawPeerCertificate)
        #expect(client.peerPublicKeyDER != nil)
    }

    /// ALPN `agent-tls-key` is agreed only when the client offers it and the server accepts
    /// it; a server that does not know it (an older relay) ignores the offer.
    @Test(arguments: [(true, true), (true, false), (false, true), (false, false)])
    func tlsKeyHelloNeedsBothSides(clientOffers: Bool, serverAccepts: Bool) throws {
        let rng = try Rng()
        let client = try TLSSession(config: TLSConfig(side: .client, rng: rng, certificate: nil, key: nil,
                                                      peerCheck: .afterHandshake(trusted: nil), tlsKeyHello: clientOffers))
        let id = try Party(rng: rng)
        let server = try TLSSession(config: TLSConfig(side: .server, rng: rng, certificate: id.cert, key: id.key,
                                                      peerCheck: .none, tlsKeyHello: serverAccepts))
        #expect(!client.tlsKeyHello && !server.tlsKeyHello)  // not before the handshake
        var pump = Pump()
        let (cp, sp) = Self.handshake(client, server, pump: &pump)
        #expect(cp == .done && sp == .done)
        #expect(client.tlsKeyHello == (clientOffers && serverAccepts))
        #expect(server.tlsKeyHello == (clientOffers && serverAccepts))
        #expect(client.peerPublicKeyDER == id.key.publicKeyDER())
    }

    @Test func requiredWithTheRightCASucceeds() throws {
        let rng = try Rng()
        let ca = try CA("Relay CA", rng: rng)
        let relay = try ca.issue(name: "relay.test", rng: rng)
        let client = try TLSSession(config: Self.config(.client, rng, Party(rng: rng), .required(trusted: ca.cert)),
                                    serverName: "relay.test")
        let server = try TLSSession(config: Self.config(.server, rng, relay))
        var pump = Pump()
        let (cp, sp) = Self.handshake(client, server, pump: &pump)
        #expect(cp == .done && sp == .done)
        #expect(client.verifyResult == 0)
        #expect(client.peerPublicKeyDER == relay.key.publicKeyDER())
    }

    @Test func requiredWithTheWrongCAFailsTheHandshake() throws {
        let rng = try Rng()
        let ca = try CA("Relay CA", rng: rng)
        let wrong = try CA("Relay CA", rng: rng)  // same name, other key
        let relay = try ca.issue(name: "relay.test", rng: rng)
        let client = try TLSSession(config: Self.config(.client, rng, Party(rng: rng), .required(trusted: wrong.cert)),
                                    serverName: "relay.test")
        let server = try TLSSession(config: Self.config(.server, rng, relay))
        var pump = Pump()
        let (cp, sp) = Self.handshake(client, server, pump: &pump)
        #expect(cp == .failed(MBEDTLS_ERR_X509_CERT_VERIFY_FAILED))
        #expect(sp != .done)
        #expect(client.verifyResult & UInt32(MBEDTLS_X509_BADCERT_NOT_TRUSTED) != 0)
        Self.expectStickyFailure(client, MBEDTLS_ERR_X509_CERT_VERIFY_FAILED)
    }

    @Test func requiredRejectsASelfSignedServer() throws {
        let rng = try Rng()
        let ca = try CA("Relay CA", rng: rng)
        let client = try TLSSession(config: Self.config(.client, rng, Party(rng: rng), .required(trusted: ca.cert)))
        let server = try TLSSession(config: Self.config(.server, rng, Party(rng: rng)))
        var pump = Pump()
        let (cp, _) = Self.handshake(client, server, pump: &pump)
        #expect(cp == .failed(MBEDTLS_ERR_X509_CERT_VERIFY_FAILED))
    }

    @Test func requiredChecksTheServerName() throws {
        let rng = try Rng()
        let ca = try CA("Relay CA", rng: rng)
        let relay = try ca.issue(name: "relay.test", rng: rng)
        let client = try TLSSession(config: Self.config(.client, rng, Party(rng: rng), .required(trusted: ca.cert)),
                                    serverName: "other.test")
        let server = try TLSSession(config: Self.config(.server, rng, relay))
        var pump = Pump()
        let (cp, _) = Self.handshake(client, server, pump: &pump)
        #expect(cp == .failed(MBEDTLS_ERR_X509_CERT_VERIFY_FAILED))
        #expect(client.verifyResult & UInt32(MBEDTLS_X509_BADCERT_CN_MISMATCH) != 0)
    }

    @Test func serverRequiringAClientCAFailsOtherClients() throws {
        let rng = try Rng()
        let ca = try CA("Client CA", rng: rng)
        let serverConfig = try Self.config(.server, rng, Party(rng: rng), .required(trusted: ca.cert))
        // A client with a certificate from the CA gets in.
        let good = try TLSSession(config: Self.config(.client, rng, ca.issue(name: "operator", rng: rng)))
        let s1 = try TLSSession(config: serverConfig)
        var pump = Pump()
        let ok = Self.handshake(good, s1, pump: &pump)
        #expect(ok.client == .done && ok.server == .done)
        #expect(s1.verifyResult == 0)
        // A self-signed client does not.
        let selfSigned = try TLSSession(config: Self.config(.client, rng, Party(rng: rng)))
        let s2 = try TLSSession(config: serverConfig)
        let bad = Self.handshake(selfSigned, s2, pump: &pump)
        #expect(bad.server == .failed(MBEDTLS_ERR_X509_CERT_VERIFY_FAILED))
        // Nor does a client without a certificate.
        let anonymous = try TLSSession(config: Self.config(.client, rng, nil))
        let s3 = try TLSSession(config: serverConfig)
        let none = Self.handshake(anonymous, s3, pump: &pump)
        #expect(none.server != .done)
        #expect(s3.isFailed)
    }

    @Test(arguments: [11, 40, 100, 300, 600])
    func aFlippedBitInTheHandshakeFailsIt(offset: Int) throws {
        // One bit of the server's first flight (ServerHello, Certificate, ServerKeyExchange,
        // CertificateRequest, ServerHelloDone) altered in flight: the handshake must not
        // complete on both sides, and it must end (no hang).
        let rng = try Rng()
        let client = try TLSSession(config: Self.config(.client, rng, Party(rng: rng)))
        let server = try TLSSession(config: Self.config(.server, rng, Party(rng: rng)))
        #expect(client.handshake() == .needIO)
        var pump = Pump()
        pump.move(client, server)
        #expect(server.handshake() == .needIO)
        var flight = Self.take(server)
        #expect(flight.count > offset)
        flight[offset] ^= 0x04
        client.inbound.append(flight)
        let (cp, sp) = Self.handshake(client, server, pump: &pump)
        #expect(!(cp == .done && sp == .done))
        #expect(client.isFailed || server.isFailed)
    }

    // MARK: Data

    @Test(arguments: [0, 1, 16383, 16384, 16385, 1 << 20])
    func dataBothWaysWithRandomChunking(size: Int) throws {
        let c = try Connected()
        let toServer = Self.pattern(size, seed: 1)
        let toClient = Self.pattern(size, seed: 2)
        var sentC = 0
        var sentS = 0
        var gotS: [UInt8] = []
        var gotC: [UInt8] = []
        gotS.reserveCapacity(size)
        gotC.reserveCapacity(size)
        var pump = Pump(seed: UInt64(size) &+ 7, maxChunk: 5000)
        var rng = SplitMix(state: UInt64(size) &+ 99)
        var rounds = 0
        while gotS.count < size || gotC.count < size {
            rounds += 1
            if rounds > 200_000 {
                Issue.record("no progress: sent \(sentC)/\(sentS) got \(gotS.count)/\(gotC.count)")
                return
            }
            for (s, data, sent) in [(c.client, toServer, sentC), (c.server, toClient, sentS)] where sent < size {
                // Random write sizes too, so records of every size appear.
                let want = min(size - sent, Int.random(in: 1...40_000, using: &rng))
                let r = data[sent..<(sent + want)].withUnsafeBytes { s.write($0) }
                switch r {
                case .bytes(let n):
                    #expect(n > 0 && n <= want)
                    if s === c.client { sentC += n } else { sentS += n }
                case .needIO: break
                case .failed(let e):
                    Issue.record("write failed: \(e)")
                    return
                }
                #expect(s.outbound.count <= s.outbound.capacity)
            }
            pump.move(c.client, c.server)
            pump.move(c.server, c.client)
            let window = Int.random(in: 1...20_000, using: &rng)
            #expect(Self.readAll(c.server, into: &gotS, window: window) == .needIO)
            #expect(Self.readAll(c.client, into: &gotC, window: window) == .needIO)
        }
        #expect(gotS.count == size)
        #expect(gotC.count == size)
        #expect(gotS == toServer)
        #expect(gotC == toClient)
        #expect(sentC == size && sentS == size)
    }

    /// Idle sessions give their record buffers and queues back to a cache (a relay's idle
    /// tunnels); record counters, keys and data survive any number of park/unpark cycles.
    @Test(arguments: [1, 300, 16384, 100_000])
    func parkedSessionsCarryOnBothWays(size: Int) throws {
        let cache = BlockCache(keepPerSize: 4)
        let c = try Connected(cache: cache)
        for round in 0..<5 {
            // Idle: everything goes back, nothing is lent.
            #expect(c.client.park())
            #expect(c.server.park())
            #expect(c.client.recordsParked && c.server.recordsParked)
            #expect(cache.lent == 0)
            let up = Self.pattern(size, seed: UInt8(round))
            let down = Self.pattern(size / 2 + 1, seed: UInt8(round + 100))
            var gotS: [UInt8] = []
            var gotC: [UInt8] = []
            Self.send(up, from: c.client, to: c.server, got: &gotS)
            #expect(c.client.park())   // sent and flushed: the client is idle again
            Self.send(down, from: c.server, to: c.client, got: &gotC)
            #expect(gotS == up)
            #expect(gotC == down)
        }
        #expect(c.client.park() && c.server.park())
        #expect(cache.lent == 0)
        #expect(cache.spareCount > 0)
    }

    @Test func aSessionWithUnreadDataKeepsItsRecordBuffer() throws {
        let cache = BlockCache(keepPerSize: 4)
        let c = try Connected(cache: cache)
        let data = Self.pattern(100, seed: 9)
        #expect(c.client.write(data) == .bytes(100))
        var pump = Pump()
        pump.move(c.client, c.server)
        var ten = [UInt8](repeating: 0, count: 10)
        #expect(ten.withUnsafeMutableBytes { c.server.read(into: $0) } == .bytes(10))
        // 90 bytes wait in mbedTLS's record buffer: it stays.
        #expect(!c.server.park())
        #expect(!c.server.recordsParked)
        var rest: [UInt8] = []
        #expect(Self.readAll(c.server, into: &rest) == .needIO)
        #expect(ten + rest == data)
        #expect(c.server.park())
        #expect(c.server.recordsParked)
        // Ciphertext queued but not yet sent keeps the outbound queue.
        #expect(c.server.write(data) == .bytes(100))
        #expect(!c.server.park())
        #expect(!c.server.outbound.isParked)
    }

    @Test func writeOfNothingIsNothing() throws {
        let c = try Connected()
        #expect(c.client.write([]) == .bytes(0))
        #expect(c.client.outbound.isEmpty)
        var none: [UInt8] = []
        #expect(none.withUnsafeMutableBytes { c.client.read(into: $0) } == .needIO)
    }

    @Test func recordsNeverCarryMoreThanOneRecordPayload() throws {
        let c = try Connected()
        let data = Self.pattern(50_000, seed: 3)
        let r = c.client.write(data)
        guard case .bytes(let n) = r else {
            Issue.record("write: \(r)")
            return
        }
        for rec in Self.records(Self.take(c.client)) {
            #expect(rec[0] == 0x17)  // application data
            #expect(rec.count - 5 <= 16384 + 16)  // payload + Poly1305 tag
        }
        #expect(n <= data.count)
    }

    /// TLS 1.3 negotiates no record size in mbedTLS 3.6: each side's setting caps the
    /// records it sends (512 bytes of inner plaintext: 511 of data and the type byte).
    @Test(arguments: [true, false])
    func maxFragmentLengthCapsTheRecordsASideSends(server: Bool) throws {
        let c = try Connected(maxFragment: .b512, maxFragmentOnServer: server)
        let small = server ? c.server : c.client
        let full = server ? c.client : c.server
        #expect(small.maxRecordPayload == 511)
        #expect(full.maxRecordPayload == 16383)
        let r = small.write(Self.pattern(5000, seed: 4))
        #expect(r == .bytes(5000))
        let recs = Self.records(Self.take(small))
        #expect(recs.count == 10)
        for rec in recs { #expect(rec.count - 5 <= 512 + 16) }
        var got: [UInt8] = []
        full.inbound.append(recs.flatMap { $0 })
        _ = Self.readAll(full, into: &got)
        #expect(got == Self.pattern(5000, seed: 4))
    }

    /// write() never reports more than it was given and never lets `outbound` overflow;
    /// with `outbound` full it says `.needIO`, and after draining it continues.
    @Test(arguments: [1024, 4096, 2 * (16384 + 512)])
    func writeStaysWithinOutbound(capacity: Int) throws {
        let c = try Connected(outboundCapacity: capacity)
        let data = Self.pattern(200_000, seed: 5)
        var sent = 0
        var got: [UInt8] = []
        var sawNeedIO = 0
        var pump = Pump()
        while sent < data.count {
            // Fill without draining.
            var progressed = false
            while sent < data.count {
                let r = data[sent...].withUnsafeBytes { c.client.write($0) }
                #expect(c.client.outbound.count <= capacity)
                if case .bytes(let n) = r {
                    #expect(n > 0 && n <= data.count - sent)
                    sent += n
                    progressed = true
                } else {
                    #expect(r == .needIO)
                    sawNeedIO += 1
                    break
                }
            }
            #expect(progressed || sent == data.count)
            // Drain, and let the server read.
            while pump.move(c.client, c.server) > 0 {
                _ = Self.readAll(c.server, into: &got)
            }
            _ = Self.readAll(c.server, into: &got)
        }
        #expect(sawNeedIO > 0)
        #expect(got == data)
    }

    @Test func bufferedInputIsReported() throws {
        let c = try Connected()
        #expect(c.client.write([1, 2, 3, 4, 5, 6]) == .bytes(6))
        #expect(c.client.write([7, 8, 9]) == .bytes(3))
        #expect(!c.server.hasBufferedInput)
        var pump = Pump()
        pump.move(c.client, c.server)
        #expect(c.server.hasBufferedInput)
        var small = [UInt8](repeating: 0, count: 4)
        #expect(small.withUnsafeMutableBytes { c.server.read(into: $0) } == .bytes(4))
        #expect(small == [1, 2, 3, 4])
        #expect(c.server.hasBufferedInput)
        var rest: [UInt8] = []
        #expect(Self.readAll(c.server, into: &rest) == .needIO)
        #expect(rest == [5, 6, 7, 8, 9])
        #expect(!c.server.hasBufferedInput)
    }

    // MARK: Closing

    @Test func closeNotifyIsAHalfClose() throws {
        let c = try Connected()
        var pump = Pump()
        // The client's last words, then close_notify.
        #expect(c.client.write(Array("last words".utf8)) == .bytes(10))
        #expect(c.client.sendCloseNotify())
        #expect(c.client.sentClose)
        #expect(!c.client.peerClosed)
        // Writing after close_notify is refused, and does not break the session.
        #expect(c.client.write([1]) == .failed(MBEDTLS_ERR_SSL_BAD_INPUT_DATA))
        #expect(c.client.isOpen)
        #expect(c.client.sendCloseNotify())  // a second call queues nothing more
        let sent = c.client.outbound.count
        pump.move(c.client, c.server)
        #expect(sent > 0)
        var got: [UInt8] = []
        // Data before close_notify is delivered in full, then .closed.
        #expect(Self.readAll(c.server, into: &got) == .closed)
        #expect(got == Array("last words".utf8))
        #expect(c.server.peerClosed)
        #expect(!c.server.wantsInput)
        #expect(c.server.isOpen)
        var buf = [UInt8](repeating: 0, count: 16)
        #expect(buf.withUnsafeMutableBytes { c.server.read(into: $0) } == .closed)
        // The server can still write, and the client still reads.
        let reply = Self.pattern(40_000, seed: 6)
        var gotC: [UInt8] = []
        Self.send(reply, from: c.server, to: c.client, got: &gotC)
        #expect(gotC == reply)
        // Then the server closes its direction too.
        #expect(c.server.sendCloseNotify())
        pump.move(c.server, c.client)
        #expect(Self.readAll(c.client, into: &gotC) == .closed)
        #expect(c.client.peerClosed)
        #expect(c.client.sentClose && c.server.sentClose)
        // A transport EOF after close_notify is a clean end, not a failure.
        c.client.transportEOF()
        #expect(buf.withUnsafeMutableBytes { c.client.read(into: $0) } == .closed)
        #expect(!c.client.isFailed)
    }

    @Test func transportEOFWithoutCloseNotifyIsATruncation() throws {
        let c = try Connected()
        var pump = Pump()
        #expect(c.client.write(Array("complete record".utf8)) == .bytes(15))
        pump.move(c.client, c.server)
        c.server.transportEOF()
        // Data that arrived is still delivered, then the missing close_notify is a failure.
        var got: [UInt8] = []
        #expect(Self.readAll(c.server, into: &got) == .failed(MBEDTLS_ERR_SSL_CONN_EOF))
        #expect(got == Array("complete record".utf8))
        #expect(!c.server.peerClosed)
        Self.expectStickyFailure(c.server, MBEDTLS_ERR_SSL_CONN_EOF)
    }

    @Test func transportEOFInsideARecordIsATruncation() throws {
        let c = try Connected()
        #expect(c.client.write(Self.pattern(1000, seed: 7)) == .bytes(1000))
        let rec = Self.take(c.client)
        c.server.inbound.append(Array(rec[0..<(rec.count - 10)]))
        var got: [UInt8] = []
        #expect(Self.readAll(c.server, into: &got) == .needIO)
        c.server.transportEOF()
        #expect(Self.readAll(c.server, into: &got) == .failed(MBEDTLS_ERR_SSL_CONN_EOF))
        #expect(got.isEmpty)
    }

    @Test func transportEOFDuringTheHandshakeFailsIt() throws {
        let rng = try Rng()
        let client = try TLSSession(config: Self.config(.client, rng, Party(rng: rng)))
        #expect(client.handshake() == .needIO)
        _ = Self.take(client)
        client.transportEOF()
        #expect(!client.wantsInput)
        #expect(client.handshake() == .failed(MBEDTLS_ERR_SSL_CONN_EOF))
        Self.expectStickyFailure(client, MBEDTLS_ERR_SSL_CONN_EOF)
    }

    // MARK: Bytes altered in flight

    /// (offset in the record, XOR mask): header type, version, length (beyond any legal
    /// record), first payload byte, middle, last byte of the tag. (A length that grows but
    /// stays legal only makes the receiver wait for bytes: that is `.needIO`, and the
    /// connection's timeouts deal with it.)
    static let flips: [(Int, UInt8)] = [(0, 0x01), (1, 0x01), (2, 0x01), (3, 0x80), (5, 0x01), (12, 0x80), (-1, 0x01)]

    @Test(arguments: flips)
    func aFlippedBitInARecordFailsTheReceiverForGood(offset: Int, mask: UInt8) throws {
        let c = try Connected()
        #expect(c.client.write(Array("attack at dawn".utf8)) == .bytes(14))
        var rec = Self.take(c.client)
        #expect(Self.records(rec).count == 1)
        let at = offset >= 0 ? offset : rec.count + offset
        rec[at] ^= mask
        c.server.inbound.append(rec)
        var got: [UInt8] = []
        let r = Self.readAll(c.server, into: &got)
        #expect(got.isEmpty)
        guard case .failed(let code) = r else {
            Issue.record("altered record was not refused: \(r)")
            return
        }
        Self.expectStickyFailure(c.server, code)
        // Good records after the bad one are not accepted either.
        #expect(c.client.write([1, 2, 3]) == .bytes(3))
        var pump = Pump()
        pump.move(c.client, c.server)
        #expect(Self.readAll(c.server, into: &got) == .failed(code))
        #expect(got.isEmpty)
    }

    @Test func aReplayedRecordFails() throws {
        let c = try Connected()
        #expect(c.client.write(Array("pay 100".utf8)) == .bytes(7))
        let rec = Self.take(c.client)
        var got: [UInt8] = []
        c.server.inbound.append(rec)
        #expect(Self.readAll(c.server, into: &got) == .needIO)
        #expect(got == Array("pay 100".utf8))
        // The same record again.
        c.server.inbound.append(rec)
        let r = Self.readAll(c.server, into: &got)
        #expect(got == Array("pay 100".utf8))
        guard case .failed(let code) = r else {
            Issue.record("replayed record was not refused: \(r)")
            return
        }
        Self.expectStickyFailure(c.server, code)
    }

    @Test func reorderedRecordsFail() throws {
        let c = try Connected()
        #expect(c.client.write(Array("first".utf8)) == .bytes(5))
        #expect(c.client.write(Array("second".utf8)) == .bytes(6))
        let recs = Self.records(Self.take(c.client))
        #expect(recs.count == 2)
        c.server.inbound.append(recs[1])
        c.server.inbound.append(recs[0])
        var got: [UInt8] = []
        let r = Self.readAll(c.server, into: &got)
        #expect(got.isEmpty)
        guard case .failed(let code) = r else {
            Issue.record("reordered records were not refused: \(r)")
            return
        }
        Self.expectStickyFailure(c.server, code)
    }

    @Test func aDroppedRecordFails() throws {
        let c = try Connected()
        #expect(c.client.write(Array("first".utf8)) == .bytes(5))
        #expect(c.client.write(Array("second".utf8)) == .bytes(6))
        let recs = Self.records(Self.take(c.client))
        #expect(recs.count == 2)
        c.server.inbound.append(recs[1])
        var got: [UInt8] = []
        #expect(Self.readAll(c.server, into: &got) == .failed(MBEDTLS_ERR_SSL_INVALID_MAC))
        #expect(got.isEmpty)
    }

    @Test func aForgedCloseNotifyIsNotAClose() throws {
        // An attacker cannot forge close_notify: an altered alert record fails.
        let c = try Connected()
        #expect(c.client.sendCloseNotify())
        var rec = Self.take(c.client)
        rec[rec.count - 1] ^= 0x01
        c.server.inbound.append(rec)
        var got: [UInt8] = []
        let r = Self.readAll(c.server, into: &got)
        #expect(r != .closed)
        #expect(!c.server.peerClosed)
        #expect(c.server.isFailed)
    }

    // MARK: Resumption

    @Test func sessionResumptionWithTickets() throws {
        let c = try Connected(serverTickets: 3600)
        #expect(c.client.sawPeerCertificate)
        #expect(c.server.sawPeerCertificate)
        // TLS 1.3: the server sends its ticket after the handshake, with its first
        // write; the client's read takes it in.
        #expect(c.client.ticketsReceived == 0)
        var first: [UInt8] = []
        Self.send([7], from: c.server, to: c.client, got: &first)
        #expect(first == [7])
        #expect(c.client.ticketsReceived == 1)
        let saved = try #require(c.client.saveSession())
        // A new connection offering the saved session.
        let client2 = try TLSSession(config: c.clientConfig)
        client2.resume(saved)
        let server2 = try TLSSession(config: c.serverConfig)
        var pump = Pump()
        let (cp, sp) = Self.handshake(client2, server2, pump: &pump)
        #expect(cp == .done && sp == .done)
        // Abbreviated handshake: no Certificate message was parsed on either side.
        #expect(!server2.sawPeerCertificate)
        #expect(!client2.sawPeerCertificate)
        // The peers' keys are still known (restored from the ticket and the saved session).
        #expect(server2.peerPublicKeyDER == c.clientID.key.publicKeyDER())
        #expect(client2.peerPublicKeyDER == c.serverID.key.publicKeyDER())
        // And the session carries data.
        var got: [UInt8] = []
        Self.send(Array("resumed".utf8), from: client2, to: server2, got: &got)
        #expect(got == Array("resumed".utf8))
    }

    @Test func withoutTicketsTheHandshakeIsFull() throws {
        let c = try Connected()
        let saved = try #require(c.client.saveSession())
        let client2 = try TLSSession(config: c.clientConfig)
        client2.resume(saved)
        let server2 = try TLSSession(config: c.serverConfig)
        var pump = Pump()
        let (cp, sp) = Self.handshake(client2, server2, pump: &pump)
        #expect(cp == .done && sp == .done)
        #expect(server2.sawPeerCertificate)
        #expect(client2.sawPeerCertificate)
    }

    @Test func aTicketFromAnotherServerGivesAFullHandshake() throws {
        let c = try Connected(serverTickets: 3600)
        let saved = try #require(c.client.saveSession())
        // Another server configuration (other ticket keys), same identity.
        let otherServer = try Self.config(.server, c.rng, c.serverID, tickets: 3600)
        let client2 = try TLSSession(config: c.clientConfig)
        client2.resume(saved)
        let server2 = try TLSSession(config: otherServer)
        var pump = Pump()
        let (cp, sp) = Self.handshake(client2, server2, pump: &pump)
        #expect(cp == .done && sp == .done)
        #expect(server2.sawPeerCertificate)
        #expect(server2.peerPublicKeyDER == c.clientID.key.publicKeyDER())
    }
}
