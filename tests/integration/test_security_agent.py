"""Issue 12, agent side of the agent <-> relay link: findings 6, 7 and 10 (token file).

Real agent processes on 127.0.0.1 (conftest.Net), certificates made by openssl from a
test CA, and for finding 7 a TLS interceptor in a thread: it holds a certificate from
the agent's --ca for the relay's address and passes the plaintext on to the real relay.
"""
import os
import re
import select
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import AGENT, HOST, free_port
from test_sni_transport import make_ca, openssl


def make_cert(d, ca, name, san):
    """A P-256 key and a certificate from `ca` with subjectAltName `san` (openssl syntax)."""
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", name + ".key", cwd=d)
    os.chmod(os.path.join(d, name + ".key"), 0o600)
    openssl("req", "-new", "-key", name + ".key", "-subj", "/CN=" + name, "-out", name + ".csr", cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                "extendedKeyUsage=serverAuth\n" % san)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial",
            "-days", "2", "-extfile", name + ".ext", "-out", name + ".pem", cwd=d)
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


def pin_of(key):
    """sha256:<hex> of a key file's SubjectPublicKeyInfo (what --relay-pin names)."""
    der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"], capture_output=True,
                         check=True, timeout=30).stdout
    import hashlib
    return "sha256:" + hashlib.sha256(der).hexdigest()


def agent_with_ca(net, name, ca, *extra, relay=None):
    """A reverse that trusts the relay by --ca (and whatever `extra` adds)."""
    return net.start(name, "--role", "reverse", "--relay", relay or "%s:%d" % (HOST, net.relay_port), "--ca", ca,
                     "--identity", net.path(name + ".pem"), "--authorize-any", *extra)


def relay_with_cert(net, cert, key, name="relay"):
    return net.relay("--open-enrollment", "--cert", cert, "--key", key, name=name, state=name + "-state",
                     port=free_port())


# -- Finding 6: --ca with an IP literal checked no name at all -----------------------------

def test_ca_and_ip_literal_need_the_ip_in_the_certificate(net):
    d = net.dir
    make_ca(d, "relay-ca")
    ca = os.path.join(d, "relay-ca.pem")
    cert, key = make_cert(d, os.path.join(d, "relay-ca"), "noip", "DNS:relay.test")
    relay = relay_with_cert(net, cert, key)
    bad = agent_with_ca(net, "dev-noip", ca)
    bad.wait_log(r"relay_unreachable .*relay certificate does not name 127\.0\.0\.1")
    time.sleep(0.3)
    assert "tunnel_up" not in bad.log()
    # Refused right after TLS: the relay never got as far as an AUTH.
    assert not re.search(r"agent_admitted|agent_denied", relay.log()), relay.log()[-2000:]

    # The same CA, a certificate that lists the address: admitted.
    cert2, key2 = make_cert(d, os.path.join(d, "relay-ca"), "withip", "DNS:relay.test,IP:127.0.0.1")
    relay2 = relay_with_cert(net, cert2, key2, name="relay2")
    good = agent_with_ca(net, "dev-ip", ca)
    good.wait_log(r"tunnel_up")
    relay2.wait_log(r"agent_admitted")

    # An address certificate for another address is no better than none.
    cert3, key3 = make_cert(d, os.path.join(d, "relay-ca"), "otherip", "IP:127.0.0.2")
    relay_with_cert(net, cert3, key3, name="relay3")
    other = agent_with_ca(net, "dev-otherip", ca)
    other.wait_log(r"relay_unreachable .*relay certificate does not name 127\.0\.0\.1")
    assert "tunnel_up" not in other.log()


