#!/usr/bin/env python3
"""`make bench-wan`: agent and OpenSSH over long, slow paths (issue 19), in one run.

The device's connection to the relay crosses a link emulator (bench/linkemu.py: one-way delay,
rate, bounded queue, loss of the connection); the operator and the relay are local to each
other, as an operator near a relay in a data centre would be. Everything is on 127.0.0.1.

  agent    operator: agent --role forward --listen P --device ID --target T   (to the relay)
           relay:    agent --role relay
           device:   agent --role reverse --relay <emulator>                    (over the link)
  OpenSSH  relay:    sshd (ClientAliveInterval 15)
           device:   sshd, and `ssh -N -R rport:127.0.0.1:<device sshd>` to the relay through the
                     emulator (ServerAliveInterval 15), restarted 0.1 s after it exits (as
                     systemd's Restart=always or autossh would)
           operator: `ssh -N -J relay -L P:T -p rport`: an end-to-end session to the device's
                     sshd through the -R port, restarted 0.2 s after it exits
  target   a server on the device side (`--target` mode of this file): greets every connection
           with one byte at once, then echoes, sends or sinks.

Per path (round trip, rate), figures for both, measured in the same run on the same emulator
settings (each system has an emulator of its own, so that one's idle traffic does not share
the other's link; the two are never loaded at the same time):

  link check        plain TCP through a third emulator with the same settings: 64-byte ping,
                    bulk each way, ping behind a full queue (what the link gives at all)
  stream open       connect() to the operator's port until the target's greeting byte: the
                    first stream after the path is up, then later ones
  round trip        64-byte echo on one stream, idle and while another stream downloads in bulk
  one stream        download (device -> operator) and upload, each timed: the rate over a
                    window that starts max(1 s, 3 round trips) after the first byte
  4 streams         four concurrent downloads, the same window: aggregate and min / max
  idle bytes        the device's tunnel socket (`ss -ti`: payload bytes and segments both ways)
                    over two heartbeats (30 s) with no stream, + 52 bytes of TCP/IP header per
                    segment, scaled to a day; measured while the other system runs its workloads
  reconnect         the emulator resets the device's connection (`cut`); time until a stream
                    opened by the operator gets the target's greeting again

Output: one markdown table per group of figures on stdout, progress on stderr, every sample in
build/bench-wan-results.json. Every process started is stopped by pid, also on failure.

Usage: python3 bench/wan.py [--agent build/agent-x86_64] [--paths 40:50,100:20,300:5,600:2]
       (WAN_PATHS=100:20 make bench-wan for a quick run)
"""
import argparse
import datetime
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
sys.path.insert(0, HERE)
import bench as B      # noqa: E402  (processes, ports, the sshd setup of `make bench`)
import linkemu         # noqa: E402
import target          # noqa: E402  (the fork-per-connection accept loop)

HOST = "127.0.0.1"
PROCS = B.PROCS
DEFAULT_PATHS = "40:50,100:20,300:5,600:2"
HEARTBEAT_S = 15            # agent's default --heartbeat; OpenSSH gets the same interval
QUEUE_MS = 50.0             # the emulator's queue per direction, in ms of the rate
TCPIP_HEADER = 52           # bytes per segment: IPv4 20 + TCP 20 + timestamps 12
T_START = time.monotonic()


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T_START, msg), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# the target (device side)


def target_main(portfile, max_seconds):
    """The target of bench/target.py's accept loop (greeting b"!", a child per connection) with
    this bench's commands: a request of 9 bytes, a command and a big-endian u64:
      E 0   echo until EOF
      D ms  send random bytes for ms milliseconds (or until the client closes)
      U 0   read until EOF, then answer one JSON line of [time, bytes so far] marks"""
    target.accept_loop(portfile, max_seconds, target_child, backlog=128)


def target_child(c):
    try:
        target_serve(c)
    except OSError:
        pass
    except BaseException as e:
        print("target: %r" % e, file=sys.stderr, flush=True)


