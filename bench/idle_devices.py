"""Many idle devices from one Python process, to measure a relay's memory per tunnel.

Each device speaks the agent protocol (docs/PROTOCOL.md) as `agent --role reverse` would,
without any stream:

  TLS 1.3 to the relay (the relay's key is checked against --pin, SHA-256 of its SPKI),
  the preamble b"agent/1\\n", CHALLENGE <- relay (its key = the pin, its signature checked),
  AUTH -> relay (role reverse, a fresh P-256 key and a self-signed certificate, the signature
  over "agent auth v1" || nonce || SHA-256(relay SPKI) || SHA-256(AUTH without signature)),
  WELCOME <- relay, then it stays connected and answers every PING with a PONG.

Connections are opened with limited concurrency (the relay accepts at most 256 pending
handshakes at once). Every loop is bounded: the tool exits after --hold seconds, or when a
line "stop" arrives on stdin, whichever comes first.

Progress goes to stdout as lines the harness reads:
  connected N failed M          once every device has had its attempt
  alive N pings P admissions A  in answer to a line "count" on stdin

With --reconnect each device comes back (same key) after losing the relay, as an agent would.

Usage: python3 idle_devices.py --relay 127.0.0.1:PORT --pin sha256:HEX [--count 1000]
                               [--concurrency 32] [--hold 300] [--reconnect]
Needs the `cryptography` package (keys, certificates, signatures).
"""
import argparse
import asyncio
import datetime
import hashlib
import random
import ssl
import struct
import sys
import time
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PREAMBLE = b"agent/1\n"
T_CHALLENGE, T_AUTH, T_WELCOME, T_DENIED = 0x01, 0x02, 0x03, 0x04
T_PING, T_PONG, T_GOAWAY = 0x20, 0x21, 0x22
ROLE_REVERSE = 1
AUTH_LABEL = b"agent auth v1"
CHALLENGE_LABEL = b"agent relay challenge v2"
MAX_PAYLOAD = 16376

# The relay's self-signed certificate (mbedTLS) writes NULL parameters in its ecdsa-with-SHA256
# AlgorithmIdentifier; cryptography accepts it with a deprecation warning. Only its key is used here.
warnings.filterwarnings("ignore", message=".*NULL parameter value.*")


def frame(ftype, stream, payload):
    assert len(payload) <= MAX_PAYLOAD
    return struct.pack(">BBHI", ftype, 0, len(payload), stream) + payload


async def read_frame(reader):
    head = await reader.readexactly(8)
    ftype, _flags, length, stream = struct.unpack(">BBHI", head)
    if length > MAX_PAYLOAD:
        raise ValueError("oversized frame")
    payload = await reader.readexactly(length) if length else b""
    return ftype, stream, payload


def u16blob(b):
    return struct.pack(">H", len(b)) + b


def parse_challenge(p):
    if len(p) < 36:
        raise ValueError("short challenge")
    vmin, vmax = p[0], p[1]
    nonce = p[2:34]
    off = 34
    (klen,) = struct.unpack(">H", p[off:off + 2])
    key = p[off + 2:off + 2 + klen]
    off += 2 + klen
    (slen,) = struct.unpack(">H", p[off:off + 2])
    sig = p[off + 2:off + 2 + slen]
    if off + 2 + slen != len(p) or not key or not sig or vmin > vmax:
        raise ValueError("malformed challenge")
    return vmin, vmax, nonce, key, sig


