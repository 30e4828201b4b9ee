"""make install (PREFIX, DESTDIR), make dist, agent --version, and the shipped
example configurations accepted by the binary."""
import hashlib
import os
import re
import signal
import socket
import subprocess
import tarfile
import time

import pytest

from conftest import AGENT, PKG, ROOT, run, version

ARCHES = ["x86_64", "aarch64", "armv7"]


def make(*args, timeout=120):
    return run(["make", "--no-print-directory", "-C", ROOT] + list(args), timeout=timeout)


def test_version_names_version_commit_and_mbedtls():
    r = run([AGENT, "--version"])
    assert r.returncode == 0
    m = re.fullmatch(r"agent (\S+) \(commit (\S+), mbedTLS (3\.6\.\d+)\)\n", r.stdout)
    assert m, r.stdout
    assert m.group(1) == version()
    head = run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"]).stdout.strip()
    # The binary was built from this commit (or from it with local changes).
    assert m.group(2) in (head, head + "-dirty"), (m.group(2), head)
    with open(os.path.join(ROOT, "CHANGELOG.md")) as f:
        assert "## " + version() + " " in f.read(), "CHANGELOG.md has no entry for " + version()


def test_make_install_and_uninstall(tmp_path):
    d = tmp_path / "root"
    r = make("install", "DESTDIR=" + str(d), "PREFIX=/usr", "INSTALL_ARCH=x86_64")
    assert r.returncode == 0, r.stdout + r.stderr
    want = {
        "usr/bin/agent": 0o755, "usr/share/man/man1/agent.1": 0o644,
        "usr/share/bash-completion/completions/agent": 0o644,
        "usr/lib/systemd/system/agent-relay.service": 0o644, "usr/lib/systemd/system/agent-device.service": 0o644,
        "usr/lib/sysusers.d/agent.conf": 0o644, "usr/lib/tmpfiles.d/agent.conf": 0o644,
        "etc/agent/relay.conf": 0o644, "etc/agent/device.conf": 0o644, "etc/agent/operators": 0o644,
        "usr/share/doc/agent/examples/relay.conf": 0o644, "usr/share/doc/agent/CHANGELOG.md": 0o644,
    }
    for path, mode in want.items():
        p = d / path
        assert p.is_file(), path
        assert os.stat(p).st_mode & 0o777 == mode, (path, oct(os.stat(p).st_mode))
    assert run([str(d / "usr/bin/agent"), "--version"]).returncode == 0
    # A prefix goes into the units; an edited configuration is never overwritten.
    (d / "etc/agent/device.conf").write_text("role = reverse\n# mine\n")
    r = make("install", "DESTDIR=" + str(d), "PREFIX=/opt/agent", "INSTALL_ARCH=x86_64")
    assert r.returncode == 0, r.stdout + r.stderr
    unit = (d / "opt/agent/lib/systemd/system/agent-device.service").read_text()
    assert "ExecStart=/opt/agent/bin/agent --config /etc/agent/device.conf" in unit
    assert (d / "etc/agent/device.conf").read_text() == "role = reverse\n# mine\n"
    r = make("uninstall", "DESTDIR=" + str(d), "PREFIX=/usr")
    assert r.returncode == 0, r.stderr
    assert not (d / "usr/bin/agent").exists() and not (d / "usr/lib/systemd/system/agent-relay.service").exists()
    assert (d / "etc/agent/device.conf").exists()


@pytest.mark.parametrize("arch", ARCHES)
def test_dist_tarball(arch):
    v = version()
    path = os.path.join(ROOT, "build", "dist", "agent-%s-%s.tar.gz" % (v, arch))
    assert os.path.exists(path), "run make dist"
    top = "agent-%s-%s/" % (v, arch)
    with tarfile.open(path) as t:
        names = set(t.getnames())
        for f in ["agent", "agent.sha256", "agent.1", "CHANGELOG.md", "systemd/agent-relay.service",
                  "systemd/agent-device.service", "config/relay.conf", "config/device.conf", "openwrt/agent.init",
                  "completion/agent"]:
            assert top + f in names, f
        binary = t.extractfile(top + "agent").read()
        sums = t.extractfile(top + "agent.sha256").read().decode()
        assert all(m.uid == 0 and m.gid == 0 for m in t.getmembers())
    assert sums == hashlib.sha256(binary).hexdigest() + "  agent\n"
    with open(os.path.join(ROOT, "build", "agent-" + arch), "rb") as f:
        assert f.read() == binary, "the tarball's binary is not build/agent-" + arch


def start(args, cwd):
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_shipped_relay_config_starts_a_relay(tmp_path):
    """The packaged relay.conf, with its admission line uncommented, starts a
    relay (paths and port moved into a temporary folder by flags)."""
    text = open(os.path.join(PKG, "config", "relay.conf")).read()
    secret = tmp_path / "enroll.secret"
    secret.write_text("0123456789abcdef0123456789abcdef\n")
    os.chmod(secret, 0o600)
    text = re.sub(r"^# enroll-secret = .*$", "enroll-secret = " + str(secret), text, flags=re.M)
    conf = tmp_path / "relay.conf"
    conf.write_text(text)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    p = start([AGENT, "--config", str(conf), "--listen", "127.0.0.1:%d" % port, "--state", str(tmp_path / "state")],
              tmp_path)
    try:
        deadline = time.time() + 10
        line = ""
        while time.time() < deadline and not line:
            line = p.stdout.readline()
        assert line.startswith("pin sha256:"), (line, p.poll())
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    assert p.returncode == 0, p.stderr.read()


def test_shipped_device_config_is_accepted(tmp_path):
    """The packaged device.conf parses: with a relay given on the command line
    the only complaint is the missing relay check, never an unknown option."""
    r = run([AGENT, "--config", os.path.join(PKG, "config", "device.conf"), "--relay", "127.0.0.1:1"], timeout=20)
    assert r.returncode == 2, r.stderr
    assert "--relay-pin" in r.stderr and "unknown option" not in r.stderr, r.stderr
