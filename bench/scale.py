"""make bench-scale: what idle devices cost a relay, for two relay binaries in the same run.

For each binary (the baseline first, then the one under test), on 127.0.0.1:
  - a relay, a device and an operator with one live echo stream (bench/target.py);
  - the live stream's 64-byte round trip (p50 / p99) with no idle device;
  - N idle devices from bench/idle_devices.py (the real protocol, one Python process);
  - the round trip again beside them, the relay's CPU while nothing happens (over
    --idle-seconds, which spans a heartbeat), and its RSS per idle device.
Prints one table with both binaries and the ratios of the round trip to the one at 0.
Bounded: every process is stopped at the end (bench.py's PROCS), every wait has a limit.

Usage: python3 bench/scale.py --agent NEW [--baseline OLD] [--devices 3500] [--idle-seconds 20]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the same process, echo target and round-trip code as make bench)

HOST = bench.HOST
CLK = os.sysconf("SC_CLK_TCK")


def rtt_stats(port, count=2000):
    xs = bench.rtt(port, count, 200, max_seconds=30)
    return bench.pct(xs, 50), bench.pct(xs, 99)


def one(agent, work, devices, idle_seconds):
    target = bench.Target(work)
    path = bench.AgentPath(agent, os.path.join(work, "agent"), target.port)
    relay_pid = path.relay.pid
    out = {}
    out["rtt0"] = rtt_stats(path.port)
    rss0 = bench.rss_kib(relay_pid)
    ticks0 = bench.cpu_ticks(relay_pid)
    # Devices offer the key exchange the agents of that relay's version offer: P-256 for
    # mbedTLS 3.6 builds (TLS 1.3), X25519 (Python's default) for older ones.
    version = subprocess.run([agent, "--version"], capture_output=True, text=True).stdout
    curve = ["--curve", "prime256v1"] if "mbedTLS 3." in version else []
    tool = subprocess.Popen([sys.executable, os.path.join(HERE, "idle_devices.py"), "--relay",
                             "%s:%d" % (HOST, path.relay_port), "--pin", path.pin, "--count", str(devices),
                             "--concurrency", "32", "--hold", "600", "--rate", "45"] + curve,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=open(os.path.join(work, "idle-tool.log"), "w"), text=True)
    bench.PROCS.items.append(("idle-devices", tool))
    try:
        line = tool.stdout.readline().strip()
        m = re.match(r"connected (\d+) failed (\d+) seconds ([\d.]+)", line)
        if not m:
            raise RuntimeError("idle_devices.py: %r" % line)
        out["connected"], out["connect_seconds"] = int(m.group(1)), float(m.group(3))
        # The relay's CPU for admitting them (TLS handshake, CHALLENGE signature, AUTH check,
        # enrollment), per device.
        out["admit_cpu_ms"] = 1000.0 * (bench.cpu_ticks(relay_pid) - ticks0) / CLK / max(1, out["connected"])
        time.sleep(1.0)
        out["rss_per_device_kib"] = (bench.rss_kib(relay_pid) - rss0) / max(1, out["connected"])
        t0 = bench.cpu_ticks(relay_pid)
        time.sleep(idle_seconds)
        out["idle_cpu_pct"] = 100.0 * (bench.cpu_ticks(relay_pid) - t0) / CLK / idle_seconds
        out["rttN"] = rtt_stats(path.port)
        tool.stdin.write("count\n")
        tool.stdin.flush()
        m = re.match(r"alive (\d+)", tool.stdout.readline().strip())
        out["alive"] = int(m.group(1)) if m else None
        tool.stdin.write("stop\n")
        tool.stdin.flush()
        tool.wait(30)
    finally:
        bench.PROCS.stop_all()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--baseline")
    ap.add_argument("--devices", type=int, default=3500)
    ap.add_argument("--idle-seconds", type=float, default=20.0)
    a = ap.parse_args()
    runs = []
    for label, agent in (("baseline", a.baseline), ("this build", a.agent)):
        if not agent:
            continue
        with tempfile.TemporaryDirectory(prefix="agent-scale-") as work:
            bench.log("%s: %s, %d idle devices" % (label, agent, a.devices))
            runs.append((label, one(os.path.abspath(agent), work, a.devices, a.idle_seconds)))
    print()
    print("| relay | idle devices | RTT p50 / p99 at 0 (us) | RTT p50 / p99 at N (us) | ratio p50 at N / at 0 "
          "| relay idle CPU (% of a core) | relay RSS per idle device (KiB) | relay CPU per admission (ms) "
          "| devices alive at the end |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, r in runs:
        print("| %s | %d | %.0f / %.0f | %.0f / %.0f | %.2f | %.1f | %.1f | %.2f | %s |" % (
            label, r["connected"], r["rtt0"][0], r["rtt0"][1], r["rttN"][0], r["rttN"][1],
            r["rttN"][0] / r["rtt0"][0], r["idle_cpu_pct"], r["rss_per_device_kib"], r["admit_cpu_ms"],
            r["alive"]))


if __name__ == "__main__":
    main()
