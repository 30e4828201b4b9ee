"""SNI routing, the HTTPS transport through a front, and CONNECT proxies (issue 6).
Real agent processes, nginx, tinyproxy, curl, openssl and headless Chromium,
all on 127.0.0.1 and bounded in time."""
import base64
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import HOST, free_port, transfer

HOSTNAME = "dev1.example.test"
PAGE = "<html><body><h1 id='m'>served by the device over end-to-end TLS</h1></body></html>"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=30)


def make_ca(d, name="test-ca"):
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", name + ".key", cwd=d)
    openssl("req", "-x509", "-new", "-key", name + ".key", "-subj", "/CN=" + name, "-days", "2",
            "-out", name + ".pem", cwd=d)
    return os.path.join(d, name + ".pem")


def make_server_cert(d, ca, dns, name):
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", name + ".key", cwd=d)
    openssl("req", "-new", "-key", name + ".key", "-subj", "/CN=" + dns, "-out", name + ".csr", cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n" % dns)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial",
            "-days", "2", "-extfile", name + ".ext", "-out", name + ".pem", cwd=d)
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


class HTTPSServer:
    """The device's own HTTPS service on 127.0.0.1 (it terminates TLS itself)."""

    def __init__(self, cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.ctx = ctx
        self.served = 0
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            c.settimeout(10)
            s = self.ctx.wrap_socket(c, server_side=True)
            req = b""
            while b"\r\n\r\n" not in req:
                d = s.recv(4096)
                if not d:
                    return
                req += d
            body = PAGE.encode()
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                      % len(body) + body)
            self.served += 1
            s.close()
        except (OSError, ssl.SSLError):
            pass


@pytest.fixture
def sni(net):
    d = net.dir
    make_ca(d, "web-ca")
    cert, key = make_server_cert(d, os.path.join(d, "web-ca"), HOSTNAME, "dev1")
    web = HTTPSServer(cert, key)
    secret = net.path("enroll.secret")
    dev = net.keygen("dev.pem")
    token = net.run("token", "--secret", secret, "--device", dev, "--hostname", HOSTNAME).stdout.strip()
    sni_port = free_port()
    relay = net.relay("--enroll-secret", secret, "--sni-listen", "%s:%d" % (HOST, sni_port))
    rev = net.reverse("dev.pem", "--token", token, "--hostname", HOSTNAME,
                      "--sni-target", "%s:%d" % (HOST, web.port), "--authorize-any")
    return dict(net=net, web=web, relay=relay, rev=rev, port=sni_port, ca=os.path.join(d, "web-ca.pem"), dev=dev)


def test_sni_routing_with_curl_and_openssl(sni):
    port, ca = sni["port"], sni["ca"]
    # Mixed case: names match case-insensitively.
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", ca,
                        "--resolve", "DEV1.Example.TEST:%d:127.0.0.1" % port,
                        "https://DEV1.Example.TEST:%d/" % port], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "served by the device" in r.stdout
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", HOSTNAME,
                        "-CAfile", ca, "-verify_return_error", "-verify_hostname", HOSTNAME, "-brief", "-ign_eof"],
                       input="GET / HTTP/1.0\r\n\r\n", capture_output=True, text=True, timeout=20)
    assert "Verification: OK" in r.stderr
    assert "served by the device" in r.stdout
    # The registry bound the hostname to this device at enrollment.
    assert HOSTNAME in sni["net"].registry()


def test_sni_refusals_are_closed_and_counted(sni):
    port, relay = sni["port"], sni["relay"]
    # no SNI
    subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-noservername"],
                   input="", capture_output=True, timeout=20)
    relay.wait_log(r"sni_refused .*reason=no_sni")
    # unknown hostname
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "-k", "--resolve", "nobody.example.test:%d:127.0.0.1" % port,
                        "https://nobody.example.test:%d/" % port], capture_output=True, timeout=20)
    assert r.returncode != 0
    relay.wait_log(r"sni_refused .*host=nobody.example.test reason=unknown_hostname")
    # garbage
    c = socket.create_connection((HOST, port), timeout=5)
    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
    c.settimeout(5)
    assert c.recv(10) == b""
    c.close()
    relay.wait_log(r"sni_refused .*reason=not_tls")
    # a client that never finishes its ClientHello is closed by the timeout
    c = socket.create_connection((HOST, port), timeout=10)
    c.sendall(b"\x16\x03\x01\x02\x00\x01")
    c.settimeout(10)
    t0 = time.time()
    assert c.recv(10) == b""
    assert time.time() - t0 < 8
    relay.wait_log(r"sni_refused .*reason=hello_timeout")


