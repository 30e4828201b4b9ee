import Crypto
import Loop
import Mux
@testable import Roles
import Testing
import Wire

/// Public TLS connections routed by SNI hostname (RelaySNI.swift), in memory.
@Suite struct RelayCoreSNITests {
    static func device(_ w: World, host: String) throws -> TestAgent {
        let dev = try TestAgent(.reverse, relay: w.relay, hostnames: [host], now: w.now)
        w.admit(dev)
        #expect(dev.phase == .ready)
        return dev
    }

    @Test func aPublicConnectionIsRoutedByItsServerName() throws {
        let w = World(try RelayFixture(openEnrollment: true))
        let dev = try Self.device(w, host: "dev1.example.com")
        let other = try Self.device(w, host: "dev2.example.com")
        let client = try PublicClient(serverName: "DEV1.example.com", rng: w.relay.rng)
        let s = try #require(w.connectPublic(client))
        client.sendHello()
        let hello = client.relayEnd.inbox
        w.settle()
        let (dsid, open) = try #require(dev.takeOpen())
        #expect(open.target == .hostname("dev1.example.com"))
        #expect(open.caller == PeerAddress(ip: client.peer.ipBytes, port: client.peer.port))
        #expect(other.takeOpen() == nil)
        w.settle()
        // The ClientHello arrives on the device's stream as it was sent, then bytes go both ways.
        #expect(dev.receive(dsid) == hello)
        dev.send(dsid, Array("server hello".utf8))
        w.settle()
        #expect(client.stream.inbox == Array("server hello".utf8))
        #expect(w.core.snapshot().sniConnections == 1)
        #expect(w.core.snapshot().streams == 1)
        // The client leaves: FIN to the device; the device's FIN closes the connection.
        client.stream.shutdownWrite()
        w.settle()
        #expect(dev.saw { if case .finished(dsid) = $0 { return true } else { return false } })
        dev.mux.finish(dsid)
        w.settle()
        w.settle()
        #expect(s.closed)
        #expect(w.core.sniConns.isEmpty)
    }

    @Test func anUnknownServerNameIsRefused() throws {
        let w = World(try RelayFixture(openEnrollment: true))
        let dev = try Self.device(w, host: "dev1.example.com")
        let client = try PublicClient(serverName: "nobody.example.com", rng: w.relay.rng)
        let s = try #require(w.connectPublic(client))
        client.sendHello()
        w.settle()
        #expect(s.closed)
        #expect(client.relayEnd.isClosed)
        #expect(dev.takeOpen() == nil)
        #expect(w.core.stats.count(w.core.stats.drops, "sni_unknown_hostname") == 1)
    }

    @Test func aHostnameOfAnOfflineDeviceIsRefused() throws {
        let w = World(try RelayFixture(openEnrollment: true))
        let dev = try Self.device(w, host: "dev1.example.com")
        dev.link.close()
        w.settle()
        #expect(w.core.online[dev.id] == nil)
        let client = try PublicClient(serverName: "dev1.example.com", rng: w.relay.rng)
        let s = try #require(w.connectPublic(client))
        client.sendHello()
        w.settle()
        #expect(s.closed)
        #expect(w.core.stats.count(w.core.stats.drops, "sni_unknown_hostname") == 1)
    }

    @Test func aSilentPublicConnectionTimesOut() throws {
        let w = World(try RelayFixture(openEnrollment: true))
        let client = try PublicClient(serverName: "dev1.example.com", rng: w.relay.rng)
        let s = try #require(w.connectPublic(client))
        w.advance(ms: Limits.sniHelloTimeoutMs)
        #expect(s.closed)
        #expect(w.core.stats.count(w.core.stats.drops, "sni_hello_timeout") == 1)
        #expect(w.core.sniPending.count == 0 && w.core.sniOpen.count == 0)
    }
}
