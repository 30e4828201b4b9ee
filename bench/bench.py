#!/usr/bin/env python3
"""`make bench`: agent side by side with OpenSSH, on 127.0.0.1, in one run.

Three paths to one target server (bench/target.py), measured in the same run and
interleaved round by round, so that a noisy machine hurts all of them alike:

  direct   the client talks to the target server itself (the baseline)
  agent    forward -> relay -> reverse -> target, end-to-end encrypted
           (set up as tests/integration/conftest.py does, --log-level warn)
  OpenSSH  device: sshd + `ssh -N -R` to a relay sshd; operator:
           `ssh -N -J relay -L local:target -p <reverse-forwarded port>`, so the
           operator's session to the device's sshd is end to end (default ciphers)

Workloads, figures and targets: docs/PERFORMANCE.md. Output: a table on stdout and
build/bench-results.json (machine-readable, every sample).

Usage: python3 bench/bench.py [--agent build/agent-x86_64] [--quick]
       python3 bench/bench.py --bulk PORT SECONDS      (internal: a bulk download)
"""
import argparse
import datetime
import glob
import hashlib
import json
import os
import platform
import re
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HOST = "127.0.0.1"
MiB = 1 << 20
SSHD = "/usr/sbin/sshd"
SSH = "/usr/bin/ssh"
SSH_KEYGEN = "/usr/bin/ssh-keygen"

# Workload sizes (the brief's), and repeats. --quick shrinks them for a smoke run.
CFG = dict(
    bulk_bytes=256 * MiB,      # one stream, each direction
    bulk_rounds=3,
    many_streams=100,          # concurrent streams ...
    many_bytes=1 * MiB,        # ... each echoing this much
    many_rounds=3,
    rtt_count=2000,            # 64-byte round trips per measurement
    rtt_warmup=200,
    rtt_rounds=3,
    rtt_load_rounds=3,
    rtt_load_max_seconds=15.0,  # bound of one measurement under load
    open_later=20,             # later streams timed after the first
    idle_devices=1000,
    idle_hold_seconds=17.0,    # devices stay connected past one relay heartbeat (15 s)
)

T_START = time.monotonic()


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T_START, msg), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# processes and /proc


class Procs:
    """Every process this run starts; all are stopped at the end (by pid, trees included)."""

    def __init__(self):
        self.items = []   # (name, Popen)

    def start(self, name, args, cwd, stdout=None, stdin=subprocess.DEVNULL, env=None):
        out = open(os.path.join(cwd, name + ".out"), "wb") if stdout is None else stdout
        err = open(os.path.join(cwd, name + ".log"), "wb")
        p = subprocess.Popen(args, cwd=cwd, stdout=out, stderr=err, stdin=stdin, env=env)
        self.items.append((name, p))
        return p

    def stop(self, p, timeout=5.0):
        """Stops p and its descendants (children first)."""
        if p.poll() is None:
            for pid in reversed(tree_pids(p.pid)[1:]):
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            except OSError:
                pass

    def stop_all(self):
        for _name, p in reversed(self.items):
            self.stop(p)
        self.items = []


PROCS = Procs()


