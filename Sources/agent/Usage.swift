/// The text of `agent --help`. Keep it true: tests compare it with the options
/// each command accepts.
enum Usage {
    static let version = "0.1.0"

    static let text = """
    agent \(version): reach devices behind NAT through a relay that cannot read the traffic.

    Usage:
      agent --role relay   [--listen ADDR:PORT] [--state DIR] [--cert FILE --key FILE]
                           [--enroll-secret FILE] [--open-enrollment] [--client-ca FILE]
                           [--sni-listen ADDR:PORT] [--metrics ADDR:PORT] [--max-tunnels N]
      agent --role reverse --relay HOST:PORT|https://HOST[:PORT]/PATH (--relay-pin PIN | --ca FILE)
                           [--identity FILE] [--cert FILE] [--token-file FILE | --token TOKEN]
                           [--proxy http://HOST:PORT]
                           [--allow HOST:PORT|HOST:*]...
                           [--authorized-keys FILE] [--authorized-ca FILE] [--authorize-any]
                           [--hostname NAME --sni-target ADDR:PORT]
      agent --role forward --relay ... (--relay-pin PIN | --ca FILE) [--identity FILE] [--cert FILE]
                           [--token-file FILE | --token TOKEN]
                           --listen ADDR:PORT --device ID --target HOST:PORT
                           | --map LISTEN_ADDR:PORT=DEVICE_ID/TARGET_HOST:PORT ...
      agent keygen [--identity FILE]     create a key if missing, print its ID
      agent id [--identity FILE]         print the ID of a key or certificate
      agent token --secret FILE [--valid SECONDS] [--device ID] [--hostname NAME]...
                  [--role device|operator] [--uses N]
                                         print an enrollment token (role: default device;
                                         --uses: keys it may enrol, 1-1000, default 1,
                                         only without --device; hostnames: devices only)
      agent ca init --dir DIR [--name NAME]
                                         create a session CA (DIR/ca.pem, DIR/ca-key.pem)
      agent ca issue --dir DIR --identity FILE --name NAME --role operator|device --out FILE
                     [--hostname NAME]... [--days N]
                                         sign an agent's certificate (present it with --cert FILE);
                                         --authorized-ca admits operator certificates only
      agent selftest                     TLS handshake and data over 127.0.0.1 with this build
      agent --help | --version

    Common options:
      --config FILE          'name = value' lines (long option names without dashes);
                             flags on the command line override it
      --log-level LEVEL      error, warn, info (default) or debug
      --heartbeat SECONDS    ping interval on every tunnel (default 15; a reverse 240: it tells
                             the relay, which then does not ping it)
      --reconnect-max SECONDS
                             cap of the reconnect backoff, agents (default 30)
      --memory-budget BYTES  reverse and forward: memory all stream windows may use at once
                             (suffix KiB, MiB or GiB; default 8MiB reverse, 64MiB forward).
                             Windows start at 64KiB (reverse) or 256KiB and grow on long paths
                             while data moves, up to 512KiB or 1MiB, within the budget

    The relay is checked by --relay-pin (its key), by --ca (its TLS certificate and name), or
    both: behind a front that terminates TLS (nginx on 443), --ca checks the front and the pin
    the relay itself. With an IP address (--relay 192.0.2.1:7443), --ca alone needs a
    certificate that lists that address (IP subjectAltName); with --relay-pin too, in raw mode
    the relay's TLS key must be the pinned key.

    Enrollment tokens: prefer --token-file FILE (one token, mode 0600; 'token-file = FILE' in
    --config) to --token TOKEN, which other users can read in the process list. Not both.

    Defaults: relay --listen 0.0.0.0:7443, --state ./relay-state (its key, certificate and
    registry; the relay prints its pin sha256:<hex> at start), --max-tunnels 100000 (it raises
    its open-file limit to match, or says at start how many it can take); --identity
    ./agent-identity.pem.

    Exit status: 0 done, 1 runtime failure, 2 usage or configuration error.
    Logs: one line per event on stderr: time level event key=value...
    """
}
