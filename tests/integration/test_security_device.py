"""Regression test for the device's finding of the outside security review (issue 12, finding
4): a forward the device does not authorize opened streams and never finished their end-to-end
handshake, holding every stream slot of the device (128), growing its memory from 620 kB to
7.4 MB, locking out the real operator, and flooding its log. The attacker here is a forward
written in Python (the real tunnel protocol, bench/idle_devices.py's hello code) that sends
OPENs and then nothing. Real processes on 127.0.0.1 only; bounded in time and count."""
import base64
import hashlib
import os
import re
import socket
import ssl
import struct
import sys
import threading
import time

from conftest import HOST, ROOT, transfer

sys.path.insert(0, os.path.join(ROOT, "bench"))
import idle_devices as proto  # noqa: E402  (frame, read_frame helpers and the hello's formats)

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography import x509  # noqa: E402

ROLE_FORWARD = 2
T_OPEN = 0x10


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            raise EOFError("relay closed")
        out += d
    return out


def read_frame(s):
    ftype, _flags, length, stream = struct.unpack(">BBHI", recv_exact(s, 8))
    return ftype, stream, recv_exact(s, length) if length else b""


class HoldingForward:
    """A forward that opens streams to a device and never sends a ClientHello on them."""

    def __init__(self, port, pin):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection((HOST, port), timeout=10)
        self.s = ctx.wrap_socket(raw)
        spki = x509.load_der_x509_certificate(self.s.getpeercert(binary_form=True)).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert "sha256:" + hashlib.sha256(spki).hexdigest() == pin
        self.s.sendall(proto.PREAMBLE)
        ftype, _, p = read_frame(self.s)
        assert ftype == proto.T_CHALLENGE
        vmin, vmax, nonce, relay_key, _sig = proto.parse_challenge(p)
        key, cert = proto.make_identity()
        unsigned = bytes([min(vmax, 1), ROLE_FORWARD, 1]) + proto.u16blob(cert) + proto.u16blob(b"") + bytes([0])
        signed = proto.AUTH_LABEL + nonce + hashlib.sha256(relay_key).digest() + hashlib.sha256(unsigned).digest()
        self.s.sendall(proto.frame(proto.T_AUTH, 0, unsigned + proto.u16blob(key.sign(signed, ec.ECDSA(hashes.SHA256())))))
        ftype, _, _ = read_frame(self.s)
        assert ftype == proto.T_WELCOME, ftype
        self.refused = 0
        self.accepted = 0
        self.stop = False
        threading.Thread(target=self.drain, daemon=True).start()

    def drain(self):
        try:
            while not self.stop:
                ftype, stream, p = read_frame(self.s)
                if ftype == 0x11:
                    self.accepted += 1
                elif ftype == 0x12:
                    self.refused += 1
                elif ftype == proto.T_PING:
                    self.s.sendall(proto.frame(proto.T_PONG, 0, p))
        except (OSError, EOFError, ValueError, ssl.SSLError):
            pass

    def open_streams(self, device_id, n):
        dev = base64.b32decode(device_id.upper())
        for i in range(n):
            payload = bytes([1]) + struct.pack(">I", 64 * 1024) + dev + bytes(20) + bytes([0]) + struct.pack(">H", 0)
            self.s.sendall(proto.frame(T_OPEN, 2 * i + 1, payload))

    def close(self):
        self.stop = True
        self.s.close()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_unauthorized_forward_cannot_hold_the_device(net):
    echo = net.echo()
    net.relay("--open-enrollment")
    dev = net.keygen("dev.pem")
    op = net.keygen("op.pem")
    rev = net.reverse("dev.pem", "--authorized-keys", net.authorize(op))
    fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port))
    time.sleep(0.5)
    before = rss_kib(rev.p.pid)

    attacker = HoldingForward(net.relay_port, net.pin)
    try:
        attacker.open_streams(dev, 130)
        deadline = time.time() + 10
        while attacker.accepted + attacker.refused < 130 and time.time() < deadline:
            time.sleep(0.05)
        # The device took at most its per-forward share before authorization; the rest were
        # refused before any TLS work.
        assert attacker.accepted <= 8, (attacker.accepted, attacker.refused)
        assert attacker.refused >= 122
        # The real operator still gets a stream while those are held.
        data = os.urandom(100_000)
        assert transfer(fwd.port, data) == data
        # Memory: a few held sessions, not 128 (7.4 MB in the review).
        assert rss_kib(rev.p.pid) - before < 2048, (before, rss_kib(rev.p.pid))
        # The held streams are dropped at the authorization timeout (5 s).
        rev.wait_log(r"stream_unauthorized .*reason=auth_timeout", timeout=10)
    finally:
        attacker.close()
    # The device's log stays bounded: refusals are rate-limited.
    assert len(re.findall(r"stream_refused|stream_failed|stream_unauthorized", rev.log())) <= 30, rev.log()[-3000:]


def test_a_slow_name_stalls_nothing_and_a_refused_name_is_not_looked_up(net):
    """Finding 10: the device resolved the operator's target name with a blocking getaddrinfo in
    its loop, before the allow-list check. Now the allow list comes first (a name no rule can
    allow is refused without a lookup) and names resolve in a thread of their own. The test
    hook AGENT_FAULT_SLOW_DNS makes every lookup take 3 s."""
    echo = net.echo()
    net.relay("--open-enrollment")
    dev = net.keygen("dev.pem")
    op = net.keygen("op.pem")
    rev = net.start("reverse", "--role", "reverse", "--relay", "%s:%d" % (HOST, net.relay_port), "--relay-pin", net.pin,
                    "--identity", net.path("dev.pem"), "--authorized-keys", net.authorize(op),
                    "--allow", "127.0.0.1:%d" % echo.port, env={"AGENT_FAULT_SLOW_DNS": "3000"})
    rev.wait_log(r"tunnel_up")
    by_name = net.forward("op.pem", dev, "localhost:%d" % echo.port, name="by-name")
    by_addr = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port), name="by-addr")
    refused = net.forward("op.pem", dev, "blocked.example:9", name="refused")

    got = {}

    def slow():
        t0 = time.time()
        got["data"] = transfer(by_name.port, b"x" * 50_000)
        got["seconds"] = time.time() - t0

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)  # the name is being resolved now
    t0 = time.time()
    assert transfer(by_addr.port, b"y" * 50_000) == b"y" * 50_000
    assert time.time() - t0 < 2.0, "a stream by address waited for another stream's lookup"
    t0 = time.time()
    try:
        assert transfer(refused.port, b"z") == b""
    except ConnectionResetError:
        pass  # refused: the forward resets or closes the client's connection
    assert time.time() - t0 < 2.0, "a name no rule allows was looked up"
    rev.wait_log(r"target_refused .*target=blocked.example:9 reason=target_not_allowed")
    t.join(30)
    assert got.get("data") == b"x" * 50_000
    assert got["seconds"] >= 2.5  # it did wait for its own (slow) lookup
