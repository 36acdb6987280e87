"""The TLS channel adapter: against scripted engines it must end every path in a category and never spin; with
real engines it interoperates over kernel sockets with asyncio's `ssl`, and over our own netstack."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from adapters.tls_channel import PlainChannel, RefusedError, TlsChannel, connect_tls, start_tls
from netstack.link.memory import Impairment
from outcomes.category import Category
from tests import virtual_time
from tests.netstack.builders import two_networks
from tests.tls.pki import client_config, client_leaf, server_config, server_leaf
from tests.tls.sslpeer import client_context, server_context
from tls.alerts import AlertDescription
from tls.client import ClientConnection
from tls.config import ClientAuthMode
from tls.events import AlertReceived, Closed, Event, HandshakeComplete, HandshakeFailed
from tls.server import ServerConnection

READ_CHUNK = 16384
LINGER: dict[str, Any] = {"linger_seconds": 30.0, "linger_bytes": 1 << 20}  # bounds of the lingering close


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

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0  # the kernel took every byte at once

    def can_write_eof(self) -> bool:
        return False  # so close() does not linger: these tests are about sending and its bounds

    def abort(self) -> None:
        pass


def _channel(engine: ScriptedEngine, incoming: bytes, eof: bool = True) -> TlsChannel:
    reader = asyncio.StreamReader()
    reader.feed_data(incoming)
    if eof:
        reader.feed_eof()
    plain = PlainChannel(reader, FakeWriter(), read_chunk=READ_CHUNK, send_timeout=5.0, **LINGER)  # type: ignore[arg-type]
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


class StalledWriter(FakeWriter):
    """A peer that never reads: drain() and wait_closed() never complete; counts what reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.aborted = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_write_buffer_size(self) -> int:
        return self.written  # nothing is ever taken

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
    """Run the coroutine on the virtual clock under a generous outer bound; return how long it took (virtual
    seconds: a wait is exactly its timer's delay) and what it raised."""
    async def main() -> tuple[float, BaseException | None]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert callable(coroutine_factory)
        try:
            await asyncio.wait_for(coroutine_factory(), 10 * SEND_TIMEOUT + 5)
        except RefusedError as refused:
            return loop.time() - start, refused
        return loop.time() - start, None

    return virtual_time.run(main())


def _plain(writer: FakeWriter) -> PlainChannel:
    return PlainChannel(asyncio.StreamReader(), writer, read_chunk=READ_CHUNK, send_timeout=SEND_TIMEOUT, **LINGER)  # type: ignore[arg-type]


def test_send_to_a_peer_that_never_reads_times_out_and_aborts() -> None:
    writer = StalledWriter()
    elapsed, error = _timed(lambda: _plain(writer).send(b"response"))
    assert isinstance(error, RefusedError)
    assert error.category is Category.TIMEOUT
    assert SEND_TIMEOUT <= elapsed < SEND_TIMEOUT + 2
    assert writer.written == len(b"response")
    assert writer.aborted == 1


class CountingWriter(FakeWriter):
    """Counts drains; `buffered` is what the transport still holds after a write, `closing` its state."""

    def __init__(self, *, buffered: int, closing: bool = False) -> None:
        super().__init__()
        self.buffered = buffered
        self.closing = closing
        self.drains = 0

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing

    async def drain(self) -> None:
        self.drains += 1
        if self.closing:
            raise ConnectionResetError("Connection lost")  # what StreamWriter.drain raises once the connection is gone


def _send_through(writer: CountingWriter) -> RefusedError | None:
    async def main() -> RefusedError | None:
        try:
            await _plain(writer).send(b"response")
        except RefusedError as refused:
            return refused
        return None

    return asyncio.run(main())


def test_send_the_transport_took_whole_does_not_wait_for_a_drain() -> None:
    writer = CountingWriter(buffered=0)
    assert _send_through(writer) is None
    assert writer.drains == 0  # drain would have returned at once: no deadline armed, no await


def test_send_with_bytes_still_buffered_waits_for_the_drain() -> None:
    writer = CountingWriter(buffered=100)
    assert _send_through(writer) is None
    assert writer.drains == 1


