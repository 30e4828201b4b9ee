#!/usr/bin/env python3
"""Relay CPU per admission, full vs resumed (issue 14, item 4), in one run.

N real reverse agents (the binary under test) connect to a relay on 127.0.0.1. Then
the relay is killed with kill -9 and restarted on the same --state, twice:
  1. with its resume keys deleted: every device comes back with a full handshake
     (it offers its credential, the relay cannot open it, the connection goes on as a
     full TLS handshake and a signed hello);
  2. with its resume keys kept: every device comes back resumed (psk_ke, unsigned hello).
For each, the relay's CPU time (/proc/PID/schedstat, ns; the relay is one thread) from
its start line until the metrics show all N admitted, minus nothing: the start itself
is measured separately (a relay started on a copy of the state with no agent) and
subtracted. Prints the figures; every process is stopped by PID at the end.

    python3 scripts/resume-cpu.py [--bin build/agent-x86_64] [--devices 400]
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_ns(pid):
    with open("/proc/%d/schedstat" % pid) as f:
        return int(f.read().split()[0])


def user_sys_ms(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) * 1000 // tick, int(fields[12]) * 1000 // tick


def scrape(mport):
    with socket.create_connection(("127.0.0.1", mport), timeout=5) as c:
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            d = c.recv(65536)
            if not d:
                break
            data += d
    body = data.decode()
    def v(labels):
        m = re.search(r'^agent_relay_admissions_total\{kind="%s"\} (\d+)$' % labels, body, re.M)
        return int(m.group(1)) if m else 0
    return v("full"), v("resumed")


class Relay:
    def __init__(self, args, d, state, port, mport, name):
        self.log = os.path.join(d, name + ".log")
        self.out = os.path.join(d, name + ".out")
        self.p = subprocess.Popen(args.relay_prefix + [args.relay_bin or args.bin, "--role", "relay", "--listen", "127.0.0.1:%d" % port, "--state", state,
                                   "--open-enrollment", "--metrics", "127.0.0.1:%d" % mport],
                                  stdout=open(self.out, "w"), stderr=open(self.log, "w"), stdin=subprocess.DEVNULL)
        deadline = time.time() + 10
        while "relay_started" not in open(self.log).read():
            if time.time() > deadline or self.p.poll() is not None:
                raise SystemExit("relay did not start: " + open(self.log).read()[-2000:])
            time.sleep(0.002)
        self.start_cpu = cpu_ns(self.p.pid)

    def pin(self):
        for _ in range(500):
            m = re.search(r"^pin (sha256:[0-9a-f]{64})$", open(self.out).read(), re.M)
            if m:
                return m.group(1)
            time.sleep(0.01)
        raise SystemExit("no pin")

    def kill(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
            self.p.wait(5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/agent-x86_64")
    ap.add_argument("--devices", type=int, default=400)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--relay-bin", help="the relay's binary (default --bin; e.g. the .unstripped one for --perf)")
    ap.add_argument("--perf", help="record the resumed round's relay with perf into this file")
    ap.add_argument("--split-cpus", action="store_true",
                    help="relay on the last CPU, agents on the others (taskset), so the agents' own key work does "
                         "not run on the relay's core")
    args = ap.parse_args()
    args.relay_prefix, args.agent_prefix = [], []
    if args.split_cpus:
        n = os.cpu_count()
        args.relay_prefix = ["taskset", "-c", str(n - 1)]
        args.agent_prefix = ["taskset", "-c", "0-%d" % (n - 2) if n > 2 else "0"]
    args.bin = os.path.abspath(args.bin)
    d = tempfile.mkdtemp(prefix="resume-cpu-")
    state = os.path.join(d, "state")
    port, mport = free_port(), free_port()
    agents = []
    relay = None
    try:
        relay = Relay(args, d, state, port, mport, "relay0")
        pin = relay.pin()
        op = subprocess.run([args.bin, "keygen", "--identity", os.path.join(d, "op.pem")], capture_output=True,
                            text=True, check=True).stdout.strip()
        ak = os.path.join(d, "authorized_keys")
        open(ak, "w").write(op + "\n")
        for i in range(args.devices):
            key = os.path.join(d, "dev%d.pem" % i)
            subprocess.run([args.bin, "keygen", "--identity", key], capture_output=True, check=True)
            agents.append(subprocess.Popen(args.agent_prefix + [args.bin, "--role", "reverse", "--relay", "127.0.0.1:%d" % port,
                                            "--relay-pin", pin, "--identity", key, "--authorized-keys", ak,
                                            "--log-level", "warn"],
                                           stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "dev%d.log" % i), "w"),
                                           stdin=subprocess.DEVNULL))
        wait_all(mport, args.devices, args.timeout, kind=None)
        # The cost of a start alone: the same state (registry of N keys, resume keys), no agent.
        idle_state = os.path.join(d, "idle-state")
        shutil.copytree(state, idle_state)
        idle = Relay(args, d, idle_state, free_port(), free_port(), "relay-idle")
        time.sleep(0.5)
        start_cost = cpu_ns(idle.p.pid)
        idle.kill()

        results = {}
        for n, kind in enumerate(["full", "resumed"]):
            relay.kill()
            if kind == "full":
                os.remove(os.path.join(state, "resume-keys"))
            relay = Relay(args, d, state, port, mport, "relay%d" % (n + 1))
            perf = None
            if args.perf and kind == "resumed":
                perf = subprocess.Popen(["perf", "record", "-q", "-g", "-o", args.perf, "-p", str(relay.p.pid)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t0 = time.time()
            got = wait_all(mport, args.devices, args.timeout, kind=kind)
            if perf:
                perf.send_signal(signal.SIGINT)
                perf.wait(30)
            used = cpu_ns(relay.p.pid) - start_cost
            results[kind] = (used, time.time() - t0, got, user_sys_ms(relay.p.pid))
        print("devices: %d (real reverse agents, 127.0.0.1), relay: %s" % (args.devices, args.bin))
        print("relay start alone: %.1f ms CPU" % (start_cost / 1e6))
        print("%-9s %14s %18s %22s %14s %s" % ("kind", "relay CPU (ms)", "per admission (us)", "admissions/s per core",
                                                "user/sys (ms)", "full/resumed counted"))
        for kind in ["full", "resumed"]:
            used, wall, got, us = results[kind]
            per = used / args.devices
            print("%-9s %14.1f %18.1f %22.0f %14s %s" % (kind, used / 1e6, per / 1e3, 1e9 / per, "%d/%d" % us, got))
        print("ratio full/resumed: %.1fx" % (results["full"][0] / results["resumed"][0]))
    finally:
        for a in agents:
            if a.poll() is None:
                a.send_signal(signal.SIGKILL)
        for a in agents:
            try:
                a.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if relay:
            relay.kill()
        shutil.rmtree(d, ignore_errors=True)


def wait_all(mport, n, timeout, kind):
    deadline = time.time() + timeout
    got = (0, 0)
    while time.time() < deadline:
        got = scrape(mport)
        total = got[0] + got[1]
        if total >= n:
            if kind == "full" and got[1] != 0 or kind == "resumed" and got[0] != 0:
                raise SystemExit("unexpected admission kinds: full=%d resumed=%d" % got)
            return got
        time.sleep(0.25)
    raise SystemExit("only %d of %d admitted within %.0f s" % (got[0] + got[1], n, timeout))


if __name__ == "__main__":
    main()
