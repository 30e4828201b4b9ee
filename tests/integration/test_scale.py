"""The relay with a few thousand devices (issue 14): behaviour, not timing. Devices come
from bench/idle_devices.py (the real protocol, one Python process, reconnecting as agents
do); a real device and operator carry a live stream beside them. 127.0.0.1 only; every
wait is bounded; every process is stopped by the `net` fixture or here."""
import os
import re
import signal
import subprocess
import sys
import time

from conftest import HOST, ROOT, free_port, transfer

DEVICES = 1500


class IdleDevices:
    def __init__(self, net, count):
        self.p = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "idle_devices.py"), "--relay",
                                   "%s:%d" % (HOST, net.relay_port), "--pin", net.pin, "--count", str(count),
                                   "--concurrency", "32", "--hold", "240", "--reconnect"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=open(net.path("idle-devices.log"), "w"), text=True)

    def first_line(self):
        return self.p.stdout.readline().strip()

    def alive(self):
        self.p.stdin.write("count\n")
        self.p.stdin.flush()
        m = re.match(r"alive (\d+)", self.p.stdout.readline().strip())
        return int(m.group(1)) if m else -1

    def wait_alive(self, n, timeout):
        deadline = time.time() + timeout
        a = -1
        while time.time() < deadline:
            a = self.alive()
            if a >= n:
                return a
            time.sleep(0.5)
        raise AssertionError("only %d of %d devices alive after %.0f s" % (a, n, timeout))

    def stop(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("stop\n")
                self.p.stdin.flush()
                self.p.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait(5)


def test_thousands_of_devices_live_stream_and_kill9(net):
    echo = net.echo()
    relay = net.relay("--open-enrollment")
    dev = net.keygen("dev.pem")
    op = net.keygen("op.pem")
    rev = net.reverse("dev.pem", "--authorized-keys", net.authorize(op), "--log-level", "info")
    fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port), "--log-level", "info")
    idle = IdleDevices(net, DEVICES)
    try:
        line = idle.first_line()
        assert re.match(r"connected (\d+) failed (\d+)", line), line
        # New keys are enrolled at a bounded rate (Limits.relayEnrollPerSecond): the devices
        # refused at first come back with their backoff, as agents do.
        idle.wait_alive(DEVICES, timeout=90)
        # A live stream works beside them.
        data = os.urandom(200_000)
        assert transfer(fwd.port, data) == data

        # kill -9 the relay, start it again on the same port and state: everyone comes back.
        relay.p.send_signal(signal.SIGKILL)
        relay.p.wait(5)
        net.relay("--open-enrollment", name="relay2")
        idle.wait_alive(DEVICES, timeout=90)
        rev.wait_log(r"tunnel_up", count=2, timeout=30)
        fwd.wait_log(r"tunnel_up", count=2, timeout=30)
        data = os.urandom(200_000)
        assert transfer(fwd.port, data) == data
    finally:
        idle.stop()


def test_max_tunnels_is_a_hard_cap(net):
    """--max-tunnels: at the cap new connections wait; when a tunnel goes, one gets in."""
    net.relay("--open-enrollment", "--max-tunnels", "2")
    net.keygen("a.pem")
    net.keygen("b.pem")
    net.keygen("c.pem")
    ra = net.reverse("a.pem", "--authorize-any", name="ra")
    net.reverse("b.pem", "--authorize-any", name="rb")
    rc = net.reverse("c.pem", "--authorize-any", name="rc", wait=False)
    time.sleep(2.0)
    assert not re.search(r"tunnel_up", rc.log())
    ra.kill()
    rc.wait_log(r"tunnel_up", timeout=30)
