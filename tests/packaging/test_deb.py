"""The Debian packages: lintian without errors, their contents, and one
installed on this machine (dpkg -i), run, then removed and purged cleanly."""
import glob
import os
import pwd

import pytest

from conftest import ROOT, need, run, version

DEB_ARCHES = ["amd64", "arm64", "armhf"]
UNITS = ["agent-relay.service", "agent-device.service"]


def deb(arch):
    p = os.path.join(ROOT, "build", "deb", "agent_%s_%s.deb" % (version(), arch))
    assert os.path.exists(p), "run make deb"
    return p


def test_lintian_has_no_errors():
    need("lintian")
    r = run(["lintian", "--fail-on", "error"] + [deb(a) for a in DEB_ARCHES], timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not [l for l in r.stdout.splitlines() if l.startswith("E:")], r.stdout


@pytest.mark.parametrize("arch", DEB_ARCHES)
def test_package_fields_and_conffiles(arch):
    info = run(["dpkg-deb", "-f", deb(arch), "Package", "Version", "Architecture"]).stdout
    assert info.split("\n")[:3] == ["Package: agent", "Version: " + version(), "Architecture: " + arch]
    conffiles = run(["dpkg-deb", "--info", deb(arch), "conffiles"]).stdout.split()
    assert conffiles == ["/etc/agent/relay.conf", "/etc/agent/device.conf", "/etc/agent/operators"]
    files = run(["dpkg-deb", "-c", deb(arch)]).stdout
    for f in ["./usr/bin/agent", "./usr/share/man/man1/agent.1.gz", "./lib/systemd/system/agent-relay.service",
              "./lib/systemd/system/agent-device.service", "./usr/share/bash-completion/completions/agent",
              "./usr/share/doc/agent/copyright"]:
        assert f in files, f


def installed(pkg="agent"):
    r = run(["dpkg-query", "-W", "-f=${Status}", pkg])
    return r.returncode == 0 and "installed" in r.stdout and "not-installed" not in r.stdout


def wants_links():
    return sorted(glob.glob("/etc/systemd/system/*.wants/agent-*.service"))


def test_install_run_remove_purge():
    if os.geteuid() != 0:
        pytest.skip("dpkg -i needs root (CI runs make test as root on a throwaway machine)")
    if installed() or os.path.exists("/usr/bin/agent"):
        pytest.skip("an agent is already installed on this machine: not touching it")
    user_before = True
    try:
        pwd.getpwnam("agent")
    except KeyError:
        user_before = False
    try:
        r = run(["dpkg", "-i", deb("amd64")], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        v = run(["/usr/bin/agent", "--version"])
        assert v.returncode == 0 and v.stdout.startswith("agent " + version() + " (commit "), v.stdout
        s = run(["/usr/bin/agent", "selftest"], timeout=60)
        assert s.returncode == 0, s.stdout + s.stderr
        # The system user, its state folders, the configuration readable by its group only.
        u = pwd.getpwnam("agent")
        for d, mode in [("/var/lib/agent", 0o750), ("/var/lib/agent/relay", 0o700), ("/var/lib/agent/device", 0o700)]:
            st = os.stat(d)
            assert st.st_uid == u.pw_uid and st.st_mode & 0o777 == mode, d
        st = os.stat("/etc/agent/device.conf")
        assert st.st_uid == 0 and st.st_gid == u.pw_gid and st.st_mode & 0o777 == 0o640
        # Enabled (the wants links exist) but not started: no agent process runs.
        assert [os.path.basename(l) for l in wants_links()] == sorted(UNITS), wants_links()
        assert run(["pgrep", "-x", "agent"]).returncode == 1, "an agent process is running after install"
        # An edited conffile survives remove and goes with purge.
        with open("/etc/agent/device.conf", "a") as f:
            f.write("# edited\n")
        r = run(["dpkg", "-r", "agent"], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        # Remove keeps the configuration and the enablement (as dh does: a new
        # install comes back enabled); purge forgets both.
        assert not os.path.exists("/usr/bin/agent")
        assert os.path.exists("/etc/agent/device.conf")
        r = run(["dpkg", "-P", "agent"], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert not os.path.exists("/etc/agent") and not os.path.exists("/var/lib/agent")
        assert not glob.glob("/etc/systemd/system/agent-*") and not wants_links()
        assert not glob.glob("/var/lib/systemd/deb-systemd-helper-enabled/**/agent-*", recursive=True)
        assert not installed()
    finally:
        if installed() or os.path.exists("/var/lib/dpkg/info/agent.list"):
            run(["dpkg", "-P", "agent"], timeout=120)
        if not user_before:
            run(["deluser", "--system", "--quiet", "agent"])
            run(["sh", "-c", "getent group agent >/dev/null && delgroup --system --quiet agent || true"])
