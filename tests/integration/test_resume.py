"""Resume credentials (issue 14, item 4): a returning device is admitted without any
public-key operation, also by a relay restarted after kill -9 on the same --state, and
falls back to a full handshake when the relay's resume keys are gone. Real processes on
127.0.0.1; every wait bounded; every process stopped by the `net` fixture."""
import os
import stat

from conftest import HOST, free_port, transfer
from test_metrics import scrape, value


def admissions(mport):
    code, body = scrape(mport)
    assert code == 200
    return value(body, "admissions_total", '{kind="full"}'), value(body, "admissions_total", '{kind="resumed"}')


def test_device_resumes_after_relay_kill9_and_falls_back_without_keys(net):
    echo = net.echo()
    mport = free_port()
    relay = net.relay("--open-enrollment", "--metrics", "%s:%d" % (HOST, mport))
    keys = net.path("relay-state/resume-keys")
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o600
    dev = net.keygen("dev.pem")
    op = net.keygen("op.pem")
    rev = net.reverse("dev.pem", "--authorized-keys", net.authorize(op), "--log-level", "info")
    fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port), "--log-level", "info")
    assert admissions(mport) == (2, 0)
    assert "resumed=yes" not in rev.log()
    assert transfer(fwd.port, b"before" * 100) == b"before" * 100

    # kill -9, then a new relay on the same port and --state: both agents come back resumed.
    relay.kill()
    relay2 = net.relay("--open-enrollment", "--metrics", "%s:%d" % (HOST, mport), name="relay2")
    rev.wait_log(r"tunnel_up .*resumed=yes", timeout=10)
    fwd.wait_log(r"tunnel_up .*resumed=yes", timeout=10)
    relay2.wait_log(r"agent_admitted .*role=reverse .*resumed=yes", timeout=5)
    assert admissions(mport) == (0, 2)
    assert transfer(fwd.port, b"after restart" * 100) == b"after restart" * 100

    # The resume keys lost: the device offers its credential, the relay cannot open it, and
    # the same connection goes on as a full handshake (the pin checked as always).
    relay2.kill()
    os.remove(keys)
    relay3 = net.relay("--open-enrollment", "--metrics", "%s:%d" % (HOST, mport), name="relay3")
    rev.wait_log(r"tunnel_up", count=3, timeout=10)
    fwd.wait_log(r"tunnel_up", count=3, timeout=10)
    assert admissions(mport) == (2, 0)
    assert "resumed=yes" not in relay3.log()
    assert os.path.exists(keys)
    assert transfer(fwd.port, b"full again" * 100) == b"full again" * 100

    # And they hold fresh credentials from relay3: the next restart resumes them again.
    relay3.kill()
    net.relay("--open-enrollment", "--metrics", "%s:%d" % (HOST, mport), name="relay4")
    rev.wait_log(r"tunnel_up .*resumed=yes", count=2, timeout=10)
    fwd.wait_log(r"tunnel_up .*resumed=yes", count=2, timeout=10)
    assert admissions(mport) == (0, 2)
