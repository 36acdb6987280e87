"""The TLS channel adapter against scripted engines: it must end every path in a category, never spin."""

from __future__ import annotations

import asyncio

import pytest

from appliance.channel import PlainChannel, RefusedError, TlsChannel
from appliance.config import Limits
from tls.events import AlertReceived, Closed, Event, HandshakeComplete, HandshakeFailed
from tls.failure import Category


class ScriptedEngine:
    """Answers each receive_data with the next scripted list of events; counts EOFs it was given."""

    def __init__(self, script: list[list[Event]]) -> None:
        self.script = script
        self.pending: list[Event] = []
        self.received: list[bytes] = []

    def receive_data(self, data: bytes) -> None:
        self.received.append(data)
        if self.script:
            self.pending += self.script.pop(0)

    def events(self) -> list[Event]:
        out, self.pending = self.pending, []
        return out

    def data_to_send(self) -> bytes:
        return b""

    def send_application_data(self, data: bytes) -> None:
        raise AssertionError("not used")

    def close(self) -> None:
        self.pending.append(Closed(clean=True))


class FakeWriter:
    def __init__(self) -> None:
        self.transport = self

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass

    def abort(self) -> None:
        pass


def _channel(engine: ScriptedEngine, incoming: bytes, eof: bool = True) -> TlsChannel:
    reader = asyncio.StreamReader()
    reader.feed_data(incoming)
    if eof:
        reader.feed_eof()
    plain = PlainChannel(reader, FakeWriter(), Limits())  # type: ignore[arg-type]
    return TlsChannel(engine, plain)


DONE = HandshakeComplete("TLSv1.3", "TLS_AES_128_GCM_SHA256", "x25519", (b"leaf",), True)


def test_handshake_completes() -> None:
    async def main() -> HandshakeComplete:
        channel = _channel(ScriptedEngine([[DONE]]), b"hello")
        return await channel.handshake(asyncio.get_running_loop().time() + 5)

    assert asyncio.run(main()) == DONE


@pytest.mark.parametrize(
    ("script", "category"),
    [
        ([[HandshakeFailed(50, Category.DECODE_ERROR, "bad")]], Category.DECODE_ERROR),
        ([[AlertReceived(2, 48), Closed(clean=False)]], Category.PEER_ALERT),
        ([[], []], Category.CONNECTION_RESET),  # EOF the engine says nothing about: no busy loop
    ],
)
def test_handshake_refusals(script: list[list[Event]], category: Category) -> None:
    engine = ScriptedEngine(script)

    async def main() -> None:
        await _channel(engine, b"x").handshake(asyncio.get_running_loop().time() + 5)

    with pytest.raises(RefusedError) as info:
        asyncio.run(main())
    assert info.value.category is category
    assert len(engine.received) <= 2


def test_handshake_deadline() -> None:
    async def main() -> None:
        channel = _channel(ScriptedEngine([[]]), b"x", eof=False)
        await channel.handshake(asyncio.get_running_loop().time() + 0.2)

    with pytest.raises(RefusedError) as info:
        asyncio.run(main())
    assert info.value.category is Category.TIMEOUT


def test_recv_after_silent_eof_returns_empty() -> None:
    async def main() -> bytes:
        channel = _channel(ScriptedEngine([[DONE], []]), b"x")
        await channel.handshake(asyncio.get_running_loop().time() + 5)
        return await channel.recv(1.0)

    assert asyncio.run(main()) == b""
