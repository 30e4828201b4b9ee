"""Session CA (agent ca init / ca issue, relay --client-ca, reverse --authorized-ca) and
enrollment-token refusals (issue 6); certificate roles (security review finding 2) and
token format version 2 (finding 8). Real processes on 127.0.0.1, bounded in time."""
import base64
import datetime
import hashlib
import hmac
import struct
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import time

import pytest

from conftest import HOST, connect_expect_close, free_port, sha, transfer

HOSTNAME = "dev1.example.test"
# The role OIDs (Sources/Crypto/CertificateRole.swift), as OpenSSL prints them.
OPERATOR_OID = "2.25.209763642877769909226523877133101633323"
DEVICE_OID = "2.25.256551682034857793048626531993918470044"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def ca_init(net, d="ca", *extra):
    r = net.run("ca", "init", "--dir", net.path(d), *extra)
    return r.stdout.strip()


def ca_issue(net, identity, name, out, *extra, d="ca", role="device"):
    r = net.run("ca", "issue", "--dir", net.path(d), "--identity", net.path(identity), "--name", name,
                "--role", role, "--out", net.path(out), *extra)
    return r.stdout.strip()


def one_line_error(r, *words):
    """Exit 2, nothing on stdout, exactly one line on stderr that contains every word."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


# ---------------------------------------------------------------- agent ca init / issue


def test_ca_init_creates_files_and_never_overwrites(net):
    ca_id = ca_init(net)
    d = net.path("ca")
    assert re.fullmatch(r"[a-z2-7]{32}", ca_id)
    assert mode(d) == 0o700
    assert mode(os.path.join(d, "ca-key.pem")) == 0o600
    assert mode(os.path.join(d, "ca.pem")) == 0o644
    assert not [f for f in os.listdir(d) if ".tmp-" in f]  # no temporary files left behind
    # The CA's ID is its key's, whether read from the key or from the certificate.
    assert net.run("id", "--identity", os.path.join(d, "ca-key.pem")).stdout.strip() == ca_id
    assert net.run("id", "--identity", os.path.join(d, "ca.pem")).stdout.strip() == ca_id
    before = (digest(os.path.join(d, "ca-key.pem")), digest(os.path.join(d, "ca.pem")))
    r = net.run("ca", "init", "--dir", d, check=False)
    one_line_error(r, "--dir", "ca-key.pem", "already exists")
    assert (digest(os.path.join(d, "ca-key.pem")), digest(os.path.join(d, "ca.pem"))) == before
    # A lone ca.pem is not overwritten either.
    os.makedirs(net.path("half"))
    with open(net.path("half/ca.pem"), "w") as f:
        f.write("keep me\n")
    r = net.run("ca", "init", "--dir", net.path("half"), check=False)
    one_line_error(r, "--dir", "ca.pem", "already exists")
    assert not os.path.exists(net.path("half/ca-key.pem"))
    with open(net.path("half/ca.pem")) as f:
        assert f.read() == "keep me\n"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_ca_certificates_as_openssl_sees_them(net):
    ca_init(net, "ca", "--name", "Fleet CA")
    dev = net.keygen("dev.pem")
    t0 = datetime.datetime.now(datetime.timezone.utc)
    assert ca_issue(net, "dev.pem", "dev1", "dev-cert.pem", "--hostname", HOSTNAME,
                    "--hostname", "other.example.test", "--days", "30") == dev

    def x509(path, *opts):
        return subprocess.run(["openssl", "x509", "-in", net.path(path), "-noout", *opts],
                              capture_output=True, text=True, timeout=20, check=True).stdout

    ca_text = x509("ca/ca.pem", "-text")
    assert "CA:TRUE" in ca_text and "Certificate Sign" in ca_text
    assert "Subject: CN = Fleet CA" in ca_text
    text = x509("dev-cert.pem", "-text")
    assert "Issuer: CN = Fleet CA" in text and "Subject: CN = dev1" in text
    assert "CA:FALSE" in text and "Digital Signature" in text
    assert "DNS:%s, DNS:other.example.test" % HOSTNAME in text
    # The role, as an extended key usage next to the standard TLS purposes.
    assert "X509v3 Extended Key Usage:" in text
    assert DEVICE_OID in text and OPERATOR_OID not in text
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in text
    net.keygen("op.pem")
    ca_issue(net, "op.pem", "alice", "op-cert.pem", role="operator")
    op_text = x509("op-cert.pem", "-text")
    assert OPERATOR_OID in op_text and DEVICE_OID not in op_text
    assert "X509v3 Extended Key Usage" not in ca_text  # the CA's own certificate has no role
    assert mode(net.path("dev-cert.pem")) == 0o644

    def date(opt):
        v = x509("dev-cert.pem", opt).strip().split("=", 1)[1]
        return datetime.datetime.strptime(v, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=datetime.timezone.utc)

    assert abs((t0 - date("-startdate")).total_seconds() - 3600) < 120
    assert abs((date("-enddate") - t0).total_seconds() - 30 * 86400) < 120
    ca_end = x509("ca/ca.pem", "-enddate").strip().split("=", 1)[1]
    assert str(t0.year + 10) in ca_end
    r = subprocess.run(["openssl", "verify", "-CAfile", net.path("ca/ca.pem"), net.path("dev-cert.pem")],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ids_stay_derived_from_keys(net):
    ca_init(net)
    dev = net.keygen("dev.pem")
    assert ca_issue(net, "dev.pem", "dev1", "dev-cert.pem") == dev
    assert net.run("id", "--identity", net.path("dev-cert.pem")).stdout.strip() == dev
    # Re-issuing from the certificate (not the key) certifies the same key: same ID.
    assert ca_issue(net, "dev-cert.pem", "dev1-renewed", "dev-cert2.pem", "--days", "7") == dev
    assert net.run("id", "--identity", net.path("dev-cert2.pem")).stdout.strip() == dev
    # A certificate may be replaced by a new one (it is not secret, and not a CA).
    assert ca_issue(net, "dev.pem", "dev1", "dev-cert.pem", "--hostname", HOSTNAME) == dev


def test_ca_issue_usage_errors(net):
    ca_init(net)
    net.keygen("dev.pem")
    base = ["ca", "issue", "--dir", net.path("ca"), "--identity", net.path("dev.pem"), "--name", "dev1",
            "--role", "device", "--out", net.path("out.pem")]

    def run(*args):
        return net.run(*args, check=False)

    def replace(flag, value):
        a = list(base)
        a[a.index(flag) + 1] = value
        return a

    one_line_error(run(*replace("--dir", net.path("nope"))), "--dir", "nope", "ca-key.pem")
    one_line_error(run(*replace("--name", "dev1,O=evil")), "--name", "dev1,O=evil")
    one_line_error(run(*replace("--name", "")), "--name")
    one_line_error(run(*base, "--hostname", "bad host!"), "--hostname", "bad host!")
    one_line_error(run(*base, "--hostname", "a" * 300), "--hostname")
    one_line_error(run(*base, *sum([["--hostname", "h%d.example.test" % i] for i in range(9)], [])),
                   "--hostname", "at most 8")
    one_line_error(run(*base, "--days", "0"), "--days")
    one_line_error(run(*base, "--days", "12x"), "--days")
    one_line_error(run(*base, "--days", "99999999999999999999999"), "--days")
    one_line_error(run(*replace("--identity", net.path("missing.pem"))), "--identity", "missing.pem")
    assert not os.path.exists(net.path("missing.pem"))  # never created by ca issue
    with open(net.path("garbage.pem"), "w") as f:
        f.write("not a key\n")
    one_line_error(run(*replace("--identity", net.path("garbage.pem"))), "--identity", "garbage.pem")
    one_line_error(run(*replace("--identity", net.path("ca/ca-key.pem"))), "--identity", "CA's own key")
    # The role is required and is operator or device; an operator claims no hostname.
    one_line_error(run(*replace("--role", "admin")), "--role", "admin", "operator or device")
    one_line_error(run(*replace("--role", "forward")), "--role")
    one_line_error(run(*replace("--role", "operator"), "--hostname", HOSTNAME), "--hostname", "--role device")
    for flag in ["--dir", "--identity", "--name", "--role", "--out"]:
        a = list(base)
        i = a.index(flag)
        del a[i:i + 2]
        one_line_error(run(*a), flag, "required")
    assert not os.path.exists(net.path("out.pem"))
    # --out never replaces a key or the CA's certificate.
    key_before = digest(net.path("dev.pem"))
    one_line_error(run(*replace("--out", net.path("dev.pem"))), "--out", "dev.pem", "not overwritten")
    assert digest(net.path("dev.pem")) == key_before
    ca_before = digest(net.path("ca/ca.pem"))
    one_line_error(run(*replace("--out", net.path("ca/ca.pem"))), "--out", "ca.pem", "not overwritten")
    assert digest(net.path("ca/ca.pem")) == ca_before
    # A certificate that is not the CA key's own is refused as a CA.
    ca_init(net, "ca2")
    shutil.copy(net.path("ca2/ca.pem"), net.path("ca/ca.pem"))
    one_line_error(run(*base), "--dir", "ca.pem", "not the CA certificate")
    one_line_error(run("ca", "frob"), "ca:")
    one_line_error(run("ca", "init"), "--dir", "required")
    one_line_error(run("ca", "init", "--dir", net.path("x"), "--name", "a/b"), "--name")
    assert not os.path.exists(net.path("x"))


# ---------------------------------------------------------------- a fleet with a session CA


@pytest.fixture
def fleet(net):
    """A session CA; a relay that trusts it (no token, no open enrollment); a device and an
    operator with certificates from it; the device admits operators by the CA alone."""
    echo = net.echo()
    ca_init(net)
    dev = net.keygen("dev.pem")
    op = net.keygen("op.pem")
    ca_issue(net, "dev.pem", "dev1", "dev-cert.pem")
    ca_issue(net, "op.pem", "alice", "op-cert.pem", role="operator")
    ca = net.path("ca/ca.pem")
    relay = net.relay("--client-ca", ca)
    rev = net.reverse("dev.pem", "--cert", net.path("dev-cert.pem"), "--authorized-ca", ca)
    fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port), "--cert", net.path("op-cert.pem"))
    return dict(net=net, echo=echo, dev=dev, op=op, relay=relay, rev=rev, fwd=fwd, ca=ca)


def test_session_ca_admits_device_and_operator_end_to_end(fleet):
    relay, rev, fwd = fleet["relay"], fleet["rev"], fleet["fwd"]
    relay.wait_log(r"agent_admitted id=%s role=reverse via=ca enrolled=yes" % fleet["dev"])
    relay.wait_log(r"agent_admitted id=%s role=forward via=ca enrolled=yes" % fleet["op"])
    data = os.urandom(1 << 20)
    got = transfer(fwd.port, data)
    assert sha(got) == sha(data)
    assert "stream_unauthorized" not in rev.log()
    assert "no_operators_authorized" not in rev.log()  # --authorized-ca alone is an authorization
    reg = fleet["net"].registry()
    assert re.search(r"^%s reverse \d+ ca " % fleet["dev"], reg, re.M)
    assert re.search(r"^%s forward \d+ ca " % fleet["op"], reg, re.M)


def test_friend_given_a_new_certificate_connects_without_restarts(fleet):
    net, relay, rev = fleet["net"], fleet["relay"], fleet["rev"]
    assert transfer(fleet["fwd"].port, b"first") == b"first"
    # Later, with everything running: a friend's key, and a certificate for it.
    friend = net.keygen("friend.pem")
    assert ca_issue(net, "friend.pem", "bob", "friend-cert.pem", "--days", "1", role="operator") == friend
    fr = net.forward("friend.pem", fleet["dev"], "%s:%d" % (HOST, fleet["echo"].port),
                     "--cert", net.path("friend-cert.pem"), name="friend")
    relay.wait_log(r"agent_admitted id=%s role=forward via=ca enrolled=yes" % friend)
    data = os.urandom(300_000)
    assert sha(transfer(fr.port, data)) == sha(data)
    # Nothing was restarted or reconnected.
    assert relay.alive() and rev.alive()
    assert len(re.findall(r"tunnel_up", rev.log())) == 1
    assert len(re.findall(r"relay_started", relay.log())) == 1
    assert transfer(fleet["fwd"].port, b"still here") == b"still here"


def test_certificate_from_another_ca_is_refused_by_the_relay(net):
    ca_init(net, "ca")
    ca_init(net, "rogue")
    net.keygen("dev.pem")
    ca_issue(net, "dev.pem", "dev1", "dev-cert.pem", d="rogue")
    relay = net.relay("--client-ca", net.path("ca/ca.pem"))
    rev = net.reverse("dev.pem", "--cert", net.path("dev-cert.pem"), "--authorize-any", wait=False)
    rev.wait_log(r"relay_unreachable .*relay refused this agent")
    relay.wait_log(r"agent_denied .*reason=not_enrolled_or_bad_ca")
    assert "tunnel_up" not in rev.log()
    assert "agent_admitted" not in relay.log()
    # A self-signed certificate (no --cert) is refused the same way.
    net.keygen("plain.pem")
    plain = net.reverse("plain.pem", "--authorize-any", name="plain", wait=False)
    plain.wait_log(r"relay refused this agent")
    relay.wait_log(r"agent_denied .*reason=not_enrolled_or_bad_ca", count=2)


def test_certificate_from_another_ca_is_refused_by_the_device(net):
    echo = net.echo()
    ca_init(net, "ca")
    ca_init(net, "rogue")
    dev = net.keygen("dev.pem")
    net.keygen("op.pem")
    net.keygen("mallory.pem")
    ca_issue(net, "dev.pem", "dev1", "dev-cert.pem")
    ca_issue(net, "op.pem", "alice", "op-cert.pem", role="operator")
    ca_issue(net, "mallory.pem", "alice", "mallory-cert.pem", d="rogue", role="operator")  # same name, wrong CA
    # The relay trusts both CAs (one file, two certificates): only the device decides here.
    both = net.path("both-cas.pem")
    with open(both, "w") as f:
        for d in ["ca", "rogue"]:
            with open(net.path(d + "/ca.pem")) as c:
                f.write(c.read())
    relay = net.relay("--client-ca", both)
    rev = net.reverse("dev.pem", "--cert", net.path("dev-cert.pem"), "--authorized-ca", net.path("ca/ca.pem"))
    bad = net.forward("mallory.pem", dev, "%s:%d" % (HOST, echo.port), "--cert", net.path("mallory-cert.pem"),
                      name="mallory")
    mallory = net.run("id", "--identity", net.path("mallory.pem")).stdout.strip()
    relay.wait_log(r"agent_admitted id=%s role=forward via=ca" % mallory)
    connect_expect_close(bad.port)
    rev.wait_log(r"stream_unauthorized .*forward=%s" % mallory)
    bad.wait_log(r"stream_refused .*reason=refused_by_device")
    assert echo.connections == 0
    # The operator with the device's CA still gets through.
    ok = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port), "--cert", net.path("op-cert.pem"), name="alice")
    assert transfer(ok.port, b"hello") == b"hello"


# ---------------------------------------------------------------- enrollment tokens


def flip_payload_char(token):
    prefix, payload, mac = token.split(".")
    i = len(payload) // 2
    c = "A" if payload[i] != "A" else "B"
    return ".".join([prefix, payload[:i] + c + payload[i + 1:], mac])


@pytest.mark.parametrize("case", ["expired", "tampered", "other_secret", "other_device", "garbage"])
def test_bad_token_is_refused(net, case):
    secret = net.path("enroll.secret")
    dev = net.keygen("dev.pem")
    other = net.keygen("other.pem")
    expect = {"expired": "token_expired", "tampered": "token_bad_signature",
              "other_secret": "token_bad_signature", "other_device": "token_wrong_device",
              "garbage": "token_malformed"}[case]
    if case == "expired":
        token = net.run("token", "--secret", secret, "--device", dev, "--valid", "1").stdout.strip()
        time.sleep(2.1)
    elif case == "tampered":
        token = flip_payload_char(net.run("token", "--secret", secret, "--device", dev).stdout.strip())
    elif case == "other_secret":
        net.run("token", "--secret", secret)  # creates the relay's secret
        token = net.run("token", "--secret", net.path("other.secret"), "--device", dev).stdout.strip()
    elif case == "other_device":
        token = net.run("token", "--secret", secret, "--device", other).stdout.strip()
    else:
        net.run("token", "--secret", secret)
        token = "at1.this-is-not-a-token"
    assert os.path.exists(secret)
    relay = net.relay("--enroll-secret", secret)
    rev = net.reverse("dev.pem", "--authorize-any", "--token", token, wait=False)
    relay.wait_log(r"agent_denied .*reason=%s" % expect)
    rev.wait_log(r"relay_unreachable .*relay refused this agent")
    assert "tunnel_up" not in rev.log()
    assert token not in relay.log() and token not in rev.log()  # tokens are never logged
    assert dev not in net.registry()


def test_token_with_hostname_registers_it(net):
    secret = net.path("enroll.secret")
    dev = net.keygen("dev.pem")
    echo = net.echo()
    token = net.run("token", "--secret", secret, "--device", dev, "--hostname", HOSTNAME).stdout.strip()
    relay = net.relay("--enroll-secret", secret, "--sni-listen", "%s:%d" % (HOST, free_port()))
    net.reverse("dev.pem", "--authorize-any", "--token", token, "--hostname", HOSTNAME,
                "--sni-target", "%s:%d" % (HOST, echo.port))
    relay.wait_log(r"agent_admitted id=%s role=reverse via=token enrolled=yes" % dev)
    assert re.search(r"^%s reverse \d+ token %s [0-9a-f]{16}$" % (dev, re.escape(HOSTNAME)), net.registry(), re.M)
    # Another device cannot claim it, even with a token that names it.
    net.keygen("dev2.pem")
    token2 = net.run("token", "--secret", secret, "--hostname", HOSTNAME).stdout.strip()
    rev2 = net.reverse("dev2.pem", "--authorize-any", "--token", token2, "--hostname", HOSTNAME,
                       "--sni-target", "%s:%d" % (HOST, echo.port), name="reverse2", wait=False)
    relay.wait_log(r"agent_denied .*reason=hostname_taken")
    rev2.wait_log(r"relay refused this agent")
    # A hostname the token does not grant is refused.
    net.keygen("dev3.pem")
    token3 = net.run("token", "--secret", secret).stdout.strip()
    rev3 = net.reverse("dev3.pem", "--authorize-any", "--token", token3, "--hostname", "dev3.example.test",
                       "--sni-target", "%s:%d" % (HOST, echo.port), name="reverse3", wait=False)
    relay.wait_log(r"agent_denied .*reason=hostname_not_granted")
    rev3.wait_log(r"relay refused this agent")


def test_ca_certificate_grants_its_hostnames(net):
    echo = net.echo()
    ca_init(net)
    dev = net.keygen("dev.pem")
    ca_issue(net, "dev.pem", "dev1", "dev-cert.pem", "--hostname", HOSTNAME)
    sni_port = free_port()
    relay = net.relay("--client-ca", net.path("ca/ca.pem"), "--sni-listen", "%s:%d" % (HOST, sni_port))
    net.reverse("dev.pem", "--cert", net.path("dev-cert.pem"), "--authorize-any", "--hostname", HOSTNAME,
                "--sni-target", "%s:%d" % (HOST, echo.port))
    relay.wait_log(r"agent_admitted id=%s role=reverse via=ca enrolled=yes" % dev)
    assert re.search(r"^%s reverse \d+ ca %s$" % (dev, re.escape(HOSTNAME)), net.registry(), re.M)
    # A TLS connection for that name reaches the device's --sni-target (here an echo server,
    # so the handshake itself fails: only the routing is checked).
    c = socket.create_connection((HOST, sni_port), timeout=10)
    try:
        ssl.create_default_context().wrap_socket(c, server_hostname=HOSTNAME)
    except (ssl.SSLError, OSError):
        pass
    finally:
        c.close()
    deadline = time.time() + 10
    while echo.connections == 0 and time.time() < deadline:
        time.sleep(0.05)
    assert echo.connections == 1
    # A certificate from the same CA without that name does not let another device take it,
    # and neither does one that lists it (the first device holds it).
    net.keygen("dev2.pem")
    ca_issue(net, "dev2.pem", "dev2", "dev2-cert.pem", "--hostname", "dev2.example.test")
    rev2 = net.reverse("dev2.pem", "--cert", net.path("dev2-cert.pem"), "--authorize-any", "--hostname", HOSTNAME,
                       "--sni-target", "%s:%d" % (HOST, echo.port), name="reverse2", wait=False)
    relay.wait_log(r"agent_denied .*reason=hostname_not_granted")
    rev2.wait_log(r"relay refused this agent")
    net.keygen("dev3.pem")
    ca_issue(net, "dev3.pem", "dev3", "dev3-cert.pem", "--hostname", HOSTNAME)
    rev3 = net.reverse("dev3.pem", "--cert", net.path("dev3-cert.pem"), "--authorize-any", "--hostname", HOSTNAME,
                       "--sni-target", "%s:%d" % (HOST, echo.port), name="reverse3", wait=False)
    relay.wait_log(r"agent_denied .*reason=hostname_taken")
    rev3.wait_log(r"relay refused this agent")


# ---------------------------------------------------------------- roles (security review, finding 2)


def test_device_certificate_is_not_an_operator_credential(net):
    """dev1's key and certificate, used as a forward towards dev2 (which trusts the fleet CA for
    operators), are refused by dev2; an operator certificate from the same CA works. Before
    certificates carried a role, this forward read dev2's loopback service."""
    echo = net.echo()
    ca_init(net)
    dev1 = net.keygen("dev1.pem")
    dev2 = net.keygen("dev2.pem")
    net.keygen("op.pem")
    ca_issue(net, "dev1.pem", "dev1", "dev1-cert.pem", role="device")
    ca_issue(net, "dev2.pem", "dev2", "dev2-cert.pem", role="device")
    ca_issue(net, "op.pem", "alice", "op-cert.pem", role="operator")
    ca = net.path("ca/ca.pem")
    # The relay admits any key: only the device decides here.
    net.relay("--open-enrollment")
    rev = net.reverse("dev2.pem", "--cert", net.path("dev2-cert.pem"), "--authorized-ca", ca)
    target = "%s:%d" % (HOST, echo.port)
    bad = net.forward("dev1.pem", dev2, target, "--cert", net.path("dev1-cert.pem"), name="dev1-as-operator")
    connect_expect_close(bad.port)
    rev.wait_log(r"stream_unauthorized .*forward=%s" % dev1)
    bad.wait_log(r"stream_refused .*reason=refused_by_device")
    assert echo.connections == 0
    if shutil.which("openssl"):
        # A certificate without a role (as every certificate issued before roles existed):
        # refused too, however valid its signature. Reissue such certificates with --role.
        net.keygen("old.pem")
        subprocess.run(["openssl", "req", "-new", "-key", net.path("old.pem"), "-subj", "/CN=old",
                        "-out", net.path("old.csr")], check=True, capture_output=True, timeout=20)
        subprocess.run(["openssl", "x509", "-req", "-in", net.path("old.csr"), "-CA", ca,
                        "-CAkey", net.path("ca/ca-key.pem"), "-CAcreateserial", "-days", "1",
                        "-out", net.path("old-cert.pem")], check=True, capture_output=True, timeout=20)
        old = net.forward("old.pem", dev2, target, "--cert", net.path("old-cert.pem"), name="old")
        connect_expect_close(old.port)
        rev.wait_log(r"stream_unauthorized .*forward=%s" % net.run("id", "--identity", net.path("old.pem")).stdout.strip())
        assert echo.connections == 0
    ok = net.forward("op.pem", dev2, target, "--cert", net.path("op-cert.pem"), name="alice")
    assert transfer(ok.port, b"hello") == b"hello"
    assert echo.connections == 1


