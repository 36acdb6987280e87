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
from tls.events import Event, RequestRefused


class EngineFactory(Protocol):
    name: str

    def server(self, identity: Identity, *, require_client_cert: bool) -> TlsEngine:
        """A server engine presenting `identity`; with `require_client_cert`, peers must authenticate
        with a chain to the boot CA (the engine refuses a handshake without a certificate)."""

    def client(self, identity: Identity) -> TlsEngine:
        """A client engine presenting `identity` and validating the server's chain against the boot CA."""



class WatchedEngine:
    """An engine as the channel sees it, remembering the first request it refused with a warning and went on
    (`RequestRefused`: a TLS 1.2 renegotiation). Why: the channel acts only on events that end or advance the
    connection, so without this a renegotiation attempt would leave no trace in the connection's outcome."""

    def __init__(self, engine: TlsEngine) -> None:
        self._engine = engine
        self.refused: RequestRefused | None = None

    def receive_data(self, data: bytes) -> None:
        self._engine.receive_data(data)

    def events(self) -> list[Event]:
        events = self._engine.events()
        if self.refused is None:
            self.refused = next((e for e in events if isinstance(e, RequestRefused)), None)
        return events

    def data_to_send(self) -> bytes:
        return self._engine.data_to_send()

    def send_application_data(self, data: bytes) -> None:
        self._engine.send_application_data(data)

    def close(self) -> None:
        self._engine.close()
