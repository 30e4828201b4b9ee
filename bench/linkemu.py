#!/usr/bin/env python3
"""A link emulator for `make bench-wan`: a TCP proxy on 127.0.0.1 that puts a long, slow
path between a device and the relay (this kernel has no netem, so it is done in user space).

    device --TCP--> [127.0.0.1:LISTEN  linkemu  ] --TCP--> 127.0.0.1:UPSTREAM (the relay)

Every connection accepted on --listen gets a connection of its own to --upstream, and the
bytes between them cross an emulated link, the same one for every connection:

  delay   a fixed one-way delay in each direction (--rtt is twice it);
  rate    each direction serializes its bytes at --rate Mbit/s (or --up-rate / --down-rate;
          up = device to relay) in segments of 1448 bytes: a segment arrives at the far end
          one delay after its last bit left, as on a real link. The rate counts TCP payload
          bytes (no header overhead is added);
  queue   each direction holds at most --queue-ms of the rate (or --queue BYTES) waiting to be
          serialized. This is TCP in TCP: the emulator never drops, it stops reading a sender
          whose bytes do not fit (backpressure beyond the queue). The emulator's own socket
          receive buffer is counted in the queue (a small SO_RCVBUF, the rest in the emulator);
  connect a new connection costs the TCP handshake it would on the path: the relay sees it
          one delay after the device connected, the device's first bytes leave one round
          trip after it connected. FIN and RST cross the link like data, in order.

Segments: the emulator advertises an MSS of 1448 bytes on both of its sockets (TCP_MAXSEG),
so the endpoints' kernels send segments of a real network's size on their loopback hop
(their segment counters and send buffers then look like on a path with a 1500-byte MTU).

Loss of the connection (commands, below): `cut` resets every connection at once, both
ends (an RST each way, as when a NAT drops the mapping and answers with RST); `blackhole S`
silently discards everything on every existing connection from now on (they stay open, the
ends must find out themselves) and lets no new connection through for S seconds (the device's
new connections wait, as unanswered SYNs would, and go through once the path is back).

Commands: one per line on stdin, each answered by one line on stdout:
  stats                      a JSON object: bytes and segments each way, connections, backlog
  set [rtt=MS] [delay=MS] [rate=MBIT] [up-rate=MBIT] [down-rate=MBIT] [queue-ms=MS] [queue=BYTES]
  cut                        reset every connection (both ends)
  blackhole SECONDS          discard everything on the existing connections, no new ones for S
  quit                       exit
SIGUSR1 is `cut` (for use from a shell). The emulator exits on `quit`, on end of stdin (the
harness went away; --no-stdin to run it detached), on SIGTERM/SIGINT, or after --max-seconds.
Its first line on stdout is `listening 127.0.0.1:PORT`.

Bounds: at most --max-conns connections (more are reset at once), a queue per direction,
at most --out-limit bytes waiting for a slow reader per connection and direction (beyond it
the sender is not read: backpressure again), --max-seconds of life. It listens and connects
on loopback addresses only.

Accuracy: `python3 bench/linkemu.py --check` measures a 64-byte ping, a bulk transfer each
way and the round trip behind a full queue through the emulator, for the paths of
`make bench-wan`, against a plain TCP server; bench/wan.py does the same at the start of each
path and prints it. Timers: epoll has millisecond granularity, so the loop wakes up to 1 ms
early and sleeps the rest precisely; segments due within 0.5 ms of the last delivery go out
together (bulk at 50 Mbit/s is 4,300 segments a second; about 15-20% of a core). A segment is
read when the loop gets to it: on a busy machine that can be late, so --realtime runs the
emulator at SCHED_RR priority (else nice -10), as bench/wan.py does; the check shows the rest.

Usage: python3 bench/linkemu.py --listen 127.0.0.1:0 --upstream 127.0.0.1:7443 --rtt 100 --rate 20
       python3 bench/linkemu.py --check [--paths 40:50,100:20]
"""
import argparse
import collections
import ipaddress
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time

MSS = 1448
EOF = "eof"        # markers that cross the link in order with the data
RST = "rst"
UP, DOWN = 0, 1    # up: device (client side) to relay (server side)
CLIENT, SERVER = 0, 1


def loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hostport(s):
    host, _, port = s.rpartition(":")
    host = host.strip("[]")
    if not loopback(host):
        raise argparse.ArgumentTypeError("%s: only loopback addresses (127.0.0.0/8, ::1)" % s)
    return host, int(port)


class Direction:
    """One direction of the link, shared by all connections: a FIFO queue in front of a
    serializer, then a fixed delay."""

    def __init__(self, name, mbit, delay_s, queue_bytes):
        self.name = name
        self.flight = collections.deque()   # (arrival, conn, bytes | EOF | RST), arrival ascending
        self.tx_free = 0.0                  # when the serializer has sent everything queued
        self.last_arrival = 0.0
        self.bytes = 0
        self.segments = 0
        self.configure(mbit, delay_s, queue_bytes)

    def configure(self, mbit, delay_s, queue_bytes):
        self.mbit = mbit
        self.rate = mbit * 1e6 / 8.0 if mbit > 0 else 0.0   # bytes per second; 0: unlimited
        self.delay = delay_s
        self.queue = max(MSS, int(queue_bytes))

    def backlog(self, now):
        """Bytes queued but not yet serialized."""
        if self.rate <= 0:
            return 0
        return max(0.0, self.tx_free - now) * self.rate

    def room(self, now, hidden):
        """Bytes the emulator may read now; `hidden` is the bytes a full socket receive buffer
        adds to the queue."""
        return self.queue - hidden - self.backlog(now)

    def when_room(self, want, hidden):
        """When room() will be >= want (only meaningful while it is less)."""
        return self.tx_free - max(0, self.queue - hidden - want) / self.rate

    def put(self, now, conn, data):
        t = max(now, self.tx_free)
        if isinstance(data, str):            # FIN or RST: a header, no payload
            self.segments += 1
            self.push(t + self.delay, conn, data)
        else:
            mv = memoryview(data)
            n = len(data)
            for off in range(0, n, MSS):
                piece = mv[off:off + MSS]
                if self.rate > 0:
                    t += len(piece) / self.rate
                self.push(t + self.delay, conn, piece)
                self.segments += 1
            self.bytes += n
        self.tx_free = t

    def push(self, arrival, conn, item):
        arrival = max(arrival, self.last_arrival)   # in order, also after a `set`
        self.last_arrival = arrival
        self.flight.append((arrival, conn, item))

    def flush(self, now):
        """The queue is lost (a cut or a blackhole)."""
        self.tx_free = now
        self.flight = collections.deque((a, c, i) for a, c, i in self.flight if not c.gone)


class Conn:
    n = 0

    def __init__(self, emu, client, now):
        Conn.n += 1
        self.id = Conn.n
        self.emu = emu
        self.socks = [client, None]
        self.t0 = now
        self.connect_at = now + emu.dirs[UP].delay            # the SYN reaches the relay
        self.read_client_at = now + 2 * emu.dirs[UP].delay    # the SYN-ACK reaches the device
        self.out = [bytearray(), bytearray()]     # waiting to be written to CLIENT / SERVER
        self.fin_pending = [False, False]         # shut down writing to this side once out is empty
        self.rd_eof = [False, False]              # this side sent FIN (or is gone)
        self.wr_shut = [False, False]
        self.gone = False                         # closed, or reset by a cut
        self.blackholed = False
        self.mask = [0, 0]

    def side_of(self, sock):
        return CLIENT if sock is self.socks[CLIENT] else SERVER


