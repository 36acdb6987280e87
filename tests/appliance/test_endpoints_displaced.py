"""A handshake that completes after the gate gave its slot away (review-s26b R3): on 10000 and 10002 the secret
was released and sent on a connection no longer in the table. The TLS channel is a stand-in whose handshake
ends as the real one can: its last flight was still waiting for the peer to take it when the slot was
displaced, and withdrawing wakes only a wait for the peer's bytes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import appliance.endpoints
from adapters.tls_channel import RefusedError
from appliance.admission import Slot
from appliance.config import Limits, Ports
from appliance.endpoints import DISPLACED_UNANSWERED, Endpoints
from outcomes.category import Category
from tests import virtual_time


class _DisplacedDuringTheLastFlight:
    """Completes its handshake, the slot having been given away meanwhile; anything sent is kept."""

    def __init__(self, slot: Slot) -> None:
        self.slot = slot
        self.sent: list[bytes] = []

    async def handshake(self, deadline: float) -> Any:
        self.slot.displaced = True  # the gate's doing, while our final flight drained
        self.slot.withdraw()
        return SimpleNamespace(peer_chain=(b"leaf",), version="TLSv1.2")

    async def send(self, data: bytes) -> None:
        self.sent.append(data)

    async def recv(self, timeout: float) -> bytes:
        return b""

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("port", ["mutual", "reverse"])
def test_a_handshake_completed_after_its_slot_was_given_away_releases_nothing(
        port: str, monkeypatch: pytest.MonkeyPatch) -> None:
    released: list[tuple[object, ...]] = []

    def release(*args: object) -> bytes:
        released.append(args)
        return b"secret"

    identities = SimpleNamespace(is_settled=True, current=SimpleNamespace(server=object(), client=object()))
    engines = SimpleNamespace(server=lambda *a, **k: object(), client=lambda *a, **k: object())
    endpoints = Endpoints(network=None, engines=engines, identities=identities,  # type: ignore[arg-type]
                          vault=SimpleNamespace(release=release), site=None,  # type: ignore[arg-type]
                          limits=Limits(), ports=Ports(), sources=SimpleNamespace(now=lambda: 0.0))  # type: ignore[arg-type]
    slot = Slot("198.51.100.7", 0.0, lambda: None)
    tls = _DisplacedDuringTheLastFlight(slot)
    monkeypatch.setattr(appliance.endpoints, "TlsChannel", lambda engine, channel: tls)

    async def scenario() -> tuple[Category, str]:
        handler = endpoints.mutual if port == "mutual" else endpoints.reverse
        try:
            return await handler(object(), slot)  # type: ignore[arg-type]
        except RefusedError as refused:
            return refused.category, refused.reason

    assert virtual_time.run(scenario()) == (Category.RESOURCE_LIMIT, DISPLACED_UNANSWERED)
    assert released == []
    assert tls.sent == []