def make_identity():
    """A fresh P-256 key and a self-signed certificate (DER) for it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench idle device")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.DER)


def auth_payload(key, cert_der, nonce, relay_key, version):
    unsigned = bytes([version, ROLE_REVERSE, 1]) + u16blob(cert_der) + u16blob(b"") + bytes([0])
    signed = AUTH_LABEL + nonce + hashlib.sha256(relay_key).digest() + hashlib.sha256(unsigned).digest()
    sig = key.sign(signed, ec.ECDSA(hashes.SHA256()))
    return unsigned + u16blob(sig)


class Devices:
    def __init__(self, args):
        self.args = args
        host, port = args.relay.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.pin = bytes.fromhex(args.pin.split(":", 1)[1]) if args.pin else None
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE   # the relay's key is checked against the pin instead
        if args.curve:
            # The group agents of the relay's version use (TLS 1.3 relays: P-256 only; an X25519
            # key share would cost them a HelloRetryRequest).
            self.ctx.set_ecdh_curve(args.curve)
        self.alive = 0
        self.connected = 0
        self.failed = 0
        self.errors = {}
        self.pings = 0
        self.admissions = 0
        self.stop = asyncio.Event()

    def fail(self, what):
        self.failed += 1
        self.errors[what] = self.errors.get(what, 0) + 1

    async def device(self, sem, start=None):
        """One device: its first attempt counts in `connected`/`failed`; with --reconnect it
        comes back with the same key after losing the relay (backoff 0.5 s doubling to 8 s, jittered).
        `start`: the monotonic time of its first attempt (--rate)."""
        key, cert = make_identity()
        if start is not None:
            await asyncio.sleep(max(0.0, start - time.monotonic()))
        first = True
        backoff = 0.5
        while not self.stop.is_set():
            ok = await self.attempt(sem, key, cert, first)
            first = False
            if not self.args.reconnect:
                return
            backoff = 0.5 if ok else min(8.0, backoff * 2)
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))

    async def attempt(self, sem, key, cert, first):
        writer = None
        admitted = False
        try:
            async with sem:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, ssl=self.ctx, server_hostname=None), 20)
                tls_spki = x509.load_der_x509_certificate(
                    writer.get_extra_info("ssl_object").getpeercert(binary_form=True)).public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
                if self.pin is not None and hashlib.sha256(tls_spki).digest() != self.pin:
                    raise ValueError("relay TLS key does not match the pin")
                writer.write(PREAMBLE)
                ftype, stream, p = await asyncio.wait_for(read_frame(reader), 20)
                if ftype != T_CHALLENGE or stream != 0:
                    raise ValueError("expected CHALLENGE, got type %d" % ftype)
                vmin, vmax, nonce, relay_key, rsig = parse_challenge(p)
                if relay_key != tls_spki:
                    raise ValueError("challenge key differs from the TLS key")
                serialization.load_der_public_key(relay_key).verify(
                    rsig, CHALLENGE_LABEL + nonce + bytes([vmin, vmax]), ec.ECDSA(hashes.SHA256()))
                version = min(vmax, 1)
                if version < vmin:
                    raise ValueError("no common version")
                writer.write(frame(T_AUTH, 0, auth_payload(key, cert, nonce, relay_key, version)))
                ftype, stream, p = await asyncio.wait_for(read_frame(reader), 20)
                if ftype != T_WELCOME:
                    raise ValueError("expected WELCOME, got type %d" % ftype)
            admitted = True
            self.admissions += 1
            if first:
                self.connected += 1
            self.alive += 1
            try:
                while True:
                    ftype, stream, p = await read_frame(reader)
                    if ftype == T_PING and stream == 0:
                        self.pings += 1
                        writer.write(frame(T_PONG, 0, p))
                    elif ftype == T_GOAWAY:
                        break
            finally:
                self.alive -= 1
        except asyncio.CancelledError:
            raise
        except Exception as e:  # one device's failure is counted, never fatal
            if first and not admitted:
                self.fail(type(e).__name__ + ": " + str(e)[:80])
        finally:
            if writer is not None:
                writer.close()
        return admitted

    async def control(self):
        """Reads commands from stdin: 'count' prints the live count, 'stop' ends the run."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line or line.strip() == b"stop":
                self.stop.set()
                return
            if line.strip() == b"count":
                print("alive %d pings %d admissions %d" % (self.alive, self.pings, self.admissions), flush=True)

    async def run(self):
        sem = asyncio.Semaphore(self.args.concurrency)
        t0 = time.monotonic()
        # --rate: first attempts spread out, under the relay's enrollment rate (50 new keys
        # a second after a burst of 200, docs/LIMITS.md).
        rate = self.args.rate
        tasks = [asyncio.create_task(self.device(sem, t0 + i / rate if rate else None))
                 for i in range(self.args.count)]
        ctl = asyncio.create_task(self.control())
        # Wait until every device has connected or failed (bounded by --hold).
        while self.connected + self.failed < self.args.count and time.monotonic() - t0 < self.args.hold:
            if self.stop.is_set():
                break
            await asyncio.sleep(0.05)
        print("connected %d failed %d seconds %.2f" % (self.connected, self.failed, time.monotonic() - t0),
              flush=True)
        if self.errors:
            print("errors " + "; ".join("%s x%d" % (k, v) for k, v in sorted(self.errors.items())),
                  file=sys.stderr, flush=True)
        try:
            await asyncio.wait_for(self.stop.wait(), max(1.0, self.args.hold - (time.monotonic() - t0)))
        except asyncio.TimeoutError:
            pass
        ctl.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--relay", required=True, help="HOST:PORT of the relay")
    ap.add_argument("--pin", help="sha256:HEX of the relay key (checked when given)")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rate", type=float, default=0.0, help="first attempts per second (0: as fast as allowed)")
    ap.add_argument("--hold", type=float, default=300.0, help="seconds before the tool exits on its own")
    ap.add_argument("--reconnect", action="store_true", help="devices come back after losing the relay")
    ap.add_argument("--curve", help="the only ECDHE group to offer (e.g. prime256v1)")
    args = ap.parse_args()
    asyncio.run(Devices(args).run())


if __name__ == "__main__":
    main()