def test_send_on_a_closing_transport_still_learns_the_connection_is_gone() -> None:
    writer = CountingWriter(buffered=0, closing=True)  # a dropped write leaves nothing buffered, yet it was lost
    refused = _send_through(writer)
    assert refused is not None
    assert refused.category is Category.CONNECTION_RESET
    assert writer.drains == 1


def test_send_after_the_reader_was_given_an_error_still_drains_and_refuses() -> None:
    """The service withdraws an idle slot by setting an error on its reader; a send after that must learn it
    from drain(), even though a kernel socket takes the bytes at once (nothing buffered, not closing)."""
    async def main() -> tuple[RefusedError | None, bool]:
        accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

        async def keep(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accepted.put(writer)

        server = await asyncio.start_server(keep, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        peer = await accepted.get()
        plain = PlainChannel(reader, writer, read_chunk=READ_CHUNK, send_timeout=5.0, **LINGER)
        reader.set_exception(ConnectionAbortedError("slot withdrawn"))
        refused: RefusedError | None = None
        try:
            await plain.send(b"HTTP/1.1 200 OK\r\n\r\n")
        except RefusedError as error:
            refused = error
        took_it_all = not writer.transport.get_write_buffer_size()
        writer.transport.abort()
        peer.transport.abort()
        server.close()
        await server.wait_closed()
        return refused, took_it_all

    refused, took_it_all = asyncio.run(main())
    assert took_it_all  # the case the shortcut is for, but for the reader's error
    assert refused is not None
    assert refused.category is Category.CONNECTION_RESET


def test_recv_maps_a_reset_and_lets_a_cancellation_through() -> None:
    async def main() -> tuple[RefusedError | None, bool]:
        reset_reader = asyncio.StreamReader()
        reset_reader.set_exception(ConnectionResetError("reset by peer"))
        reset = PlainChannel(reset_reader, FakeWriter(), read_chunk=READ_CHUNK, send_timeout=5.0,  # type: ignore[arg-type]
                             **LINGER)
        refused: RefusedError | None = None
        try:
            await reset.recv(5.0)
        except RefusedError as error:
            refused = error
        waiting = PlainChannel(asyncio.StreamReader(), FakeWriter(), read_chunk=READ_CHUNK,  # type: ignore[arg-type]
                               send_timeout=5.0, **LINGER)
        task = asyncio.create_task(waiting.recv(30.0))
        await asyncio.sleep(0)  # the read is waiting
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return refused, True  # the cancellation, not a refusal nor a timeout
        return refused, False

    refused, cancelled = asyncio.run(main())
    assert refused is not None
    assert refused.category is Category.CONNECTION_RESET
    assert cancelled


def test_a_transport_timeout_is_a_timeout_not_a_reset() -> None:
    """Our TCP ends a connection whose retransmissions or idle time ran out with TimeoutError (an OSError):
    recv reports it as the timeout it is."""
    async def main() -> RefusedError:
        reader = asyncio.StreamReader()
        reader.set_exception(TimeoutError("TCP connection closed: timeout"))
        plain = PlainChannel(reader, FakeWriter(), read_chunk=READ_CHUNK, send_timeout=5.0, **LINGER)  # type: ignore[arg-type]
        with pytest.raises(RefusedError) as info:
            await plain.recv(5.0)
        return info.value

    assert asyncio.run(main()).category is Category.TIMEOUT


def test_a_recv_timeout_leaves_the_task_as_it_found_it() -> None:
    """The read's timer cancels the task to end the wait; the timeout takes that cancellation back, so the
    task can go on awaiting (a close after a refusal does) and an outer asyncio.timeout still works."""
    async def main() -> tuple[Category, int, bool]:
        plain = PlainChannel(asyncio.StreamReader(), FakeWriter(), read_chunk=READ_CHUNK,  # type: ignore[arg-type]
                             send_timeout=5.0, **LINGER)
        with pytest.raises(RefusedError) as info:
            await plain.recv(0.05)
        task = asyncio.current_task()
        assert task is not None
        await asyncio.sleep(0.01)  # not cancelled again
        outer_fired = False
        try:
            async with asyncio.timeout(0.05):
                await plain.recv(30.0)
        except TimeoutError:
            outer_fired = True  # the outer bound's cancellation passed through the read as its own
        return info.value.category, task.cancelling(), outer_fired

    assert virtual_time.run(main()) == (Category.TIMEOUT, 0, True)


def test_a_task_with_a_cancellation_in_flight_still_gets_its_read_timeout() -> None:
    """A task already being cancelled (a connection's close running in the `finally` of a cancelled handler,
    at shutdown) still has its read bounded and told as a timeout, and the earlier cancellation stays where
    it was. The timer's own cancellation is told apart by the count when the read began, not by a count of
    zero (Python 3.11's asyncio.timeout would raise CancelledError here)."""
    async def main() -> tuple[Category, int]:
        plain = PlainChannel(asyncio.StreamReader(), FakeWriter(), read_chunk=READ_CHUNK,  # type: ignore[arg-type]
                             send_timeout=5.0, **LINGER)
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, not uncancelled: the count stays at 1,
            await asyncio.sleep(0)  # as in a finally during a cancellation
        with pytest.raises(RefusedError) as info:
            await plain.recv(1.0)
        return info.value.category, task.cancelling()

    assert virtual_time.run(main()) == (Category.TIMEOUT, 1)


def test_a_cancellation_beside_the_read_timers_is_not_taken_for_a_timeout() -> None:
    """The timer fires and the task is cancelled from outside in the same turn (on the virtual clock both are
    due at the same instant): the cancellation wins, whichever of the two callbacks ran first."""
    async def main() -> bool:
        plain = PlainChannel(asyncio.StreamReader(), FakeWriter(), read_chunk=READ_CHUNK,  # type: ignore[arg-type]
                             send_timeout=5.0, **LINGER)
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(plain.recv(0.05))
        await asyncio.sleep(0)  # the read is waiting, its timer armed for 0.05 s from now
        loop.call_at(loop.time() + 0.05, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            return True
        except RefusedError:
            return False
        return False

    assert virtual_time.run(main())


def test_close_towards_a_peer_that_never_reads_is_bounded() -> None:
    writer = StalledWriter()
    writer.write(b"response")  # still queued when the close comes: the close must flush it, within its bound
    elapsed, error = _timed(lambda: _plain(writer).close())
    assert error is None
    assert elapsed == SEND_TIMEOUT  # the flush waited its bound, then gave up
    assert writer.aborted == 1


def test_a_stalled_send_and_close_in_a_task_being_cancelled_still_time_out_and_abort() -> None:
    """At shutdown a handler's close runs in its `finally` with the cancellation in flight: a peer that stalls
    there must still be bounded by the send timeout and aborted, and the close must return (so the handler
    records the outcome and gives back its slot), not turn the timeout into CancelledError."""
    async def main() -> tuple[Category, int, int, float, int]:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, not uncancelled: the count stays at 1
            await asyncio.sleep(0)
        sending = StalledWriter()
        with pytest.raises(RefusedError) as info:
            await _plain(sending).send(b"response")
        closing = StalledWriter()
        closing.write(b"response")  # still queued when the close comes
        start = loop.time()
        await _plain(closing).close()
        return info.value.category, sending.aborted, closing.aborted, loop.time() - start, task.cancelling()

    assert virtual_time.run(main()) == (Category.TIMEOUT, 1, 1, SEND_TIMEOUT, 1)


def test_a_cancellation_during_a_stalled_send_or_close_passes_through() -> None:
    """Cancelled from outside while it waits, a send or a close ends with CancelledError, not a timeout."""
    async def main() -> tuple[bool, bool, int]:
        sending, closing = StalledWriter(), StalledWriter()
        closing.write(b"response")
        outcomes = []
        for wait in (_plain(sending).send(b"response"), _plain(closing).close()):
            task = asyncio.create_task(wait)
            await asyncio.sleep(SEND_TIMEOUT / 2)  # waiting, its deadline armed
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                outcomes.append(True)
            except RefusedError:
                outcomes.append(False)
        return outcomes[0], outcomes[1], sending.aborted + closing.aborted

    assert virtual_time.run(main()) == (True, True, 0)


class UnflushedWriter(StalledWriter):
    """Everything written was taken at once (nothing buffered), but the close's callback never comes
    (wait_closed never returns): a close that waited for it would take the whole send timeout and then abort."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closed += 1


def test_close_with_nothing_left_to_flush_does_not_wait() -> None:
    writer = UnflushedWriter()
    elapsed, error = _timed(lambda: _plain(writer).close())
    assert error is None
    assert elapsed == 0.0
    assert (writer.closed, writer.aborted) == (1, 0)


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
            plain = PlainChannel(reader, writer, read_chunk=READ_CHUNK, send_timeout=SEND_TIMEOUT, **LINGER)
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


# -- real engines and real peers: kernel sockets against asyncio's ssl, and our own netstack ------------

PAYLOAD = os.urandom(3 * 2**20)
CHUNK = 1 << 16
TIMEOUT = 30.0


async def _echo_streams(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _echo_channel(tls: TlsChannel) -> None:
    with contextlib.suppress(RefusedError):
        while data := await tls.recv(TIMEOUT):
            await tls.send(data)
    await tls.close()


def _echo_server(handshakes: list[HandshakeComplete]) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                                                  Awaitable[None]]:
    """A connection callback: our server engine (client certificate required) over the stream, each
    handshake's completion recorded in `handshakes`, then an echo until the peer closes."""
    config = server_config(client_auth=ClientAuthMode.REQUIRED)

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tls, done = await start_tls(reader, writer, ServerConnection(config), read_chunk=CHUNK,
                                    send_timeout=TIMEOUT, handshake_timeout=TIMEOUT, **LINGER)
        handshakes.append(done)
        await _echo_channel(tls)

    return connected


async def _exchange(tls: TlsChannel, payload: bytes) -> bytes:
    """Send `payload` while reading the echo (a peer that echoes as it reads would stall a send-then-read)."""
    received = bytearray()

    async def send_all() -> None:
        for offset in range(0, len(payload), CHUNK):
            await tls.send(payload[offset:offset + CHUNK])

    sender = asyncio.create_task(send_all())
    while len(received) < len(payload):
        chunk = await tls.recv(TIMEOUT)
        assert chunk, "the echo ended early"
        received += chunk
    await sender
    return bytes(received)


def test_our_client_over_kernel_sockets_to_an_ssl_server() -> None:
    async def main() -> None:
        server = await asyncio.start_server(_echo_streams, "127.0.0.1", 0,
                                            ssl=server_context(server_leaf(), client_ca=True))
        port = server.sockets[0].getsockname()[1]
        async with server:
            tls, done = await connect_tls("127.0.0.1", port, ClientConnection(client_config(cert_kind="p256")),
                                          read_chunk=CHUNK, send_timeout=TIMEOUT, handshake_timeout=TIMEOUT, **LINGER)
            assert done.version == "TLSv1.3"
            assert done.peer_validated
            assert await _exchange(tls, PAYLOAD) == PAYLOAD
            await tls.close()
            assert tls.ended_by is None

    asyncio.run(main())


def test_an_ssl_client_over_kernel_sockets_to_our_server() -> None:
    handshakes: list[HandshakeComplete] = []

    async def main() -> None:
        server = await asyncio.start_server(_echo_server(handshakes), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_context(leaf=client_leaf()), server_hostname="localhost")
            writer.write(PAYLOAD)
            received = await asyncio.wait_for(reader.readexactly(len(PAYLOAD)), TIMEOUT)
            assert received == PAYLOAD
            writer.close()

    asyncio.run(main())
    assert [done.peer_validated for done in handshakes] == [True]


def test_a_handshake_that_never_completes_times_out_and_ends_with_close_notify() -> None:
    refusals: list[RefusedError] = []

    async def main() -> bytes:
        ended = asyncio.Event()

        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await start_tls(reader, writer, ServerConnection(server_config()), read_chunk=CHUNK,
                                send_timeout=TIMEOUT, handshake_timeout=0.05, **LINGER)
            except RefusedError as refused:
                refusals.append(refused)
            ended.set()

        server = await asyncio.start_server(connected, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x16\x03\x01")  # a record header that never completes
            answer = await asyncio.wait_for(reader.read(), TIMEOUT)  # the whole answer, up to end of stream
            writer.close()
            await asyncio.wait_for(ended.wait(), TIMEOUT)  # the server's lingering close ends on our close
            return answer

    assert asyncio.run(main()) == b"\x15\x03\x03\x00\x02\x01\x00"  # close_notify, then end of stream
    assert [r.category for r in refusals] == [Category.TIMEOUT]


def test_a_refused_handshake_raises_with_the_category_and_the_alert_we_sent() -> None:
    async def main() -> RefusedError:
        server = await asyncio.start_server(_echo_streams, "127.0.0.1", 0,
                                            ssl=server_context(server_leaf(), version=ssl.TLSVersion.TLSv1_3))
        port = server.sockets[0].getsockname()[1]
        async with server:
            with pytest.raises(RefusedError) as info:
                await connect_tls("127.0.0.1", port, ClientConnection(client_config(server_name="wrong.example")),
                                  read_chunk=CHUNK, send_timeout=TIMEOUT, handshake_timeout=TIMEOUT, **LINGER)
            return info.value

    refused = asyncio.run(main())
    assert refused.category is Category.NAME_MISMATCH
    assert refused.alert == AlertDescription.BAD_CERTIFICATE


def test_a_refusal_by_the_peer_after_our_handshake_is_reported_by_ended_by() -> None:
    """TLS 1.3: the client's handshake completes before the server has judged its certificate; the
    server's refusal arrives afterwards as an alert, and `ended_by` names it."""

    async def main() -> TlsChannel:
        config = server_config(client_auth=ClientAuthMode.REQUIRED)

        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(RefusedError):
                await start_tls(reader, writer, ServerConnection(config), read_chunk=CHUNK,
                                send_timeout=TIMEOUT, handshake_timeout=TIMEOUT, **LINGER)

        server = await asyncio.start_server(connected, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            tls, _ = await connect_tls("127.0.0.1", port, ClientConnection(client_config()),  # no certificate
                                       read_chunk=CHUNK, send_timeout=TIMEOUT, handshake_timeout=TIMEOUT, **LINGER)
            assert await tls.recv(TIMEOUT) == b""
            await tls.close()
            return tls

    ended_by = asyncio.run(main()).ended_by
    assert ended_by is not None
    assert ended_by.category is Category.PEER_ALERT
    assert ended_by.peer_alert == AlertDescription.CERTIFICATE_REQUIRED


def test_both_ends_over_our_netstack_on_the_in_memory_link() -> None:
    """Over our own TCP's streams, with loss and reordering on the link: mutual TLS 1.3, a megabyte each
    way, then a clean close."""
    payload = os.urandom(2**20)
    handshakes: list[HandshakeComplete] = []

    async def main() -> bytes:
        ours_a, ours_b = await two_networks(Impairment(loss=0.02, reorder=0.02))
        try:
            await ours_b.start_stream_server(443, _echo_server(handshakes))
            reader, writer = await ours_a.open_stream("10.9.0.2", 443)
            tls, done = await start_tls(reader, writer, ClientConnection(client_config(cert_kind="p256")),
                                        read_chunk=CHUNK, send_timeout=TIMEOUT, handshake_timeout=TIMEOUT, **LINGER)
            assert done.version == "TLSv1.3"
            received = await _exchange(tls, payload)
            await tls.close()
            assert tls.ended_by is None
            return received
        finally:
            ours_a.close()
            ours_b.close()

    assert asyncio.run(asyncio.wait_for(main(), 90)) == payload
    assert [done.peer_validated for done in handshakes] == [True]


def test_a_peer_trickling_a_record_cannot_stretch_the_receive_timeout() -> None:
    """One byte of an unfinished record every second: the engine never has application data, and each
    read returns in time, but the receive as a whole must end at its timeout (on the virtual clock)."""
    engine = ScriptedEngine([[] for _ in range(100)])  # swallows every byte, never completes a record

    async def main() -> tuple[float, RefusedError | None]:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        channel = TlsChannel(engine, PlainChannel(reader, FakeWriter(), read_chunk=READ_CHUNK,  # type: ignore[arg-type]
                                                  send_timeout=5.0, **LINGER))

        async def trickle() -> None:
            for _ in range(60):
                await asyncio.sleep(1.0)
                reader.feed_data(b"\x00")

        feeder = asyncio.create_task(trickle())
        started = loop.time()
        try:
            await channel.recv(5.0)
        except RefusedError as refused:
            return loop.time() - started, refused
        finally:
            feeder.cancel()
        return loop.time() - started, None

    elapsed, refused = virtual_time.run(main())
    assert refused is not None
    assert refused.category is Category.TIMEOUT
    assert elapsed <= 5.0 + 1e-6
    assert len(engine.received) <= 6  # the bytes that came within the timeout, no more
