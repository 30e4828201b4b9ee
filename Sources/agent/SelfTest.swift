import CShims
import Crypto
import Loop
import Roles
import Wire

/// `agent selftest`: proves this build works on this machine, in one process on
/// 127.0.0.1. Checks that C and Swift agree on the size of mbedTLS and socket
/// structs (a mismatch means the build mixed headers and libraries), then runs
/// a TLS 1.2 client and server with fresh keys through the project's own poll
/// loop: mutual authentication by key, data both ways, close_notify both ways.
enum SelfTest {
    static let transferBytes = 1 << 20
    static let timeoutMs: Int64 = 20_000

    static func run(_ args: [String]) throws(UsageError) -> Int32 {
        _ = try ArgumentParser.parse(args, specs: [.value("log-level")])
        var failures = 0
        failures += structSizes()
        if failures == 0 {
            switch tlsLoopback() {
            case .success(let summary):
                Log.writeStdout("ok   tls: " + summary + "\n")
            case .failure(let f):
                Log.writeStdout("FAIL tls: " + f.message + "\n")
                failures += 1
            }
        }
        Log.writeStdout(failures == 0 ? "selftest passed\n" : "selftest FAILED\n")
        return failures == 0 ? ExitCode.ok : ExitCode.failure
    }

    static func structSizes() -> Int {
        let swiftSizes: [(String, Int32, Int)] = [
            ("mbedtls_ssl_context", Int32(SHIM_SSL_CONTEXT.rawValue), MemoryLayout<mbedtls_ssl_context>.size),
            ("mbedtls_ssl_config", Int32(SHIM_SSL_CONFIG.rawValue), MemoryLayout<mbedtls_ssl_config>.size),
            ("mbedtls_ssl_session", Int32(SHIM_SSL_SESSION.rawValue), MemoryLayout<mbedtls_ssl_session>.size),
            ("mbedtls_x509_crt", Int32(SHIM_X509_CRT.rawValue), MemoryLayout<mbedtls_x509_crt>.size),
            ("mbedtls_pk_context", Int32(SHIM_PK_CONTEXT.rawValue), MemoryLayout<mbedtls_pk_context>.size),
            ("sockaddr_in", Int32(SHIM_SOCKADDR_IN.rawValue), MemoryLayout<sockaddr_in>.size),
            ("sockaddr_in6", Int32(SHIM_SOCKADDR_IN6.rawValue), MemoryLayout<sockaddr_in6>.size),
            ("sockaddr_storage", Int32(SHIM_SOCKADDR_STORAGE.rawValue), MemoryLayout<sockaddr_storage>.size),
            ("pollfd", Int32(SHIM_POLLFD.rawValue), MemoryLayout<pollfd>.size),
        ]
        var bad = 0
        for (name, which, swiftSize) in swiftSizes {
            let cSize = Int(shim_sizeof(which))
            if cSize != swiftSize {
                Log.writeStdout("FAIL sizeof " + name + ": C " + String(cSize) + ", Swift " + String(swiftSize) + "\n")
                bad += 1
            }
        }
        if bad == 0 {
            Log.writeStdout("ok   struct sizes: C and Swift agree on " + String(swiftSizes.count) + " structs\n")
        }
        return bad
    }

    struct Failure: Error {
        let message: String
        init(_ m: String) { message = m }
    }

    /// Identity and TLS settings of one side.
    final class Side {
        let key: PrivateKey
        let cert: Certificate
        let config: TLSConfig
        init(_ side: TLSConfig.Side, rng: Rng) throws(CryptoError) {
            key = try PrivateKey.generate(rng: rng)
            cert = try CertificateWriter.selfSigned(key: key, rng: rng)
            config = try TLSConfig(side: side, rng: rng, certificate: cert, key: key,
                                   peerCheck: .afterHandshake(trusted: nil))
        }
    }

    /// One endpoint's progress through the test.
    final class Peer {
        let link: TLSLink
        let name: String
        var sent = 0
        var received = 0
        var receivedOK = true
        var sentClose = false
        var gotClose = false
        init(_ link: TLSLink, _ name: String) {
            self.link = link
            self.name = name
        }
    }

    static func pattern(_ i: Int, seed: UInt8) -> UInt8 { UInt8(truncatingIfNeeded: i &* 31 &+ Int(seed) &+ (i >> 11)) }

