import Loop
import Wire

/// Counters of the relay, for logs and for `--metrics` (Prometheus text format).
/// Reasons are few and fixed, so counters by reason are short lists searched by
/// name (no String hashing in the binary).
final class RelayStats {
    var bytesUp: UInt64 = 0        // forward -> device
    var bytesDown: UInt64 = 0      // device -> forward
    var streamsOpened: UInt64 = 0
    var sniBytesIn: UInt64 = 0
    var sniBytesOut: UInt64 = 0
    var admitted: UInt64 = 0
    /// Of those, admitted on a resume credential (no public-key operation).
    var admittedResumed: UInt64 = 0
    /// Streams refused, by reason.
    var refusals: [(String, UInt64)] = []
    /// Connections that did not become tunnels, by reason (TLS, preamble, hello, admission).
    var handshakeFailures: [(String, UInt64)] = []
    /// Connections closed at a limit, and public SNI connections that could not be routed.
    var drops: [(String, UInt64)] = []

    static func bump(_ list: inout [(String, UInt64)], _ reason: String) {
        for i in 0..<list.count where Text.equal(list[i].0, reason) {
            list[i].1 += 1
            return
        }
        list.append((reason, 1))
    }
}

/// `--metrics ADDR:PORT`: a minimal HTTP/1.1 endpoint that answers `GET /metrics`
/// and closes. Requests are read within `Limits.metricsTimeoutMs` and
/// `Preamble.maxHead` bytes; at most `Limits.metricsMaxConnections` at once.
final class MetricsConn {
    let fd: Int32
    var request: [UInt8] = []
    var reply: [UInt8] = []
    var sent = 0
    let deadline: Instant
    var done = false
    /// Its place among the scrapes served at once (left when the connection is dropped).
    let ticket: Gate.Ticket
    var reg = Registration()
    /// Its token's serial (the list is short: `Limits.metricsMaxConnections`).
    var serial: UInt64 = 0

    init(fd: Int32, ticket: Gate.Ticket, now: Instant) {
        self.fd = fd
        self.ticket = ticket
        deadline = now.adding(ms: Limits.metricsTimeoutMs)
    }

    deinit { Socket.close(fd) }

    /// Reads what is there; true once the request head is complete (or hopeless).
    func read() -> Bool {
        var buf = [UInt8](repeating: 0, count: 1024)
        while request.count < Preamble.maxHead {
            switch buf.withUnsafeMutableBytes({ Socket.read(fd, into: $0) }) {
            case .done(let n): request += buf[0..<n]
            case .wouldBlock: return request.withUnsafeBytes { Preamble.headEnd($0) != nil }
            case .eof, .failed:
                done = true
                return true
            }
        }
        return true
    }

    func write() {
        while sent < reply.count {
            let r = reply.withUnsafeBytes { Socket.write(fd, UnsafeRawBufferPointer(rebasing: $0[sent...])) }
            guard case .done(let n) = r else {
                if case .wouldBlock = r { return }
                done = true
                return
            }
            sent += n
        }
        done = true
    }

    static func response(_ status: String, _ body: String) -> [UInt8] {
        Array(("HTTP/1.1 " + status + "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: "
               + String(body.utf8.count) + "\r\nConnection: close\r\n\r\n" + body).utf8)
    }

    /// "GET /metrics " at the start of the request line.
    var wantsMetrics: Bool { request.starts(with: Array("GET /metrics ".utf8)) || request.starts(with: Array("GET /metrics?".utf8)) }
}

/// What `--metrics` shows, taken from the core in one pass (`RelayCore.snapshot`):
/// rendering never reaches into the relay's tables.
struct RelaySnapshot {
    var reverseTunnels = 0
    var forwardTunnels = 0
    var streams = 0
    var pendingHandshakes = 0
    var sniConnections = 0
    var poolInUse = 0
    var poolLimit = 0
    /// Bytes the pool's buffers hold now (a buffer grows with its stream's window).
    var poolCommitted = 0
    var blocksLent = 0
    var blocksSpare = 0
    let stats: RelayStats
}

extension RelayCore {
    func snapshot() -> RelaySnapshot {
        var s = RelaySnapshot(stats: stats)
        for (_, c) in conns where c.phase.isReady {
            if c.role == .reverse { s.reverseTunnels += 1 } else { s.forwardTunnels += 1; s.streams += c.joins.count }
            s.streams += c.sniStreams.count
        }
        s.pendingHandshakes = pending.count
        s.sniConnections = sniConns.count
        s.poolInUse = pool.inUse
        s.poolLimit = pool.limit
        s.poolCommitted = pool.committed
        s.blocksLent = blocks.lent
        s.blocksSpare = blocks.spareCount
        return s
    }
}

