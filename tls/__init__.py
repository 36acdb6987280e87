"""A sans-I/O TLS 1.3 and 1.2 engine with its own X.509 validation (`tls.x509`).

`cryptography` supplies the primitives only; the protocol logic is ours. Nothing in this package
touches a socket, a clock or a random source directly: they are passed in (`ServerConfig.random`/`.time`).

    engine = ServerConnection(ServerConfig(chain=(leaf_der, ca_der), key=key, random=os.urandom,
                                           time=lambda: datetime.now(UTC)))
    engine.receive_data(bytes_from_peer)      # b"" means the transport reached end of file
    for event in engine.events(): ...         # HandshakeComplete, ApplicationData, AlertReceived,
                                              # HandshakeFailed (alert + Category), RequestRefused
                                              # (a warning refusal: renegotiation), Closed
    transport.write(engine.data_to_send())

Modules: `record` (framing, protection), `messages`/`extensions`/`codec` (paired parse/serialize),
`keyschedule`, `groups`, `signatures`, `server`/`client` (the engines: handlers and their (state class,
message type) dispatch tables), `server_states`/`client_states` (the states, frozen dataclasses carrying their
data), `states` (the dispatch idiom and the states after the handshake), `connection` (records, alerts and
closing, shared by both), `alerts` (the one category → alert table, the
reasons for its argued entries, and the one warning-level refusal), `peer` (the bridge to `tls.x509`),
`config` (a client validates unless told `NO_VALIDATION_FOR_TESTS`; a server may hold several credentials,
ECDSA and RSA, and picks per ClientHello), `limits` (every bound). The asyncio
adapter and the command-line peers live above this package, in `adapters` (`adapters.tls_channel`,
`python -m adapters.tls_cli server|client`).
"""
