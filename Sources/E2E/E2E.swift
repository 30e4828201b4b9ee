/// End-to-end sessions between forward and reverse, sans-IO.
///
/// Inside each multiplexed stream the forward (TLS client) and the reverse (TLS
/// server) run a standard TLS 1.2 session (mbedTLS through Crypto.TLSSession),
/// both authenticated by their identity keys; the relay only moves ciphertext.
/// After the handshake the forward sends the target, the reverse answers, then
/// the stream carries raw bytes (docs/E2E.md).
///
///   Authorization.swift   who a reverse admits (`--authorized-keys`, `--authorized-ca`, `--authorize-any`)
///   PeerCheck.swift       the checks after the handshake, and the proof token they produce
///   TargetRequest.swift   the request/answer format inside the session
///   E2EContext.swift      per-process client/server settings, the forward's session cache
///   E2ESession.swift      one stream's state machine
///
/// Depends on Crypto and Wire only; never touches a socket, a syscall or the clock.
