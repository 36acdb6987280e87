"""Run two engines against each other in memory."""

from __future__ import annotations

from tls.client import ClientConnection
from tls.events import Event
from tls.server import ServerConnection


def pump(client: ClientConnection, server: ServerConnection, rounds: int = 20, chunk: int | None = None,
         ) -> tuple[list[Event], list[Event]]:
    """Shuttle bytes both ways until quiet; returns (client events, server events). `chunk` splits every
    delivery into pieces of that many bytes, to exercise reassembly."""
    client_events: list[Event] = []
    server_events: list[Event] = []
    for _ in range(rounds):
        to_server = client.data_to_send()
        if to_server:
            _deliver(server, to_server, chunk)
        server_events += server.events()
        to_client = server.data_to_send()
        if to_client:
            _deliver(client, to_client, chunk)
        client_events += client.events()
        if not to_server and not to_client:
            break
    return client_events, server_events


def _deliver(engine: ClientConnection | ServerConnection, data: bytes, chunk: int | None) -> None:
    if chunk is None:
        engine.receive_data(data)
        return
    for start in range(0, len(data), chunk):
        engine.receive_data(data[start : start + chunk])
