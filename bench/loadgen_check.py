"""make bench-loadgen-check: bench/loadgen against a real relay, checking behaviour (not timing).

On 127.0.0.1, about half a minute; every process stopped by PID at the end:
  1. `loadgen --write-registry` writes 300 keys into a fresh relay's --state; the relay loads them
     (it starts without --open-enrollment, so only those keys can be admitted).
  2. 300 devices connect: all admitted, none enrolled by the connection (the registry had them),
     every WELCOME carries the ID the generator derived for that device, all answer the relay's
     PINGs.
  3. A relay restarted with --open-enrollment: 40 devices beyond the registry (indices 300-339)
     are admitted and enrolled by their connection.
  4. kill -9 of the relay with --reconnect devices: all 340 back after its restart, counted as
     admissions and losses, with all_back_at after the restart; every device got a resume
     credential (RESUME) and came back over it (the resume keys survive in --state).
  5. TLS session resumption: against `openssl s_server` (which issues TLS 1.3 tickets and speaks
     no hello), reconnecting devices offer their ticket and the server resumes it.
Exits 0 if every check holds, 1 with the failed checks otherwise.

Usage: python3 bench/loadgen_check.py [--agent build/agent-x86_64] [--loadgen build/loadgen]
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402
from scale import Tool  # noqa: E402

FAILED = []


def check(cond, what):
    print("%s %s" % ("ok  " if cond else "FAIL", what), flush=True)
    if not cond:
        FAILED.append(what)


def relay(agent, port, state, work, name, open_enrollment):
    args = [agent, "--role", "relay", "--listen", "127.0.0.1:%d" % port, "--state", state, "--log-level", "warn"]
    if open_enrollment:
        args.append("--open-enrollment")
    p = bench.PROCS.start(name, args, work)
    pin = bench.read_pin(os.path.join(work, name + ".out"), p)
    bench.wait_until(lambda: bench.listening(port), 10, "the relay's port")
    return p, pin


def wait_count(tools, cond, timeout):
    deadline = time.monotonic() + timeout
    while True:
        counts = [t.count() for t in tools]
        if cond(counts) or time.monotonic() > deadline:
            return counts
        time.sleep(0.25)


def loadgen(lg, port, pin, work, name, *extra):
    return Tool([lg, "--relay", "127.0.0.1:%d" % port, "--pin", pin, "--seed", "check", "--hold", "120", *extra],
                os.path.join(work, name + ".log"), name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", default=os.path.join(ROOT, "build", "agent-x86_64"))
    ap.add_argument("--loadgen", default=os.path.join(ROOT, "build", "loadgen"))
    a = ap.parse_args()
    agent, lg = os.path.abspath(a.agent), os.path.abspath(a.loadgen)
    work = tempfile.mkdtemp(prefix="loadgen-check-")
    try:
        state = os.path.join(work, "state")
        os.makedirs(state, mode=0o700)
        r = subprocess.run([lg, "--write-registry", os.path.join(state, "registry"), "--count", "300", "--seed",
                            "check"], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and r.stdout.startswith("registry keys 300"), "--write-registry writes 300 keys")
        check(oct(os.stat(os.path.join(state, "registry")).st_mode & 0o777) == "0o600", "the registry file is 0600")

        # 1-2: pre-enrolled keys only.
        port = bench.free_port()
        rp, pin = relay(agent, port, state, work, "relay-1", open_enrollment=False)
        t1 = loadgen(lg, port, pin, work, "devices-300", "--count", "300", "--reconnect")
        line = t1.line(60)
        check(line.startswith("connected 300 failed 0 "), "300 pre-enrolled devices admitted on their first attempt (%s)" % line)
        c = t1.count()
        check(c["enrolled"] == 0, "none of them enrolled by its connection (enrolled %d)" % c["enrolled"])
        check(c["id_mismatch"] == 0, "every WELCOME carries the device's own ID")
        check(c["pings"] >= 300, "every device answered the relay's PING (pings %d)" % c["pings"])
        # A device outside the registry is denied by a relay without open enrollment.
        t0 = loadgen(lg, port, pin, work, "devices-unknown", "--count", "1", "--index-base", "1000", "--timeout", "5")
        line = t0.line(30)
        check(line.startswith("connected 0 failed 1 "), "a key outside the registry is denied (%s)" % line)
        t0.stop()

        # 3: the relay again with open enrollment (kill -9: the devices come back on their own).
        rp.kill()
        rp.wait(10)
        rp, pin2 = relay(agent, port, state, work, "relay-2", open_enrollment=True)
        check(pin2 == pin, "the relay keeps its key across a restart")
        t2 = loadgen(lg, port, pin, work, "devices-40", "--count", "40", "--index-base", "300", "--reconnect")
        line = t2.line(60)
        check(line.startswith("connected 40 failed 0 "), "40 devices beyond the registry admitted (%s)" % line)
        c2 = t2.count()
        check(c2["enrolled"] == 40, "... and enrolled by their connection (enrolled %d)" % c2["enrolled"])
        counts = wait_count([t1], lambda cs: cs[0]["alive"] == 300, 60)
        check(counts[0]["alive"] == 300, "the 300 came back after the first restart (alive %d)" % counts[0]["alive"])

        # 4: kill -9 with 340 devices.
        c4 = [t.count() for t in (t1, t2)]
        before = sum(x["admissions"] for x in c4)
        resumed_before = sum(x["tls_resumed"] for x in c4)
        check(sum(x["credentials"] for x in c4) >= 340, "every device holds a resume credential (credentials %d)"
              % sum(x["credentials"] for x in c4))
        rp.kill()
        rp.wait(10)
        restart = time.monotonic()
        rp, _ = relay(agent, port, state, work, "relay-3", open_enrollment=True)
        counts = wait_count([t1, t2], lambda cs: sum(x["alive"] for x in cs) == 340, 90)
        alive = sum(x["alive"] for x in counts)
        check(alive == 340, "all 340 devices back after kill -9 and restart (alive %d)" % alive)
        check(sum(x["admissions"] for x in counts) - before >= 340, "each came back as an admission")
        check(all(restart < x["all_back_at"] <= time.monotonic() for x in counts),
              "all_back_at is after the restart")
        check(sum(x["enrolled"] for x in counts) == 40, "no device enrolled again (known keys)")
        back_resumed = sum(x["tls_resumed"] for x in counts) - resumed_before
        check(back_resumed >= 340, "... each over its resume credential (%d resumed TLS sessions)" % back_resumed)
        for t in (t1, t2):
            t.stop()

        # 5: ticket resumption, against openssl s_server (TLS 1.3 tickets, no hello).
        openssl = shutil.which("openssl")
        if not openssl:
            check(False, "openssl command for the resumption check")
        else:
            key, cert = os.path.join(work, "s.key"), os.path.join(work, "s.pem")
            subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                            "-keyout", key, "-out", cert, "-subj", "/CN=check", "-days", "1"],
                           capture_output=True, check=True, timeout=30)
            der = subprocess.run([openssl, "x509", "-in", cert, "-pubkey", "-noout"], capture_output=True,
                                 check=True, timeout=30).stdout
            spki = subprocess.run([openssl, "pkey", "-pubin", "-outform", "DER"], input=der, capture_output=True,
                                  check=True, timeout=30).stdout
            spin = "sha256:" + hashlib.sha256(spki).hexdigest()
            sport = bench.free_port()
            bench.PROCS.start("s_server", [openssl, "s_server", "-accept", "127.0.0.1:%d" % sport, "-key", key,
                                           "-cert", cert, "-tls1_3", "-www", "-quiet"], work)
            bench.wait_until(lambda: bench.listening(sport), 10, "s_server")
            t3 = loadgen(lg, sport, spin, work, "devices-resume", "--count", "2", "--reconnect", "--timeout", "1")
            counts = wait_count([t3], lambda cs: cs[0]["tls_resumed"] >= 2, 20)
            check(counts[0]["tls_resumed"] >= 2, "reconnecting devices resume their TLS session (tls_resumed %d of %d "
                  "attempts)" % (counts[0]["tls_resumed"], counts[0]["attempts"]))
            t3.stop()
    finally:
        bench.PROCS.stop_all()
    if FAILED:
        print("%d check(s) failed; logs in %s" % (len(FAILED), work))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
