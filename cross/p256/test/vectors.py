#!/usr/bin/env python3
"""OpenSSL's side of the differential tests of cross/p256 (python3
cryptography, which is OpenSSL).

  vectors.py gen N       N random cases of each kind, for test_p256:
                           K priv pub            pub = priv G
                           E priv peer secret    ECDH
                           S pub hash sig        ECDSA, hashes of 20, 32, 48
                                                 and 64 bytes; some with
                                                 s replaced by n - s (high S)
  vectors.py check FILE  checks test_p256's output with OpenSSL:
                           V pub hash sig        our signature verifies
                           P priv pub            our key pair: pub = priv G
                           X priv peer secret    our ECDH secret
                         prints "openssl: N passed, M failed"; exit 1 on failure
"""
import os
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed, decode_dss_signature, encode_dss_signature)

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
CURVE = ec.SECP256R1()
HASHES = {20: hashes.SHA1(), 32: hashes.SHA256(), 48: hashes.SHA384(), 64: hashes.SHA512()}


def pub_hex(pub):
    n = pub.public_numbers()
    return "%064x%064x" % (n.x, n.y)


def pub_from_hex(h):
    return ec.EllipticCurvePublicNumbers(int(h[:64], 16), int(h[64:], 16), CURVE).public_key()


def gen(n):
    for i in range(n):
        k = ec.generate_private_key(CURVE)
        print("K %064x %s" % (k.private_numbers().private_value, pub_hex(k.public_key())))
    for i in range(n):
        k = ec.generate_private_key(CURVE)
        peer = ec.generate_private_key(CURVE).public_key()
        print("E %064x %s %s" % (k.private_numbers().private_value, pub_hex(peer),
                                 k.exchange(ec.ECDH(), peer).hex()))
    lens = sorted(HASHES)
    for i in range(n):
        k = ec.generate_private_key(CURVE)
        hlen = lens[i % len(lens)]
        alg = HASHES[hlen]
        h = hashes.Hash(alg)
        h.update(os.urandom(1 + i % 200))
        digest = h.finalize()
        r, s = decode_dss_signature(k.sign(digest, ec.ECDSA(Prehashed(alg))))
        if i % 3 == 0:
            s = N - s       # the other valid s: high S half the time
        print("S %s %s %064x%064x" % (pub_hex(k.public_key()), digest.hex(), r, s))


def check(path):
    passed = failed = 0
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w:
                continue
            ok = False
            try:
                if w[0] == "V":
                    digest = bytes.fromhex(w[2])
                    sig = encode_dss_signature(int(w[3][:64], 16), int(w[3][64:], 16))
                    pub_from_hex(w[1]).verify(sig, digest, ec.ECDSA(Prehashed(HASHES[len(digest)])))
                    ok = True
                elif w[0] == "P":
                    k = ec.derive_private_key(int(w[1], 16), CURVE)
                    ok = pub_hex(k.public_key()) == w[2]
                elif w[0] == "X":
                    k = ec.derive_private_key(int(w[1], 16), CURVE)
                    ok = k.exchange(ec.ECDH(), pub_from_hex(w[2])).hex() == w[3]
                else:
                    continue
            except (InvalidSignature, ValueError) as e:
                ok = False
            if ok:
                passed += 1
            else:
                failed += 1
                print("FAIL openssl: " + line.strip())
    print("openssl: %d passed, %d failed" % (passed, failed))
    return failed == 0 and passed > 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "gen":
        gen(int(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(0 if check(sys.argv[2]) else 1)
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