def test_ca_and_dns_name_check_the_name(net):
    """With a DNS name mbedTLS checks it (the agent sets the host name)."""
    d = net.dir
    make_ca(d, "relay-ca")
    ca = os.path.join(d, "relay-ca.pem")
    cert, key = make_cert(d, os.path.join(d, "relay-ca"), "wrongname", "DNS:other.test")
    relay_with_cert(net, cert, key)
    bad = agent_with_ca(net, "dev-wrong", ca, relay="localhost:%d" % net.relay_port)
    bad.wait_log(r"relay_unreachable .*TLS handshake with localhost:\d+ failed")
    cert2, key2 = make_cert(d, os.path.join(d, "relay-ca"), "rightname", "DNS:localhost")
    relay_with_cert(net, cert2, key2, name="relay2")
    good = agent_with_ca(net, "dev-right", ca, relay="localhost:%d" % net.relay_port)
    good.wait_log(r"tunnel_up")
    assert "tunnel_up" not in bad.log()


# -- Finding 7: with --ca and --relay-pin, the pin was not tied to the TLS connection ---------

def test_ca_plus_pin_in_raw_mode_checks_the_tls_key(net):
    """A relay with a CA certificate for key K1, an agent pinned to K2: refused at TLS
    (before the fix: TLS passed and only the hello's pin check refused it)."""
    d = net.dir
    make_ca(d, "relay-ca")
    ca = os.path.join(d, "relay-ca.pem")
    cert, key = make_cert(d, os.path.join(d, "relay-ca"), "k1", "IP:127.0.0.1")
    _, k2 = make_cert(d, os.path.join(d, "relay-ca"), "k2", "IP:127.0.0.1")
    relay = relay_with_cert(net, cert, key)
    assert net.pin == pin_of(key)
    bad = agent_with_ca(net, "dev", ca, "--relay-pin", pin_of(k2))
    bad.wait_log(r"relay_unreachable .*relay key does not match --relay-pin \(its TLS certificate's key is %s\)"
                 % re.escape(net.pin))
    assert not re.search(r"agent_admitted|agent_denied", relay.log())
    # The right pin with the same CA: admitted.
    good = agent_with_ca(net, "dev2", ca, "--relay-pin", net.pin)
    good.wait_log(r"tunnel_up")


class Interceptor:
    """Holds a certificate the agent's --ca accepts, terminates the agent's TLS and passes
    the plaintext to the real relay over a TLS connection of its own (a man in the middle
    with a mis-issued certificate). Counts the plaintext bytes it reads from agents."""

    def __init__(self, cert, key, relay_port):
        self.server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server.load_cert_chain(cert, key)
        self.client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.client.check_hostname = False
        self.client.verify_mode = ssl.CERT_NONE
        self.relay_port = relay_port
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.from_agents = 0
        self.accepted = 0
        self.stopped = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, raw):
        raw.settimeout(10)
        self.accepted += 1
        try:
            a = self.server.wrap_socket(raw, server_side=True)
            r = self.client.wrap_socket(socket.create_connection((HOST, self.relay_port), timeout=10))
            deadline = time.time() + 20
            while time.time() < deadline and not self.stopped:
                ready, _, _ = select.select([a, r], [], [], 0.2)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is a:
                        self.from_agents += len(data)
                        r.sendall(data)
                    else:
                        a.sendall(data)
        except (OSError, ssl.SSLError):
            pass
        finally:
            raw.close()

    def close(self):
        self.stopped = True
        self.sock.close()


def test_an_interceptor_with_a_ca_certificate_is_refused(net):
    """Before the fix the agent reached tunnel_up through the interceptor, which read the
    tunnel's frames; now it stops after TLS and sends the interceptor nothing."""
    d = net.dir
    make_ca(d, "relay-ca")
    ca = os.path.join(d, "relay-ca.pem")
    net.relay("--open-enrollment")  # the real relay: its own self-signed certificate, pin net.pin
    cert, key = make_cert(d, os.path.join(d, "relay-ca"), "mitm", "IP:127.0.0.1")
    mitm = Interceptor(cert, key, net.relay_port)
    try:
        dev = agent_with_ca(net, "dev", ca, "--relay-pin", net.pin, relay="%s:%d" % (HOST, mitm.port))
        dev.wait_log(r"relay_unreachable .*relay key does not match --relay-pin \(its TLS certificate's key is %s\)"
                     % re.escape(pin_of(key)))
        time.sleep(0.5)
        # The agent saw the interceptor's certificate (the log names its key) and stopped
        # there: with TLS 1.3 it checks the key before its own Finished goes out.
        assert mitm.accepted >= 1
        assert mitm.from_agents == 0
        assert "tunnel_up" not in dev.log()
    finally:
        mitm.close()


