"""OpenWrt: the procd init script passes `ash -n` (busybox), and renders the UCI
example into the right agent command line."""
import os
import re

from conftest import AGENT, PKG, need, run
from test_man import PENDING_IN_HELP, help_options

HERE = os.path.dirname(os.path.abspath(__file__))
INIT = os.path.join(PKG, "openwrt", "files", "agent.init")
EXAMPLE = os.path.join(PKG, "openwrt", "files", "agent.config")


def render(uci_text, tmp_path):
    need("busybox")
    p = tmp_path / "agent.uci"
    p.write_text(uci_text)
    r = run(["busybox", "ash", os.path.join(HERE, "openwrt-render.sh"), INIT, str(p)], timeout=20)
    assert r.returncode == 0, r.stderr
    instances, cur = [], None
    for line in r.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "instance":
            cur = {"name": rest, "args": [], "respawn": None, "params": []}
        elif kind == "arg":
            cur["args"].append(rest)
        elif kind == "respawn":
            cur["respawn"] = rest.split()
        elif kind == "param":
            cur["params"].append(rest)
        elif kind == "end":
            instances.append(cur)
    return instances


def example():
    with open(EXAMPLE) as f:
        return f.read()


def test_init_script_shell_syntax():
    need("busybox")
    r = run(["busybox", "ash", "-n", INIT])
    assert r.returncode == 0, r.stderr
    with open(INIT) as f:
        head = f.read()
    assert head.startswith("#!/bin/sh /etc/rc.common\n") and "USE_PROCD=1" in head


def test_example_is_disabled_until_configured(tmp_path):
    assert render(example(), tmp_path) == []


def test_example_renders_the_right_command_line(tmp_path):
    text = re.sub(r"option enabled '0'", "option enabled '1'", example())
    (inst,) = render(text, tmp_path)
    assert inst["name"] == "main"
    assert inst["args"] == [
        "/usr/bin/agent", "--role", "reverse",
        "--relay", "relay.example.com:7443",
        "--relay-pin", "sha256:" + "0" * 64,
        "--identity", "/etc/agent/identity.pem",
        "--token-file", "/etc/agent/token",
        "--authorized-keys", "/etc/agent/operators",
        "--allow", "127.0.0.1:22", "--allow", "127.0.0.1:80",
        "--log-level", "info",
    ]
    assert inst["respawn"] == ["3600", "5", "0"]
    # Every flag it renders is one agent knows.
    flags = {a for a in inst["args"] if a.startswith("--")}
    assert not flags - help_options() - PENDING_IN_HELP, flags - help_options()


def test_rendering_quotes_options_and_respawn(tmp_path):
    uci = """
config agent 'lab'
	option enabled 'yes'
	option relay "https://relay.example.com/agent path"
	option ca '/etc/agent/relay ca.pem'
	option log_level 'debug'
	option respawn '0'

config agent 'off'
	option enabled '0'
	option relay 'other:7443'

config other 'x'
	option enabled '1'
"""
    (inst,) = render(uci, tmp_path)
    assert inst["name"] == "lab"
    assert inst["args"] == ["/usr/bin/agent", "--role", "reverse", "--relay", "https://relay.example.com/agent path",
                            "--ca", "/etc/agent/relay ca.pem", "--log-level", "debug"]
    assert inst["respawn"] is None


def test_rendered_command_parses(tmp_path):
    """The rendered command line, run by the real binary, fails only for want of
    a reachable relay: no usage error about the options themselves."""
    text = re.sub(r"option enabled '0'", "option enabled '1'", example())
    (inst,) = render(text, tmp_path)
    args = []
    i = 1
    while i < len(inst["args"]):
        a = inst["args"][i]
        if a in PENDING_IN_HELP and a not in help_options():
            i += 2
            continue
        args.append(a)
        i += 1
    # Files the example names, and a relay that does not parse: exits 2 at once, naming --relay.
    ops = tmp_path / "operators"
    ops.write_text("# none\n")
    args = [str(ops) if x == "/etc/agent/operators" else str(tmp_path / "id.pem") if x == "/etc/agent/identity.pem"
            else "not a relay" if x == "relay.example.com:7443" else x for x in args]
    r = run([AGENT] + args, timeout=20)
    assert r.returncode == 2 and "--relay" in r.stderr, r.stderr
    for opt in ["unknown option", "is not an option of"]:
        assert opt not in r.stderr, r.stderr
