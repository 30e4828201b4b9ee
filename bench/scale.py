"""make bench-scale: what idle devices cost a relay, for two relay binaries in the same run.

For each binary (the baseline first, then the one under test), on 127.0.0.1:
  - the relay's start time with a registry of max(--counts) pre-enrolled keys (and with none);
  - a relay, a device and an operator with one live echo stream (bench/target.py);
  - the live stream's 64-byte round trip (p50 / p99) with no idle device;
  - for each count in --counts (ascending): idle devices up to that count from bench/loadgen
    (C, one process per step, the real protocol, keys pre-enrolled in the relay's registry
    with `loadgen --write-registry` so the relay's enrollment rate of 50 new keys a second
    does not apply), the rate of their first admissions, the round trip again beside them,
    the relay's CPU while nothing happens (--idle-seconds, past one 15 s heartbeat) and its
    RSS per idle device;
  - then kill -9 of the relay and its restart (same state, same port): the time until every
    device is admitted again (devices run with --reconnect) and the returning admissions per
    second.
Prints one table with both binaries. A count the machine cannot hold (the open-file hard
limit: the relay and the generator need a descriptor per device, and neither may raise its
hard limit here) runs at the most it can hold instead, and the table says so. A step that
would not finish within --budget seconds at the admission rate measured so far is skipped.
Bounded: every process is stopped by PID at the end (bench.py's PROCS), every wait has a limit.

`--tool python` drives bench/idle_devices.py instead (no pre-enrollment: devices arrive at
45 a second, under the enrollment rate; a few thousand devices at most).

Usage: python3 bench/scale.py --agent NEW [--baseline OLD] [--counts 10000,100000]
                              [--idle-seconds 20] [--loadgen build/loadgen] [--budget 420]
"""
import argparse
import os
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the same process, echo target and round-trip code as make bench)

HOST = bench.HOST
CLK = os.sysconf("SC_CLK_TCK")
SEED = "bench-scale"
RELAY_RESERVED_FILES = 1096   # Limits.relayReservedFiles: the relay keeps these for listeners and scrapes


def rtt_stats(port, count=2000):
    xs = bench.rtt(port, count, 200, max_seconds=30)
    return bench.pct(xs, 50), bench.pct(xs, 99)


def free_port():
    return bench.free_port()