# -- Finding 10: --token on the command line is visible in /proc/*/cmdline ------------------

def run(*args, cwd=None, timeout=20):
    return subprocess.run([AGENT] + list(args), capture_output=True, text=True, timeout=timeout, cwd=cwd)


def write_secret_file(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


def test_enrollment_with_a_token_file(net):
    secret = net.path("enroll.secret")
    token = net.run("token", "--secret", secret).stdout.strip()
    assert token.startswith("at2.")
    relay = net.relay("--enroll-secret", secret)
    dev = net.keygen("dev.pem")
    path = write_secret_file(net.path("dev.token"), token + "\n")
    rev = net.reverse("dev.pem", "--token-file", path, "--authorize-any")
    relay.wait_log(r"agent_admitted id=%s .*enrolled=yes" % dev)
    with open("/proc/%d/cmdline" % rev.p.pid, "rb") as f:
        assert token.encode() not in f.read()
    # The token is never logged.
    assert token not in rev.log() and token not in relay.log()

    # And from a --config file (forward).
    op = net.keygen("op.pem")
    token2 = net.run("token", "--secret", secret, "--role", "operator").stdout.strip()
    path2 = write_secret_file(net.path("op.token"), token2 + "\r\n  \n")
    conf = net.path("fwd.conf")
    with open(conf, "w") as f:
        f.write("token-file = %s\n" % path2)
    net.forward("op.pem", dev, "%s:1" % HOST, "--config", conf)
    relay.wait_log(r"agent_admitted id=%s .*enrolled=yes" % op)


BASE = ["--relay", "127.0.0.1:1", "--relay-pin", "sha256:" + "0" * 64]


@pytest.mark.parametrize("role", ["reverse", "forward"])
def test_token_and_token_file_are_mutually_exclusive(role, tmp_path):
    path = write_secret_file(str(tmp_path / "t"), "at2.AAAA.BBBB\n")
    extra = ["--listen", "127.0.0.1:1", "--device", "A" * 32, "--target", "127.0.0.1:22"] if role == "forward" else []
    r = run("--role", role, *BASE, "--identity", str(tmp_path / "k.pem"), "--token", "at2.x.y",
            "--token-file", path, *extra, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "--token-file" in lines[0] and "--token" in lines[0], r.stderr
    # One on the command line, the other in --config: refused the same way.
    conf = tmp_path / "a.conf"
    conf.write_text("token = at2.x.y\n")
    r = run("--role", role, *BASE, "--identity", str(tmp_path / "k.pem"), "--config", str(conf),
            "--token-file", path, *extra, cwd=tmp_path)
    assert r.returncode == 2 and "--token-file" in r.stderr, r.stderr


@pytest.mark.parametrize("content,why", [
    ("", "empty"),
    ("\n \n", "empty"),
    ("hunter2-not-a-token\n", "not an enrollment token"),
    ("at2.AAAA.BBBB\nat2.CCCC.DDDD\n", "not an enrollment token"),
])
def test_bad_token_files_are_refused_without_their_content(content, why, tmp_path):
    path = write_secret_file(str(tmp_path / "t"), content)
    r = run("--role", "reverse", *BASE, "--identity", str(tmp_path / "k.pem"), "--token-file", path, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert path in r.stderr and why in r.stderr, r.stderr
    for word in content.split():
        assert word not in r.stderr
    r = run("--role", "reverse", *BASE, "--identity", str(tmp_path / "k.pem"), "--token-file",
            str(tmp_path / "missing"), cwd=tmp_path)
    assert r.returncode == 2 and "missing" in r.stderr
