"""The TLS engine as the appliance uses it, and the factories that make one per connection.

Two engines share the sans-I/O interface that `adapters.tls_channel.TlsEngine` names (receive_data / events /
data_to_send / send_application_data / close) and the events of `tls.events`: ours (`tls.server.ServerConnection`,
`tls.client.ClientConnection`), which production always uses, and `StdlibEngine` (appliance.stdlib_tls),
which exists for side-by-side benchmarks and as a reference in tests (DESIGN.md, "appliance").
"""

from __future__ import annotations

from typing import Protocol

from adapters.tls_channel import TlsEngine
from appliance.pki import Identity


class EngineFactory(Protocol):
    name: str

    def server(self, identity: Identity, *, require_client_cert: bool) -> TlsEngine:
        """A server engine presenting `identity`; with `require_client_cert`, peers must authenticate
        with a chain to the boot CA (the engine refuses a handshake without a certificate)."""

    def client(self, identity: Identity) -> TlsEngine:
        """A client engine presenting `identity` and validating the server's chain against the boot CA."""
