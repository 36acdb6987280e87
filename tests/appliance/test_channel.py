"""The TLS channel adapter against scripted engines: it must end every path in a category, never spin."""

from __future__ import annotations

import asyncio
import socket

import pytest

from appliance.channel import PlainChannel, RefusedError, TlsChannel
from appliance.config import Limits
from outcomes.category import Category
from tls.events import AlertReceived, Closed, Event, HandshakeComplete, HandshakeFailed


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


# -- sending has a deadline too -------------------------------------------------------------------------

SEND_TIMEOUT = 0.2
QUICK = Limits(send_timeout=SEND_TIMEOUT)


class StalledWriter(FakeWriter):
    """A peer that never reads: drain() and wait_closed() never complete; counts what reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.aborted = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    async def drain(self) -> None:
        await asyncio.get_running_loop().create_future()

    async def wait_closed(self) -> None:
        await asyncio.get_running_loop().create_future()

    def abort(self) -> None:
        self.aborted += 1


class ClosingEngine(ScriptedEngine):
    """Has a close_notify to send once closed, so closing goes through the send path."""

    def __init__(self) -> None:
        super().__init__([])
        self.outgoing = b""

    def data_to_send(self) -> bytes:
        out, self.outgoing = self.outgoing, b""
        return out

    def send_application_data(self, data: bytes) -> None:
        self.outgoing += data

    def close(self) -> None:
        super().close()
        self.outgoing += b"close_notify"


def _timed(coroutine_factory: object) -> tuple[float, BaseException | None]:
    """Run the coroutine under a generous outer bound; return how long it took and what it raised."""
    async def main() -> tuple[float, BaseException | None]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert callable(coroutine_factory)
        try:
            await asyncio.wait_for(coroutine_factory(), 10 * SEND_TIMEOUT + 5)
        except RefusedError as refused:
            return loop.time() - start, refused
        return loop.time() - start, None

    return asyncio.run(main())


def _plain(writer: StalledWriter) -> PlainChannel:
    return PlainChannel(asyncio.StreamReader(), writer, QUICK)  # type: ignore[arg-type]


def test_send_to_a_peer_that_never_reads_times_out_and_aborts() -> None:
    writer = StalledWriter()
    elapsed, error = _timed(lambda: _plain(writer).send(b"response"))
    assert isinstance(error, RefusedError)
    assert error.category is Category.TIMEOUT
    assert SEND_TIMEOUT <= elapsed < SEND_TIMEOUT + 2
    assert writer.written == len(b"response")
    assert writer.aborted == 1


def test_close_towards_a_peer_that_never_reads_is_bounded() -> None:
    writer = StalledWriter()
    elapsed, error = _timed(lambda: _plain(writer).close())
    assert error is None
    assert SEND_TIMEOUT <= elapsed < SEND_TIMEOUT + 2
    assert writer.aborted == 1


def test_tls_send_and_close_towards_a_peer_that_never_reads() -> None:
    writer = StalledWriter()
    errors: list[RefusedError] = []

    async def send_then_close() -> None:
        tls = TlsChannel(ClosingEngine(), _plain(writer))
        try:
            await tls.send(b"secret")
        except RefusedError as refused:
            errors.append(refused)
        await tls.close()  # close_notify and the close itself: each bounded

    elapsed, error = _timed(send_then_close)
    assert error is None
    assert [e.category for e in errors] == [Category.TIMEOUT]
    assert elapsed < 3 * SEND_TIMEOUT + 2
    assert writer.written == len(b"secret") + len(b"close_notify")
    assert writer.aborted >= 1


def test_tls_close_alone_is_bounded_when_the_peer_never_reads() -> None:
    writer = StalledWriter()
    elapsed, error = _timed(lambda: TlsChannel(ClosingEngine(), _plain(writer)).close())
    assert error is None
    assert SEND_TIMEOUT <= elapsed < 2 * SEND_TIMEOUT + 2
    assert writer.written == len(b"close_notify")
    assert writer.aborted >= 1


def test_send_over_kernel_sockets_to_a_client_that_never_reads() -> None:
    """Real sockets: the client shrinks its receive buffer and never reads; the server's send buffer is
    shrunk too (no autotuning), so a few MiB cannot all be queued and drain() would wait forever."""
    outcome: list[BaseException | None] = []

    async def main() -> float:
        loop = asyncio.get_running_loop()
        finished = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            plain = PlainChannel(reader, writer, QUICK)
            try:
                await plain.send(b"x" * (4 << 20))
                outcome.append(None)
            except RefusedError as refused:
                outcome.append(refused)
            await plain.close()
            finished.set()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        client.setblocking(False)
        try:
            start = loop.time()
            await loop.sock_connect(client, ("127.0.0.1", port))
            await asyncio.wait_for(finished.wait(), 10 * SEND_TIMEOUT + 5)
            return loop.time() - start
        finally:
            client.close()
            server.close()
            await server.wait_closed()

    elapsed = asyncio.run(main())
    assert len(outcome) == 1
    assert isinstance(outcome[0], RefusedError)
    assert outcome[0].category is Category.TIMEOUT
    assert elapsed >= SEND_TIMEOUT  # refused because the client stalled for the whole timeout, not early