    static func tlsLoopback() -> Result<String, Failure> {
        let rng: Rng
        let server: Side
        let client: Side
        do throws(CryptoError) {
            rng = try Rng()
            server = try Side(.server, rng: rng)
            client = try Side(.client, rng: rng)
        } catch {
            return .failure(Failure("setup: " + error.message))
        }
        let listener: Int32
        let cfd: Int32
        do throws(SysError) {
            listener = try Socket.listen(SocketAddress.numeric("127.0.0.1", port: 0)!)
            guard let bound = Socket.localAddress(listener) else { return .failure(Failure("getsockname")) }
            cfd = try Socket.connect(bound)
        } catch {
            return .failure(Failure(error.message))
        }
        defer { Socket.close(listener) }
        let clientPeer: Peer
        do throws(CryptoError) {
            clientPeer = Peer(TLSLink(fd: cfd, tls: try TLSSession(config: client.config)), "client")
        } catch {
            Socket.close(cfd)
            return .failure(Failure(error.message))
        }
        var serverPeer: Peer? = nil
        let start = Clock.monotonicMs()
        var polls = PollSet()
        var buf = [UInt8](repeating: 0, count: 16384)
        var rounds = 0
        while true {
            if Clock.monotonicMs() - start > timeoutMs { return .failure(Failure("timed out")) }
            // Drive each peer as far as its bytes allow.
            for p in [clientPeer, serverPeer].compactMap({ $0 }) {
                let tls = p.link.tls
                if tls.isHandshaking {
                    if case .failed(let e) = tls.handshake() {
                        return .failure(Failure(p.name + " handshake failed: mbedtls -0x" + String(-Int(e), radix: 16)))
                    }
                }
                if tls.isOpen {
                    let seed: UInt8 = p === clientPeer ? 1 : 2
                    let peerSeed: UInt8 = p === clientPeer ? 2 : 1
                    // Send our pattern, then close_notify.
                    while p.sent < transferBytes {
                        let n = min(buf.count, transferBytes - p.sent)
                        for i in 0..<n { buf[i] = pattern(p.sent + i, seed: seed) }
                        guard case .bytes(let w) = buf.withUnsafeBytes({ tls.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) })
                        else { break }
                        p.sent += w
                    }
                    if p.sent == transferBytes && !p.sentClose {
                        p.sentClose = tls.sendCloseNotify()
                    }
                    // Read and check the other side's pattern.
                    readLoop: while true {
                        let r = buf.withUnsafeMutableBytes { tls.read(into: $0) }
                        switch r {
                        case .bytes(let n):
                            for i in 0..<n where buf[i] != pattern(p.received + i, seed: peerSeed) { p.receivedOK = false }
                            p.received += n
                        case .closed:
                            p.gotClose = true
                            break readLoop
                        case .needIO:
                            break readLoop
                        case .failed(let e):
                            return .failure(Failure(p.name + " read failed: mbedtls -0x" + String(-Int(e), radix: 16)))
                        }
                    }
                }
                p.link.flush()
            }
            if let s = serverPeer, clientPeer.gotClose && s.gotClose && clientPeer.link.isFlushed && s.link.isFlushed {
                break
            }
            polls.removeAll()
            if serverPeer == nil { polls.add(fd: listener, interest: .read, token: 0) }
            polls.add(fd: clientPeer.link.fd, interest: clientPeer.link.interest, token: 1)
            if let s = serverPeer { polls.add(fd: s.link.fd, interest: s.link.interest, token: 2) }
            do throws(SysError) { _ = try polls.wait(timeoutMs: 1000) } catch {
                return .failure(Failure(error.message))
            }
            rounds += 1
            for i in 0..<polls.count {
                let ready = polls.ready(i)
                if ready.isEmpty { continue }
                switch polls.token(i) {
                case 0:
                    if let (fd, _) = Socket.accept(listener) {
                        do throws(CryptoError) {
                            serverPeer = Peer(TLSLink(fd: fd, tls: try TLSSession(config: server.config)), "server")
                        } catch {
                            Socket.close(fd)
                            return .failure(Failure(error.message))
                        }
                    }
                case 1:
                    if ready.contains(.read) { clientPeer.link.receive() }
                    if ready.contains(.write) { clientPeer.link.flush() }
                default:
                    if ready.contains(.read) { serverPeer?.link.receive() }
                    if ready.contains(.write) { serverPeer?.link.flush() }
                }
            }
        }
        let s = serverPeer!
        // Mutual authentication by key: each side saw exactly the other's key.
        guard let clientSawKey = clientPeer.link.tls.peerPublicKeyDER,
              Identity.id(spki: clientSawKey) == server.key.id else {
            return .failure(Failure("client did not see the server's key"))
        }
        guard let serverSawKey = s.link.tls.peerPublicKeyDER,
              Identity.id(spki: serverSawKey) == client.key.id else {
            return .failure(Failure("server did not see the client's key"))
        }
        guard clientPeer.receivedOK && s.receivedOK,
              clientPeer.received == transferBytes, s.received == transferBytes else {
            return .failure(Failure("data mismatch (client got " + String(clientPeer.received) + ", server got "
                                    + String(s.received) + ")"))
        }
        let elapsed = Clock.monotonicMs() - start
        return .success(clientPeer.link.tls.ciphersuite + ", mutual auth by key, "
                        + String(transferBytes) + " bytes each way, close_notify both ways, "
                        + String(rounds) + " poll rounds, " + String(elapsed) + " ms")
    }
}