extension Relay {
    static func renderMetrics(_ s: RelaySnapshot) -> String {
        let stats = s.stats
        var o = PromText()
        o.metric("tunnels", "gauge", "Agents with a tunnel up, by role.")
        o.line("tunnels", "role=\"reverse\"", UInt64(s.reverseTunnels))
        o.line("tunnels", "role=\"forward\"", UInt64(s.forwardTunnels))
        o.single("pending_handshakes", "gauge", "Connections in TLS, preamble or hello.", UInt64(s.pendingHandshakes))
        o.single("streams", "gauge", "Streams joined through the relay (including SNI-routed connections).", UInt64(s.streams))
        o.single("streams_opened_total", "counter", "Streams joined since start.", stats.streamsOpened)
        o.metric("stream_bytes_total", "counter", "Stream bytes moved, forward to device (up) and back (down).")
        o.line("stream_bytes_total", "direction=\"up\"", stats.bytesUp)
        o.line("stream_bytes_total", "direction=\"down\"", stats.bytesDown)
        o.metric("sni_bytes_total", "counter", "Bytes of SNI-routed public connections, from (in) and to (out) the clients.")
        o.line("sni_bytes_total", "direction=\"in\"", stats.sniBytesIn)
        o.line("sni_bytes_total", "direction=\"out\"", stats.sniBytesOut)
        o.single("sni_connections", "gauge", "Public connections on the SNI listener.", UInt64(s.sniConnections))
        o.single("admitted_total", "counter", "Agents admitted.", stats.admitted)
        o.metric("admissions_total", "counter", "Agents admitted, by kind: full hello, or resumed with a resume credential.")
        o.line("admissions_total", "kind=\"full\"", stats.admitted - stats.admittedResumed)
        o.line("admissions_total", "kind=\"resumed\"", stats.admittedResumed)
        o.metric("refusals_total", "counter", "Streams refused, by reason.")
        o.reasons("refusals_total", stats.refusals)
        o.metric("handshake_failures_total", "counter", "Connections that did not become tunnels, by reason.")
        o.reasons("handshake_failures_total", stats.handshakeFailures)
        o.metric("drops_total", "counter", "Connections dropped at a limit or not routable, by reason.")
        o.reasons("drops_total", stats.drops)
        o.metric("buffer_pool_buffers", "gauge", "Stream buffers in use and the pool's limit.")
        o.line("buffer_pool_buffers", "state=\"in_use\"", UInt64(s.poolInUse))
        o.line("buffer_pool_buffers", "state=\"limit\"", UInt64(s.poolLimit))
        o.single("buffer_pool_bytes", "gauge", "Bytes of stream windows granted (buffers in use, grown on long paths).",
                 UInt64(s.poolCommitted))
        o.metric("tunnel_buffers", "gauge", "Record buffers and frame queues: lent to tunnels moving bytes, and spare (an idle tunnel holds none).")
        o.line("tunnel_buffers", "state=\"lent\"", UInt64(s.blocksLent))
        o.line("tunnel_buffers", "state=\"spare\"", UInt64(s.blocksSpare))
        return o.text
    }
}

/// Prometheus text format, built one sample at a time (kept out of line: the relay's
/// metrics are many calls of these two).
struct PromText {
    var text = ""

    @inline(never)
    mutating func metric(_ name: String, _ type: String, _ help: String) {
        text += "# HELP agent_relay_"
        text += name
        text += " "
        text += help
        text += "\n# TYPE agent_relay_"
        text += name
        text += " "
        text += type
        text += "\n"
    }

    @inline(never)
    mutating func single(_ name: String, _ type: String, _ help: String, _ v: UInt64) {
        metric(name, type, help)
        line(name, "", v)
    }

    @inline(never)
    mutating func reasons(_ name: String, _ counts: [(String, UInt64)]) {
        for (r, v) in counts { line(name, "reason=\"" + r + "\"", v) }
    }

    @inline(never)
    mutating func line(_ name: String, _ labels: String, _ v: UInt64) {
        text += "agent_relay_"
        text += name
        if !labels.utf8.isEmpty {
            text += "{"
            text += labels
            text += "}"
        }
        text += " "
        text += String(v)
        text += "\n"
    }
}
