# Sourced by cross/chachapoly/test/run.sh (and cross/p256's tests): the
# server side of their interoperability tests (TLS 1.3), OpenSSL's `s_server -rev`
# (each line it receives goes back reversed) on 127.0.0.1 with a throwaway
# certificate. The client is client.c.
#
#   interop_cert DIR          DIR/key.pem, DIR/cert.pem: P-256, CN=localhost, 2 days
#   interop_start DIR ARG...  starts s_server for one connection with the extra
#                             ARGs (cipher, groups); sets $server (its pid) and
#                             $port (empty if it did not start within 5 s; its
#                             output is in DIR/server.out)
#   interop_stop              stops it (callers also kill $server on exit)

server=""
port=""

interop_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -days 2 -keyout "$1/key.pem" -out "$1/cert.pem" >/dev/null 2>&1
}

interop_start() {
  local dir=$1 i
  shift
  : >"$dir/server.out"
  timeout 120 openssl s_server -accept 127.0.0.1:0 -naccept 1 -cert "$dir/cert.pem" \
    -key "$dir/key.pem" -tls1_3 -rev "$@" >"$dir/server.out" 2>&1 &
  server=$!
  port=""
  for i in $(seq 100); do
    port=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/server.out")
    if [ -n "$port" ]; then break; fi
    sleep 0.05
  done
}

interop_stop() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
}
