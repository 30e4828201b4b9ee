/// Multiplexer (see docs/PROTOCOL.md).
