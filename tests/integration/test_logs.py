"""Logs (issue 7): one line per event, `time level event key=value...`, and no key,
token or secret ever written, even at debug level."""
import re
import socket

from conftest import HOST, transfer

LINE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug) [a-z_]+( [a-z_]+=("[^"]*"|\S+))*$')


def test_no_secrets_in_logs_and_one_line_per_event(net):
    echo = net.echo()
    secret = net.path("enroll.secret")
    dev = net.keygen("dev.pem")
    op = net.keygen("op.pem")
    token_dev = net.run("token", "--secret", secret, "--device", dev).stdout.strip()
    token_op = net.run("token", "--secret", secret, "--role", "operator", "--device", op).stdout.strip()
    relay = net.relay("--enroll-secret", secret, "--log-level", "debug")
    rev = net.reverse("dev.pem", "--token", token_dev, "--authorized-keys", net.authorize(op), "--log-level", "debug")
    fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port), "--token", token_op, "--log-level", "debug")
    assert transfer(fwd.port, b"hello" * 100) == b"hello" * 100
    # a refused token and a garbage connection produce their own lines
    net.keygen("bad.pem")
    bad = net.reverse("bad.pem", "--token", token_dev, "--authorize-any", name="bad", wait=False)
    relay.wait_log(r"agent_denied .*reason=token_wrong_device")
    g = socket.create_connection((HOST, net.relay_port), timeout=5)
    g.sendall(b"\x00" * 64)
    g.close()
    secrets = [open(secret).read().strip(), token_dev, token_op]
    for pem in ("dev.pem", "op.pem", "bad.pem", "relay-state/relay-key.pem"):
        body = "".join(l for l in open(net.path(pem)) if not l.startswith("-----"))
        secrets += [body.replace("\n", "")[:40]]
    for p in (relay, rev, fwd, bad):
        log = p.log()
        assert log, p.name
        for s in secrets:
            assert s not in log, (p.name, s[:12])
            assert s[:24] not in log, (p.name, s[:12])
        for line in log.splitlines():
            assert LINE.match(line), (p.name, line)
