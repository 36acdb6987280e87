"""The lingering close (issue 15, "alerts are lost"): a peer that is still sending when we refuse it must still
read our alert, on the kernel's TCP and on ours, and the lingering is bounded in bytes and in time.

Why the peer loses it otherwise: a TCP closed with the peer's bytes unread in its receive buffer (or receiving
more after the close) answers with a RST, and the peer's stack reports "connection reset" (a send fails, or a
read raises before the buffered alert is handed over) instead of our alert. `PlainChannel.close` therefore
half-closes, reads and discards until the peer's end of stream, and only then closes.

The bounds are checked against a writer double on the virtual clock (exact byte counts, exact deadlines), and
over our own stack on the in-memory link, also on the virtual clock; the kernel test needs real sockets and
waits only on events, under generous outer timeouts.
"""

from __future__ import annotations

import asyncio

import pytest

from adapters.network import STREAM_LIMIT
from adapters.tcp_sockets import DEFAULT_HIGH_WATER
from adapters.tls_channel import PlainChannel, RefusedError, TlsChannel
from netstack.tcp.config import TcpConfig
from tests import virtual_time
from tests.netstack.builders import two_networks
from tests.peers import send_all_then_read
from tests.tls.pki import client_config, server_config
from tls.alerts import AlertDescription
from tls.client import ClientConnection
from tls.constants import CipherSuite
from tls.server import ServerConnection

CHUNK = 1 << 14
TIMEOUT = 60.0
ALERT = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, AlertDescription.HANDSHAKE_FAILURE])  # fatal handshake_failure
EXTRA = 16 << 20  # far more than the server reads before it refuses (its stream reader pauses at 2 x its limit)


def refused_hello() -> bytes:
    """A well-formed ClientHello that `server()` refuses: it offers only a cipher suite the server lacks."""
    client = ClientConnection(client_config(versions=(0x0304,), suites=(CipherSuite.TLS_AES_128_GCM_SHA256,)))
    return client.data_to_send()


def server() -> ServerConnection:
    return ServerConnection(server_config(suites=(CipherSuite.TLS_AES_256_GCM_SHA384,)))


class Refusals:
    """A server that refuses every handshake; it notes each refusal and the loop's time around its close."""

    def __init__(self, *, linger_seconds: float, linger_bytes: int) -> None:
        self.linger_seconds = linger_seconds
        self.linger_bytes = linger_bytes
        self.refused: list[RefusedError] = []
        self.close_took: list[float] = []
        self.done = asyncio.Event()

    async def connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        plain = PlainChannel(reader, writer, read_chunk=CHUNK, send_timeout=TIMEOUT,
                             linger_seconds=self.linger_seconds, linger_bytes=self.linger_bytes)
        tls = TlsChannel(server(), plain)
        loop = asyncio.get_running_loop()
        try:
            await tls.handshake(loop.time() + TIMEOUT)
        except RefusedError as refused:
            self.refused.append(refused)
        started = loop.time()
        await tls.close()
        self.close_took.append(loop.time() - started)
        self.done.set()


# -- kernel sockets -----------------------------------------------------------------------------------------


def test_a_client_still_sending_reads_the_alert_over_kernel_sockets() -> None:
    """Before the lingering close the server closed with megabytes unread: the client's send or its read
    after the alert failed with a reset. Now every byte is taken, the alert arrives, then an orderly end."""

    async def main() -> tuple[tuple[str | None, bytes, str | None], Refusals]:
        refusals = Refusals(linger_seconds=TIMEOUT, linger_bytes=2 * EXTRA)
        listener = await asyncio.start_server(refusals.connected, "127.0.0.1", 0, limit=CHUNK)
        port = listener.sockets[0].getsockname()[1]
        async with listener:
            seen = await asyncio.wait_for(asyncio.to_thread(send_all_then_read, port, refused_hello() + bytes(EXTRA)),
                                          TIMEOUT)
            await asyncio.wait_for(refusals.done.wait(), TIMEOUT)
        return seen, refusals

    (send_error, received, read_error), refusals = asyncio.run(main())
    assert [r.alert for r in refusals.refused] == [AlertDescription.HANDSHAKE_FAILURE]
    assert (send_error, received, read_error) == (None, ALERT, None)


# -- our own TCP, on the in-memory link and the virtual clock -----------------------------------------------


def run_virtual(coro: object) -> None:
    assert asyncio.iscoroutine(coro)
    virtual_time.run(asyncio.wait_for(coro, 600))


async def _refusing_pair(refusals: Refusals) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, object]:
    client_net, server_net = await two_networks()
    await server_net.start_stream_server(443, refusals.connected)
    reader, writer = await client_net.open_stream("10.9.0.2", 443)

    def close() -> None:
        client_net.close()
        server_net.close()

    return reader, writer, close


