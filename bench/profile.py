#!/usr/bin/env python3
"""Instruction counts of the agent path, per operation and per process (valgrind callgrind).

Starts relay, reverse and forward (as bench/bench.py does) under `valgrind --tool=callgrind`
with the unstripped release build (symbols), then, for each operation, zeroes the counters,
runs it through the forward's port, and dumps:

  open_first      the first stream (full end-to-end TLS handshake)
  open_later_x10  10 later streams (session resumption)
  rtt_x1000       1000 round trips of 64 bytes
  download_16MiB  one stream, 16 MiB from the target
  upload_16MiB    one stream, 16 MiB to the target

and prints instructions per operation (per round trip, per byte) for every process, split into
categories (ChaCha20-Poly1305, elliptic curves, other mbedTLS, Swift runtime and memory,
the agent's own code). The callgrind files are kept for callgrind_annotate.

Usage: python3 bench/profile.py [--agent build/agent-x86_64.unstripped] [--keep DIR]
Takes about a minute; under valgrind everything is ~50x slower, so times are meaningless here.
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

OPS = [
    ("open_first", 1, "stream"),
    ("open_later_x10", 10, "stream"),
    ("rtt_x1000", 1000, "round trip"),
    ("download_16MiB", 16 << 20, "byte"),
    ("upload_16MiB", 16 << 20, "byte"),
]


def category(fn):
    if re.search(r"chacha|poly1305|poly_mul", fn):
        return "chacha-poly"
    if re.search(r"mbedtls_(mpi|ecp|ecdsa|ecdh)|^mpi_|^ecp_|ecdsa_|x25519", fn):
        return "elliptic-curve"
    if re.search(r"sha256|sha512|mbedtls_md|hmac|aes|gcm", fn):
        return "hash-aes"
    if re.search(r"mbedtls", fn):
        return "mbedtls-other"
    if re.search(r"swift_|Hasher|Dictionary|Array|_Hash|malloc|free|alloc|memcpy|memmove|memset|OUTLINED|^0x", fn):
        return "swift-runtime-memory"
    return "agent-code"


def split(path):
    """Self cost per category of one callgrind dump; (total, Counter)."""
    out = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", path],
                         capture_output=True, text=True, timeout=120).stdout
    total, acc = None, collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(100.0%\)\s+PROGRAM TOTALS", line)
        if m:
            total = int(m.group(1).replace(",", ""))
            continue
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+\S+?:(.*?) \[", line)
        if m and total:
            v = int(m.group(1).replace(",", ""))
            if v >= total:   # the entry chain (main, ...) is listed with the whole cost
                continue
            acc[category(m.group(2))] += v
    return total or 0, acc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", default=os.path.join(bench.ROOT, "build", "agent-x86_64.unstripped"))
    ap.add_argument("--keep", help="folder for the callgrind files (default: a temporary one, removed)")
    args = ap.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        sys.exit("profile: valgrind not found (apt-get install valgrind)")
    work = args.keep or tempfile.mkdtemp(prefix="agent-profile-")
    os.makedirs(work, exist_ok=True)
    binary = os.path.join(work, "agent-unstripped")
    shutil.copy2(args.agent, binary)
    orig = bench.Procs.start

    def start(self, name, argv, cwd, **kw):
        if argv[0] == binary:
            argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s/cg-%s.%%p" % (work, name)] + argv
        return orig(self, name, argv, cwd, **kw)

    bench.Procs.start = start
    ctl = lambda *a: subprocess.run(["callgrind_control", *a], capture_output=True, timeout=60)
    try:
        t = bench.Target(work)
        a = bench.AgentPath(binary, os.path.join(work, "agent"), t.port)
        time.sleep(2)
        steps = [
            ("open_first", lambda: bench.open_time(a.port)),
            ("open_later_x10", lambda: [(bench.open_time(a.port), time.sleep(0.05)) for _ in range(10)]),
            ("rtt_x1000", lambda: bench.rtt(a.port, 1000, 0)),
            ("download_16MiB", lambda: bench.download(a.port, 16 << 20)),
            ("upload_16MiB", lambda: bench.upload(a.port, 16 << 20)),
        ]
        for label, fn in steps:
            ctl("-z")
            fn()
            time.sleep(1.0)
            ctl("--dump=" + label)
    finally:
        bench.PROCS.stop_all()
    print("instructions per operation (callgrind, %s)" % os.path.relpath(args.agent, os.getcwd()))
    cats = ["chacha-poly", "elliptic-curve", "hash-aes", "mbedtls-other", "swift-runtime-memory", "agent-code"]
    print("%-15s %-8s %24s  %s" % ("operation", "process", "instructions", " ".join("%13s" % c for c in cats)))
    for label, n, unit in OPS:
        for role in ("forward", "relay", "reverse"):
            files = [f for f in os.listdir(work) if f.startswith("cg-agent-%s." % role)]
            dumps = []
            for f in files:
                with open(os.path.join(work, f), errors="replace") as fh:
                    head = fh.read(4096)
                if "Trigger: dump " + label in head:
                    dumps.append(f)
            if not dumps:
                continue
            total, acc = split(os.path.join(work, dumps[0]))
            per = total / float(n)
            print("%-15s %-8s %24s  %s" % (label, role, ("%.1f per %s" % (per, unit)) if per < 1e4 else
                                          ("%.0f per %s" % (per, unit)),
                                          " ".join("%12.1f%%" % (100.0 * acc[c] / total if total else 0) for c in cats)))
    if args.keep:
        print("callgrind files in %s (callgrind_annotate FILE)" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