def proc_status(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss_kib(pid):
    return proc_status(pid, "VmRSS")


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
            ppid = int(s[s.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree_pids(pid, kids=None):
    kids = kids if kids is not None else children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(sorted(kids.get(p, [])))
    return out


def tree_rss(pid, kids=None):
    total = 0
    for p in tree_pids(pid, kids):
        r = rss_kib(p)
        if r:
            total += r
    return total


def cpu_ticks(pid):
    """utime + stime of pid (clock ticks)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        f = s[s.rindex(")") + 2:].split()
        return int(f[11]) + int(f[12])
    except (OSError, ValueError):
        return 0


def tree_cpu_ticks(pid, kids=None):
    return sum(cpu_ticks(p) for p in tree_pids(pid, kids))


CLK_TCK = os.sysconf("SC_CLK_TCK")


def listening(port):
    """True if 127.0.0.1:port (or 0.0.0.0:port) is in LISTEN state (without connecting to it)."""
    want = ":%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[1].endswith(want) and parts[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def wait_until(cond, timeout, what, poll=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(poll)
    raise RuntimeError("timed out after %.0fs waiting for %s" % (timeout, what))


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------
# paths


class Path:
    name = "?"
    port = None

    def processes(self):
        """name -> pid whose process tree is one row of the memory table."""
        return {}

    def rss(self):
        kids = children_map()
        return {k: tree_rss(pid, kids) for k, pid in self.processes().items()}

    def cpu(self):
        kids = children_map()
        return {k: tree_cpu_ticks(pid, kids) for k, pid in self.processes().items()}


class Direct(Path):
    name = "direct"

    def __init__(self, target_port):
        self.port = target_port


class AgentPath(Path):
    name = "agent"

    def __init__(self, agent, work, target_port, relay_extra=()):
        self.agent, self.dir = agent, work
        os.makedirs(work, exist_ok=True)
        self.relay_port = free_port()
        self.port = free_port()
        dev = self.run("keygen", "--identity", self.path("dev.pem"))
        op = self.run("keygen", "--identity", self.path("op.pem"))
        self.dev_id, self.op_id = dev, op
        with open(self.path("authorized_keys"), "w") as f:
            f.write("# operators\n%s\n" % op)
        quiet = ("--log-level", "warn")
        self.relay = PROCS.start("agent-relay", [agent, "--role", "relay", "--listen", "%s:%d" % (HOST, self.relay_port),
                                                 "--state", self.path("relay-state"), "--open-enrollment",
                                                 *relay_extra, *quiet], work)
        self.pin = read_pin(os.path.join(work, "agent-relay.out"), self.relay)
        wait_until(lambda: listening(self.relay_port), 10, "the relay's port")
        common = ["--relay", "%s:%d" % (HOST, self.relay_port), "--relay-pin", self.pin, *quiet]
        self.reverse = PROCS.start("agent-reverse", [agent, "--role", "reverse", *common, "--identity", self.path("dev.pem"),
                                                     "--authorized-keys", self.path("authorized_keys")], work)
        self.forward = PROCS.start("agent-forward", [agent, "--role", "forward", *common, "--identity", self.path("op.pem"),
                                                     "--listen", "%s:%d" % (HOST, self.port), "--device", dev,
                                                     "--target", "%s:%d" % (HOST, target_port)], work)
        # With --log-level warn there is no tunnel_up line: the relay's registry tells when both
        # agents were admitted (it is written before WELCOME); the forward's port when it listens.
        wait_until(lambda: self.registered(dev, op), 15, "reverse and forward admitted by the relay")
        wait_until(lambda: listening(self.port), 10, "the forward's port")
        time.sleep(0.3)  # WELCOME read, tunnels up
        for p in (self.relay, self.reverse, self.forward):
            if p.poll() is not None:
                raise RuntimeError("agent process exited during setup; logs in " + work)

    def path(self, n):
        return os.path.join(self.dir, n)

    def run(self, *args):
        r = subprocess.run([self.agent, *args], cwd=self.dir, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("agent %s: %s" % (" ".join(args), r.stderr))
        return r.stdout.strip()

    def registered(self, *ids):
        try:
            text = ""
            for name in ("relay-state/registry", "relay-state/registry.journal"):  # snapshot and journal
                if os.path.exists(self.path(name)):
                    with open(self.path(name)) as f:
                        text += f.read().lower()
        except OSError:
            return False
        return all(i.lower() in text for i in ids)

    def processes(self):
        return {"relay": self.relay.pid, "device": self.reverse.pid, "operator": self.forward.pid}


def read_pin(out_path, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(out_path) as f:
                m = re.search(r"^pin (sha256:[0-9a-f]{64})$", f.read(), re.M)
            if m:
                return m.group(1)
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise RuntimeError("the relay printed no pin (%s)" % out_path)


SSHD_CONFIG = """# bench: a private sshd on loopback
Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/{name}_host_key
AuthorizedKeysFile {dir}/{name}_authorized_keys
PidFile {dir}/{name}_sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
UsePAM no
StrictModes no
LogLevel ERROR
"""

SSH_CONFIG = """# bench: the {who}'s ssh client (also read by ssh -J's jump process)
Host *
  IdentityFile {dir}/{who}_key
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  BatchMode yes
  ExitOnForwardFailure yes
  LogLevel ERROR
"""

SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "ExitOnForwardFailure=yes"]


class SshPath(Path):
    name = "OpenSSH"

    def __init__(self, work, target_port):
        self.dir = work
        os.makedirs(work, exist_ok=True)
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        for k in ("relay_host_key", "device_host_key", "device_key", "operator_key"):
            subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "bench-" + k, "-f", self.p(k)], check=True)
        pub = lambda k: open(self.p(k + ".pub")).read()
        with open(self.p("relay_authorized_keys"), "w") as f:
            f.write(pub("device_key") + pub("operator_key"))
        with open(self.p("device_authorized_keys"), "w") as f:
            f.write(pub("operator_key"))
        self.relay_port, self.device_sshd_port = free_port(), free_port()
        self.reverse_port, self.port = free_port(), free_port()
        for name, port in (("relay", self.relay_port), ("device", self.device_sshd_port)):
            with open(self.p(name + "_sshd_config"), "w") as f:
                f.write(SSHD_CONFIG.format(port=port, dir=work, name=name))
        for who in ("device", "operator"):
            with open(self.p(who + "_ssh_config"), "w") as f:
                f.write(SSH_CONFIG.format(dir=work, who=who))
        self.relay = PROCS.start("ssh-relay-sshd", [SSHD, "-D", "-e", "-f", self.p("relay_sshd_config")], work)
        self.device_sshd = PROCS.start("ssh-device-sshd", [SSHD, "-D", "-e", "-f", self.p("device_sshd_config")], work)
        wait_until(lambda: listening(self.relay_port) and listening(self.device_sshd_port), 10, "the sshds")
        self.device_ssh = PROCS.start("ssh-device-R", [SSH, "-F", self.p("device_ssh_config"), *SSH_OPTS, "-N",
                                                       "-R", "%d:127.0.0.1:%d" % (self.reverse_port, self.device_sshd_port),
                                                       "-p", str(self.relay_port), "%s@127.0.0.1" % user], work)
        wait_until(lambda: listening(self.reverse_port), 15, "the relay sshd's -R port")
        self.operator = PROCS.start("ssh-operator", [SSH, "-F", self.p("operator_ssh_config"), *SSH_OPTS, "-N",
                                                     "-J", "%s@127.0.0.1:%d" % (user, self.relay_port),
                                                     "-L", "%d:127.0.0.1:%d" % (self.port, target_port),
                                                     "-p", str(self.reverse_port), "%s@127.0.0.1" % user], work)
        # The -L port listens once the operator's end-to-end session is authenticated.
        wait_until(lambda: listening(self.port), 15, "the operator's -L port")
        time.sleep(0.3)
        for p in (self.relay, self.device_sshd, self.device_ssh, self.operator):
            if p.poll() is not None:
                raise RuntimeError("an OpenSSH process exited during setup; logs in " + work)

    def p(self, n):
        return os.path.join(self.dir, n)

    def processes(self):
        return {"relay": self.relay.pid, "device ssh -R": self.device_ssh.pid, "device sshd": self.device_sshd.pid,
                "operator": self.operator.pid}

    def rss(self):
        r = Path.rss(self)
        r["device"] = r["device ssh -R"] + r["device sshd"]
        return r

    def cpu(self):
        r = Path.cpu(self)
        r["device"] = r["device ssh -R"] + r["device sshd"]
        return r

    def stop(self):
        # Clients first, so the sshds' session children end with their connections.
        for p in (self.operator, self.device_ssh, self.device_sshd, self.relay):
            PROCS.stop(p)


class Target:
    def __init__(self, work):
        pf = os.path.join(work, "target.port")
        self.proc = PROCS.start("target", [sys.executable, os.path.join(HERE, "target.py"), pf, "--max-seconds", "900"],
                                work)
        wait_until(lambda: os.path.exists(pf), 10, "the target server")
        self.port = int(open(pf).read())


# ---------------------------------------------------------------------------
# client workloads (every socket has a timeout, every loop a bound)

IO_TIMEOUT = 60.0


def connect(port, nodelay=True):
    c = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
    if nodelay:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if c.recv(1) != b"!":
        raise RuntimeError("no greeting from the target through port %d" % port)
    return c


def recv_exact(c, n, buf=None):
    buf = buf or bytearray(min(n, MiB))
    view = memoryview(buf)
    left = n
    while left > 0:
        got = c.recv_into(view[:min(left, len(buf))])
        if got == 0:
            raise RuntimeError("connection closed with %d bytes missing" % left)
        left -= got


PAYLOAD = memoryview(os.urandom(MiB))


def upload(port, n):
    """Seconds from the request to the target's acknowledgement of n bytes received."""
    c = connect(port, nodelay=False)
    try:
        t0 = time.perf_counter()
        c.sendall(struct.pack(">cQ", b"U", n))
        left = n
        while left > 0:
            k = min(left, MiB)
            c.sendall(PAYLOAD[:k])
            left -= k
        if c.recv(1) != b"k":
            raise RuntimeError("upload not acknowledged")
        return time.perf_counter() - t0
    finally:
        c.close()


def download(port, n):
    """Seconds from the request to the last of n bytes received."""
    c = connect(port, nodelay=False)
    try:
        t0 = time.perf_counter()
        c.sendall(struct.pack(">cQ", b"D", n))
        recv_exact(c, n, bytearray(MiB))
        return time.perf_counter() - t0
    finally:
        c.close()


def rtt(port, count, warmup, size=64, max_seconds=None):
    """Round trips of `size` bytes on one echo stream (TCP_NODELAY); returns microseconds, in order."""
    c = connect(port, nodelay=True)
    msg = os.urandom(size)
    buf = bytearray(size)
    view = memoryview(buf)
    out = []
    deadline = time.monotonic() + (max_seconds or 1e9)
    try:
        c.sendall(struct.pack(">cQ", b"E", 0))
        for i in range(warmup + count):
            t0 = time.perf_counter_ns()
            c.sendall(msg)
            got = 0
            while got < size:
                k = c.recv_into(view[got:])
                if k == 0:
                    raise RuntimeError("echo closed")
                got += k
            t1 = time.perf_counter_ns()
            if i >= warmup:
                out.append((t1 - t0) / 1000.0)
                if time.monotonic() > deadline:
                    break
    finally:
        c.close()
    return out


def open_time(port):
    """Microseconds from connect() to the target's first byte."""
    s = socket.socket()
    s.settimeout(IO_TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        t0 = time.perf_counter_ns()
        s.connect((HOST, port))
        if s.recv(1) != b"!":
            raise RuntimeError("no greeting")
        return (time.perf_counter_ns() - t0) / 1000.0
    finally:
        s.close()


def many_streams(port, streams, size, sample=None, timeout=120.0):
    """`streams` concurrent connections, each echoing `size` bytes (send and receive at once).
    Returns the wall time from the first connect to the last byte back. `sample` (if given) is
    called every ~20 ms during the transfer and once more while every stream is still open."""
    sel = selectors.DefaultSelector()
    conns = []
    body = bytes(PAYLOAD) * (size // len(PAYLOAD) + 1)
    out = memoryview(struct.pack(">cQ", b"E", 0) + body[:size])  # what every stream sends
    t0 = time.perf_counter()
    for _ in range(streams):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((HOST, port))
        st = {"s": s, "greeted": False, "off": 0, "got": 0}
        conns.append(st)
        sel.register(s, selectors.EVENT_READ, st)   # writes start after the greeting
    buf = bytearray(256 * 1024)
    done = 0
    deadline = time.monotonic() + timeout
    last_sample = 0.0
    try:
        while done < streams:
            if time.monotonic() > deadline:
                raise RuntimeError("many streams: %d of %d done after %.0fs" % (done, streams, timeout))
            for key, ev in sel.select(0.1):
                st = key.data
                s = st["s"]
                if ev & selectors.EVENT_READ:
                    try:
                        k = s.recv_into(buf)
                    except (BlockingIOError, InterruptedError):
                        k = -1
                    if k == 0:
                        raise RuntimeError("a stream closed early (%d of %d bytes)" % (st["got"], size))
                    if k > 0:
                        if not st["greeted"]:
                            st["greeted"] = True
                            k -= 1
                            sel.modify(s, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
                            ev |= selectors.EVENT_WRITE
                        st["got"] += k
                        if st["got"] >= size:
                            done += 1
                            sel.unregister(s)
                            continue
                if ev & selectors.EVENT_WRITE and st["greeted"] and st["off"] < len(out):
                    try:
                        st["off"] += s.send(out[st["off"]:st["off"] + 256 * 1024])
                    except (BlockingIOError, InterruptedError):
                        pass
                    if st["off"] >= len(out):
                        sel.modify(s, selectors.EVENT_READ, st)
            now = time.monotonic()
            if sample and now - last_sample > 0.02:
                last_sample = now
                sample()
        wall = time.perf_counter() - t0
        if sample:
            sample()
        return wall
    finally:
        sel.close()
        for st in conns:
            st["s"].close()


def bulk_child(port, seconds):
    """--bulk mode: download as fast as possible for at most `seconds` (or until SIGTERM),
    then print what was received."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    c = connect(int(port), nodelay=False)
    c.settimeout(1.0)
    c.sendall(struct.pack(">cQ", b"D", 1 << 40))
    buf = bytearray(MiB)
    total, t0 = 0, time.monotonic()
    flowing = False
    deadline = t0 + float(seconds)
    while not stop and time.monotonic() < deadline:
        try:
            k = c.recv_into(buf)
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        if k == 0:
            break
        total += k
        if not flowing and total >= 8 * MiB:
            flowing = True
            total, t0 = 0, time.monotonic()   # count from here: the rate while round trips are measured
            print("flowing", flush=True)
    print("bytes %d seconds %.3f" % (total, time.monotonic() - t0), flush=True)
    c.close()


class Bulk:
    """A bulk download on `port` in another process (no shared interpreter lock)."""

    def __init__(self, port, seconds):
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--bulk", str(port), str(seconds)],
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        PROCS.items.append(("bulk", self.p))
        line = self.p.stdout.readline()
        if line.strip() != "flowing":
            raise RuntimeError("bulk download did not start on port %d" % port)
        self.t0 = time.monotonic()

    def stop(self):
        """Stops the download; returns its rate in MB/s (None if unknown)."""
        rate = None
        try:
            self.p.send_signal(signal.SIGTERM)
            out, _ = self.p.communicate(timeout=10)
            m = re.search(r"bytes (\d+) seconds ([\d.]+)", out or "")
            if m and float(m.group(2)) > 0:
                rate = mbps(int(m.group(1)), float(m.group(2)))
        except (subprocess.TimeoutExpired, OSError):
            pass
        PROCS.stop(self.p)
        PROCS.items = [(n, p) for n, p in PROCS.items if p is not self.p]
        return rate


# ---------------------------------------------------------------------------
# statistics and formatting


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    i = min(len(xs) - 1, max(0, int(round(q / 100.0 * (len(xs) - 1)))))
    return xs[i]


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def mbps(nbytes, seconds):
    return nbytes / seconds / 1e6


# ---------------------------------------------------------------------------
# binary sizes


def file_size(p):
    try:
        return os.path.getsize(os.path.realpath(p))
    except OSError:
        return None


def ldd_libs(binary):
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    libs = []
    for line in out.splitlines():
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if m:
            libs.append(os.path.realpath(m.group(1)))
    return sorted(set(libs))


def sizes(agent_bin):
    res = {"agent": {}, "openssh": {}}
    for p in sorted(glob.glob(os.path.join(ROOT, "build", "agent-*"))):
        arch = os.path.basename(p)[len("agent-"):]
        if "." in arch or not os.path.isfile(p):
            continue
        res["agent"][arch] = os.path.getsize(p)
    for name, b in (("ssh", SSH), ("sshd", SSHD)):
        libs = ldd_libs(b)
        res["openssh"][name] = {"binary": file_size(b), "libs": {l: file_size(l) for l in libs},
                                "with_libs": (file_size(b) or 0) + sum(file_size(l) or 0 for l in libs)}
    return res


# ---------------------------------------------------------------------------
# the run


def measure(paths, results, agent_bin, work):
    direct, agent, ssh = paths
    R = results

    # --- idle memory, right after setup, before any stream
    R["memory"] = {"idle": {p.name: p.rss() for p in (agent, ssh)}}
    log("idle RSS: agent %s; OpenSSH %s" % (R["memory"]["idle"]["agent"], R["memory"]["idle"]["OpenSSH"]))

    # --- stream open time: the first stream after the path is up, then later ones
    opens = {p.name: {"first_us": open_time(p.port), "later_us": []} for p in paths}
    for i in range(CFG["open_later"]):
        for p in paths:
            opens[p.name]["later_us"].append(open_time(p.port))
            time.sleep(0.01)
    for v in opens.values():
        v["later_median_us"] = median(v["later_us"])
    R["open"] = opens
    log("open: " + ", ".join("%s first %.0f us later %.0f us" % (k, v["first_us"], v["later_median_us"])
                             for k, v in opens.items()))

    # --- round trips
    rt = {p.name: {"p50_us": [], "p99_us": []} for p in paths}
    for r in range(CFG["rtt_rounds"]):
        for p in paths:
            xs = rtt(p.port, CFG["rtt_count"], CFG["rtt_warmup"])
            rt[p.name]["p50_us"].append(pct(xs, 50))
            rt[p.name]["p99_us"].append(pct(xs, 99))
    for v in rt.values():
        v["p50_median_us"] = median(v["p50_us"])
        v["p99_median_us"] = median(v["p99_us"])
    R["rtt"] = rt
    log("rtt p50: " + ", ".join("%s %.0f us" % (k, v["p50_median_us"]) for k, v in rt.items()))

    # --- round trips while another stream on the same path downloads in bulk
    rl = {p.name: {"p50_us": [], "p99_us": [], "count": [], "bulk_mbps": []} for p in paths}
    for r in range(CFG["rtt_load_rounds"]):
        for p in paths:
            b = Bulk(p.port, CFG["rtt_load_max_seconds"] + 10)
            try:
                xs = rtt(p.port, CFG["rtt_count"], CFG["rtt_warmup"], max_seconds=CFG["rtt_load_max_seconds"])
            finally:
                rate = b.stop()
            rl[p.name]["bulk_mbps"].append(rate)
            rl[p.name]["p50_us"].append(pct(xs, 50))
            rl[p.name]["p99_us"].append(pct(xs, 99))
            rl[p.name]["count"].append(len(xs))
    for v in rl.values():
        v["bulk_median_mbps"] = median(v["bulk_mbps"])
        v["p50_median_us"] = median(v["p50_us"])
        v["p99_median_us"] = median(v["p99_us"])
    R["rtt_loaded"] = rl
    log("rtt under bulk p99: " + ", ".join("%s %.0f us" % (k, v["p99_median_us"]) for k, v in rl.items()))

    # --- one stream, each direction; CPU time of every process of the path is recorded too
    n = CFG["bulk_bytes"]
    tp = {p.name: {"upload_mbps": [], "download_mbps": [], "upload_cpu_s": [], "download_cpu_s": []} for p in paths}
    for r in range(CFG["bulk_rounds"]):
        for p in paths:
            for what, fn in (("upload", upload), ("download", download)):
                c0 = p.cpu()
                sec = fn(p.port, n)
                c1 = p.cpu()
                tp[p.name][what + "_mbps"].append(mbps(n, sec))
                tp[p.name][what + "_cpu_s"].append({k: (c1[k] - c0[k]) / CLK_TCK for k in c1})
            time.sleep(0.1)
    for v in tp.values():
        v["upload_median_mbps"] = median(v["upload_mbps"])
        v["download_median_mbps"] = median(v["download_mbps"])
    R["throughput"] = tp
    log("throughput: " + ", ".join("%s up %.0f down %.0f MB/s" % (k, v["upload_median_mbps"], v["download_median_mbps"])
                                   for k, v in tp.items()))

    # --- 100 concurrent streams; peak RSS of every process while they run
    ms = {p.name: {"wall_s": [], "mbps": [], "peak_rss": {}, "cpu_s": []} for p in paths}
    for r in range(CFG["many_rounds"]):
        for p in paths:
            peak = ms[p.name]["peak_rss"]

            def sample(p=p, peak=peak):
                for k, v in p.rss().items():
                    peak[k] = max(peak.get(k, 0), v)

            c0 = p.cpu()
            wall = many_streams(p.port, CFG["many_streams"], CFG["many_bytes"], sample=sample if p.processes() else None)
            c1 = p.cpu()
            ms[p.name]["cpu_s"].append({k: (c1[k] - c0[k]) / CLK_TCK for k in c1})
            ms[p.name]["wall_s"].append(wall)
            ms[p.name]["mbps"].append(mbps(CFG["many_streams"] * CFG["many_bytes"], wall))
            time.sleep(0.2)
    for v in ms.values():
        v["wall_median_s"] = median(v["wall_s"])
        v["mbps_median"] = median(v["mbps"])
    R["many"] = ms
    R["memory"]["streams100_peak"] = {p.name: ms[p.name]["peak_rss"] for p in (agent, ssh)}
    log("100 streams: " + ", ".join("%s %.2f s" % (k, v["wall_median_s"]) for k, v in ms.items()))
    time.sleep(0.5)
    R["memory"]["idle_after"] = {p.name: p.rss() for p in (agent, ssh)}


def idle_devices_run(agent_bin, work, results):
    """A fresh relay, then N idle devices from bench/idle_devices.py; relay RSS before / with / after."""
    d = os.path.join(work, "idle")
    os.makedirs(d, exist_ok=True)
    port = free_port()
    relay = PROCS.start("idle-relay", [agent_bin, "--role", "relay", "--listen", "%s:%d" % (HOST, port),
                                       "--state", os.path.join(d, "relay-state"), "--open-enrollment",
                                       "--log-level", "warn"], d)
    pin = read_pin(os.path.join(d, "idle-relay.out"), relay)
    wait_until(lambda: listening(port), 10, "the idle relay's port")
    time.sleep(0.5)
    before = rss_kib(relay.pid)
    n = CFG["idle_devices"]
    tool = subprocess.Popen([sys.executable, os.path.join(HERE, "idle_devices.py"), "--relay", "%s:%d" % (HOST, port),
                             "--pin", pin, "--count", str(n), "--concurrency", "32", "--hold", "240",
                             "--rate", "45"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(os.path.join(d, "tool.log"), "w"),
                            text=True)
    PROCS.items.append(("idle-devices", tool))
    out = {"devices": n, "relay_before_kib": before}
    try:
        line = tool.stdout.readline().strip()   # "connected N failed M seconds S"
        m = re.match(r"connected (\d+) failed (\d+) seconds ([\d.]+)", line)
        if not m:
            raise RuntimeError("idle_devices.py: %r (see %s)" % (line, os.path.join(d, "tool.log")))
        out.update(connected=int(m.group(1)), failed=int(m.group(2)), connect_seconds=float(m.group(3)))
        log("idle devices: %s" % line)
        time.sleep(1.0)
        out["relay_with_kib"] = rss_kib(relay.pid)
        # Stay past one heartbeat: the relay PINGs every device, and every device must still be there.
        time.sleep(CFG["idle_hold_seconds"])
        tool.stdin.write("count\n")
        tool.stdin.flush()
        m = re.match(r"alive (\d+) pings (\d+)", tool.stdout.readline().strip())
        out["alive_after_hold"], out["pings_answered"] = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        out["relay_with_after_hold_kib"] = rss_kib(relay.pid)
        out["hold_seconds"] = CFG["idle_hold_seconds"]
        tool.stdin.write("stop\n")
        tool.stdin.flush()
        tool.wait(30)
        time.sleep(1.0)
        out["relay_after_disconnect_kib"] = rss_kib(relay.pid)
        with_kib = max(out["relay_with_kib"], out["relay_with_after_hold_kib"])
        out["per_device_kib"] = (with_kib - before) / max(1, out["connected"])
    finally:
        PROCS.stop(tool)
        PROCS.stop(relay)
    results["idle_devices"] = out
    log("relay RSS %d KiB -> %d KiB with %d devices: %.1f KiB per device" %
        (before, out["relay_with_kib"], out["connected"], out["per_device_kib"]))


# ---------------------------------------------------------------------------
# table


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if abs(v) >= 100:
        return "%.0f%s" % (v, unit)
    if abs(v) >= 10:
        return "%.1f%s" % (v, unit)
    return "%.2f%s" % (v, unit)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def build_rows(R):
    rows = []   # (metric, direct, agent, ssh, target_text, met)

    def row(metric, d, a, s, target="", met=None):
        rows.append(dict(metric=metric, direct=d, agent=a, openssh=s, agent_vs_openssh=ratio(a, s),
                         agent_vs_direct=ratio(a, d), target=target, met=met))

    tp = R["throughput"]
    for what in ("upload", "download"):
        a, s = tp["agent"][what + "_median_mbps"], tp["OpenSSH"][what + "_median_mbps"]
        row("1 stream %s 256 MiB (MB/s)" % what, tp["direct"][what + "_median_mbps"], a, s,
            ">= 1.0x OpenSSH", a >= s)
    for what in ("upload", "download"):
        cpg = {}
        for name in ("agent", "OpenSSH"):
            sums = [sum(v for k, v in c.items() if k != "device" or name == "agent") for c in tp[name][what + "_cpu_s"]]
            cpg[name] = median(sums) / (R["config"]["bulk_bytes"] / 1e9) if sums else None
        row("  CPU s per GB, all path processes (%s)" % what, None, cpg["agent"], cpg["OpenSSH"])
    ms = R["many"]
    row("100 streams x 1 MiB echo: wall (s)", ms["direct"]["wall_median_s"], ms["agent"]["wall_median_s"],
        ms["OpenSSH"]["wall_median_s"])
    row("100 streams x 1 MiB echo: aggregate (MB/s)", ms["direct"]["mbps_median"], ms["agent"]["mbps_median"],
        ms["OpenSSH"]["mbps_median"])
    rt = R["rtt"]
    a, s = rt["agent"]["p50_median_us"], rt["OpenSSH"]["p50_median_us"]
    row("round trip 64 B p50 (us)", rt["direct"]["p50_median_us"], a, s, "<= 0.5x OpenSSH", a <= 0.5 * s)
    row("round trip 64 B p99 (us)", rt["direct"]["p99_median_us"], rt["agent"]["p99_median_us"],
        rt["OpenSSH"]["p99_median_us"])
    rl = R["rtt_loaded"]
    row("round trip p50 under bulk download (us)", rl["direct"]["p50_median_us"], rl["agent"]["p50_median_us"],
        rl["OpenSSH"]["p50_median_us"])
    row("  bulk download alongside (MB/s)", rl["direct"]["bulk_median_mbps"], rl["agent"]["bulk_median_mbps"],
        rl["OpenSSH"]["bulk_median_mbps"])
    a = rl["agent"]["p99_median_us"]
    row("round trip p99 under bulk download (us)", rl["direct"]["p99_median_us"], a, rl["OpenSSH"]["p99_median_us"],
        "<= 2000 us", a <= 2000)
    op = R["open"]
    row("stream open, first (us)", op["direct"]["first_us"], op["agent"]["first_us"], op["OpenSSH"]["first_us"])
    row("stream open, later median (us)", op["direct"]["later_median_us"], op["agent"]["later_median_us"],
        op["OpenSSH"]["later_median_us"])
    mem = R["memory"]
    for key, label in (("idle", "idle RSS"), ("streams100_peak", "RSS, 100 streams (peak)")):
        a, s = mem[key]["agent"], mem[key]["OpenSSH"]
        row("%s relay (KiB)" % label, None, a["relay"], s["relay"])
        if key == "idle":
            row("%s device (KiB)" % label, None, a["device"], s["device"], "reverse <= 1024 KiB", a["device"] <= 1024)
        else:
            row("%s device (KiB)" % label, None, a["device"], s["device"])
        row("  OpenSSH device: ssh -R / sshd tree (KiB)", None, None,
            "%d / %d" % (s["device ssh -R"], s["device sshd"]))
        row("%s operator (KiB)" % label, None, a["operator"], s["operator"])
    idl = R["idle_devices"]
    row("relay RSS, no device (KiB)", None, idl["relay_before_kib"], None)
    row("relay RSS, %d idle devices (KiB)" % idl["connected"], None,
        max(idl["relay_with_kib"], idl["relay_with_after_hold_kib"]), None)
    row("relay RSS per idle device (KiB)", None, idl["per_device_kib"], None, "<= 64 KiB",
        idl["per_device_kib"] <= 64)
    sz = R["sizes"]
    for arch, b in sz["agent"].items():
        row("binary agent-%s (KiB, static)" % arch, None, b / 1024.0, None, "<= 512 KiB", b <= 512 * 1024)
    o = sz["openssh"]
    row("binary ssh / sshd (KiB, dynamic)", None, None, "%.0f / %.0f" % (o["ssh"]["binary"] / 1024.0,
                                                                      o["sshd"]["binary"] / 1024.0))
    row("ssh / sshd + shared libraries (KiB)", None, None, "%.0f / %.0f" % (o["ssh"]["with_libs"] / 1024.0,
                                                                         o["sshd"]["with_libs"] / 1024.0))
    a = sz["agent"].get("x86_64")
    row("agent-x86_64 vs ssh+libs", None, a / 1024.0 if a else None, o["ssh"]["with_libs"] / 1024.0)
    return rows


def formula(R):
    """RSS <= base + tunnels x a + streams x b, in KiB, from this run's figures."""
    mem, idl = R["memory"], R["idle_devices"]
    n = CFG["many_streams"]
    out = {}
    for role in ("relay", "device", "operator"):
        idle = mem["idle"]["agent"][role]
        peak = mem["streams100_peak"]["agent"][role]
        out[role] = {"base_kib": idle, "per_stream_kib": (peak - idle) / float(n)}
    # The relay's base is a relay with no tunnel; a is its cost per connected idle device.
    out["relay"]["base_kib"] = idl["relay_before_kib"]
    out["relay"]["per_tunnel_kib"] = idl["per_device_kib"]
    return out


def print_table(rows, out=sys.stdout):
    head = ["metric", "direct", "agent", "OpenSSH", "agent/OpenSSH", "agent/direct", "target"]
    body = []
    for r in rows:
        t = r["target"]
        if t:
            t += ": " + ("met" if r["met"] else "MISSED")
        body.append([r["metric"], fmt(r["direct"]), fmt(r["agent"]), fmt(r["openssh"]),
                     fmt(r["agent_vs_openssh"], "x") if r["agent_vs_openssh"] is not None else "-",
                     fmt(r["agent_vs_direct"], "x") if r["agent_vs_direct"] is not None else "-", t])
    w = [max(len(x[i]) for x in body + [head]) for i in range(len(head))]
    line = lambda cells: "| " + " | ".join(c.ljust(w[i]) if i == 0 or i == 6 else c.rjust(w[i])
                                           for i, c in enumerate(cells)) + " |"
    print(line(head), file=out)
    print("|" + "|".join("-" * (x + 2) for x in w) + "|", file=out)
    for b in body:
        print(line(b), file=out)


# ---------------------------------------------------------------------------


def git_head():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def sources_changed():
    """Files under Sources/ that differ from HEAD (the binary may include them)."""
    try:
        out = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "Sources"], capture_output=True,
                             text=True, timeout=10).stdout
        return [line[3:] for line in out.splitlines() if line.strip()]
    except (OSError, subprocess.TimeoutExpired):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", default=os.path.join(ROOT, "build", "agent-x86_64"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench-results.json"))
    ap.add_argument("--quick", action="store_true", help="smaller workloads (a smoke run, not for figures)")
    ap.add_argument("--bulk", nargs=2, metavar=("PORT", "SECONDS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bulk:
        return bulk_child(*args.bulk)
    if args.quick:
        CFG.update(bulk_bytes=32 * MiB, bulk_rounds=1, many_rounds=1, rtt_count=300, rtt_warmup=50, rtt_rounds=1,
                   rtt_load_rounds=1, open_later=5, idle_devices=100, idle_hold_seconds=1.0)
    for tool in (SSHD, SSH, SSH_KEYGEN):
        if not os.path.exists(tool):
            sys.exit("bench: %s not found (apt-get install openssh-server openssh-client)" % tool)
    if not os.path.exists(args.agent):
        sys.exit("bench: %s not found (make build/agent-x86_64)" % args.agent)

    work = tempfile.mkdtemp(prefix="agent-bench-")
    # Our own copy: other work in this checkout may rebuild build/agent-x86_64 during the run.
    agent_bin = os.path.join(work, "agent-x86_64")
    shutil.copy2(args.agent, agent_bin)
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "loadavg_at_start": os.getloadavg()},
        "agent": {"binary": os.path.relpath(args.agent, ROOT), "sha256": hashlib.sha256(open(agent_bin, "rb").read()).hexdigest(),
                  "git_head": git_head(), "sources_changed_since_head": sources_changed(),
                  "built": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(os.path.getmtime(args.agent)))},
        "openssh": subprocess.run([SSH, "-V"], capture_output=True, text=True).stderr.strip(),
        "config": dict(CFG),
    }

    def on_signal(sig, _frame):
        PROCS.stop_all()
        sys.exit(128 + sig)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ok = False
    try:
        results["sizes"] = sizes(agent_bin)
        target = Target(work)
        log("target on port %d; setting up the agent path" % target.port)
        agent = AgentPath(agent_bin, os.path.join(work, "agent"), target.port)
        log("agent path up (forward on %d); setting up the OpenSSH path" % agent.port)
        ssh = SshPath(os.path.join(work, "ssh"), target.port)
        log("OpenSSH path up (-L on %d)" % ssh.port)
        measure((Direct(target.port), agent, ssh), results, agent_bin, work)
        ssh.stop()
        for p in (agent.forward, agent.reverse, agent.relay):
            PROCS.stop(p)
        idle_devices_run(agent_bin, work, results)
        ok = True
    finally:
        PROCS.stop_all()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("bench: failed; processes stopped, logs kept in " + work, file=sys.stderr)

    results["total_seconds"] = time.monotonic() - T_START
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    results["memory_formula"] = formula(results)
    rows = build_rows(results)
    results["table"] = rows
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    print()
    changed = results["agent"]["sources_changed_since_head"]
    print("agent vs OpenSSH on 127.0.0.1, %s, %d CPUs, load at start %.2f; %s; %s (HEAD %s%s)" % (
        results["date"], os.cpu_count(), results["machine"]["loadavg_at_start"][0], results["openssh"],
        results["agent"]["binary"], results["agent"]["git_head"],
        ", %d files changed under Sources/" % len(changed) if changed else ""))
    print("medians of %d rounds (throughput, 100 streams), %d (round trips); MB = 10^6 bytes; RSS in KiB (VmRSS)" % (
        CFG["bulk_rounds"], CFG["rtt_rounds"]))
    print()
    print_table(rows)
    print()
    print("OpenSSH is dynamically linked (ldd): ssh needs %d shared libraries, sshd %d; agent is static." % (
        len(results["sizes"]["openssh"]["ssh"]["libs"]), len(results["sizes"]["openssh"]["sshd"]["libs"])))
    f = results["memory_formula"]
    print("memory formula, RSS <= base + tunnels x a + streams x b (KiB):")
    print("  relay:   base %d, a %.1f per idle device, b %.1f per active stream" % (
        f["relay"]["base_kib"], f["relay"]["per_tunnel_kib"], f["relay"]["per_stream_kib"]))
    print("  reverse: base %d, b %.1f per active stream" % (f["device"]["base_kib"], f["device"]["per_stream_kib"]))
    print("  forward: base %d, b %.1f per active stream" % (f["operator"]["base_kib"], f["operator"]["per_stream_kib"]))
    print("results: %s" % os.path.relpath(args.out, os.getcwd()))
    print("bench total time: %.0f s" % results["total_seconds"])


if __name__ == "__main__":
    main()
