"""Integration harness: real agent processes on 127.0.0.1, bounded in time.

Each test gets a `Net` (fixture `net`): a temporary folder, free loopback
ports, and helpers to start relay / reverse / forward processes, echo servers,
and to wait for log lines. Everything is killed at teardown.

The binary under test is $AGENT_BIN (default: build/agent-x86_64, the static
release build; `make test` builds it first).
"""
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT = os.environ.get("AGENT_BIN", os.path.join(ROOT, "build", "agent-x86_64"))
HOST = "127.0.0.1"


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Proc:
    """A started process whose stderr (the agent's log) goes to a file."""

    def __init__(self, name, args, cwd, env=None):
        self.name = name
        self.args = args
        self.log_path = os.path.join(cwd, name + ".log")
        self.out_path = os.path.join(cwd, name + ".out")
        self.log_file = open(self.log_path, "ab")
        self.out_file = open(self.out_path, "ab")
        self.p = subprocess.Popen(args, cwd=cwd, stdout=self.out_file, stderr=self.log_file,
                                  stdin=subprocess.DEVNULL, env=env)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def out(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=10.0, count=1):
        """Waits until `pattern` (regex) has matched `count` lines of the log."""
        deadline = time.time() + timeout
        rx = re.compile(pattern)
        while time.time() < deadline:
            if len(rx.findall(self.log())) >= count:
                return True
            if self.p.poll() is not None and len(rx.findall(self.log())) < count:
                break
            time.sleep(0.02)
        raise AssertionError("%s: no log line matching %r within %.1fs (exit=%s)\n--- log ---\n%s"
                             % (self.name, pattern, timeout, self.p.poll(), self.log()[-4000:]))

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def stop(self, timeout=5.0):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(2)
        self.log_file.close()
        self.out_file.close()
        return self.p.returncode

    def kill(self):
        if self.alive():
            self.p.kill()
            self.p.wait(5)


class EchoServer:
    """TCP echo on 127.0.0.1 in a thread: echoes until EOF, then half-closes.
    With `reply_after_eof`, reads everything first and then sends it back."""

    def __init__(self, reply_after_eof=False):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.reply_after_eof = reply_after_eof
        self.received = []
        self.connections = 0
        self.stopped = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        c.settimeout(60)
        try:
            if self.reply_after_eof:
                data = bytearray()
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    data += d
                self.received.append(bytes(data))
                c.sendall(bytes(data))
            else:
                total = 0
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    total += len(d)
                    c.sendall(d)
                self.received.append(total)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stopped = True
        self.sock.close()


def transfer(port, data, timeout=60.0, half_close=True):
    """Connects to 127.0.0.1:port, sends `data` (then half-closes), returns all
    bytes received until EOF. Sending and receiving run concurrently."""
    c = socket.create_connection((HOST, port), timeout=timeout)
    got = bytearray()
    err = []

    def send():
        try:
            view = memoryview(data)
            while len(view):
                n = c.send(view[:1 << 20])
                view = view[n:]
            if half_close:
                c.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=send)
    t.start()
    try:
        while True:
            d = c.recv(1 << 20)
            if not d:
                break
            got += d
    finally:
        t.join(timeout)
        c.close()
    return bytes(got)


def connect_expect_close(port, timeout=10):
    """Connects, sends nothing, and expects a clean close (EOF, not a reset)."""
    c = socket.create_connection((HOST, port), timeout=timeout)
    c.settimeout(timeout)
    try:
        assert c.recv(100) == b""
    finally:
        c.close()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def registry_text(state_dir):
    entries = {}
    snap = os.path.join(state_dir, "registry")
    if os.path.exists(snap):
        with open(snap) as f:
            for line in f.read().splitlines():
                if line and not line.startswith("#"):
                    entries[line.split(" ")[0]] = line
    journal = snap + ".journal"
    if os.path.exists(journal):
        with open(journal, "rb") as f:
            lines = f.read().split(b"\n")
        for raw in lines[:-1]:
            body = raw.decode("utf-8", "replace").rsplit(" #", 1)[0]
            op, _, rest = body.partition(" ")
            if op == "+":
                entries[rest.split(" ")[0]] = rest
            elif op == "-":
                entries.pop(rest, None)
    return "".join(line + "\n" for line in entries.values())