# ---------------------------------------------------------------- token format v2 (finding 8)


def token_payload(token):
    prefix, payload, mac = token.split(".")
    assert prefix == "at2"
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))


def test_token_role_and_uses_flags(net):
    secret = net.path("enroll.secret")
    dev = net.keygen("dev.pem")

    def tok(*args):
        return token_payload(net.run("token", "--secret", secret, *args).stdout.strip())

    # version 2 | role | expires u64 | flags | (device id | uses u16) | hostnames | nonce
    p = tok()
    assert p[0] == 2 and p[1] == 1 and p[10] == 0 and struct.unpack(">H", p[11:13])[0] == 1  # device, 1 use
    p = tok("--role", "operator", "--uses", "7")
    assert p[1] == 2 and p[10] == 0 and struct.unpack(">H", p[11:13])[0] == 7
    p = tok("--role", "device", "--uses", "1000", "--hostname", HOSTNAME)
    assert p[1] == 1 and struct.unpack(">H", p[11:13])[0] == 1000 and HOSTNAME.encode() in p
    p = tok("--role", "operator", "--device", dev)
    assert p[1] == 2 and p[10] == 1 and len(p) == 1 + 1 + 8 + 1 + 20 + 1 + 8  # bound: no use count
    # Two tokens never share a nonce (the token's ID).
    assert tok()[-8:] != tok()[-8:]

    def err(*args):
        return one_line_error(net.run("token", "--secret", secret, *args, check=False), args[0])

    err("--role", "admin")
    err("--role", "forward")
    err("--hostname", HOSTNAME, "--role", "operator")
    for n in ["0", "1001", "x", "-1", ""]:
        err("--uses", n)
    err("--uses", "2", "--device", dev)