class Emulator:
    def __init__(self, args):
        self.args = args
        d = self.one_way(args)
        up_rate = args.up_rate if args.up_rate is not None else args.rate
        down_rate = args.down_rate if args.down_rate is not None else args.rate
        self.dirs = [Direction("up", up_rate, d, 0), Direction("down", down_rate, d, 0)]
        self.set_queue(args.queue, args.queue_ms)
        self.sel = selectors.DefaultSelector()
        self.conns = []
        self.blackhole_until = 0.0
        self.cuts = 0
        self.blackholes = 0
        self.accepted = 0
        self.refused = 0
        self.stop = False
        self.want_cut = False
        self.last_deliver = 0.0
        self.priority = "normal"
        self.stdin_buf = b""
        host, port = args.listen
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tune(ls)                                  # inherited by accepted sockets
        ls.bind((host, port))
        ls.listen(128)
        ls.setblocking(False)
        self.ls = ls
        self.ls_registered = False
        self.register_listener(True)

    @staticmethod
    def one_way(args):
        if args.delay is not None:
            return args.delay / 1000.0
        return (args.rtt or 0.0) / 2000.0

    def set_queue(self, queue, queue_ms):
        for d in self.dirs:
            if queue is not None:
                q = queue
            else:
                q = (d.rate * queue_ms / 1000.0) if d.rate > 0 else 4 * 1024 * 1024
            d.configure(d.mbit, d.delay, max(q, 2 * MSS))
        # The socket receive buffer the emulator reads from is part of the queue: small, so that
        # little hides there (the kernel doubles the value; at least 4 KiB).
        q = min(d.queue for d in self.dirs)
        self.rcvbuf = max(2048, min(32 * 1024, q // 8))
        self.hidden = 2 * self.rcvbuf

    def tune(self, s):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, MSS)
        except OSError:
            pass
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def register_listener(self, on):
        if on and not self.ls_registered:
            self.sel.register(self.ls, selectors.EVENT_READ, None)
        elif not on and self.ls_registered:
            self.sel.unregister(self.ls)
        self.ls_registered = on

    # -- connections

    def accept(self, now):
        while True:
            try:
                c, _ = self.ls.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            c.setblocking(False)
            live = [x for x in self.conns if not x.gone]
            if len(live) >= self.args.max_conns:
                self.refused += 1
                reset(c)
                continue
            self.accepted += 1
            self.conns.append(Conn(self, c, now))

    def connect_upstream(self, conn):
        host, port = self.args.upstream
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        self.tune(s)
        s.setblocking(False)
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        except OSError:
            # The relay is not there: the device gets an RST one delay later.
            s.close()
            conn.socks[SERVER] = None
            conn.rd_eof[SERVER] = True
            self.dirs[DOWN].put(time.monotonic(), conn, RST)
            return
        conn.socks[SERVER] = s

    def close_conn(self, conn, rst=False):
        for i, s in enumerate(conn.socks):
            if s is not None:
                if conn.mask[i]:
                    self.sel.unregister(s)
                    conn.mask[i] = 0
                if rst:
                    reset(s)
                else:
                    s.close()
                conn.socks[i] = None
        conn.gone = True

    def close_side(self, conn, side, rst=False):
        s = conn.socks[side]
        if s is None:
            return
        if conn.mask[side]:
            self.sel.unregister(s)
            conn.mask[side] = 0
        if rst:
            reset(s)
        else:
            s.close()
        conn.socks[side] = None
        if conn.socks[1 - side] is None and (conn.blackholed or conn.rd_eof[1 - side]):
            conn.gone = True

    def side_failed(self, conn, side, now):
        """A socket of `side` was reset or failed: the other side gets an RST after the delay."""
        self.close_side(conn, side)
        conn.rd_eof[side] = True
        conn.out[side] = bytearray()
        if conn.blackholed:
            return
        toward = DOWN if side == SERVER else UP
        self.dirs[toward].put(now, conn, RST)

    def on_readable(self, conn, side, now):
        s = conn.socks[side]
        if conn.blackholed:
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self.close_side(conn, side)
            return
        d = self.dirs[UP if side == CLIENT else DOWN]
        room = int(d.room(now, 0))   # reading now: whatever sits in the kernel buffer fits
        if room <= 0:
            return
        try:
            data = s.recv(min(room, 256 * 1024))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.side_failed(conn, side, now)
            return
        if not data:
            conn.rd_eof[side] = True
            d.put(now, conn, EOF)
            return
        d.put(now, conn, data)

    def deliver(self, now):
        touched = []
        for d, to in ((self.dirs[UP], SERVER), (self.dirs[DOWN], CLIENT)):
            fl = d.flight
            while fl and fl[0][0] <= now:
                _, conn, item = fl.popleft()
                if conn.gone or conn.blackholed or conn.socks[to] is None:
                    continue
                if item is EOF:
                    conn.fin_pending[to] = True
                elif item is RST:
                    self.close_conn(conn, rst=True)
                    continue
                else:
                    conn.out[to] += item
                touched.append((conn, to))
        for conn, to in touched:
            self.flush(conn, to, now)
        return bool(touched)

    def flush(self, conn, to, now):
        s = conn.socks[to]
        if s is None or conn.gone:
            return
        buf = conn.out[to]
        if buf:
            try:
                n = s.send(buf)
                del buf[:n]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self.side_failed(conn, to, now)
                return
        if not buf and conn.fin_pending[to] and not conn.wr_shut[to]:
            conn.wr_shut[to] = True
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        if conn.wr_shut[CLIENT] and conn.wr_shut[SERVER]:
            self.close_conn(conn)

    # -- commands

    def cut(self, now):
        n = 0
        for conn in self.conns:
            if not conn.gone:
                n += 1
                self.close_conn(conn, rst=True)
        for d in self.dirs:
            d.flush(now)
        self.cuts += 1
        return n

    def blackhole(self, now, seconds):
        n = 0
        for conn in self.conns:
            if not conn.gone and not conn.blackholed:
                n += 1
                conn.blackholed = True
                conn.out = [bytearray(), bytearray()]
                if conn.socks[SERVER] is None:      # not yet connected upstream: it never will
                    conn.rd_eof[SERVER] = True
        for d in self.dirs:
            d.flush(now)
        self.blackhole_until = now + seconds
        self.blackholes += 1
        return n

    def stats(self, now):
        live = [c for c in self.conns if not c.gone]
        return {
            "connections": len(live), "blackholed": sum(1 for c in live if c.blackholed),
            "accepted": self.accepted, "refused": self.refused, "cuts": self.cuts, "blackholes": self.blackholes,
            "up": {"bytes": self.dirs[UP].bytes, "segments": self.dirs[UP].segments,
                   "backlog": int(self.dirs[UP].backlog(now)), "queue": self.dirs[UP].queue,
                   "mbit": self.dirs[UP].mbit, "delay_ms": self.dirs[UP].delay * 1000},
            "down": {"bytes": self.dirs[DOWN].bytes, "segments": self.dirs[DOWN].segments,
                     "backlog": int(self.dirs[DOWN].backlog(now)), "queue": self.dirs[DOWN].queue,
                     "mbit": self.dirs[DOWN].mbit, "delay_ms": self.dirs[DOWN].delay * 1000},
            "rcvbuf": self.rcvbuf, "priority": self.priority,
        }

    def command(self, line, now):
        words = line.split()
        if not words:
            return None
        cmd = words[0]
        if cmd == "stats":
            return json.dumps(self.stats(now), sort_keys=True)
        if cmd == "cut":
            return "ok cut %d" % self.cut(now)
        if cmd == "blackhole":
            secs = float(words[1]) if len(words) > 1 else 10.0
            return "ok blackhole %d" % self.blackhole(now, max(0.0, min(secs, 3600.0)))
        if cmd == "quit":
            self.stop = True
            return "ok quit"
        if cmd == "set":
            kv = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            up, down = self.dirs
            delay = up.delay
            if "rtt" in kv:
                delay = float(kv["rtt"]) / 2000.0
            if "delay" in kv:
                delay = float(kv["delay"]) / 1000.0
            rates = [up.mbit, down.mbit]
            if "rate" in kv:
                rates = [float(kv["rate"])] * 2
            if "up-rate" in kv:
                rates[0] = float(kv["up-rate"])
            if "down-rate" in kv:
                rates[1] = float(kv["down-rate"])
            for d, r in zip(self.dirs, rates):
                d.configure(r, delay, d.queue)
            if "queue" in kv or "queue-ms" in kv or "rate" in kv or "up-rate" in kv or "down-rate" in kv:
                self.args.queue = int(kv["queue"]) if "queue" in kv else (None if "queue-ms" in kv else self.args.queue)
                if "queue-ms" in kv:
                    self.args.queue_ms = float(kv["queue-ms"])
                self.set_queue(self.args.queue, self.args.queue_ms)
                self.tune(self.ls)
            return "ok " + json.dumps(self.stats(now), sort_keys=True)
        return "error unknown command %r" % cmd

    def read_stdin(self, now):
        try:
            data = os.read(0, 4096)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            self.stop = True
            return
        self.stdin_buf += data
        while b"\n" in self.stdin_buf:
            line, self.stdin_buf = self.stdin_buf.split(b"\n", 1)
            try:
                out = self.command(line.decode("utf-8", "replace"), now)
            except (ValueError, IndexError) as e:
                out = "error %s" % e
            if out is not None:
                sys.stdout.write(out + "\n")
                sys.stdout.flush()

    # -- the loop

    def interest(self, now):
        """Registers each socket for what it may do now; returns the earliest time at which
        that changes without an event (a connect or read to start, queue room to come)."""
        wake = None
        for conn in self.conns:
            if conn.gone:
                continue
            for side in (CLIENT, SERVER):
                s = conn.socks[side]
                if s is None:
                    continue
                m = 0
                if conn.blackholed:
                    m = selectors.EVENT_READ
                else:
                    d = self.dirs[UP if side == CLIENT else DOWN]
                    if not conn.rd_eof[side] and len(conn.out[1 - side]) < self.args.out_limit \
                            and conn.socks[1 - side] is not None:
                        start = conn.read_client_at if side == CLIENT else conn.connect_at
                        if now < start:
                            wake = start if wake is None else min(wake, start)
                        elif d.rate > 0 and d.room(now, self.hidden) < MSS:
                            t = d.when_room(MSS, self.hidden)
                            wake = t if wake is None else min(wake, t)
                        else:
                            m = selectors.EVENT_READ
                    if conn.out[side] or (conn.fin_pending[side] and not conn.wr_shut[side]):
                        m |= selectors.EVENT_WRITE
                if m != conn.mask[side]:
                    if conn.mask[side] == 0:
                        self.sel.register(s, m, (conn, side))
                    elif m == 0:
                        self.sel.unregister(s)
                    else:
                        self.sel.modify(s, m, (conn, side))
                    conn.mask[side] = m
        return wake

    def run(self):
        deadline = time.monotonic() + self.args.max_seconds
        # Signals wake the loop (their handlers only set flags).
        self.sig_r, w = os.pipe()
        os.set_blocking(self.sig_r, False)
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w)
        self.sel.register(self.sig_r, selectors.EVENT_READ, "signal")
        if not self.args.no_stdin:
            os.set_blocking(0, False)
            self.sel.register(0, selectors.EVENT_READ, "stdin")
        while not self.stop:
            now = time.monotonic()
            if now >= deadline:
                break
            if self.want_cut:
                self.want_cut = False
                self.cut(now)
            # The relay side of new connections, once their SYN has crossed the link.
            for conn in self.conns:
                if not conn.gone and not conn.blackholed and conn.socks[SERVER] is None \
                        and not conn.rd_eof[SERVER] and now >= conn.connect_at:
                    self.connect_upstream(conn)
            if self.blackhole_until and now >= self.blackhole_until:
                self.blackhole_until = 0.0
            self.register_listener(not self.blackhole_until)
            if self.deliver(now):
                self.last_deliver = now
            self.conns = [c for c in self.conns if not c.gone]
            wake = self.interest(now)
            for d in self.dirs:
                if d.flight:
                    # Segments due within 0.5 ms of the last delivery wait for one wake-up
                    # together (bulk at 50 Mbit/s is 4,300 segments a second).
                    t = max(d.flight[0][0], self.last_deliver + 0.0005)
                    wake = t if wake is None else min(wake, t)
            if self.blackhole_until:
                wake = self.blackhole_until if wake is None else min(wake, self.blackhole_until)
            for conn in self.conns:
                if conn.socks[SERVER] is None and not conn.rd_eof[SERVER] and not conn.blackholed:
                    wake = conn.connect_at if wake is None else min(wake, conn.connect_at)
            wake = deadline if wake is None else min(wake, deadline)
            timeout = wake - time.monotonic()
            # epoll counts in whole milliseconds (rounded up): wake up to 1 ms early, then sleep
            # the rest with nanosleep, so that segments leave on time.
            if timeout >= 0.002:
                events = self.sel.select(int((timeout - 0.001) * 1000) / 1000.0)
            elif timeout > 0.0011:
                events = self.sel.select(0.001)
            else:
                events = self.sel.select(0)
                if not events:
                    rest = wake - time.monotonic()
                    if rest > 0:
                        time.sleep(rest)
                    continue
            now = time.monotonic()
            for key, ev in events:
                if key.data is None:
                    self.accept(now)
                elif key.data == "signal":
                    try:
                        os.read(self.sig_r, 512)
                    except OSError:
                        pass
                elif key.data == "stdin":
                    self.read_stdin(now)
                else:
                    conn, side = key.data
                    if conn.gone or conn.socks[side] is None:
                        continue
                    if ev & selectors.EVENT_WRITE:
                        self.flush(conn, side, now)
                    if ev & selectors.EVENT_READ and not conn.gone and conn.socks[side] is not None:
                        self.on_readable(conn, side, now)
        for conn in self.conns:
            self.close_conn(conn)
        self.ls.close()
        if not self.args.no_stdin:
            try:
                os.set_blocking(0, True)      # a terminal's stdin is shared with the shell
            except OSError:
                pass


