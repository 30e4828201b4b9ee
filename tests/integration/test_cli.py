"""The command line contract (DESIGN.md section 7): --help is true, errors name
the flag or file and exit 2, --config works under the flags."""
import os
import re
import subprocess

import pytest

from conftest import AGENT


def run(*args, cwd=None, timeout=20):
    return subprocess.run([AGENT] + list(args), capture_output=True, text=True, timeout=timeout, cwd=cwd)


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and re.match(r"agent \d+\.\d+\.\d+ \(commit [0-9a-f]{12}(-dirty)?, mbedTLS 3\.6\.\d+\)", r.stdout)
    r = run("--help")
    assert r.returncode == 0
    for word in ["--role relay", "--role reverse", "--role forward", "keygen", "token", "ca init", "ca issue", "selftest"]:
        assert word in r.stdout


ROLE_OPTIONS = {
    "relay": ["listen", "state", "cert", "key", "enroll-secret", "open-enrollment", "client-ca", "sni-listen", "metrics"],
    "reverse": ["relay", "relay-pin", "ca", "identity", "cert", "token", "proxy", "allow", "authorized-keys",
                "authorized-ca", "authorize-any", "hostname", "sni-target"],
    "forward": ["relay", "relay-pin", "ca", "identity", "cert", "token", "listen", "device", "target", "map"],
}
ROLE_OPTIONS["reverse"].append("token-file")
ROLE_OPTIONS["forward"].append("token-file")


@pytest.mark.parametrize("role", sorted(ROLE_OPTIONS))
def test_help_lists_every_option_each_role_accepts(role):
    help_text = run("--help").stdout
    for opt in ROLE_OPTIONS[role] + ["config", "log-level", "heartbeat"]:
        assert "--" + opt in help_text, opt
        # The role knows it: whatever else fails, it is not "unknown option". A bad
        # --listen / --relay makes sure nothing starts listening or connecting.
        stopper = ["--listen", "nowhere"] if role == "relay" else ["--relay", "nowhere"]
        if opt in ("listen", "relay"):
            stopper = []
        value = [] if opt in ("open-enrollment", "authorize-any") else ["x"]
        r = run("--role", role, "--" + opt, *value, *stopper)
        assert r.returncode == 2, (role, opt, r.stderr)
        assert "unknown option --" + opt not in r.stderr, (role, opt, r.stderr)
        assert "is not an option of" not in r.stderr, (role, opt, r.stderr)


@pytest.mark.parametrize("args,needle", [
    (["--bogus"], "--bogus"),
    (["keygen", "--bogus"], "--bogus"),
    (["--role", "relay", "--allow", "x:1"], "--allow is not an option of --role relay"),
    (["--role", "nope"], "--role"),
    (["--role", "relay", "--listen"], "--listen needs a value"),
    (["--role", "relay", "--listen", "nowhere"], "--listen"),
    (["--role", "relay", "--listen", "127.0.0.1:1", "--listen", "127.0.0.1:2"], "more than once"),
    (["--role", "reverse", "--relay", "127.0.0.1:1"], "--relay-pin"),
    (["--role", "reverse", "--relay", "127.0.0.1:1", "--relay-pin", "sha256:zz"], "--relay-pin"),
    (["--role", "reverse", "--relay", "not a relay", "--relay-pin", "sha256:" + "0" * 64], "--relay"),
    (["--role", "forward", "--relay", "127.0.0.1:1", "--relay-pin", "sha256:" + "0" * 64, "--listen", "127.0.0.1:1"],
     "go together"),
    (["--role", "forward", "--relay", "127.0.0.1:1", "--relay-pin", "sha256:" + "0" * 64, "--map", "bad"], "--map"),
    (["--role", "relay", "--heartbeat", "0"], "--heartbeat"),
    (["--role", "relay", "--log-level", "loud"], "--log-level"),
    (["id", "--identity", "/nonexistent/key.pem"], "/nonexistent/key.pem"),
    (["token"], "--secret"),
    (["--config", "/nonexistent.conf"], "/nonexistent.conf"),
])
def test_usage_errors_exit_2_naming_the_flag(args, needle, tmp_path):
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2, (args, r.returncode, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0], (needle, lines[0])


def test_bad_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key\n")
    r = run("id", "--identity", str(bad))
    assert r.returncode == 2 and str(bad) in r.stderr
    keys = tmp_path / "keys"
    keys.write_text("# ok\nthis-is-not-an-id\n")
    r = run("--role", "reverse", "--relay", "127.0.0.1:1", "--relay-pin", "sha256:" + "0" * 64,
            "--identity", str(tmp_path / "k.pem"), "--authorized-keys", str(keys), cwd=tmp_path)
    assert r.returncode == 2 and str(keys) in r.stderr and "line 2" in r.stderr


def test_config_file_under_the_flags(tmp_path):
    conf = tmp_path / "relay.conf"
    conf.write_text("# relay\nrole = relay\nlisten = 127.0.0.1:1\nlog-level = nope\n")
    r = run("--config", str(conf), cwd=tmp_path)
    assert r.returncode == 2 and "relay.conf:4 (log-level)" in r.stderr
    r = run("--config", str(conf), "--log-level", "loud", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("agent: --log-level")   # the flag wins
    conf.write_text("role = relay\nbogus = 1\n")
    r = run("--config", str(conf), cwd=tmp_path)
    assert r.returncode == 2 and "relay.conf:2: unknown option 'bogus'" in r.stderr


def test_keys_are_created_0600(tmp_path):
    r = run("keygen", "--identity", str(tmp_path / "k.pem"))
    assert r.returncode == 0 and len(r.stdout.strip()) == 32
    assert oct(os.stat(tmp_path / "k.pem").st_mode & 0o777) == "0o600"
    r = run("token", "--secret", str(tmp_path / "s"))
    assert r.returncode == 0 and r.stdout.startswith("at2.")
    assert oct(os.stat(tmp_path / "s").st_mode & 0o777) == "0o600"