def test_a_client_still_sending_reads_the_alert_over_our_netstack() -> None:
    """The same client over our TCP on both ends: everything it sends is taken, then the alert and the end.

    Our TCP answers a close with unread data, and data after the close, with a RST (RFC 9293 §3.6.1, as
    Linux and FreeBSD do), so without the lingering close this client would see a reset before the alert,
    exactly as over kernel sockets: the case guards the lingering close on our own stack."""
    seen: list[object] = []

    async def main() -> None:
        refusals = Refusals(linger_seconds=TIMEOUT, linger_bytes=2 * EXTRA)
        reader, writer, close = await _refusing_pair(refusals)
        try:
            payload = memoryview(refused_hello() + bytes(EXTRA // 4))
            for offset in range(0, len(payload), CHUNK):
                writer.write(payload[offset:offset + CHUNK])
                await writer.drain()
            writer.write_eof()
            seen.append(await reader.read())
            await refusals.done.wait()
            seen.append([r.alert for r in refusals.refused])
        finally:
            assert callable(close)
            close()

    run_virtual(main())
    assert seen == [ALERT, [AlertDescription.HANDSHAKE_FAILURE]]


def test_a_peer_that_never_stops_sending_is_cut_off_at_linger_bytes_over_our_netstack() -> None:
    """The client reads the alert and our end of stream but goes on sending: the server discards
    `linger_bytes` of it, then aborts (the client sees a reset), long before `linger_seconds`."""
    linger_bytes = 256 * 1024
    sent = [0]
    outcome: list[object] = []

    async def main() -> None:
        refusals = Refusals(linger_seconds=500.0, linger_bytes=linger_bytes)
        reader, writer, close = await _refusing_pair(refusals)

        async def flood() -> None:
            """Send until reset; give up (and so fail) far beyond the bound, rather than spin for ever: the
            virtual clock stands still while the loop is busy, so no timeout would end it."""
            writer.write(refused_hello())
            block = bytes(CHUNK)
            try:
                while sent[0] < 64 * linger_bytes:
                    writer.write(block)
                    await writer.drain()
                    sent[0] += len(block)
            except ConnectionResetError:
                outcome.append("reset")

        try:
            flooding = asyncio.create_task(flood())
            outcome.append(await reader.read(len(ALERT)))
            await refusals.done.wait()
            await flooding
            outcome.append(refusals.close_took[0] < 500.0)  # cut off by the bytes, not by the time
        finally:
            assert callable(close)
            close()

    run_virtual(main())
    assert outcome == [ALERT, "reset", True]
    # Not cut off before its allowance, nor long after it: beyond it, only what the buffers on the way hold (the
    # server's TCP receive buffer and stream reader, the client's TCP send buffer and transport).
    tcp = TcpConfig()
    in_buffers = tcp.rcv_buffer + 2 * STREAM_LIMIT + tcp.snd_buffer + DEFAULT_HIGH_WATER + CHUNK
    assert linger_bytes <= sent[0] <= linger_bytes + in_buffers


def test_a_peer_that_never_closes_is_cut_off_at_linger_seconds_over_our_netstack() -> None:
    """The client sends its hello, reads the alert and our end of stream, then neither sends nor closes:
    the server waits `linger_seconds` (virtual) for its end of stream, then aborts."""
    received: list[bytes] = []
    took: list[float] = []

    async def main() -> None:
        refusals = Refusals(linger_seconds=7.0, linger_bytes=1 << 20)
        reader, writer, close = await _refusing_pair(refusals)
        try:
            writer.write(refused_hello())
            received.append(await reader.read())  # up to our FIN: the alert, and nothing after it
            await refusals.done.wait()
            took.extend(refusals.close_took)
        finally:
            assert callable(close)
            close()

    run_virtual(main())
    assert received == [ALERT]
    assert len(took) == 1
    assert 7.0 <= took[0] < 7.5


# -- the bounds exactly, against a writer double on the virtual clock ----------------------------------------


class HalfClosingWriter:
    """What PlainChannel uses of a StreamWriter, for a transport that can half-close; records what happens."""

    def __init__(self, *, can_half_close: bool = True) -> None:
        self.transport = self
        self.can_half_close = can_half_close
        self.calls: list[str] = []

    def write(self, data: bytes) -> None:
        self.calls.append("write")

    async def drain(self) -> None:
        pass

    def is_closing(self) -> bool:
        return "close" in self.calls or "abort" in self.calls

    def can_write_eof(self) -> bool:
        return self.can_half_close

    def write_eof(self) -> None:
        self.calls.append("write_eof")

    def close(self) -> None:
        self.calls.append("close")

    async def wait_closed(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0  # every write taken at once

    def abort(self) -> None:
        self.calls.append("abort")


def _close(feed: bytes, *, eof: bool, linger: bool = True, can_half_close: bool = True,
           ) -> tuple[list[str], float, int, str | None]:
    """Close a channel whose peer has sent `feed` (then its end of stream, if `eof`): the writer's calls, how
    long the close took on the virtual clock, how many of the peer's bytes were left unread, and which bound
    cut the lingering short."""

    async def main() -> tuple[list[str], float, int, str | None]:
        reader = asyncio.StreamReader(limit=1 << 20)
        reader.feed_data(feed)
        if eof:
            reader.feed_eof()
        writer = HalfClosingWriter(can_half_close=can_half_close)
        plain = PlainChannel(reader, writer, read_chunk=CHUNK, send_timeout=3.0,  # type: ignore[arg-type]
                             linger_seconds=5.0, linger_bytes=4 * CHUNK)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await plain.close(linger=linger)
        await plain.close(linger=linger)  # idempotent
        took = loop.time() - started
        if not eof:
            reader.feed_eof()  # so that what is left unread can be read here
        return writer.calls, took, len(await reader.read()), plain.cut_off

    return virtual_time.run(asyncio.wait_for(main(), 60))


def test_linger_reads_to_the_end_of_stream_then_closes_gracefully() -> None:
    assert _close(bytes(4 * CHUNK), eof=True) == (["write_eof", "close"], 0.0, 0, None)  # exactly linger_bytes


def test_linger_aborts_past_linger_bytes() -> None:
    calls, took, unread, cut_off = _close(bytes(5 * CHUNK), eof=False)
    assert (calls, took, cut_off) == (["write_eof", "abort"], 0.0, "linger_bytes")
    assert unread == 0  # it read the fifth chunk, found itself over the bound, and stopped there


def test_linger_aborts_a_silent_peer_at_linger_seconds() -> None:
    assert _close(b"", eof=False) == (["write_eof", "abort"], 5.0, 0, "linger_seconds")


def test_no_linger_when_asked_or_when_the_transport_cannot_half_close() -> None:
    assert _close(b"unread", eof=False, linger=False) == (["close"], 0.0, 6, None)
    assert _close(b"unread", eof=False, can_half_close=False) == (["close"], 0.0, 6, None)


def test_a_close_cancelled_while_lingering_aborts_the_connection() -> None:
    async def main() -> list[str]:
        writer = HalfClosingWriter()
        plain = PlainChannel(asyncio.StreamReader(), writer, read_chunk=CHUNK,  # type: ignore[arg-type]
                             send_timeout=3.0, linger_seconds=5.0, linger_bytes=CHUNK)
        closing = asyncio.create_task(plain.close())
        await asyncio.sleep(1.0)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        return writer.calls

    assert virtual_time.run(main()) == ["write_eof", "abort"]


def test_a_transport_timeout_while_lingering_counts_as_linger_seconds() -> None:
    """Our TCP gives up on a peer with TimeoutError: for the lingering close that is a peer that went silent."""
    async def main() -> tuple[list[str], str | None]:
        reader = asyncio.StreamReader()
        reader.set_exception(TimeoutError("TCP connection closed: timeout"))
        writer = HalfClosingWriter()
        plain = PlainChannel(reader, writer, read_chunk=CHUNK, send_timeout=3.0,  # type: ignore[arg-type]
                             linger_seconds=5.0, linger_bytes=CHUNK)
        await plain.close()
        return writer.calls, plain.cut_off

    assert virtual_time.run(main()) == (["write_eof", "abort"], "linger_seconds")


def test_a_linger_cut_off_leaves_the_task_as_it_found_it() -> None:
    """The bound's timer cancels the task to end the wait, and takes that back: the task goes on."""
    async def main() -> tuple[str | None, int]:
        plain = PlainChannel(asyncio.StreamReader(), HalfClosingWriter(), read_chunk=CHUNK,  # type: ignore[arg-type]
                             send_timeout=3.0, linger_seconds=5.0, linger_bytes=CHUNK)
        await plain.close()
        await asyncio.sleep(1.0)  # not cancelled again
        task = asyncio.current_task()
        assert task is not None
        return plain.cut_off, task.cancelling()

    assert virtual_time.run(main()) == ("linger_seconds", 0)


def test_a_linger_ended_by_the_peer_leaves_no_timer_behind() -> None:
    """The bound on the lingering reads is disarmed when the peer's end of stream comes first: nothing
    cancels the task later, when its linger_seconds would have run out."""
    async def main() -> tuple[str | None, bool, int]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"late bytes")
        reader.feed_eof()
        plain = PlainChannel(reader, HalfClosingWriter(), read_chunk=CHUNK,  # type: ignore[arg-type]
                             send_timeout=3.0, linger_seconds=5.0, linger_bytes=CHUNK)
        await plain.close()
        cancelled = False
        try:
            await asyncio.sleep(2 * 5.0)  # past the bound the timer was armed with
        except asyncio.CancelledError:
            cancelled = True
        task = asyncio.current_task()
        assert task is not None
        return plain.cut_off, cancelled, task.cancelling()

    assert virtual_time.run(main()) == (None, False, 0)
