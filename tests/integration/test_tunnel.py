"""The tunnel (issue 3): relay, reverse and forward as real processes on 127.0.0.1."""
import os
import re
import socket
import threading
import time

import pytest

from conftest import HOST, free_port, sha, transfer


@pytest.mark.parametrize("size", [0, 1, 1 << 20, 64 << 20])
def test_echo_sizes(tunnel, size):
    data = os.urandom(size)
    got = transfer(tunnel["fwd"].port, data, timeout=120)
    assert len(got) == size
    assert sha(got) == sha(data)


def test_hundred_concurrent_streams(tunnel):
    # One stream first: until the device has authorized an operator once, it lets that
    # operator have only 8 streams in their end-to-end handshake at once (review finding 4,
    # docs/LIMITS.md); once authorized, a burst of 100 goes through.
    assert transfer(tunnel["fwd"].port, b"warm-up") == b"warm-up"
    results = {}

    def one(i):
        data = os.urandom(50_000 + i)
        got = transfer(tunnel["fwd"].port, data, timeout=60)
        results[i] = sha(got) == sha(data) and len(got) == len(data)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert len(results) == 100
    assert all(results.values())


def test_half_close_reply_still_arrives(net):
    # The server reads until the client's EOF, and only then replies.
    echo = net.echo(reply_after_eof=True)
    net.relay("--open-enrollment")
    dev = net.keygen("dev.pem")
    op = net.keygen("op.pem")
    net.reverse("dev.pem", "--authorized-keys", net.authorize(op))
    fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port))
    data = b"request after which the client half-closes\n" * 1000
    got = transfer(fwd.port, data)
    assert got == data
    assert echo.received == [data]


def test_target_outside_allow_is_refused(net):
    echo = net.echo()
    net.relay("--open-enrollment")
    dev = net.keygen("dev.pem")
    op = net.keygen("op.pem")
    rev = net.reverse("dev.pem", "--authorized-keys", net.authorize(op), "--allow", "127.0.0.1:1")
    fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port))
    c = socket.create_connection((HOST, fwd.port), timeout=10)
    c.settimeout(10)
    assert c.recv(100) == b""  # a clean close (EOF), not a reset
    c.close()
    rev.wait_log(r"target_refused .*reason=target_not_allowed")
    fwd.wait_log(r"stream_refused .*reason=target_not_allowed")
    assert echo.connections == 0


def test_default_allow_is_loopback_only(net):
    net.relay("--open-enrollment")
    dev = net.keygen("dev.pem")
    op = net.keygen("op.pem")
    rev = net.reverse("dev.pem", "--authorized-keys", net.authorize(op))
    # A non-loopback address: refused before any connect is tried (nothing is sent there).
    fwd = net.forward("op.pem", dev, "192.0.2.1:80")
    c = socket.create_connection((HOST, fwd.port), timeout=10)
    c.settimeout(10)
    assert c.recv(100) == b""
    rev.wait_log(r"target_refused .*reason=target_not_allowed")


def test_unknown_device(net):
    net.relay("--open-enrollment")
    op = net.keygen("op.pem")
    ghost = net.keygen("ghost.pem")  # never connects
    fwd = net.forward("op.pem", ghost, "127.0.0.1:22")
    c = socket.create_connection((HOST, fwd.port), timeout=10)
    c.settimeout(10)
    assert c.recv(100) == b""
    fwd.wait_log(r"stream_refused .*reason=no_such_device")


def test_wrong_relay_pin(net):
    net.relay("--open-enrollment")
    net.keygen("dev.pem")
    wrong = "sha256:" + "00" * 32
    rev = net.reverse("dev.pem", "--authorize-any", pin=wrong, wait=False)
    rev.wait_log(r"relay_unreachable .*relay key does not match --relay-pin")
    assert "tunnel_up" not in rev.log()
    assert rev.alive()  # it keeps retrying (a device must not give up)


def test_unenrolled_key_without_token_is_refused(net):
    relay = net.relay()  # no --open-enrollment, no secret
    net.keygen("dev.pem")
    rev = net.reverse("dev.pem", "--authorize-any", wait=False)
    rev.wait_log(r"relay_unreachable .*relay refused this agent")
    relay.wait_log(r"agent_denied .*reason=not_enrolled")
    assert "tunnel_up" not in rev.log()


def test_token_enrollment_and_restart_keeps_registry(net):
    secret = net.path("enroll.secret")
    dev = net.keygen("dev.pem")
    token = net.run("token", "--secret", secret, "--device", dev).stdout.strip()
    assert token.startswith("at2.")
    relay = net.relay("--enroll-secret", secret)
    rev = net.reverse("dev.pem", "--authorize-any", "--token", token)
    relay.wait_log(r"agent_admitted id=%s role=reverse via=token enrolled=yes" % dev)
    assert dev in net.registry()
    # Restart the relay on the same port and state, with no secret at all: the key alone is enough now.
    relay.stop()
    rev.wait_log(r"tunnel_down", timeout=10)
    relay2 = net.relay(name="relay2")
    rev.wait_log(r"tunnel_up", count=2, timeout=15)
    relay2.wait_log(r"agent_admitted id=%s role=reverse via=token" % dev)
    assert "enrolled=yes" not in relay2.log()


def test_token_for_another_device_is_refused(net):
    secret = net.path("enroll.secret")
    other = net.keygen("other.pem")
    net.keygen("dev.pem")
    token = net.run("token", "--secret", secret, "--device", other).stdout.strip()
    relay = net.relay("--enroll-secret", secret)
    rev = net.reverse("dev.pem", "--authorize-any", "--token", token, wait=False)
    relay.wait_log(r"agent_denied .*reason=token_wrong_device")
    rev.wait_log(r"relay refused this agent")


def test_forward_maps_several_ports(net):
    echo = net.echo()
    echo2 = net.echo(reply_after_eof=True)
    net.relay("--open-enrollment")
    dev = net.keygen("dev.pem")
    op = net.keygen("op.pem")
    net.reverse("dev.pem", "--authorized-keys", net.authorize(op))
    p1, p2 = free_port(), free_port()
    fwd = net.start("forward", "--role", "forward", "--relay", "%s:%d" % (HOST, net.relay_port), "--relay-pin", net.pin,
                    "--identity", net.path("op.pem"),
                    "--map", "%s:%d=%s/%s:%d" % (HOST, p1, dev, HOST, echo.port),
                    "--map", "%s:%d=%s/%s:%d" % (HOST, p2, dev, HOST, echo2.port))
    fwd.wait_log(r"tunnel_up")
    assert fwd.log().count("forward_listening") == 2
    assert transfer(p1, b"one" * 1000) == b"one" * 1000
    assert transfer(p2, b"two" * 1000) == b"two" * 1000
    assert echo2.received == [b"two" * 1000]
