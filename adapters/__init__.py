"""The effectful layer: asyncio and the OS around the pure protocol cores (`netstack`, `tls`).

The cores take bytes and time and return bytes and events; everything here moves those between them and
the world (sockets, a link, a loop, a terminal) and decides nothing about the protocols. The pattern is
aioquic's `asyncio/` and ocaml-tls's `lwt/`: the engine can be read, tested and fuzzed without them.

`network` (the stack behind one asyncio-shaped object), `stack_driver` (link readiness and timers into the
stack), `tcp_sockets` (TCP events as asyncio Transports), `tls_channel` (a TLS engine over any asyncio stream:
the one TLS adapter, which the appliance, the command-line peers and the benchmarks all run), `tls_cli`
(`python -m adapters.tls_cli server|client`, for interop with real programs).
"""
