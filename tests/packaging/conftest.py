"""Packaging checks (make test-packaging): units, man page, OpenWrt init script,
make install / dist, the Debian packages. Bounded in time; nothing is left
running or installed."""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT = os.environ.get("AGENT_BIN", os.path.join(ROOT, "build", "agent-x86_64"))
PKG = os.path.join(ROOT, "packaging")


def version():
    with open(os.path.join(ROOT, "Sources", "agent", "Usage.swift")) as f:
        return re.search(r'static let version = "([^"]+)"', f.read()).group(1)


def run(args, timeout=60, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


def need(tool):
    if run(["sh", "-c", "command -v " + tool]).returncode != 0:
        pytest.fail(tool + " is missing: run make deps")
