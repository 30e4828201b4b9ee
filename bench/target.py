"""The benchmark's target server: what every path (direct, agent, OpenSSH) leads to.

One listening socket on 127.0.0.1. On every accepted connection the server
sends one greeting byte at once (so a client can time "connect until the first
byte from the target"), then forks a child that serves the connection, so that
no two streams share an interpreter lock. TCP_NODELAY is set on every accepted
socket.

After the greeting the client sends a 9-byte request: a command byte and a
big-endian u64 `n`:

    U n   upload: the child reads exactly n bytes, then answers one byte b"k"
    D n   download: the child sends n bytes (stops early if the client closes)
    E n   echo: the child sends back everything it reads until EOF (n unused)

Anything else, or EOF before a full request, closes the connection.

Usage: python3 target.py PORTFILE   (binds an ephemeral port, writes it to PORTFILE)
The server exits when its parent process goes away or after --max-seconds.
"""
import os
import signal
import socket
import struct
import sys
import time

HOST = "127.0.0.1"
CHUNK = 1 << 20


def serve(c):
    c.settimeout(600)
    head = bytearray()
    while len(head) < 9:
        d = c.recv(9 - len(head))
        if not d:
            return
        head += d
    cmd, n = struct.unpack(">cQ", bytes(head))
    if cmd == b"U":
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        left = n
        while left > 0:
            got = c.recv_into(view[:min(left, CHUNK)])
            if got == 0:
                return
            left -= got
        c.sendall(b"k")
    elif cmd == b"D":
        block = memoryview(os.urandom(CHUNK))
        left = n
        while left > 0:
            k = min(left, CHUNK)
            c.sendall(block[:k])
            left -= k
        # Let the client close first (it reads every byte).
        try:
            c.recv(1)
        except OSError:
            pass
    elif cmd == b"E":
        buf = bytearray(1 << 18)
        view = memoryview(buf)
        while True:
            got = c.recv_into(buf)
            if got == 0:
                break
            c.sendall(view[:got])
        try:
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def accept_loop(portfile, max_seconds, serve, backlog=1024):
    """Listens on 127.0.0.1, writes the port to `portfile`, and for each connection sends one
    greeting byte b"!" and forks a child that runs serve(conn). Ends after `max_seconds` or when
    the parent goes away. (bench/wan.py's target uses it with its own commands.)"""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    parent = os.getppid()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST, 0))
    s.listen(backlog)
    s.settimeout(1.0)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline and os.getppid() == parent:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        except OSError:
            break
        c.settimeout(None)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            c.sendall(b"!")
        except OSError:
            c.close()
            continue
        pid = os.fork()
        if pid == 0:
            s.close()
            code = 0
            try:
                serve(c)
            except OSError:
                code = 1
            finally:
                try:
                    c.close()
                finally:
                    os._exit(code)
        c.close()


def main():
    portfile = sys.argv[1]
    max_seconds = 1800.0
    if len(sys.argv) > 3 and sys.argv[2] == "--max-seconds":
        max_seconds = float(sys.argv[3])
    accept_loop(portfile, max_seconds, serve)


if __name__ == "__main__":
    main()
