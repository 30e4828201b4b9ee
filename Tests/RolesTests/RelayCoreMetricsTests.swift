import Crypto
import Loop
import Mux
@testable import Roles
import Testing
import Wire

/// `/metrics` is rendered from a snapshot of the core (Metrics.swift), never from the
/// relay's tables: a relay with a device, a forward and one joined stream, in memory.
@Suite struct RelayCoreMetricsTests {
    @Test func theMetricsTextFollowsTheSnapshot() throws {
        let (w, dev, fwd) = try RelayCoreStreamTests.pair()
        let (fsid, dsid) = try RelayCoreStreamTests.join(w, dev, fwd)
        fwd.send(fsid, [UInt8](repeating: 7, count: 1000))
        w.settle()
        #expect(dev.receive(dsid).count == 1000)
        let snap = w.core.snapshot()
        #expect(snap.reverseTunnels == 1 && snap.forwardTunnels == 1 && snap.streams == 1)
        #expect(snap.poolInUse == 2)  // one buffer per leg of the join
        let text = Relay.renderMetrics(snap)
        for line in ["agent_relay_tunnels{role=\"reverse\"} 1", "agent_relay_tunnels{role=\"forward\"} 1",
                     "agent_relay_streams 1", "agent_relay_streams_opened_total 1",
                     "agent_relay_stream_bytes_total{direction=\"up\"} 1000", "agent_relay_admitted_total 2",
                     "agent_relay_pending_handshakes 0"] {
            #expect(text.contains(line + "\n"), "missing: \(line)")
        }
    }
}
