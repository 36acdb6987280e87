"""TCP (RFC 9293) as pure protocol code: `TcpLayer` takes segments and time, returns segments and events."""