def test_operator_token_enrols_a_forward(net):
    """Tokens for forwards are made with --role operator (the relay enrols the key as an operator)."""
    echo = net.echo()
    secret = net.path("enroll.secret")
    dev = net.keygen("dev.pem")
    op = net.keygen("op.pem")
    t_dev = net.run("token", "--secret", secret, "--device", dev).stdout.strip()
    t_op = net.run("token", "--secret", secret, "--role", "operator", "--device", op).stdout.strip()
    relay = net.relay("--enroll-secret", secret)
    net.reverse("dev.pem", "--token", t_dev, "--authorized-keys", net.authorize(op))
    fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port), "--token", t_op)
    relay.wait_log(r"agent_admitted id=%s role=forward via=token enrolled=yes" % op)
    assert transfer(fwd.port, b"hello") == b"hello"


def test_version_1_token_is_refused(net):
    """A correctly signed token of format version 1 (no role, no use count) is refused;
    the reason (token_old_version) is in the relay's log only."""
    secret = net.path("enroll.secret")
    net.run("token", "--secret", secret)  # creates the secret
    net.keygen("dev.pem")
    with open(secret, "rb") as f:
        key = f.read().rstrip(b"\r\n")
    payload = bytes([1]) + struct.pack(">Q", int(time.time()) + 3600) + bytes([0, 0]) + os.urandom(8)
    mac = hmac.new(key, b"agent enroll token v1" + payload, hashlib.sha256).digest()

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    token = "at1." + b64(payload) + "." + b64(mac)
    relay = net.relay("--enroll-secret", secret)
    rev = net.reverse("dev.pem", "--authorize-any", "--token", token, wait=False)
    relay.wait_log(r"agent_denied .*reason=token_old_version")
    rev.wait_log(r"relay_unreachable .*relay refused this agent")
    assert "old_version" not in rev.log()  # the agent is told nothing
    assert token not in relay.log() and token not in rev.log()
    assert "tunnel_up" not in rev.log()
