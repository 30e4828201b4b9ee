#!/usr/bin/env bash
# Regenerates the seed corpora in Fuzz/corpus/ (`make fuzz-seeds`; the output is
# committed, so run this only when a format changes).
#
#   - frame, mux-ops, mux-rx, token, options, formats: each target writes its own
#     seeds with the real encoders (FUZZ_WRITE_SEEDS=DIR fuzz-<t>, see fuzzSeeds()
#     in Fuzz/Targets/<t>.swift);
#   - token: plus a token printed by `agent token` with the target's fixed secret;
#   - identity: keys and certificates from `agent keygen` and openssl.
#
# Usage: Fuzz/make-seeds.sh BUILD_DIR AGENT_BIN TARGET...
set -euo pipefail
build=$1 agent=$2
shift 2
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for t in "$@"; do
  mkdir -p "Fuzz/corpus/$t"
  FUZZ_WRITE_SEEDS="Fuzz/corpus/$t" "$build/fuzz-$t" >/dev/null 2>&1
done

case " $* " in *" token "*)
  # The secret and device of Fuzz/Targets/token.swift.
  printf '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n' >"$tmp/secret"
  chmod 600 "$tmp/secret"
  device=$(python3 -c 'import base64; print(base64.b32encode(bytes(range(1, 21))).decode().lower())')
  { printf '\0'; "$agent" token --secret "$tmp/secret" --valid 315360000 --device "$device" \
      --hostname cam.example --hostname door | tr -d '\n'; } >Fuzz/corpus/token/agent-token-cli
  { printf '\0'; "$agent" token --secret "$tmp/secret" | tr -d '\n'; } >Fuzz/corpus/token/agent-token-cli-plain
esac

case " $* " in *" identity "*)
  d=Fuzz/corpus/identity
  mkdir -p "$d"
  "$agent" keygen --identity "$tmp/agent.pem" >/dev/null
  cp "$tmp/agent.pem" "$d/agent-keygen.pem"
  # The same key as DER (SEC1) and PKCS#8, a self-signed certificate for it.
  openssl ec -in "$tmp/agent.pem" -outform DER -out "$d/agent-key.der" 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in "$tmp/agent.pem" -out "$d/agent-key-pkcs8.pem"
  openssl req -new -x509 -key "$tmp/agent.pem" -subj /CN=agent -days 3650 -out "$d/agent-selfsigned.pem" 2>/dev/null
  openssl x509 -in "$d/agent-selfsigned.pem" -outform DER -out "$d/agent-selfsigned.der"
  # A CA-issued chain (leaf first, then the CA), as `--cert` takes it.
  openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ca.pem"
  openssl req -new -x509 -key "$tmp/ca.pem" -subj /CN=session-ca -days 3650 \
    -addext basicConstraints=critical,CA:true -addext keyUsage=keyCertSign -out "$tmp/ca-cert.pem" 2>/dev/null
  openssl req -new -key "$tmp/agent.pem" -subj /CN=device-1 -out "$tmp/agent.csr" 2>/dev/null
  openssl x509 -req -in "$tmp/agent.csr" -CA "$tmp/ca-cert.pem" -CAkey "$tmp/ca.pem" -CAcreateserial \
    -days 3650 -out "$tmp/leaf.pem" 2>/dev/null
  cat "$tmp/leaf.pem" "$tmp/ca-cert.pem" >"$d/chain.pem"
  # Keys agent refuses: P-384, RSA, an encrypted PEM.
  openssl ecparam -name secp384r1 -genkey -noout -out "$d/p384.pem"
  openssl genrsa -out "$tmp/rsa.pem" 1024 2>/dev/null
  cp "$tmp/rsa.pem" "$d/rsa1024.pem"
  openssl ec -in "$tmp/agent.pem" -aes128 -passout pass:x -out "$d/encrypted.pem" 2>/dev/null
  # A public key alone (SPKI, DER).
  openssl ec -in "$tmp/agent.pem" -pubout -outform DER -out "$d/agent-spki.der" 2>/dev/null
esac
case " $* " in *" preamble "*)
  # Real ClientHellos (Python's OpenSSL), with and without a server name.
  python3 - Fuzz/corpus/preamble <<'PY'
import ssl, sys
def hello(name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    s = ctx.wrap_bio(i, o, server_hostname=name)
    try:
        s.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return o.read()
for fn, name in (("clienthello-sni", "cam.example"), ("clienthello-nosni", None)):
    open(sys.argv[1] + "/" + fn, "wb").write(b"\x01" + hello(name))
PY
esac
echo "seeds written: $(for t in "$@"; do printf '%s=%s ' "$t" "$(ls Fuzz/corpus/$t | wc -l)"; done)"
