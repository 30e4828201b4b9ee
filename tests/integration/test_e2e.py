"""End-to-end encryption (issue 4): the relay joins streams it cannot read,
alter or impersonate. Real processes on 127.0.0.1."""
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import HOST, connect_expect_close, free_port, sha, transfer


def test_unauthorized_forward_is_refused(net):
    echo = net.echo()
    net.relay("--open-enrollment")
    dev = net.keygen("dev.pem")
    allowed = net.keygen("allowed.pem")
    net.keygen("intruder.pem")
    rev = net.reverse("dev.pem", "--authorized-keys", net.authorize(allowed))
    fwd = net.forward("intruder.pem", dev, "%s:%d" % (HOST, echo.port))
    connect_expect_close(fwd.port)
    intruder = net.run("id", "--identity", net.path("intruder.pem")).stdout.strip()
    rev.wait_log(r"stream_unauthorized .*forward=%s" % intruder)
    fwd.wait_log(r"stream_refused .*reason=refused_by_device")
    assert echo.connections == 0
    # The authorized operator still gets through on the same device.
    ok = net.forward("allowed.pem", dev, "%s:%d" % (HOST, echo.port), name="forward2")
    assert transfer(ok.port, b"hello") == b"hello"


def test_authorize_any_admits_any_forward(net):
    echo = net.echo()
    net.relay("--open-enrollment")
    dev = net.keygen("dev.pem")
    net.keygen("op.pem")
    net.reverse("dev.pem", "--authorize-any")
    fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port))
    assert transfer(fwd.port, b"x" * 1000) == b"x" * 1000


def test_default_is_deny(net):
    echo = net.echo()
    net.relay("--open-enrollment")
    dev = net.keygen("dev.pem")
    net.keygen("op.pem")
    rev = net.reverse("dev.pem")  # no --authorized-keys, --authorized-ca or --authorize-any
    rev.wait_log(r"no_operators_authorized")
    fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port))
    connect_expect_close(fwd.port)
    rev.wait_log(r"stream_unauthorized")


def test_relay_substituting_the_device_is_detected(net):
    """A relay that routes a stream for device X to device Y (as a compromised
    relay could) is caught by the forward: Y's key is not X's ID."""
    echo = net.echo()
    x = net.keygen("x.pem")
    y = net.keygen("y.pem")
    op = net.keygen("op.pem")
    net.relay("--open-enrollment", env={"AGENT_FAULT_ROUTE": "%s:%s" % (x, y)})
    keys = net.authorize(op)
    net.reverse("x.pem", "--authorized-keys", keys, name="device-x")
    rev_y = net.reverse("y.pem", "--authorized-keys", keys, name="device-y")
    fwd = net.forward("op.pem", x, "%s:%d" % (HOST, echo.port))
    connect_expect_close(fwd.port)
    fwd.wait_log(r"stream_failed .*error=device_mismatch\(presented=%s\)" % y)
    assert echo.connections == 0
    assert "stream_open" not in rev_y.log()


def test_canary_never_in_relay_memory_or_logs(net, tunnel_canary=None):
    if not shutil.which("gcore"):
        pytest.fail("gcore (gdb) is needed: cross/deps.sh installs it")
    canary = ("CANARY-" + os.urandom(12).hex() + "-END").encode()
    echo = net.echo(reply_after_eof=True)
    relay = net.relay("--open-enrollment", "--log-level", "debug")
    dev = net.keygen("dev.pem")
    op = net.keygen("op.pem")
    net.reverse("dev.pem", "--authorized-keys", net.authorize(op))
    fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port))
    data = canary * 4000  # ~150 KB, many records
    got = transfer(fwd.port, data)
    assert got == data                      # it reached the target and came back...
    assert echo.received == [data]
    core = net.path("relay.core")
    r = subprocess.run(["gcore", "-o", core, str(relay.p.pid)], capture_output=True, timeout=60)
    files = [f for f in os.listdir(net.dir) if f.startswith("relay.core")]
    assert files, "gcore failed: %s" % r.stderr.decode(errors="replace")[-500:]
    with open(os.path.join(net.dir, files[0]), "rb") as f:
        mem = f.read()
    # The search works: things the relay does hold are found...
    assert net.pin.encode() in mem
    assert dev.encode() in mem
    # ...and the canary is not, in memory or in the log.
    assert canary not in mem
    assert canary[:16] not in mem
    assert canary.decode() not in relay.log()


def test_ssh_through_the_tunnel(net):
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd):
        pytest.fail("sshd is needed: cross/deps.sh installs openssh-server")
    d = net.dir
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    for name in ("hostkey", "userkey"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, name)], check=True)
    shutil.copy(os.path.join(d, "userkey.pub"), os.path.join(d, "authorized_keys_ssh"))
    port = free_port()
    cfg = os.path.join(d, "sshd_config")
    with open(cfg, "w") as f:
        f.write("\n".join([
            "ListenAddress 127.0.0.1", "Port %d" % port, "HostKey %s/hostkey" % d,
            "AuthorizedKeysFile %s/authorized_keys_ssh" % d, "PidFile %s/sshd.pid" % d,
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
            "StrictModes no", "PermitRootLogin prohibit-password", ""]))
    os.makedirs("/run/sshd", exist_ok=True)
    sp = subprocess.Popen([sshd, "-D", "-e", "-f", cfg], stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        net.relay("--open-enrollment")
        dev = net.keygen("dev.pem")
        op = net.keygen("op.pem")
        net.reverse("dev.pem", "--authorized-keys", net.authorize(op))
        fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, port))
        r = subprocess.run(["ssh", "-p", str(fwd.port), "-i", os.path.join(d, "userkey"),
                            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                            "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                            "%s@127.0.0.1" % user, "echo tunnel-ok; uname -s"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["tunnel-ok", "Linux"]
    finally:
        sp.terminate()
        sp.wait(5)


def test_later_streams_resume_the_session(tunnel):
    fwd, rev = tunnel["fwd"], tunnel["rev"]
    for _ in range(3):
        assert transfer(fwd.port, b"ping") == b"ping"
    rev.wait_log(r"stream_open .*resumed=yes", count=2)