def test_sni_headless_chromium(sni):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.fail("chromium is needed: cross/deps.sh installs it")
    port = sni["port"]
    d = sni["net"].dir
    # Trust exactly the device's key (the hash of its SubjectPublicKeyInfo).
    der = subprocess.run(["openssl", "x509", "-in", os.path.join(d, "dev1.pem"), "-noout", "-pubkey"],
                         capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=der, capture_output=True,
                          check=True).stdout
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    profile = os.path.join(d, "chromium-profile")
    r = subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--no-first-run", "--user-data-dir=" + profile,
                        "--host-resolver-rules=MAP %s 127.0.0.1" % HOSTNAME,
                        "--ignore-certificate-errors-spki-list=" + pin,
                        "--dump-dom", "https://%s:%d/" % (HOSTNAME, port)],
                       capture_output=True, text=True, timeout=90)
    assert "served by the device over end-to-end TLS" in r.stdout, r.stderr[-2000:]
    assert sni["web"].served >= 1


def test_hostname_claims_are_bound(net):
    secret = net.path("enroll.secret")
    a = net.keygen("a.pem")
    b = net.keygen("b.pem")
    ta = net.run("token", "--secret", secret, "--device", a, "--hostname", HOSTNAME).stdout.strip()
    tb = net.run("token", "--secret", secret, "--device", b).stdout.strip()
    tb2 = net.run("token", "--secret", secret, "--device", b, "--hostname", HOSTNAME).stdout.strip()
    relay = net.relay("--enroll-secret", secret, "--sni-listen", "%s:%d" % (HOST, free_port()))
    net.reverse("a.pem", "--token", ta, "--hostname", HOSTNAME, "--sni-target", "127.0.0.1:9", "--authorize-any", name="ra")
    # b's token grants no hostname: it cannot claim one
    rb = net.reverse("b.pem", "--token", tb, "--hostname", HOSTNAME, "--sni-target", "127.0.0.1:9",
                     "--authorize-any", name="rb", wait=False)
    relay.wait_log(r"agent_denied .*reason=hostname_not_granted")
    rb.wait_log(r"relay refused this agent")
    rb.stop()
    # even a token naming it cannot take another device's hostname
    rb2 = net.reverse("b.pem", "--token", tb2, "--hostname", HOSTNAME, "--sni-target", "127.0.0.1:9",
                      "--authorize-any", name="rb2", wait=False)
    relay.wait_log(r"agent_denied .*reason=hostname_taken")
    rb2.wait_log(r"relay refused this agent")


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log info;
events {{ worker_connections 64; }}
http {{
  access_log {d}/nginx-access.log;
  client_body_temp_path {d}/nginx-tmp;
  proxy_temp_path {d}/nginx-tmp;
  fastcgi_temp_path {d}/nginx-tmp;
  uwsgi_temp_path {d}/nginx-tmp;
  scgi_temp_path {d}/nginx-tmp;
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name localhost;
    ssl_certificate {d}/front.pem;
    ssl_certificate_key {d}/front.key;
    ssl_protocols TLSv1.2 TLSv1.3;   # nginx before 1.23.4 leaves TLS 1.3 out by default
    location /agent {{
      proxy_pass https://127.0.0.1:{relay};
      proxy_ssl_protocols TLSv1.3;     # the relay speaks TLS 1.3 only
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 3600s;
    }}
    location / {{ return 404; }}
  }}
}}
"""


def test_relay_behind_nginx_https_upgrade(net):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        pytest.fail("nginx is needed: cross/deps.sh installs nginx-light")
    d = net.dir
    make_ca(d, "front-ca")
    make_server_cert(d, os.path.join(d, "front-ca"), "localhost", "front")
    os.makedirs(os.path.join(d, "nginx-tmp"), exist_ok=True)
    echo = net.echo()
    relay = net.relay("--open-enrollment")
    front_port = free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(d=d, port=front_port, relay=net.relay_port))
    ng = subprocess.Popen([nginx, "-c", os.path.join(d, "nginx.conf"), "-p", d], stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection((HOST, front_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        url = "https://localhost:%d/agent" % front_port
        ca = os.path.join(d, "front-ca.pem")
        dev = net.keygen("dev.pem")
        op = net.keygen("op.pem")
        # The device goes through nginx (TLS ends at nginx: --ca checks nginx, the pin checks the relay in the hello).
        rev = net.start("reverse", "--role", "reverse", "--relay", url, "--ca", ca, "--relay-pin", net.pin,
                        "--identity", net.path("dev.pem"), "--authorized-keys", net.authorize(op))
        rev.wait_log(r"tunnel_up")
        relay.wait_log(r"agent_admitted id=%s .*transport=http-upgrade" % dev)
        # The operator connects raw to the same relay port.
        fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port))
        data = os.urandom(1 << 20)
        assert transfer(fwd.port, data) == data
        # A wrong relay pin behind the front is caught in the hello.
        bad = net.start("reverse-badpin", "--role", "reverse", "--relay", url, "--ca", ca,
                        "--relay-pin", "sha256:" + "11" * 32, "--identity", net.path("dev.pem"), "--authorize-any")
        bad.wait_log(r"relay_unreachable .*relay key does not match --relay-pin")
        # A front certificate from another CA is refused in TLS.
        other = make_ca(d, "other-ca")
        bad2 = net.start("reverse-badca", "--role", "reverse", "--relay", url, "--ca", other,
                         "--identity", net.path("dev.pem"), "--authorize-any")
        bad2.wait_log(r"relay_unreachable .*TLS handshake")
        # A plain HTTP request to the relay itself is told to upgrade.
        r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                            "https://127.0.0.1:%d/" % net.relay_port], capture_output=True, text=True, timeout=15)
        assert r.stdout == "426"
    finally:
        ng.terminate()
        ng.wait(10)


def test_agents_through_an_http_connect_proxy(net):
    tinyproxy = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
    if not os.path.exists(tinyproxy):
        pytest.fail("tinyproxy is needed: cross/deps.sh installs it")
    d = net.dir
    echo = net.echo()
    net.relay("--open-enrollment")
    pport = free_port()
    conf = os.path.join(d, "tinyproxy.conf")
    with open(conf, "w") as f:
        f.write("Port %d\nListen 127.0.0.1\nTimeout 600\nAllow 127.0.0.1\nMaxClients 20\nLogLevel Info\n"
                "LogFile \"%s/tinyproxy.log\"\nPidFile \"%s/tinyproxy.pid\"\n" % (pport, d, d))
    tp = subprocess.Popen([tinyproxy, "-d", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection((HOST, pport), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        proxy = "http://127.0.0.1:%d" % pport
        dev = net.keygen("dev.pem")
        op = net.keygen("op.pem")
        net.reverse("dev.pem", "--authorized-keys", net.authorize(op), "--proxy", proxy)
        fwd = net.forward("op.pem", dev, "%s:%d" % (HOST, echo.port), "--proxy", proxy)
        data = os.urandom(1 << 20)
        assert transfer(fwd.port, data) == data
        with open(os.path.join(d, "tinyproxy.log")) as f:
            assert f.read().count("CONNECT") >= 2
        # A proxy that refuses: a clear message.
        bad = net.start("reverse-noproxy", "--role", "reverse", "--relay", "127.0.0.1:%d" % net.relay_port,
                        "--relay-pin", net.pin, "--identity", net.path("dev.pem"), "--authorize-any",
                        "--proxy", "http://127.0.0.1:%d" % free_port())
        bad.wait_log(r"relay_unreachable .*connect to 127.0.0.1:\d+: Connection refused")
    finally:
        tp.terminate()
        tp.wait(10)