class Net:
    """One test's little world of agent processes."""

    def __init__(self, tmp):
        self.dir = tmp
        self.procs = []
        self.servers = []
        self.relay_port = None
        self.pin = None

    def path(self, name):
        return os.path.join(self.dir, name)

    def run(self, *args, check=True, timeout=30):
        r = subprocess.run([AGENT] + list(args), cwd=self.dir, capture_output=True, timeout=timeout, text=True)
        if check and r.returncode != 0:
            raise AssertionError("agent %s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr))
        return r

    def keygen(self, name):
        return self.run("keygen", "--identity", self.path(name)).stdout.strip()

    def start(self, name, *args, env=None):
        e = None
        if env:
            e = dict(os.environ)
            e.update(env)
        p = Proc(name, [AGENT] + list(args), self.dir, env=e)
        self.procs.append(p)
        return p

    def relay(self, *extra, name="relay", port=None, state="relay-state", env=None):
        self.relay_port = port or self.relay_port or free_port()
        p = self.start(name, "--role", "relay", "--listen", "%s:%d" % (HOST, self.relay_port),
                       "--state", self.path(state), *extra, env=env)
        p.wait_log(r"relay_started")
        deadline = time.time() + 5
        while time.time() < deadline:
            m = re.search(r"^pin (sha256:[0-9a-f]{64})$", p.out(), re.M)
            if m:
                self.pin = m.group(1)
                break
            time.sleep(0.02)
        assert self.pin, "relay printed no pin"
        return p

    def reverse(self, identity, *extra, name="reverse", pin=None, wait=True):
        p = self.start(name, "--role", "reverse", "--relay", "%s:%d" % (HOST, self.relay_port),
                       "--relay-pin", pin or self.pin, "--identity", self.path(identity), *extra)
        if wait:
            p.wait_log(r"tunnel_up")
        return p

    def forward(self, identity, device, target, *extra, name="forward", pin=None, wait=True, port=None):
        lp = port or free_port()
        p = self.start(name, "--role", "forward", "--relay", "%s:%d" % (HOST, self.relay_port),
                       "--relay-pin", pin or self.pin, "--identity", self.path(identity),
                       "--listen", "%s:%d" % (HOST, lp), "--device", device, "--target", target, *extra)
        p.port = lp
        if wait:
            p.wait_log(r"tunnel_up")
        return p

    def echo(self, **kw):
        s = EchoServer(**kw)
        self.servers.append(s)
        return s

    def registry(self, state="relay-state"):
        """The relay's registry as it would load it: the snapshot's lines, then the journal's
        whole lines applied in order ('+ entry #sum' sets, '- id #sum' removes), as snapshot
        lines in one text."""
        return registry_text(self.path(state))

    def authorize(self, *ids):
        path = self.path("authorized_keys")
        with open(path, "w") as f:
            f.write("# operators\n" + "\n".join(ids) + "\n")
        return path

    def close(self):
        for p in reversed(self.procs):
            p.stop()
        for s in self.servers:
            s.close()


@pytest.fixture
def net():
    if not os.path.exists(AGENT):
        pytest.fail("agent binary %s not found (run make release)" % AGENT)
    tmp = tempfile.mkdtemp(prefix="agent-it-")
    n = Net(tmp)
    try:
        yield n
    finally:
        n.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def tunnel(net):
    """relay (open enrollment) + reverse (device) + forward (operator) to an echo server."""
    echo = net.echo()
    net.relay("--open-enrollment")
    dev = net.keygen("dev.pem")
    op = net.keygen("op.pem")
    keys = net.authorize(op)
    rev = net.reverse("dev.pem", "--authorized-keys", keys)
    fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port))
    return dict(net=net, echo=echo, dev=dev, op=op, rev=rev, fwd=fwd)