class Tool:
    """One generator process: its stdout read line by line with a time limit."""

    def __init__(self, args, log_path, name):
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=open(log_path, "wb"), bufsize=0)
        self.log_path = log_path
        bench.PROCS.items.append((name, self.p))
        self.buf = b""

    def line(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("no line from the generator within %.0f s (log: %s)" % (timeout, self.log_path))
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    raise RuntimeError("the generator exited (log: %s)" % self.log_path)
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode().strip()

    def send(self, text):
        self.p.stdin.write((text + "\n").encode())
        self.p.stdin.flush()

    def count(self):
        """The generator's counters (alive, admissions, ...) as a dict."""
        self.send("count")
        for _ in range(100):
            line = self.line(10)
            if line.startswith("alive "):
                f = line.split()
                return {f[i]: float(f[i + 1]) for i in range(0, len(f) - 1, 2)}
        raise RuntimeError("no answer to count")

    def stop(self):
        if self.p.poll() is None:
            try:
                self.send("stop")
                self.p.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                pass
        bench.PROCS.stop(self.p)


def open_file_cap():
    """Idle devices the machine can hold: each end needs a descriptor per device and nobody here
    may raise the hard limit (CAP_SYS_RESOURCE). The relay keeps RELAY_RESERVED_FILES for itself
    and holds the live device and operator too."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        return 10 ** 7, hard
    return hard - RELAY_RESERVED_FILES - 2 - 100, hard   # 100: headroom (listeners, the echo stream)


def relay_args(agent, port, state, extra=()):
    return [agent, "--role", "relay", "--listen", "%s:%d" % (HOST, port), "--state", state, "--open-enrollment",
            "--log-level", "warn", *extra]


def start_seconds(agent, state, work, name):
    """Seconds from the relay's exec to its listening port (it loads its registry first)."""
    port = free_port()
    t0 = time.monotonic()
    p = bench.PROCS.start(name, relay_args(agent, port, state), work)
    try:
        bench.wait_until(lambda: bench.listening(port) or p.poll() is not None, 120, "the relay's port", poll=0.005)
        if p.poll() is not None:
            raise RuntimeError("the relay exited at start (%s/%s.log)" % (work, name))
        return time.monotonic() - t0
    finally:
        bench.PROCS.stop(p)
        bench.PROCS.items = [(n, q) for n, q in bench.PROCS.items if q is not p]


def generator_args(a, agent_version, relay_port, pin, count, base, first_source):
    """The generator's command line for `count` devices from index `base`, from source addresses
    127.0.0.<first_source> on (each generator its own: the relay allows 32 pending handshakes
    per source address)."""
    if a.tool == "python":
        curve = ["--curve", "prime256v1"] if "mbedTLS 3." in agent_version else []
        return [sys.executable, os.path.join(HERE, "idle_devices.py"), "--relay", "%s:%d" % (HOST, relay_port),
                "--pin", pin, "--count", str(count), "--concurrency", "32", "--hold", "1800", "--rate", "45",
                "--reconnect"] + curve
    # Agents of an mbedTLS 2.x relay spoke TLS 1.2 and offered X25519 first; 3.6 relays speak
    # TLS 1.3 with P-256 only (an X25519 key share would cost them a HelloRetryRequest).
    tls = [] if "mbedTLS 3." in agent_version else ["--tls12", "--groups", "X25519:P-256"]
    return [a.loadgen, "--relay", "%s:%d" % (HOST, relay_port), "--pin", pin, "--count", str(count),
            "--index-base", str(base), "--seed", SEED, "--sources", str(sources_for(count)),
            "--first-source", str(first_source), "--per-source", "24",
            "--concurrency", str(24 * sources_for(count)), "--hold", "1800", "--reconnect"] + tls


def sources_for(count):
    """Source addresses for `count` devices: ~28,000 ephemeral ports each; at least 4, so a
    storm of returning devices gets 4 x 24 handshakes in flight."""
    return max(4, -(-count // 20000))


def one(a, agent, work, counts):
    out = {"steps": [], "notes": []}
    version = subprocess.run([agent, "--version"], capture_output=True, text=True).stdout
    state = os.path.join(work, "agent", "relay-state")
    os.makedirs(state, mode=0o700)
    registry_keys = max(counts) if a.tool == "loadgen" else 0
    # Start time with an empty state directory (it makes its key), then with the registry.
    empty = os.path.join(work, "empty-state")
    out["start_empty"] = start_seconds(agent, empty, work, "relay-start-empty")
    if registry_keys:
        r = subprocess.run([a.loadgen, "--write-registry", os.path.join(state, "registry"), "--count",
                            str(registry_keys), "--seed", SEED], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError("loadgen --write-registry: " + r.stderr)
        out["registry_keys"] = registry_keys
        out["start_registry"] = start_seconds(agent, state, work, "relay-start-registry")

    target = bench.Target(work)
    path = bench.AgentPath(agent, os.path.join(work, "agent"), target.port)
    relay_pid = path.relay.pid
    out["rtt0"] = rtt_stats(path.port)
    rss0 = bench.rss_kib(relay_pid)
    tools = []
    cap, hard = open_file_cap()
    total = 0
    spent = 0.0   # seconds spent connecting devices (--budget)
    first_source = 2
    try:
        for want in counts:
            n = min(want, cap)
            if n != want:
                out["notes"].append("%s idle devices asked, %s run: the open-file hard limit is %s here (the relay "
                                    "and the generator need one descriptor per device)"
                                    % ("{:,}".format(want), "{:,}".format(n), "{:,}".format(hard)))
            if n <= total:
                continue
            step = n - total
            rate = out["steps"][-1]["admit_rate"] if out["steps"] else None
            if rate:
                # This step's devices, then all of them again after the kill -9, at the rate so far.
                projected = spent + step / rate + (0 if a.no_kill else n / rate)
                if projected > a.budget:
                    out["notes"].append("%s idle devices skipped: at %.0f admissions/s the step and the restart "
                                        "would bring this binary's connect time to %.0f s (--budget %.0f s)"
                                        % ("{:,}".format(n), rate, projected, a.budget))
                    break
            bench.log("%d idle devices (+%d)" % (n, step))
            ticks0 = bench.cpu_ticks(relay_pid)
            t_step = time.monotonic()
            tool = Tool(generator_args(a, version, path.relay_port, path.pin, step, total, first_source),
                        os.path.join(work, "generator-%d.log" % n), "generator-%d" % n)
            tools.append(tool)
            first_source += sources_for(step)
            # Bounded: at half the slowest admission rate seen (an mbedTLS 2.28 relay, ~38/s), plus a minute.
            line = tool.line(step / 20.0 + 60)
            m = re.match(r"connected (\d+) failed (\d+) seconds ([\d.]+)", line)
            if not m:
                raise RuntimeError("generator: %r" % line)
            connected, seconds = int(m.group(1)), float(m.group(3))
            spent += time.monotonic() - t_step
            s = {"devices": total + connected, "asked": want, "connected": connected,
                 "admit_rate": connected / max(seconds, 1e-3),
                 "admit_cpu_ms": 1000.0 * (bench.cpu_ticks(relay_pid) - ticks0) / CLK / max(1, connected),
                 # The generator's CPU for the same handshakes: when it is near the relay's, the rate
                 # above is the two processes' on this machine, not the relay's alone.
                 "generator_cpu_ms": 1000.0 * bench.cpu_ticks(tool.p.pid) / CLK / max(1, connected)}
            total += step
            time.sleep(1.0)
            s["rss_per_device_kib"] = (bench.rss_kib(relay_pid) - rss0) / max(1, s["devices"])
            t0 = bench.cpu_ticks(relay_pid)
            time.sleep(a.idle_seconds)
            s["idle_cpu_pct"] = 100.0 * (bench.cpu_ticks(relay_pid) - t0) / CLK / a.idle_seconds
            s["rtt"] = rtt_stats(path.port)
            now = [t.count() for t in tools]
            s["alive"] = sum(int(c["alive"]) for c in now)
            # The generator checks every WELCOME's ID against the key it derived; pre-enrolled keys
            # must not be enrolled by their connection (else the registry was not the relay's).
            bad = sum(int(c.get("id_mismatch", 0)) for c in now)
            enrolled = sum(int(c.get("enrolled", 0)) for c in now)
            if bad or (registry_keys and enrolled):
                out["notes"].append("%d WELCOMEs with another ID, %d devices enrolled by their connection: "
                                    "the figures of this binary are suspect" % (bad, enrolled))
            if a.tool == "loadgen":   # its resident memory beyond what it had before connecting
                grown = sum(c["rss_kib"] - c["base_rss_kib"] for c in now)
                s["generator_kib_per_device"] = grown / max(1, s["alive"])
            out["steps"].append(s)
            bench.log("  %d admitted at %.0f/s, alive %d, RSS/device %.1f KiB, idle CPU %.1f %%, RTT p50 %.0f us"
                      % (connected, s["admit_rate"], s["alive"], s["rss_per_device_kib"], s["idle_cpu_pct"],
                         s["rtt"][0]))
        if tools and not a.no_kill:
            out["storm"] = storm(a, agent, path, tools, total, out["steps"])
    finally:
        for t in tools:
            t.stop()
        bench.PROCS.stop_all()
    return out


def storm(a, agent, path, tools, total, steps):
    """kill -9 of the relay, restart on the same port and state: seconds until all devices are back."""
    bench.log("kill -9 of the relay with %d idle devices; restart" % total)
    before = sum(int(t.count()["admissions"]) for t in tools)
    path.relay.send_signal(signal.SIGKILL)
    path.relay.wait(10)
    t_restart = time.monotonic()
    relay = bench.PROCS.start("agent-relay-restarted", relay_args(agent, path.relay_port, path.path("relay-state")),
                              path.dir)
    path.relay = relay
    # Bounded: twice the time the slowest step took per device, plus a minute.
    slowest = min(s["admit_rate"] for s in steps) if steps else 40.0
    limit = 60 + 2.0 * total / max(slowest, 1.0)
    alive, counts = 0, []
    while time.monotonic() - t_restart < limit:
        time.sleep(0.25)
        if relay.poll() is not None:
            raise RuntimeError("the restarted relay exited (%s)" % path.dir)
        counts = [t.count() for t in tools]
        alive = sum(int(c["alive"]) for c in counts)
        if alive >= total:
            break
    polled = time.monotonic() - t_restart
    back = None
    if alive >= total:
        # The generators' own clock (CLOCK_MONOTONIC, the same as time.monotonic) says when the
        # last device came back; idle_devices.py has no such field: the poll's time then.
        ats = [c.get("all_back_at", 0.0) for c in counts]
        back = max(ats) - t_restart if all(x > t_restart for x in ats) else polled
    returned = sum(int(c["admissions"]) for c in counts) - before
    # The restarted relay's CPU since its start (its start-up included: a few ms) per return.
    return_cpu_ms = 1000.0 * bench.cpu_ticks(relay.pid) / CLK / returned if returned else None
    r = {"return_cpu_ms": return_cpu_ms, "devices": total, "alive": alive, "back_seconds": back, "returned": returned,
         "resumed": sum(int(c.get("resumed", 0)) for c in counts),
         "return_rate": returned / back if back else None,
         "attempts": sum(int(c.get("attempts", 0)) for c in counts)}
    # The live stream's device and operator come back too (their own backoff): up to 30 s.
    deadline = time.monotonic() + 30
    while "rtt_after" not in r:
        try:
            r["rtt_after"] = rtt_stats(path.port, 500)
        except Exception as e:  # noqa: BLE001  (reported, not fatal: the figures above stand)
            if time.monotonic() > deadline:
                r["rtt_after_error"] = str(e)[:80]
                break
            time.sleep(0.5)
    bench.log("  %s of %d back in %s s, %d admissions" % (alive, total, "%.1f" % back if back else "-", returned))
    return r


def fmt(v, f="%.0f"):
    return "-" if v is None else f % v


def table(runs, idle_seconds):
    labels = [label for label, _ in runs]
    rows = []

    def row(name, fn):
        rows.append([name] + [fn(r) for _, r in runs])

    def step(r, i):
        return r["steps"][i] if i < len(r["steps"]) else None

    row("relay start, empty state (s)", lambda r: fmt(r["start_empty"], "%.2f"))
    if any("start_registry" in r for _, r in runs):
        row("relay start, registry of N pre-enrolled keys (s)", lambda r: "%s (N = %s)" % (
            fmt(r.get("start_registry"), "%.2f"), "{:,}".format(r.get("registry_keys", 0))))
    row("live stream RTT p50 / p99 at 0 idle devices (us)", lambda r: "%s / %s" % (fmt(r["rtt0"][0]), fmt(r["rtt0"][1])))
    n_steps = max(len(r["steps"]) for _, r in runs)
    for i in range(n_steps):
        names = sorted({"{:,}".format(s["devices"]) for _, r in runs for s in [step(r, i)] if s})
        k = " / ".join(names)
        row("idle devices at step %d" % (i + 1), lambda r: "{:,}".format(step(r, i)["devices"]) if step(r, i) else "-")
        row("  first admissions per second" + (" (pre-enrolled keys)" if any("registry_keys" in r for _, r in runs) else ""),
            lambda r: fmt(step(r, i)["admit_rate"]) if step(r, i) else "-")
        row("  relay CPU per first admission (ms)", lambda r: fmt(step(r, i)["admit_cpu_ms"], "%.2f") if step(r, i) else "-")
        row("  generator CPU per first admission (ms)",
            lambda r: fmt(step(r, i).get("generator_cpu_ms"), "%.2f") if step(r, i) else "-")
        row("  live stream RTT p50 / p99 at %s (us)" % k,
            lambda r: "%s / %s" % (fmt(step(r, i)["rtt"][0]), fmt(step(r, i)["rtt"][1])) if step(r, i) else "-")
        row("  ratio of p50 to p50 at 0", lambda r: fmt(step(r, i)["rtt"][0] / r["rtt0"][0], "%.2f") if step(r, i) else "-")
        row("  relay idle CPU, %% of a core over %.0f s (past a heartbeat)" % idle_seconds, lambda r: fmt(step(r, i)["idle_cpu_pct"], "%.1f") if step(r, i) else "-")
        row("  relay RSS per idle device (KiB)", lambda r: fmt(step(r, i)["rss_per_device_kib"], "%.1f") if step(r, i) else "-")
        row("  devices alive at the end of the step", lambda r: "{:,}".format(step(r, i)["alive"]) if step(r, i) else "-")
    if any("storm" in r for _, r in runs):
        row("kill -9 of the relay, restart: all devices back after (s)",
            lambda r: ("%s (%s of %s)" % (fmt(r["storm"]["back_seconds"], "%.1f"), "{:,}".format(r["storm"]["alive"]),
                                           "{:,}".format(r["storm"]["devices"]))) if "storm" in r else "-")
        row("  returning admissions per second", lambda r: fmt(r["storm"]["return_rate"]) if "storm" in r else "-")
        row("  of them over a resumed TLS session", lambda r: "{:,}".format(r["storm"]["resumed"]) if "storm" in r else "-")
        row("  relay CPU per returning admission (ms)",
            lambda r: fmt(r["storm"].get("return_cpu_ms"), "%.2f") if "storm" in r else "-")
        row("  live stream RTT p50 / p99 after (us)", lambda r: ("%s / %s" % (fmt(r["storm"]["rtt_after"][0]),
                                                                  fmt(r["storm"]["rtt_after"][1])))
            if "storm" in r and "rtt_after" in r["storm"] else "-")
    print("| | " + " | ".join(labels) + " |")
    print("| --- |" + " ---: |" * len(labels))
    for rw in rows:
        print("| " + " | ".join(rw) + " |")
    for label, r in runs:
        for note in r["notes"]:
            print("- %s: %s" % (label, note))
        for s in r["steps"]:
            if s.get("generator_kib_per_device"):
                print("- %s, %s devices: generator RSS %.1f KiB per device" % (
                    label, "{:,}".format(s["devices"]), s["generator_kib_per_device"]))
                break


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--baseline")
    ap.add_argument("--counts", default="10000,100000", help="idle devices at each step, comma-separated")
    ap.add_argument("--devices", type=int, help="one step of N devices (same as --counts N)")
    ap.add_argument("--idle-seconds", type=float, default=20.0)
    ap.add_argument("--loadgen", default=os.path.join(os.path.dirname(HERE), "build", "loadgen"))
    ap.add_argument("--tool", choices=("loadgen", "python"), default="loadgen")
    ap.add_argument("--budget", type=float, default=600.0,
                    help="seconds one binary may spend connecting devices (steps and the restart), "
                         "projected from the admission rate measured so far")
    ap.add_argument("--no-kill", action="store_true", help="skip the kill -9 and restart")
    a = ap.parse_args()
    counts = [a.devices] if a.devices else sorted({int(x.replace("_", "")) for x in a.counts.split(",") if x.strip()})
    a.loadgen = os.path.abspath(a.loadgen)
    if a.tool == "loadgen" and not os.access(a.loadgen, os.X_OK):
        sys.exit("bench/scale.py: no generator at %s (make build/loadgen)" % a.loadgen)
    runs, failed = [], []
    t0 = time.monotonic()

    def on_signal(sig, _frame):
        bench.PROCS.stop_all()
        sys.exit(128 + sig)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for label, agent in (("baseline", a.baseline), ("this build", a.agent)):
            if not agent:
                continue
            with tempfile.TemporaryDirectory(prefix="agent-scale-") as work:
                # Our own copy: a rebuild in this checkout during the run does not change the binary.
                binary = os.path.join(work, "agent-under-test")
                shutil.copy2(agent, binary)
                bench.log("%s: %s, idle devices %s" % (label, agent, counts))
                try:
                    runs.append((label, one(a, binary, work, counts)))
                except Exception as e:  # noqa: BLE001  (the other binary's figures still count)
                    bench.log("%s failed: %s" % (label, e))
                    failed.append("%s (%s) failed: %s" % (label, agent, e))
                    if label != "baseline":
                        raise
                finally:
                    bench.PROCS.stop_all()
    finally:
        bench.PROCS.stop_all()
    print()
    print("make bench-scale, %s, %.0f s" % (time.strftime("%Y-%m-%d"), time.monotonic() - t0))
    print()
    if runs:
        table(runs, a.idle_seconds)
    for f in failed:
        print("- " + f)


if __name__ == "__main__":
    main()
