"""The relay's --metrics endpoint (issue 7), scraped with curl."""
import os
import re
import socket
import subprocess
import time

from conftest import HOST, free_port, transfer


def scrape(port, path="/metrics"):
    r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "--max-time", "5", "http://127.0.0.1:%d%s" % (port, path)],
                       capture_output=True, text=True, timeout=15)
    assert r.returncode == 0, r.stderr
    body, _, code = r.stdout.rpartition("\n")
    return int(code), body


def value(body, name, labels=""):
    m = re.search(r"^agent_relay_%s%s (\d+)$" % (re.escape(name), re.escape(labels)), body, re.M)
    return int(m.group(1)) if m else None


def test_metrics_scrape(net):
    echo = net.echo()
    mport = free_port()
    net.relay("--open-enrollment", "--metrics", "%s:%d" % (HOST, mport))
    code, body = scrape(mport)
    assert code == 200
    assert "# TYPE agent_relay_tunnels gauge" in body
    assert value(body, "tunnels", '{role="reverse"}') == 0

    dev = net.keygen("dev.pem")
    op = net.keygen("op.pem")
    net.reverse("dev.pem", "--authorized-keys", net.authorize(op))
    fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port))
    data = os.urandom(300_000)
    assert transfer(fwd.port, data) == data
    ghost = net.keygen("ghost.pem")
    fwd2 = net.forward("op.pem", ghost, "127.0.0.1:1", name="forward-ghost")
    c = socket.create_connection((HOST, fwd2.port), timeout=5)
    c.settimeout(5)
    c.recv(1)
    c.close()
    g = socket.create_connection((HOST, net.relay_port), timeout=5)
    g.sendall(b"this is not TLS\r\n" * 10)
    g.settimeout(5)
    try:
        g.recv(10)
    except OSError:
        pass
    g.close()
    fwd2.wait_log(r"stream_refused .*reason=no_such_device")

    code, body = scrape(mport)
    assert code == 200
    assert value(body, "tunnels", '{role="reverse"}') == 1
    assert value(body, "tunnels", '{role="forward"}') == 2
    assert value(body, "stream_bytes_total", '{direction="up"}') >= len(data)
    assert value(body, "stream_bytes_total", '{direction="down"}') >= len(data)
    assert value(body, "streams_opened_total") >= 1
    assert value(body, "admitted_total") == 3
    assert value(body, "refusals_total", '{reason="no_such_device"}') == 1
    assert value(body, "handshake_failures_total", '{reason="tls_failed"}') >= 1
    assert value(body, "buffer_pool_buffers", '{state="limit"}') > 0
    assert re.search(r"^agent_relay_buffer_pool_bytes \d+$", body, re.M)
    # Idle tunnels give their record buffers and frame queues back (issue 14): once the
    # stream is over, none is lent (a heartbeat may hold one for a moment), some are spare.
    for _ in range(20):
        if value(body, "tunnel_buffers", '{state="lent"}') == 0:
            break
        time.sleep(0.2)
        code, body = scrape(mport)
    assert value(body, "tunnel_buffers", '{state="lent"}') == 0
    assert value(body, "tunnel_buffers", '{state="spare"}') > 0
    # Every sample line is a valid Prometheus text line.
    for line in body.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or \
            re.match(r'^agent_relay_[a-z_]+(\{[a-z_]+="[a-z0-9_]+"\})? \d+$', line), line
    code, _ = scrape(mport, "/other")
    assert code == 404