def target_serve(c):
    c.settimeout(300)
    head = recv_n(c, 9)
    cmd, n = struct.unpack(">cQ", head)
    if cmd == b"E":
        buf = bytearray(1 << 16)
        while True:
            k = c.recv_into(buf)
            if k == 0:
                break
            c.sendall(memoryview(buf)[:k])
    elif cmd == b"D":
        block = os.urandom(1 << 16)
        end = time.monotonic() + min(n, 600_000) / 1000.0
        while time.monotonic() < end:
            c.sendall(block)
    elif cmd == b"U":
        buf = bytearray(1 << 18)
        marks, total = [], 0
        while True:
            k = c.recv_into(buf)
            if k == 0:
                break
            total += k
            marks.append((time.monotonic(), total))
        step = max(1, len(marks) // 4000)
        c.sendall(json.dumps(marks[::step] + marks[-1:]).encode() + b"\n")


def recv_n(c, n):
    out = bytearray()
    while len(out) < n:
        d = c.recv(n - len(out))
        if not d:
            raise OSError("connection closed with %d of %d bytes" % (len(out), n))
        out += d
    return bytes(out)


class Target:
    def __init__(self, work):
        pf = os.path.join(work, "target.port")
        self.proc = PROCS.start("target", [sys.executable, os.path.abspath(__file__), "--target", pf, "1800"], work)
        B.wait_until(lambda: os.path.exists(pf), 10, "the target server")
        self.port = int(open(pf).read())


# ---------------------------------------------------------------------------
# the link: an emulator process, driven through its stdin


class Emu:
    def __init__(self, name, work, upstream_port, rtt_ms, mbit):
        self.name = name
        self.proc = PROCS.start(name, [sys.executable, os.path.join(HERE, "linkemu.py"),
                                       "--listen", "%s:0" % HOST, "--upstream", "%s:%d" % (HOST, upstream_port),
                                       "--rtt", str(rtt_ms), "--rate", str(mbit), "--queue-ms", str(QUEUE_MS),
                                       "--max-seconds", "1800", "--realtime"],
                                work, stdout=subprocess.PIPE, stdin=subprocess.PIPE)
        line = self.proc.stdout.readline().decode().split()
        if not line or line[0] != "listening":
            raise RuntimeError("%s did not start (%r)" % (name, line))
        self.port = int(line[1].rsplit(":", 1)[1])
        self.priority = line[3] if len(line) > 3 else "?"
        self.lock = threading.Lock()

    def cmd(self, text):
        with self.lock:
            self.proc.stdin.write((text + "\n").encode())
            self.proc.stdin.flush()
            return self.proc.stdout.readline().decode().strip()

    def stats(self):
        return json.loads(self.cmd("stats"))

    def quiet(self, rtt_s, limit=90.0):
        """Waits until nothing crossed the link for max(0.5 s, 1.5 round trips) (what a closed
        stream left in buffers has drained); returns the seconds waited."""
        t0 = time.monotonic()
        still = max(0.5, 1.5 * rtt_s)
        last, since = None, time.monotonic()
        while time.monotonic() - t0 < limit:
            st = self.stats()
            cur = (st["up"]["bytes"], st["down"]["bytes"])
            busy = st["up"]["backlog"] or st["down"]["backlog"]
            if cur != last or busy:
                last, since = cur, time.monotonic()
            elif time.monotonic() - since >= still:
                return time.monotonic() - t0
            time.sleep(0.1)
        log("%s: the link was still busy after %.0f s" % (self.name, limit))
        return time.monotonic() - t0


# ---------------------------------------------------------------------------
# supervised processes (OpenSSH's clients come back after they exit)


SUPERVISED = []   # stopped before anything else, so that nothing comes back


def stop_everything():
    for s in SUPERVISED:
        s.stop()
    PROCS.stop_all()


class Supervised:
    def __init__(self, name, args, cwd, delay, max_restarts=400):
        self.name, self.args, self.cwd, self.delay = name, args, cwd, delay
        self.stopping = False
        self.max_restarts = max_restarts
        self.starts = 0
        self.current = None
        self.exits = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        SUPERVISED.append(self)
        self.thread.start()

    def loop(self):
        while not self.stopping and self.starts <= self.max_restarts:
            with self.lock:
                if self.stopping:
                    return
                self.starts += 1
                self.current = PROCS.start("%s-%d" % (self.name, self.starts), self.args, self.cwd)
            p = self.current
            p.wait()
            self.exits.append(time.monotonic())
            time.sleep(self.delay)

    def stop(self):
        with self.lock:
            self.stopping = True
            p = self.current
        if p is not None:
            PROCS.stop(p)
        self.thread.join(10)

    @property
    def pid(self):
        return self.current.pid if self.current else None


# ---------------------------------------------------------------------------
# the two systems


class AgentWan:
    name = "agent"

    def __init__(self, agent, work, target_port, rtt_ms, mbit):
        self.agent, self.dir = agent, work
        os.makedirs(work, exist_ok=True)
        rtt_s = rtt_ms / 1000.0
        self.relay_port = B.free_port()
        self.port = B.free_port()
        dev = self.run("keygen", "--identity", self.p("dev.pem"))
        op = self.run("keygen", "--identity", self.p("op.pem"))
        with open(self.p("authorized_keys"), "w") as f:
            f.write("# operators\n%s\n" % op)
        quiet = ("--log-level", "warn")
        self.relay = PROCS.start("agent-relay", [agent, "--role", "relay", "--listen", "%s:%d" % (HOST, self.relay_port),
                                                 "--state", self.p("relay-state"), "--open-enrollment", *quiet], work)
        pin = B.read_pin(os.path.join(work, "agent-relay.out"), self.relay)
        B.wait_until(lambda: B.listening(self.relay_port), 10, "the relay's port")
        self.emu = Emu("emu-agent", work, self.relay_port, rtt_ms, mbit)
        self.reverse = PROCS.start("agent-reverse", [agent, "--role", "reverse", "--relay", "%s:%d" % (HOST, self.emu.port),
                                                     "--relay-pin", pin, *quiet, "--identity", self.p("dev.pem"),
                                                     "--authorized-keys", self.p("authorized_keys")], work)
        self.forward = PROCS.start("agent-forward", [agent, "--role", "forward", "--relay", "%s:%d" % (HOST, self.relay_port),
                                                     "--relay-pin", pin, *quiet, "--identity", self.p("op.pem"),
                                                     "--listen", "%s:%d" % (HOST, self.port), "--device", dev,
                                                     "--target", "%s:%d" % (HOST, target_port)], work)
        t0 = time.monotonic()
        B.wait_until(lambda: self.registered(dev, op), 20 + 15 * rtt_s, "reverse and forward admitted by the relay")
        B.wait_until(lambda: B.listening(self.port), 10, "the forward's port")
        time.sleep(0.3 + 2 * rtt_s)   # WELCOME on its way to the device, the first PING answered
        self.setup_s = time.monotonic() - t0
        for q in (self.relay, self.reverse, self.forward):
            if q.poll() is not None:
                raise RuntimeError("an agent process exited during setup; logs in " + work)

    def p(self, n):
        return os.path.join(self.dir, n)

    def run(self, *args):
        r = subprocess.run([self.agent, *args], cwd=self.dir, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("agent %s: %s" % (" ".join(args), r.stderr))
        return r.stdout.strip()

    def registered(self, *ids):
        text = ""
        for name in ("relay-state/registry", "relay-state/registry.journal"):
            try:
                with open(self.p(name)) as f:
                    text += f.read().lower()
            except OSError:
                pass
        return all(i.lower() in text for i in ids)

    def device_pid(self):
        return self.reverse.pid

    def stop(self):
        for q in (self.forward, self.reverse, self.relay, self.emu.proc):
            PROCS.stop(q)


SSHD_CONFIG = """# bench-wan: a private sshd on loopback
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
{extra}
"""

SSH_CONFIG = """# bench-wan: the {who}'s ssh client (also read by ssh -J's jump process)
Host *
  IdentityFile {dir}/{who}_key
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  BatchMode yes
  ExitOnForwardFailure yes
  LogLevel ERROR
{extra}
"""


class SshWan:
    name = "OpenSSH"

    def __init__(self, work, target_port, rtt_ms, mbit):
        self.dir = work
        os.makedirs(work, exist_ok=True)
        rtt_s = rtt_ms / 1000.0
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        for k in ("relay_host_key", "device_host_key", "device_key", "operator_key"):
            subprocess.run([B.SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "bench-wan-" + k, "-f", self.p(k)],
                           check=True)
        pub = lambda k: open(self.p(k + ".pub")).read()
        with open(self.p("relay_authorized_keys"), "w") as f:
            f.write(pub("device_key") + pub("operator_key"))
        with open(self.p("device_authorized_keys"), "w") as f:
            f.write(pub("operator_key"))
        self.relay_port, self.device_sshd_port = B.free_port(), B.free_port()
        self.reverse_port, self.port = B.free_port(), B.free_port()
        # Liveness like agent's: both ends of the device's connection check it every 15 s.
        extra = {"relay": "ClientAliveInterval %d\nClientAliveCountMax 2" % HEARTBEAT_S, "device": ""}
        for name, port in (("relay", self.relay_port), ("device", self.device_sshd_port)):
            with open(self.p(name + "_sshd_config"), "w") as f:
                f.write(SSHD_CONFIG.format(port=port, dir=work, name=name, extra=extra[name]))
        cextra = {"device": "  ServerAliveInterval %d\n  ServerAliveCountMax 2" % HEARTBEAT_S, "operator": ""}
        for who in ("device", "operator"):
            with open(self.p(who + "_ssh_config"), "w") as f:
                f.write(SSH_CONFIG.format(dir=work, who=who, extra=cextra[who]))
        self.relay = PROCS.start("ssh-relay-sshd", [B.SSHD, "-D", "-e", "-f", self.p("relay_sshd_config")], work)
        self.device_sshd = PROCS.start("ssh-device-sshd", [B.SSHD, "-D", "-e", "-f", self.p("device_sshd_config")], work)
        B.wait_until(lambda: B.listening(self.relay_port) and B.listening(self.device_sshd_port), 10, "the sshds")
        self.emu = Emu("emu-ssh", work, self.relay_port, rtt_ms, mbit)
        t0 = time.monotonic()
        self.device_ssh = Supervised("ssh-device-R", [B.SSH, "-F", self.p("device_ssh_config"), "-N",
                                                      "-R", "127.0.0.1:%d:127.0.0.1:%d" % (self.reverse_port, self.device_sshd_port),
                                                      "-p", str(self.emu.port), "%s@127.0.0.1" % user], work, 0.1)
        B.wait_until(lambda: B.listening(self.reverse_port), 20 + 15 * rtt_s, "the relay sshd's -R port")
        self.operator = Supervised("ssh-operator", [B.SSH, "-F", self.p("operator_ssh_config"), "-N",
                                                    "-J", "%s@127.0.0.1:%d" % (user, self.relay_port),
                                                    "-L", "127.0.0.1:%d:127.0.0.1:%d" % (self.port, target_port),
                                                    "-p", str(self.reverse_port), "%s@127.0.0.1" % user], work, 0.2)
        B.wait_until(lambda: B.listening(self.port), 20 + 15 * rtt_s, "the operator's -L port")
        time.sleep(0.3 + 2 * rtt_s)
        self.setup_s = time.monotonic() - t0
        for q in (self.relay, self.device_sshd):
            if q.poll() is not None:
                raise RuntimeError("an sshd exited during setup; logs in " + work)

    def p(self, n):
        return os.path.join(self.dir, n)

    def device_pid(self):
        return self.device_ssh.pid

    def stop(self):
        self.operator.stop()
        self.device_ssh.stop()
        for q in (self.device_sshd, self.relay, self.emu.proc):
            PROCS.stop(q)


# ---------------------------------------------------------------------------
# client workloads (every socket has a timeout, every loop a bound)


def connect(port, timeout, nodelay=True):
    """A stream through the path; returns (socket, seconds until the target's greeting)."""
    c = socket.socket()
    c.settimeout(timeout)
    if nodelay:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.perf_counter()
    try:
        c.connect((HOST, port))
        if c.recv(1) != b"!":
            raise OSError("no greeting from the target through port %d" % port)
    except BaseException:
        c.close()
        raise
    return c, time.perf_counter() - t0


def open_ms(port, timeout):
    c, sec = connect(port, timeout)
    c.close()
    return sec * 1000.0


def pings(c, n, max_s, size=64):
    """n round trips of `size` bytes on an echo stream; milliseconds each, at most max_s."""
    msg = os.urandom(size)
    out = []
    end = time.monotonic() + max_s
    for _ in range(n):
        t0 = time.perf_counter()
        c.sendall(msg)
        recv_n(c, size)
        out.append((time.perf_counter() - t0) * 1000.0)
        if time.monotonic() > end:
            break
    return out


def echo_stream(port, timeout):
    c, _ = connect(port, timeout)
    c.sendall(struct.pack(">cQ", b"E", 0))
    return c


def window_rate(marks, t_from, t_to):
    """Bytes per second in [t_from, t_to] from (time, cumulative bytes) marks (the window ends
    early if the marks do: a transfer that ended)."""
    if not marks or marks[-1][0] <= t_from:
        return None
    t_to = min(t_to, marks[-1][0])
    at = lambda t: max([b for tm, b in marks if tm <= t] or [0])
    return (at(t_to) - at(t_from)) / (t_to - t_from)


def downloads(port, k, warm, meas, timeout, rtt_s, detail=None):
    """k concurrent downloads, requested one after the other; the rate of each over the same
    window: from `warm` + one round trip after the last request, for `meas` seconds. A stream
    whose data has not started by then (it waits behind the others') counts what it got. Mbit/s;
    `detail` gets each stream's first byte (seconds after the last request) and total."""
    sel = selectors.DefaultSelector()
    conns = []
    try:
        for _ in range(k):
            c, _ = connect(port, timeout, nodelay=False)
            c.sendall(struct.pack(">cQ", b"D", int((warm + rtt_s + meas + 30) * 1000)))
            c.setblocking(False)
            st = {"c": c, "marks": [], "total": 0, "open": True, "t_req": time.monotonic()}
            conns.append(st)
            sel.register(c, selectors.EVENT_READ, st)
        t_req = time.monotonic()
        t_from = t_req + warm + rtt_s
        buf = bytearray(1 << 18)
        while time.monotonic() < t_from + meas + 0.1:
            for key, _ev in sel.select(0.1):
                st = key.data
                try:
                    n = st["c"].recv_into(buf)
                except (BlockingIOError, InterruptedError):
                    continue
                if n == 0:
                    sel.unregister(st["c"])
                    st["open"] = False
                    continue
                st["total"] += n
                st["marks"].append((time.monotonic(), st["total"]))
        t_to = t_from + meas
        rates = []
        for st in conns:
            at = lambda t: max([b for tm, b in st["marks"] if tm <= t] or [0])
            rates.append((at(t_to) - at(t_from)) * 8 / meas / 1e6)
        if detail is not None:
            t0 = t_req
            detail.extend({"first_s": st["marks"][0][0] - st["t_req"] if st["marks"] else None, "total": st["total"],
                           "waited_s": time.monotonic() - st["t_req"],
                           "ended_early": not st["open"],
                           "marks": [(round(t - t0, 3), b) for t, b in st["marks"][::max(1, len(st["marks"]) // 50)]]}
                          for st in conns)
        return rates
    finally:
        sel.close()
        for st in conns:
            st["c"].close()


def upload(port, warm, meas, timeout):
    """One upload; the rate the target saw over [first byte + warm, + meas], in Mbit/s."""
    c, _ = connect(port, timeout, nodelay=False)
    try:
        c.sendall(struct.pack(">cQ", b"U", 0))
        block = memoryview(os.urandom(1 << 16))
        c.settimeout(0.5)
        end = time.monotonic() + warm + meas + 1.0
        while time.monotonic() < end:
            try:
                c.send(block)
            except socket.timeout:
                continue
        c.shutdown(socket.SHUT_WR)
        c.settimeout(timeout + 120)
        line = b""
        while not line.endswith(b"\n"):
            d = c.recv(1 << 16)
            if not d:
                break
            line += d
        marks = json.loads(line)
        t1 = marks[0][0]
        r = window_rate(marks, t1 + warm, t1 + warm + meas)
        return r * 8 / 1e6 if r is not None else None
    finally:
        c.close()


class Bulk:
    """A download on another stream, in another process (no shared interpreter lock); started
    and flowing for `warm` seconds before it returns."""

    def __init__(self, port, seconds, warm, timeout):
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--bulk", str(port), str(seconds),
                                   str(warm), str(timeout)],
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        PROCS.items.append(("bulk", self.p))
        line = self.p.stdout.readline()
        if line.strip() != "flowing":
            PROCS.stop(self.p)
            raise OSError("the bulk download did not start")

    def stop(self):
        rate = None
        try:
            self.p.send_signal(signal.SIGTERM)
            out, _ = self.p.communicate(timeout=15)
            m = re.search(r"bytes (\d+) seconds ([\d.]+)", out or "")
            if m and float(m.group(2)) > 0:
                rate = int(m.group(1)) * 8 / float(m.group(2)) / 1e6
        except (subprocess.TimeoutExpired, OSError):
            pass
        PROCS.stop(self.p)
        return rate


def bulk_main(port, seconds, warm, timeout):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    c, _ = connect(int(port), float(timeout), nodelay=False)
    c.sendall(struct.pack(">cQ", b"D", int(float(seconds) * 1000) + 30_000))
    c.settimeout(0.5)
    buf = bytearray(1 << 18)
    total, t0, first = 0, None, None
    deadline = time.monotonic() + float(seconds)
    while not stop and time.monotonic() < deadline:
        try:
            k = c.recv_into(buf)
        except (socket.timeout, InterruptedError):
            k = -1
        if k == 0:
            break
        if k > 0:
            total += k
            if first is None:
                first = time.monotonic()
        if first is not None and t0 is None and time.monotonic() >= first + float(warm):
            total, t0 = 0, time.monotonic()
            print("flowing", flush=True)
    if t0 is None:
        print("not flowing", flush=True)
        t0 = time.monotonic()
    print("bytes %d seconds %.3f" % (total, time.monotonic() - t0), flush=True)
    c.close()


def reachable_after_cut(emu, port, rtt_s, limit):
    """Resets the device's connection; seconds until a new stream gets the target's greeting."""
    t_cut = time.monotonic()
    emu.cmd("cut")
    tries = 0
    time.sleep(0.05)
    while time.monotonic() - t_cut < limit:
        tries += 1
        try:
            c, _ = connect(port, max(3.0, 8 * rtt_s))
            c.close()
            return time.monotonic() - t_cut, tries
        except OSError:
            pass
        time.sleep(0.1)
    return None, tries


# ---------------------------------------------------------------------------
# idle bytes on the device's tunnel socket


def ss_counters(emu_port):
    """tcp_info of the device's connection to its emulator (the only socket whose peer port is
    emu_port): local port, payload bytes and segments each way."""
    out = subprocess.run(["ss", "-tinH", "state", "established", "( dport = :%d )" % emu_port],
                         capture_output=True, text=True, timeout=10).stdout
    lines = out.splitlines()
    res = []
    for i, line in enumerate(lines):
        m = re.match(r"\s*\d+\s+\d+\s+\S+:(\d+)\s+\S+:(\d+)", line)
        if m and int(m.group(2)) == emu_port:
            info = lines[i + 1] if i + 1 < len(lines) else ""
            get = lambda k: int(re.search(r"\b%s:(\d+)" % k, info).group(1)) if re.search(r"\b%s:(\d+)" % k, info) else 0
            res.append({"lport": int(m.group(1)), "bytes_sent": get("bytes_sent"), "bytes_received": get("bytes_received"),
                        "segs_out": get("segs_out"), "segs_in": get("segs_in"),
                        "data_segs_out": get("data_segs_out"), "data_segs_in": get("data_segs_in")})
    if len(res) != 1:
        return None
    return res[0]


class IdleMeter(threading.Thread):
    """The device's tunnel socket over `seconds` in which the system has no stream."""

    def __init__(self, name, emu_port, seconds):
        super().__init__(daemon=True)
        self.name_, self.emu_port, self.seconds = name, emu_port, seconds
        self.result = None
        self.start()

    def run(self):
        try:
            a = ss_counters(self.emu_port)
            t0 = time.monotonic()
            time.sleep(self.seconds)
            b = ss_counters(self.emu_port)
            t1 = time.monotonic()
            if not a or not b or a["lport"] != b["lport"]:
                self.result = {"error": "the device's connection changed or was not found"}
                return
            d = {k: b[k] - a[k] for k in ("bytes_sent", "bytes_received", "segs_out", "segs_in", "data_segs_out",
                                          "data_segs_in")}
            payload = d["bytes_sent"] + d["bytes_received"]
            segs = d["segs_out"] + d["segs_in"]
            d.update(seconds=t1 - t0, payload=payload, segments=segs,
                     data_segments=d["data_segs_out"] + d["data_segs_in"],
                     wire=payload + TCPIP_HEADER * segs,
                     per_day=(payload + TCPIP_HEADER * segs) * 86400.0 / (t1 - t0))
            self.result = d
        except Exception as e:   # reported in the table, the run goes on
            self.result = {"error": repr(e)}

    def wait(self):
        self.join(self.seconds + 30)
        return self.result


# ---------------------------------------------------------------------------
# one path


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def attempt(R, key, fn, *args):
    """Runs one measurement; a failure is recorded and the run goes on."""
    try:
        R[key] = fn(*args)
    except Exception as e:
        log("  %s failed: %r" % (key, e))
        R[key] = None
        R.setdefault("errors", []).append("%s: %r" % (key, e))


def workloads(system, rtt_ms, mbit, quick):
    """Every figure of one system on one path but the reconnect and idle bytes."""
    R = {}
    rtt_s = rtt_ms / 1000.0
    port, emu = system.port, system.emu
    tmo = 10 + 12 * rtt_s                     # a stream open, generously
    warm = max(1.0, 3 * rtt_s)
    meas = 3.0 if quick else 5.0
    n_later = 5 if rtt_ms >= 300 else 10

    attempt(R, "open_first_ms", open_ms, port, tmo)
    later = []
    for _ in range(n_later):
        time.sleep(0.1)
        try:
            later.append(open_ms(port, tmo))
        except OSError as e:
            log("  later open failed: %r" % e)
    R["open_later_ms"] = later
    R["open_later_median_ms"] = median(later)
    log("  %s: open first %s ms, later %s ms" % (system.name, fmt(R["open_first_ms"]), fmt(R["open_later_median_ms"])))

    def idle_rtt():
        c = echo_stream(port, tmo)
        try:
            pings(c, 1, 30)
            return pings(c, 10 if rtt_ms < 300 else 5, 20)
        finally:
            c.close()
    attempt(R, "rtt_idle_ms", idle_rtt)
    emu.quiet(rtt_s)

    def loaded_rtt():
        c = echo_stream(port, tmo)           # opened first: the echo stream is not what waits
        try:
            pings(c, 1, 30)
            b = Bulk(port, warm + 60, warm, tmo)
            try:
                xs = pings(c, 10, max(8.0, 4 * rtt_s))
            finally:
                rate = b.stop()
            return {"ms": xs, "bulk_mbit": rate}
        finally:
            c.close()
    attempt(R, "rtt_loaded", loaded_rtt)
    emu.quiet(rtt_s)
    if R.get("rtt_loaded"):
        log("  %s: round trip under load p50 %s ms (%d), bulk %s Mbit/s" % (
            system.name, fmt(median(R["rtt_loaded"]["ms"])), len(R["rtt_loaded"]["ms"]), fmt(R["rtt_loaded"]["bulk_mbit"])))

    attempt(R, "down_mbit", lambda: downloads(port, 1, warm, meas, tmo, rtt_s)[0])
    emu.quiet(rtt_s)
    attempt(R, "up_mbit", upload, port, warm, meas, tmo)
    emu.quiet(rtt_s)
    log("  %s: down %s, up %s Mbit/s" % (system.name, fmt(R["down_mbit"]), fmt(R["up_mbit"])))
    R["four_detail"] = []
    attempt(R, "four_mbit", downloads, port, 4, warm, meas, tmo, rtt_s, R["four_detail"])
    emu.quiet(rtt_s)
    if R["four_mbit"]:
        log("  %s: 4 downloads %s Mbit/s" % (system.name, " ".join(fmt(x) for x in R["four_mbit"])))
    return R


def link_check(work, rtt_ms, mbit, quick):
    """Plain TCP through an emulator of the same settings (linkemu's own check)."""
    server = PROCS.start("check-server", [sys.executable, os.path.join(HERE, "linkemu.py"), "--serve-check"], work,
                         stdout=subprocess.PIPE)
    try:
        port = int(server.stdout.readline())
        emu = Emu("emu-check", work, port, rtt_ms, mbit)
        try:
            res = linkemu.link_check(emu.port, rtt_ms, mbit, pings=5 if rtt_ms >= 300 else 10,
                                     bulk_s=3.0 if quick else 4.0)
            res["queue_ms"] = QUEUE_MS
            res["priority"] = emu.priority
            return res
        finally:
            PROCS.stop(emu.proc)
    finally:
        PROCS.stop(server)


def run_path(agent_bin, work, target, rtt_ms, mbit, quick):
    rtt_s = rtt_ms / 1000.0
    P = {"rtt_ms": rtt_ms, "mbit": mbit}
    d = os.path.join(work, "path-%g-%g" % (rtt_ms, mbit))
    os.makedirs(d, exist_ok=True)
    log("path %g ms, %g Mbit/s: link check" % (rtt_ms, mbit))
    attempt(P, "link", link_check, d, rtt_ms, mbit, quick)
    if P["link"]:
        L = P["link"]
        log("  link: ping p50 %.1f ms, down %s up %s Mbit/s, behind a full queue %s ms" % (
            L["ping_ms"]["p50"], fmt(L.get("down_mbit")), fmt(L.get("up_mbit")),
            fmt(L.get("ping_loaded_ms", {}).get("p50"))))
    agent = ssh = None
    try:
        agent = AgentWan(agent_bin, os.path.join(d, "agent"), target.port, rtt_ms, mbit)
        log("  agent up in %.1f s (emulator %s)" % (agent.setup_s, agent.emu.priority))
        ssh = SshWan(os.path.join(d, "ssh"), target.port, rtt_ms, mbit)
        log("  OpenSSH up in %.1f s" % ssh.setup_s)
        P["setup_s"] = {"agent": agent.setup_s, "OpenSSH": ssh.setup_s}
        idle_s = 2 * HEARTBEAT_S
        ssh.emu.quiet(rtt_s)
        # Each system's idle window runs while the other one works (on its own emulator).
        ssh_idle = IdleMeter("OpenSSH", ssh.emu.port, idle_s)
        P["agent"] = workloads(agent, rtt_ms, mbit, quick)
        P["OpenSSH"] = {"idle": ssh_idle.wait()}
        agent.emu.quiet(rtt_s)
        agent_idle = IdleMeter("agent", agent.emu.port, idle_s)
        P["OpenSSH"].update(workloads(ssh, rtt_ms, mbit, quick))
        P["agent"]["idle"] = agent_idle.wait()
        for name in ("agent", "OpenSSH"):
            i = P[name]["idle"] or {}
            log("  %s idle: %s" % (name, "%d payload bytes, %d segments in %.1f s: %.0f bytes a day" % (
                i["payload"], i["segments"], i["seconds"], i["per_day"]) if "per_day" in i else i))
        for system in (agent, ssh):
            system.emu.quiet(rtt_s)
            t, tries = reachable_after_cut(system.emu, system.port, rtt_s, 60 + 20 * rtt_s)
            P[system.name]["reconnect_s"] = t
            P[system.name]["reconnect_probes"] = tries
            log("  %s reachable %s s after the cut (%d probes)" % (system.name, fmt(t), tries))
    finally:
        if ssh:
            ssh.stop()
        if agent:
            agent.stop()
    return P


# ---------------------------------------------------------------------------
# tables


def fmt(v, nd=None):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if nd is not None:
        return "%.*f" % (nd, v)
    a = abs(v)
    if a >= 100:
        return "{:,.0f}".format(v)
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def pct(v, link):
    return "-" if v is None else "%s (%.0f %%)" % (fmt(v), 100.0 * v / link)


def verdict(ok):
    return "-" if ok is None else ("met" if ok else "**not met**")


def both(a, b, f):
    return None if a is None or b is None else f(a, b)


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def g(P, name, key):
    return (P.get(name) or {}).get(key)


def tables(R):
    paths = R["paths"]
    name = lambda P: "%g ms, %g Mbit/s" % (P["rtt_ms"], P["mbit"])
    out = []

    rows = []
    for P in paths:
        L = P.get("link") or {}
        p, pl = L.get("ping_ms") or {}, L.get("ping_loaded_ms") or {}
        rows.append([name(P), "%s / %s / %s" % (fmt(p.get("min"), 1), fmt(p.get("p50"), 1), fmt(p.get("max"), 1)),
                     "%+.1f ms" % (p["p50"] - P["rtt_ms"]) if p else "-",
                     pct(L.get("down_mbit"), P["mbit"]), pct(L.get("up_mbit"), P["mbit"]),
                     "%s (%g + %g)" % (fmt(pl.get("p50"), 1), P["rtt_ms"], QUEUE_MS) if pl else "-"])
    out.append(("The link alone: plain TCP through the emulator (its accuracy)",
                table(["path (round trip, rate)", "64 B ping min / p50 / max (ms)", "p50 - round trip",
                       "download Mbit/s (% of link)", "upload", "ping behind a full queue, p50 ms (expected)"], rows)))

    rows = []
    for P in paths:
        m = P["mbit"]
        ad, au, sd, su = g(P, "agent", "down_mbit"), g(P, "agent", "up_mbit"), g(P, "OpenSSH", "down_mbit"), g(P, "OpenSSH", "up_mbit")
        ok90 = None if ad is None or au is None else (ad >= 0.9 * m and au >= 0.9 * m)
        okssh = None if None in (ad, au, sd, su) else (ad >= sd * 0.97 and au >= su * 0.97)
        rows.append([name(P), pct(ad, m), pct(au, m), pct(sd, m), pct(su, m), verdict(ok90), verdict(okssh)])
    out.append(("One stream: download (device to operator) and upload (operator to device), Mbit/s (% of the link)",
                table(["path", "agent down", "agent up", "OpenSSH down", "OpenSSH up", ">= 90 % both ways",
                       "not behind OpenSSH (3 % noise)"], rows)))

    rows = []
    for P in paths:
        rtt = P["rtt_ms"]
        af, al = g(P, "agent", "open_first_ms"), g(P, "agent", "open_later_median_ms")
        sf, sl = g(P, "OpenSSH", "open_first_ms"), g(P, "OpenSSH", "open_later_median_ms")
        rt = lambda v: "-" if v is None else "%s (%.1f)" % (fmt(v), v / rtt)
        rows.append([name(P), rt(af), rt(al), rt(sf), rt(sl),
                     verdict(None if af is None else af <= 2 * rtt + 20),
                     verdict(None if al is None else al <= rtt + 20),
                     verdict(None if None in (af, al, sf, sl) else (af <= sf * 1.03 + 5 and al <= sl * 1.03 + 5))])
    out.append(("Stream open: operator's connect() to the target's first byte, ms (round trips)",
                table(["path", "agent first", "agent later (median)", "OpenSSH first", "OpenSSH later (median)",
                       "first <= 2 RTT + 20 ms", "later <= 1 RTT + 20 ms", "not behind OpenSSH"], rows)))

    rows = []
    for P in paths:
        rtt = P["rtt_ms"]
        cells = [name(P)]
        p50 = {}
        for n in ("agent", "OpenSSH"):
            idle = g(P, n, "rtt_idle_ms")
            ld = g(P, n, "rtt_loaded") or {}
            xs = ld.get("ms") or []
            p50[n] = median(xs)
            cells += [fmt(median(idle), 1) if idle else "-",
                      "%s / %s (%d)" % (fmt(median(xs)), fmt(max(xs)), len(xs)) if xs else "-",
                      pct(ld.get("bulk_mbit"), P["mbit"])]
        cells += [verdict(None if p50["agent"] is None else p50["agent"] <= rtt + 100),
                  verdict(both(p50["agent"], p50["OpenSSH"], lambda a, s: a <= s * 1.03 + 5))]
        rows.append(cells)
    out.append(("Round trip of 64 bytes, idle and while another stream downloads in bulk, ms",
                table(["path", "agent idle p50", "agent loaded p50 / max (n)", "agent bulk alongside",
                       "OpenSSH idle p50", "OpenSSH loaded p50 / max (n)", "OpenSSH bulk alongside",
                       "agent loaded p50 <= RTT + 100 ms", "not behind OpenSSH"], rows)))

    rows = []
    for P in paths:
        cells = [name(P)]
        agg, fair = {}, {}
        for n in ("agent", "OpenSSH"):
            xs = g(P, n, "four_mbit")
            agg[n] = sum(xs) if xs else None
            fair[n] = (min(xs) / max(xs) if max(xs) else 0.0) if xs else None
            det = g(P, n, "four_detail") or []
            firsts = [d["first_s"] for d in det]
            if not det:
                last = "-"
            elif None in firsts:
                last = "none in %.0f s" % min(d["waited_s"] for d, f in zip(det, firsts) if f is None)
            else:
                last = "%.2f s" % max(firsts)
            cells += [pct(agg[n], P["mbit"]),
                      "%s / %s (%.2f)" % (fmt(min(xs)), fmt(max(xs)), min(xs) / max(xs) if max(xs) else 0) if xs else "-",
                      last]
        cells += [verdict(None if agg["agent"] is None else agg["agent"] >= 0.9 * P["mbit"]),
                  verdict(None if None in (agg["agent"], agg["OpenSSH"], fair["agent"], fair["OpenSSH"]) else
                          agg["agent"] >= agg["OpenSSH"] * 0.97 and fair["agent"] >= fair["OpenSSH"] - 0.05)]
        rows.append(cells)
    out.append(("Four concurrent downloads, requested one after the other: aggregate Mbit/s (% of the link) and "
                "per stream min / max (min/max) over the same window; the slowest stream's first byte after its request",
                table(["path", "agent aggregate", "agent min / max", "agent slowest first byte", "OpenSSH aggregate",
                       "OpenSSH min / max", "OpenSSH slowest first byte", "agent >= 90 %", "not behind OpenSSH "
                       "(aggregate, min/max)"], rows)))

    rows = []
    for P in paths:
        rtt = P["rtt_ms"]
        a, s = g(P, "agent", "reconnect_s"), g(P, "OpenSSH", "reconnect_s")
        rt = lambda v: "-" if v is None else "%.2f (%.0f)" % (v, v * 1000.0 / rtt)
        rows.append([name(P), rt(a), rt(s), verdict(both(a, s, lambda x, y: x <= y * 1.03 + 0.1))])
    out.append(("Reachable again after the emulator reset the device's connection: seconds (round trips) until a "
                "new stream gets the target's first byte",
                table(["path", "agent", "OpenSSH (ssh -R restarted after 0.1 s, operator after 0.2 s)",
                       "not behind OpenSSH"], rows)))

    rows = []
    for P in paths:
        cells = [name(P)]
        day = {}
        for n in ("agent", "OpenSSH"):
            i = g(P, n, "idle") or {}
            day[n] = i.get("per_day")
            cells += ["%d B, %d segments (%d with data) in %.0f s" % (
                i["payload"], i["segments"], i["data_segments"], i["seconds"]) if "per_day" in i else
                      (i.get("error") or "-"),
                      "{:,.0f}".format(i["per_day"]) if "per_day" in i else "-"]
        cells += [verdict(None if day["agent"] is None else day["agent"] <= 100_000)]
        rows.append(cells)
    out.append(("Idle device on the wire: its tunnel socket over two heartbeats (%d s) with no stream; bytes a day "
                "= (payload + %d x segments) x 86,400 / interval" % (2 * HEARTBEAT_S, TCPIP_HEADER),
                table(["path", "agent (payload, segments)", "agent bytes a day", "OpenSSH (payload, segments)",
                       "OpenSSH bytes a day", "agent <= 100 KB a day (issue 19 item 4)"], rows)))
    return out


# ---------------------------------------------------------------------------


def git_head():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def parse_paths(text):
    out = []
    for p in text.replace(" ", ",").split(","):
        if p:
            rtt, mbit = p.split(":")
            out.append((float(rtt), float(mbit)))
    return out


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--target":
        return target_main(sys.argv[2], float(sys.argv[3]))
    if len(sys.argv) > 1 and sys.argv[1] == "--bulk":
        return bulk_main(*sys.argv[2:6])
    ap = argparse.ArgumentParser(description="agent and OpenSSH over emulated long, slow paths")
    ap.add_argument("--agent", default=os.path.join(ROOT, "build", "agent-x86_64"))
    ap.add_argument("--paths", default=os.environ.get("WAN_PATHS") or DEFAULT_PATHS,
                    help="round trip ms : rate Mbit/s, comma-separated (default %s)" % DEFAULT_PATHS)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench-wan-results.json"))
    ap.add_argument("--quick", action="store_true", help="shorter transfers (a smoke run)")
    args = ap.parse_args()
    paths = parse_paths(args.paths)
    for tool in (B.SSHD, B.SSH, B.SSH_KEYGEN, shutil.which("ss")):
        if not tool or not os.path.exists(tool):
            sys.exit("bench-wan: %s not found (apt-get install openssh-server openssh-client iproute2)" % tool)
    if not os.path.exists(args.agent):
        sys.exit("bench-wan: %s not found (make build/agent-x86_64)" % args.agent)

    work = tempfile.mkdtemp(prefix="agent-bench-wan-")
    agent_bin = os.path.join(work, "agent-x86_64")   # our own copy: a rebuild during the run changes nothing
    shutil.copy2(args.agent, agent_bin)
    R = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "loadavg_at_start": os.getloadavg()},
        "agent": {"binary": os.path.relpath(args.agent, ROOT), "git_head": git_head(),
                  "sha256": hashlib.sha256(open(agent_bin, "rb").read()).hexdigest()},
        "openssh": subprocess.run([B.SSH, "-V"], capture_output=True, text=True).stderr.strip(),
        "queue_ms": QUEUE_MS, "heartbeat_s": HEARTBEAT_S, "paths": [],
    }
    stopping = []

    def on_signal(sig, _frame):
        stopping.append(sig)
        stop_everything()
        sys.exit(128 + sig)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ok = False
    try:
        target = Target(work)
        for rtt_ms, mbit in paths:
            try:
                R["paths"].append(run_path(agent_bin, work, target, rtt_ms, mbit, args.quick))
            except Exception as e:
                log("path %g:%g failed: %r" % (rtt_ms, mbit, e))
                R["paths"].append({"rtt_ms": rtt_ms, "mbit": mbit, "error": repr(e)})
        ok = all("error" not in P and not (P.get("agent") or {}).get("errors")
                 and not (P.get("OpenSSH") or {}).get("errors") for P in R["paths"])
    finally:
        stop_everything()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("bench-wan: some measurement failed; processes stopped, logs kept in " + work, file=sys.stderr)

    R["total_seconds"] = time.monotonic() - T_START
    R["machine"]["loadavg_at_end"] = os.getloadavg()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(R, f, indent=1, sort_keys=True)
    prio = sorted({(P.get("link") or {}).get("priority", "?") for P in R["paths"]})
    print()
    print("agent vs OpenSSH over an emulated device-relay path (bench/linkemu.py: one-way delay = RTT/2, rate each "
          "way, queue %g ms of the rate, emulator at %s priority); %s; %d CPUs, load %.1f at the start, %.1f at the end; "
          "%s; %s (HEAD %s). Mbit = 10^6 bits of payload." % (
              QUEUE_MS, "/".join(prio), R["date"], os.cpu_count(), R["machine"]["loadavg_at_start"][0],
              R["machine"]["loadavg_at_end"][0], R["openssh"], R["agent"]["binary"], R["agent"]["git_head"]))
    for title, t in tables(R):
        print()
        print("**%s**" % title)
        print()
        print(t)
    errs = [(P["rtt_ms"], P["mbit"], e) for P in R["paths"] for e in
            ([P["error"]] if "error" in P else []) + (P.get("agent") or {}).get("errors", []) +
            (P.get("OpenSSH") or {}).get("errors", [])]
    if errs:
        print()
        for rtt, mbit, e in errs:
            print("failed at %g ms, %g Mbit/s: %s" % (rtt, mbit, e))
    print()
    print("results: %s; bench-wan total time: %.0f s" % (os.path.relpath(args.out, os.getcwd()), R["total_seconds"]))


if __name__ == "__main__":
    main()