def raise_priority():
    """The emulator is the network: on a busy machine it should not wait for a CPU behind the
    endpoints. SCHED_RR if allowed (the kernel still keeps 5% of each second for others),
    else nice -10, else as it is. Returns what it got."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(10))
        return "SCHED_RR"
    except (OSError, AttributeError):
        pass
    try:
        os.nice(-10)
        return "nice -10"
    except OSError:
        return "normal"


def reset(s):
    """Close with an RST."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


# ---------------------------------------------------------------------------
# the accuracy check: a plain TCP server behind the emulator


def check_server(port_pipe_w, max_seconds):
    """Child process: echo ('E'), sink ('U': answers with the receive timestamps) and source
    ('D') on 127.0.0.1; one thread per connection."""
    import threading
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    s.settimeout(1.0)
    os.write(port_pipe_w, b"%d\n" % s.getsockname()[1])
    deadline = time.monotonic() + max_seconds
    parent = os.getppid()

    def serve(c):
        try:
            c.settimeout(120)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cmd = c.recv(1)
            if cmd == b"E":
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    c.sendall(d)
            elif cmd == b"U":
                buf = bytearray(1 << 18)
                marks = []
                total = 0
                while True:
                    k = c.recv_into(buf)
                    if k == 0:
                        break
                    total += k
                    marks.append((time.monotonic(), total))
                c.sendall(json.dumps(marks[:: max(1, len(marks) // 2000)] + marks[-1:]).encode() + b"\n")
            elif cmd == b"D":
                secs = struct.unpack(">d", recv_n(c, 8))[0]
                block = os.urandom(65536)
                end = time.monotonic() + secs
                while time.monotonic() < end:
                    c.sendall(block)
        except OSError:
            pass
        finally:
            c.close()

    while time.monotonic() < deadline and os.getppid() == parent:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def recv_n(c, n):
    out = b""
    while len(out) < n:
        d = c.recv(n - len(out))
        if not d:
            raise OSError("closed")
        out += d
    return out


def rate_between(marks, t_from, t_to):
    """Bytes per second in [t_from, t_to] from (time, cumulative bytes) marks (the window ends
    early if the marks do: a transfer that ended)."""
    if not marks or marks[-1][0] <= t_from:
        return None
    t_to = min(t_to, marks[-1][0])
    at = lambda t: max([b for tm, b in marks if tm <= t] or [0])
    return (at(t_to) - at(t_from)) / (t_to - t_from)


def link_check(emu_port, rtt_ms, mbit, pings=20, bulk_s=4.0, log=None):
    """Measures the emulator on 127.0.0.1:emu_port (whose upstream is a check_server):
    64-byte round trips (idle), a bulk download and upload (rate after the first
    max(1 s, 3 round trips)), and 64-byte round trips on a second connection while the first
    uploads (the queue's delay). Returns a dict."""
    res = {"rtt_ms": rtt_ms, "mbit": mbit}
    warm = max(1.0, 3 * rtt_ms / 1000.0)

    def conn(cmd):
        c = socket.create_connection(("127.0.0.1", emu_port), timeout=30 + 4 * rtt_ms / 1000.0)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sendall(cmd)
        return c

    def pingpong(c, n, max_s=None):
        xs = []
        msg = os.urandom(64)
        end = time.monotonic() + (max_s or 1e9)
        for _ in range(n):
            t0 = time.perf_counter()
            c.sendall(msg)
            recv_n(c, 64)
            xs.append((time.perf_counter() - t0) * 1000.0)
            if time.monotonic() > end:
                break
        return xs

    c = conn(b"E")
    pingpong(c, 2)
    xs = pingpong(c, pings)
    c.close()
    xs.sort()
    res["ping_ms"] = {"min": xs[0], "p50": xs[len(xs) // 2], "max": xs[-1], "n": len(xs)}

    # download: marks at the client
    c = conn(b"D" + struct.pack(">d", warm + bulk_s + 0.5))
    marks, total, buf = [], 0, bytearray(1 << 18)
    t_end = time.monotonic() + warm + bulk_s + 0.5 + 2 * rtt_ms / 1000.0 + 5
    while time.monotonic() < t_end:
        k = c.recv_into(buf)
        if k == 0:
            break
        total += k
        marks.append((time.monotonic(), total))
    c.close()
    t1 = marks[0][0]
    r = rate_between(marks, t1 + warm, t1 + warm + bulk_s)
    res["down_mbit"] = r * 8 / 1e6 if r else None

    # upload: marks at the server; a second connection pings while the queue is full
    c = conn(b"U")
    block = os.urandom(65536)
    end = time.monotonic() + warm + bulk_s
    loaded = None
    c.settimeout(5)
    import threading
    stop = []

    def pump():
        while not stop and time.monotonic() < end:
            try:
                c.sendall(block)
            except OSError:
                break

    th = threading.Thread(target=pump, daemon=True)
    th.start()
    time.sleep(warm)
    e = conn(b"E")
    pingpong(e, 1)
    lx = pingpong(e, 10, max_s=bulk_s / 2)
    e.close()
    th.join(warm + bulk_s + 10)
    c.shutdown(socket.SHUT_WR)
    c.settimeout(30 + 4 * rtt_ms / 1000.0)
    line = b""
    while not line.endswith(b"\n"):
        d = c.recv(65536)
        if not d:
            break
        line += d
    c.close()
    marks = json.loads(line) if line else []
    if marks:
        t1 = marks[0][0]
        r = rate_between(marks, t1 + warm, t1 + warm + bulk_s - 0.2)
        res["up_mbit"] = r * 8 / 1e6 if r else None
    lx.sort()
    if lx:
        res["ping_loaded_ms"] = {"min": lx[0], "p50": lx[len(lx) // 2], "max": lx[-1], "n": len(lx)}
    return res


def run_check(paths, queue_ms):
    import subprocess
    server = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve-check"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE)
    port = int(server.stdout.readline())
    rows = []
    try:
        for rtt, mbit in paths:
            p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--listen", "127.0.0.1:0",
                                  "--upstream", "127.0.0.1:%d" % port, "--rtt", str(rtt), "--rate", str(mbit),
                                  "--queue-ms", str(queue_ms), "--max-seconds", "300", "--realtime"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                line = p.stdout.readline().split()
                emu_port = int(line[1].rsplit(":", 1)[1])
                prio = line[3] if len(line) > 3 else "?"
                c0, t0 = cpu_seconds(p.pid), time.monotonic()
                res = link_check(emu_port, rtt, mbit)
                res["emulator_cpu"] = (cpu_seconds(p.pid) - c0) / (time.monotonic() - t0)
                res["queue_ms"] = queue_ms
                res["priority"] = prio
                rows.append(res)
                print(format_check([res], header=not rows[:-1]), flush=True)
            finally:
                p.stdin.close()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    finally:
        server.terminate()
        server.wait(10)
    return rows


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            v = f.read()
        v = v[v.rindex(")") + 2:].split()
        return (int(v[11]) + int(v[12])) / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError):
        return 0.0


def format_check(rows, header=True):
    out = []
    if header:
        out.append("| path (round trip, rate) | ping 64 B min / p50 / max (ms) | error p50 | download (Mbit/s, % of rate) "
                   "| upload (Mbit/s, %) | ping behind a full queue p50 (ms) | expected (rtt + queue) | emulator CPU |")
        out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        p = r["ping_ms"]
        pl = r.get("ping_loaded_ms")
        f = lambda v: "%.1f (%.0f %%)" % (v, 100.0 * v / r["mbit"]) if v else "-"
        out.append("| %g ms, %g Mbit/s | %.1f / %.1f / %.1f | %+.1f ms | %s | %s | %s | %.0f | %s |" % (
            r["rtt_ms"], r["mbit"], p["min"], p["p50"], p["max"], p["p50"] - r["rtt_ms"], f(r.get("down_mbit")),
            f(r.get("up_mbit")), "%.1f" % pl["p50"] if pl else "-", r["rtt_ms"] + r["queue_ms"],
            "%.0f %%" % (100 * r["emulator_cpu"]) if "emulator_cpu" in r else "-"))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description="TCP link emulator on loopback (bench-wan)")
    ap.add_argument("--listen", type=hostport, default=("127.0.0.1", 0))
    ap.add_argument("--upstream", type=hostport)
    ap.add_argument("--rtt", type=float, help="round trip in ms (one-way delay = rtt / 2)")
    ap.add_argument("--delay", type=float, help="one-way delay in ms, each direction")
    ap.add_argument("--rate", type=float, default=0.0, help="Mbit/s each direction (0: unlimited)")
    ap.add_argument("--up-rate", type=float, help="Mbit/s device -> relay")
    ap.add_argument("--down-rate", type=float, help="Mbit/s relay -> device")
    ap.add_argument("--queue", type=int, help="queue bytes per direction")
    ap.add_argument("--queue-ms", type=float, default=50.0, help="queue per direction in ms of the rate (default 50)")
    ap.add_argument("--out-limit", type=int, default=256 * 1024,
                    help="bytes delivered but not yet taken by a slow reader, per connection and direction")
    ap.add_argument("--max-conns", type=int, default=64)
    ap.add_argument("--max-seconds", type=float, default=3600.0)
    ap.add_argument("--no-stdin", action="store_true", help="no commands on stdin (SIGUSR1 still cuts)")
    ap.add_argument("--realtime", action="store_true",
                    help="run at real-time priority (SCHED_RR) if allowed, else nice -10")
    ap.add_argument("--check", action="store_true", help="measure the emulator's accuracy and exit")
    ap.add_argument("--serve-check", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--paths", default="40:50,100:20,300:5,600:2", help="--check: rtt_ms:mbit,...")
    args = ap.parse_args()
    if args.serve_check:
        return check_server(sys.stdout.fileno(), 900)
    if args.check:
        paths = [tuple(float(x) for x in p.split(":")) for p in args.paths.split(",") if p]
        run_check(paths, args.queue_ms)
        return
    if not args.upstream:
        ap.error("--upstream is required")
    prio = raise_priority() if args.realtime else "normal"
    emu = Emulator(args)
    emu.priority = prio
    signal.signal(signal.SIGTERM, lambda *_: setattr(emu, "stop", True))
    signal.signal(signal.SIGINT, lambda *_: setattr(emu, "stop", True))
    signal.signal(signal.SIGUSR1, lambda *_: setattr(emu, "want_cut", True))
    host, port = emu.ls.getsockname()[:2]
    print("listening %s:%d priority %s" % (host, port, prio), flush=True)
    emu.run()


if __name__ == "__main__":
    main()
