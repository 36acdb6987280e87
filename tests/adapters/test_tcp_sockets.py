"""adapters/tcp_sockets.py: the asyncio Transport/Protocol face of our TCP layer (TcpTransport, TcpServer,
TcpSockets), held to what asyncio's own transports document.

Why a module of its own: test_network.py drives the happy paths (echo, bulk, flow control, refusal); what it
leaves out are the edges an application meets when it is not careful or not lucky: a transport closed or
aborted twice, paused and resumed out of turn or after the connection died, a non-bytes write, a write or an
EOF that races a reset the socket layer has not dispatched yet, write-buffer limits and their ValueError, a
protocol factory or a protocol callback that raises, a BufferedProtocol, a protocol with no data callbacks,
a server closed twice, and a connect cancelled at each point of its handshake.

Two ways to drive it, both on the virtual clock (tests/virtual_time.py), never the wall clock:
- two whole stacks back to back on the in-memory link (`two_networks`), for behaviour seen from both ends;
- one TcpLayer under TcpSockets with an idle driver and a hand-driven peer (`RawPeer`, `IdleDriver`), where a
  test must place an event exactly: a RST that has reached the layer but not yet the transport.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from adapters.network import Network
from adapters.tcp_sockets import DISPATCH_ROUNDS, TcpSockets, TcpTransport
from netstack.tcp.config import TcpConfig
from netstack.tcp.segment import ACK, FIN, RST, SYN, Segment, build_options
from tests import virtual_time
from tests.adapters.idle_driver import IdleDriver
from tests.adapters.test_network import Collect, run
from tests.netstack.builders import two_networks, until
from tests.netstack.tcp.raw import THEM, US, RawPeer

SERVER = "10.9.0.2"
P = TypeVar("P", bound=asyncio.BaseProtocol)


def keeping(made: list[P], make: Callable[[], P]) -> Callable[[], asyncio.BaseProtocol]:
    """A protocol factory that also keeps each protocol it makes in `made`."""

    def factory() -> P:
        made.append(make())
        return made[-1]

    return factory


class Recorder(Collect):
    """Collect, also counting connection_made and keeping every connection_lost (each must come exactly once).
    At the end of stream it closes, as asyncio.Protocol's default eof_received does (Collect stays open)."""

    def __init__(self) -> None:
        super().__init__()
        self.made = 0
        self.losses: list[BaseException | None] = []

    def eof_received(self) -> bool:
        super().eof_received()
        return False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made += 1
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.losses.append(exc)
        super().connection_lost(exc)

    def tcp(self) -> TcpTransport:
        assert isinstance(self.transport, TcpTransport)
        return self.transport


class Handled:
    """The running loop's exception handler, replaced by one that keeps the contexts it is given."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: self.contexts.append(context))


async def connected(a: Network, b: Network, port: int = 7,
                    server_factory: Callable[[], Recorder] = Recorder) -> tuple[TcpTransport, Recorder, Recorder]:
    """A connection from a to b's server on `port`: (client transport, client protocol, server protocol)."""
    servers: list[Recorder] = []
    await b.start_server(port, keeping(servers, server_factory))
    transport, client = await a.open_connection(SERVER, port, Recorder)
    assert isinstance(client, Recorder)
    await until(lambda: servers and servers[0].transport is not None)
    return transport, client, servers[0]


async def lost(protocol: Recorder) -> BaseException | None:
    return await asyncio.wait_for(protocol.lost, 10)


async def raw_accept(protocol: asyncio.BaseProtocol,
                     config: TcpConfig | None = None) -> tuple[RawPeer, TcpSockets, int]:
    """A peer's connection to our port 80, accepted by TcpSockets over an idle driver: nothing moves unless the
    test injects a segment, dispatches, or lets the loop run. Returns the peer, the sockets and our next
    sequence number (the peer's is 1001)."""
    peer = RawPeer(config)
    sockets = TcpSockets(peer.layer, IdleDriver(), asyncio.get_running_loop())
    sockets.listen(80, lambda: protocol)
    peer.inject(SYN, 1000, options=build_options(mss=1460))
    (syn_ack,) = peer.out()
    peer.inject(ACK, 1001, syn_ack.seq + 1)
    sockets.dispatch()
    peer.out()
    return peer, sockets, syn_ack.seq + 1


async def raw_connect(factory: Callable[[], asyncio.BaseProtocol]) -> tuple[
        RawPeer, TcpSockets, asyncio.Task[tuple[TcpTransport, asyncio.BaseProtocol]], Segment]:
    """TcpSockets.connect from us to a hand-driven peer (THEM:6000), left waiting for the peer's SYN-ACK."""
    peer = RawPeer(port=0, peer_port=6000)
    sockets = TcpSockets(peer.layer, IdleDriver(), asyncio.get_running_loop())
    task = asyncio.ensure_future(sockets.connect(US, THEM, 6000, factory))
    await asyncio.sleep(0)  # the task runs up to its wait for the handshake
    (syn,) = peer.out()
    assert syn.flags == SYN
    peer.port = syn.src_port  # the peer answers to our ephemeral port
    return peer, sockets, task, syn


def data_sent(segments: list[Segment]) -> bytes:
    return b"".join(bytes(segment.payload) for segment in segments)


# ---------------------------------------------------------------- close, abort, loss


def test_close_twice_and_close_after_a_reset_report_the_loss_once() -> None:
    async def main() -> None:
        a, b = await two_networks()
        transport, client, server = await connected(a, b)
        transport.close()
        transport.close()
        assert transport.is_closing()
        assert await lost(client) is None
        assert await lost(server) is None
        await asyncio.sleep(1.0)
        assert client.losses == [None]

        other, client2, server2 = await connected(a, b, port=8)
        server2.tcp().abort()
        assert isinstance(await lost(client2), ConnectionResetError)
        other.close()  # after the loss: nothing more to report
        other.abort()
        await asyncio.sleep(1.0)
        assert len(client2.losses) == 1
        assert server2.losses == [None]
        a.close()
        b.close()

    run(main)


def test_abort_after_close_does_not_reset_the_closed_connection() -> None:
    """asyncio: abort() on a transport that close() already finished is a no-op; ours must not send a RST
    after the FIN that close() queued (the peer would see its orderly end turn into a reset)."""

    async def main() -> None:
        a, b = await two_networks()
        transport, client, server = await connected(a, b)
        transport.write(b"last words")
        transport.close()
        transport.abort()
        assert await lost(server) is None
        assert bytes(server.data) == b"last words"
        assert server.eof.is_set()
        assert client.losses == [None]
        a.close()
        b.close()

    run(main)


def test_abort_twice_reports_the_loss_once_and_resets_the_peer() -> None:
    async def main() -> None:
        a, b = await two_networks()
        transport, client, server = await connected(a, b)
        transport.abort()
        transport.abort()
        assert transport.is_closing()
        assert await lost(client) is None
        assert isinstance(await lost(server), ConnectionResetError)
        await asyncio.sleep(1.0)
        assert client.losses == [None]
        a.close()
        b.close()

    run(main)


# ---------------------------------------------------------------- protocol, extra info


def test_set_protocol_routes_later_callbacks_to_the_new_protocol() -> None:
    async def main() -> None:
        a, b = await two_networks()
        transport, _, server = await connected(a, b)
        server_transport = server.tcp()
        replacement = Recorder()
        server_transport.set_protocol(replacement)
        assert server_transport.get_protocol() is replacement
        transport.write(b"for the new one")
        transport.close()
        assert await lost(replacement) is None
        assert bytes(replacement.data) == b"for the new one"
        assert replacement.eof.is_set()
        assert server.data == b""
        assert server.losses == []
        a.close()
        b.close()

    run(main)


def test_get_extra_info_returns_the_default_for_unknown_keys_only() -> None:
    async def main() -> None:
        a, b = await two_networks()
        transport, _, _ = await connected(a, b)
        marker = object()
        assert transport.get_extra_info("no such key") is None
        assert transport.get_extra_info("no such key", marker) is marker
        assert transport.get_extra_info("peername", marker) == (SERVER, 7)
        assert transport.get_extra_info("sockname", marker)[0] == "10.9.0.1"
        # There is no kernel socket behind it; the key is known, so the default does not apply.
        assert transport.get_extra_info("socket", marker) is None
        transport.close()
        a.close()
        b.close()

    run(main)


# ---------------------------------------------------------------- reading


def test_is_reading_follows_pause_and_resume_and_is_false_once_lost() -> None:
    async def main() -> None:
        a, b = await two_networks()
        transport, _, server = await connected(a, b)
        assert transport.is_reading()
        transport.pause_reading()
        assert not transport.is_reading()
        transport.resume_reading()
        assert transport.is_reading()
        server.tcp().abort()
        await until(transport.is_closing)
        assert not transport.is_reading()  # reading was never paused, but there is nothing left to read
        a.close()
        b.close()

    run(main)


def test_pause_and_resume_reading_repeated_deliver_the_data_once_resumed() -> None:
    async def main() -> None:
        a, b = await two_networks()
        transport, client, server = await connected(a, b)
        transport.pause_reading()
        transport.pause_reading()
        server.tcp().write(b"held back")
        await asyncio.sleep(1.0)
        assert client.data == b""
        transport.resume_reading()
        transport.resume_reading()
        await until(lambda: client.data == b"held back")
        server.tcp().write(b" and more")
        await until(lambda: client.data == b"held back and more")
        transport.close()
        a.close()
        b.close()

    run(main)


def test_pause_and_resume_reading_after_the_connection_is_lost_do_nothing() -> None:
    """asyncio's transports make pause_reading/resume_reading no-ops once the transport is closing; ours must
    not reach for a connection the layer has already destroyed."""

    async def main() -> None:
        a, b = await two_networks()
        reading, reading_client, reading_server = await connected(a, b)
        reading_server.tcp().abort()
        assert isinstance(await lost(reading_client), ConnectionResetError)
        reading.pause_reading()
        assert not reading.is_reading()

        paused, paused_client, paused_server = await connected(a, b, port=8)
        paused.pause_reading()
        paused_server.tcp().abort()
        assert isinstance(await lost(paused_client), ConnectionResetError)
        paused.resume_reading()
        assert not paused.is_reading()
        await asyncio.sleep(1.0)
        assert len(paused_client.losses) == 1
        assert a.tcp.stats["internal-error"] == 0
        a.close()
        b.close()

    run(main)


def test_resume_reading_racing_an_undispatched_reset_does_not_raise() -> None:
    """The peer's RST has destroyed the connection in the layer, but its Closed event has not reached the
    transport yet: resume_reading must not raise, and the reset is still reported."""

    async def main() -> None:
        protocol = Recorder()
        peer, sockets, ours = await raw_accept(protocol)
        transport = protocol.tcp()
        transport.pause_reading()
        peer.inject(RST | ACK, 1001, ours)
        transport.resume_reading()
        sockets.dispatch()
        assert isinstance(await lost(protocol), ConnectionResetError)
        assert protocol.losses == [protocol.lost.result()]

    virtual_time.run(main())


# ---------------------------------------------------------------- write-buffer limits


class AsyncioFlowControl(asyncio.transports._FlowControlMixin):
    """asyncio's own write-buffer bookkeeping (what its selector and proactor transports inherit): the
    reference our set_write_buffer_limits must agree with."""

    def get_write_buffer_size(self) -> int:
        return 0


LIMITS: list[dict[str, int]] = [
    {}, {"high": 1000}, {"low": 100}, {"high": 1000, "low": 10}, {"high": 7, "low": 7}, {"high": 0},
    {"high": 0, "low": 0}, {"high": 3},
]
BAD_LIMITS: list[dict[str, int]] = [{"high": 10, "low": 20}, {"low": -1}, {"high": -1}, {"high": 5, "low": -1}]


def test_write_buffer_limits_default_and_derive_as_asyncio_does() -> None:
    async def main() -> None:
        a, b = await two_networks()
        transport, _, _ = await connected(a, b)
        reference = AsyncioFlowControl(loop=asyncio.get_running_loop())
        assert transport.get_write_buffer_limits() == reference.get_write_buffer_limits()
        for limits in LIMITS:
            transport.set_write_buffer_limits(**limits)
            reference.set_write_buffer_limits(**limits)
            assert transport.get_write_buffer_limits() == reference.get_write_buffer_limits(), limits
        transport.close()
        a.close()
        b.close()

    run(main)


def test_set_write_buffer_limits_rejects_inverted_or_negative_marks_and_keeps_the_old_ones() -> None:
    async def main() -> None:
        a, b = await two_networks()
        transport, _, _ = await connected(a, b)
        transport.set_write_buffer_limits(high=800, low=200)
        reference = AsyncioFlowControl(loop=asyncio.get_running_loop())
        for limits in BAD_LIMITS:
            with pytest.raises(ValueError, match="must be >=") as ours:
                transport.set_write_buffer_limits(**limits)
            with pytest.raises(ValueError, match="must be >=") as theirs:
                reference.set_write_buffer_limits(**limits)
            assert str(ours.value) == str(theirs.value)
            assert transport.get_write_buffer_limits() == (200, 800)
        transport.close()
        a.close()
        b.close()

    run(main)


def test_write_buffer_size_counts_what_the_layer_could_not_take_and_drains() -> None:
    async def main() -> None:
        send_buffer = 16384  # the layer's: what `write` can hand over at once
        a, b = await two_networks(tcp=TcpConfig(snd_buffer=send_buffer, rcv_buffer=16384))
        transport, client, server = await connected(a, b)
        assert transport.get_write_buffer_size() == 0
        transport.write(b"w" * 50_000)
        assert transport.get_write_buffer_size() == 50_000 - send_buffer
        await until(lambda: len(server.data) == 50_000)
        assert transport.get_write_buffer_size() == 0
        assert client.paused == 0  # never above the 64 KiB default
        transport.close()
        a.close()
        b.close()

    run(main)


# ---------------------------------------------------------------- writing


def test_write_of_a_non_bytes_object_raises_type_error_and_sends_nothing() -> None:
    async def main() -> None:
        a, b = await two_networks()
        transport, _, server = await connected(a, b)
        for wrong in ("text", [104, 105], 42):
            with pytest.raises(TypeError, match="bytes-like"):
                transport.write(wrong)  # type: ignore[arg-type]
        transport.write(bytearray(b"only") + memoryview(b" this"))
        transport.close()
        assert await lost(server) is None
        assert bytes(server.data) == b"only this"
        a.close()
        b.close()

    run(main)


def test_write_racing_an_undispatched_reset_is_dropped() -> None:
    async def main() -> None:
        protocol = Recorder()
        peer, sockets, ours = await raw_accept(protocol)
        transport = protocol.tcp()
        peer.inject(RST | ACK, 1001, ours)
        transport.write(b"into a connection already gone")
        sockets.dispatch()  # what the driver does after the frame that brought the RST
        assert isinstance(await lost(protocol), ConnectionResetError)
        assert data_sent(peer.out()) == b""
        assert transport.get_write_buffer_size() == 0
        assert sockets.layer.stats["internal-error"] == 0

    virtual_time.run(main())


def test_close_with_pending_data_racing_an_undispatched_reset_drops_the_data() -> None:
    async def main() -> None:
        protocol = Recorder()
        peer, _, ours = await raw_accept(protocol, TcpConfig(snd_buffer=4096))
        transport = protocol.tcp()
        transport.write(b"p" * 10_000)  # the peer acknowledges nothing: most of it waits in the transport
        assert transport.get_write_buffer_size() > 0
        peer.inject(RST | ACK, 1001, ours)
        transport.close()
        assert transport.get_write_buffer_size() == 0
        assert transport.is_closing()
        assert isinstance(await lost(protocol), ConnectionResetError)
        assert len(protocol.losses) == 1

    virtual_time.run(main())


def test_write_eof_racing_an_undispatched_reset_does_not_raise() -> None:
    async def main() -> None:
        protocol = Recorder()
        peer, _, ours = await raw_accept(protocol)
        transport = protocol.tcp()
        assert transport.can_write_eof()
        peer.inject(RST | ACK, 1001, ours)
        transport.write_eof()
        assert isinstance(await lost(protocol), ConnectionResetError)

    virtual_time.run(main())


def test_write_eof_twice_and_after_close_send_one_fin() -> None:
    async def main() -> None:
        protocol = Recorder()
        peer, _, _ = await raw_accept(protocol)
        transport = protocol.tcp()
        transport.write(b"end")
        transport.write_eof()
        transport.write_eof()
        await asyncio.sleep(0)
        out = peer.out()
        assert data_sent(out) == b"end"
        assert [segment.flags & FIN for segment in out].count(FIN) == 1
        assert not transport.is_closing()  # half-closed: the peer may still send
        transport.close()
        transport.write_eof()
        await asyncio.sleep(0)
        assert all(not segment.flags & FIN for segment in peer.out())
        assert peer.layer.stats["internal-error"] == 0

    virtual_time.run(main())


# ---------------------------------------------------------------- protocols that fail or are unusual


def test_a_server_protocol_factory_that_raises_is_logged_and_the_peer_reset(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Recorder:
        raise RuntimeError("no protocol today")

    async def main() -> None:
        a, b = await two_networks()
        await b.start_server(7, broken)
        _, client = await a.open_connection(SERVER, 7, Recorder)
        assert isinstance(client, Recorder)
        assert isinstance(await lost(client), ConnectionResetError)
        assert b.stats()["tcp-connections"] == 0
        a.close()
        b.close()

    with caplog.at_level(logging.ERROR, logger="adapters.tcp_sockets"):
        run(main)
    (record,) = [r for r in caplog.records if r.name == "adapters.tcp_sockets"]
    assert "protocol factory failed" in record.getMessage()
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "no protocol today"


def test_a_client_protocol_factory_that_raises_fails_the_connect_and_resets_the_server(
        caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Recorder:
        raise RuntimeError("no protocol for you")

    async def main() -> None:
        a, b = await two_networks()
        servers: list[Recorder] = []
        await b.start_server(7, keeping(servers, Recorder))
        with pytest.raises(ConnectionAbortedError, match="protocol factory failed"):
            await a.open_connection(SERVER, 7, broken)
        assert a.stats()["tcp-connections"] == 0
        # Our RST follows the handshake's last ACK: the server either never starts the connection or loses it.
        await until(lambda: b.stats()["tcp-connections"] == 0)
        for protocol in servers:
            assert isinstance(await lost(protocol), ConnectionResetError)
        a.close()
        b.close()

    with caplog.at_level(logging.ERROR, logger="adapters.tcp_sockets"):
        run(main)
    (record,) = [r for r in caplog.records if r.name == "adapters.tcp_sockets"]
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "no protocol for you"


class FailsOnData(Recorder):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        raise ValueError("cannot parse this")


def test_a_protocol_callback_that_raises_goes_to_the_loop_handler_and_aborts() -> None:
    async def main() -> None:
        handled = Handled()
        a, b = await two_networks()
        transport, client, server = await connected(a, b, server_factory=FailsOnData)
        transport.write(b"bad input")
        assert await lost(server) is None
        assert isinstance(await lost(client), ConnectionResetError)
        (context,) = handled.contexts
        assert isinstance(context["exception"], ValueError)
        assert context["transport"] is server.transport
        assert context["protocol"] is server
        assert "protocol callback failed" in context["message"]
        assert server.losses == [None]
        a.close()
        b.close()

    run(main)


class FailsOnLoss(Recorder):
    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        raise ValueError("cannot clean up")


def test_a_connection_lost_that_raises_is_reported_once_and_nothing_more_happens() -> None:
    async def main() -> None:
        handled = Handled()
        a, b = await two_networks()
        transport, _, server = await connected(a, b, server_factory=FailsOnLoss)
        transport.close()
        assert await lost(server) is None
        await asyncio.sleep(1.0)
        (context,) = handled.contexts
        assert isinstance(context["exception"], ValueError)
        assert server.losses == [None]
        a.close()
        b.close()

    run(main)


class SmallBuffers(asyncio.BufferedProtocol):
    """A BufferedProtocol that offers 7 bytes at a time; `fail` makes buffer_updated raise."""

    def __init__(self, fail: bool = False) -> None:
        self.buffer = bytearray(7)
        self.data = bytearray()
        self.updates: list[int] = []
        self.fail = fail
        self.eof = False
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.updates.append(nbytes)
        self.data += self.buffer[:nbytes]
        if self.fail:
            raise ValueError("buffer overflow, allegedly")

    def eof_received(self) -> bool:
        self.eof = True
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


def test_a_buffered_protocol_receives_everything_through_its_small_buffer() -> None:
    async def main() -> None:
        a, b = await two_networks()
        protocols: list[SmallBuffers] = []
        await b.start_server(7, keeping(protocols, SmallBuffers))
        transport, client = await a.open_connection(SERVER, 7, Recorder)
        assert isinstance(client, Recorder)
        payload = bytes(range(256)) * 40
        transport.write(payload)
        transport.write_eof()
        await until(lambda: protocols and protocols[0].lost.done())
        received = protocols[0]
        assert bytes(received.data) == payload
        assert max(received.updates) == 7
        assert received.eof
        assert received.lost.result() is None
        assert await lost(client) is None  # eof_received returned False: the server closed its side
        a.close()
        b.close()

    run(main)


def test_a_buffered_protocol_that_raises_gets_no_more_data_and_is_aborted() -> None:
    async def main() -> None:
        handled = Handled()
        a, b = await two_networks()
        protocols: list[SmallBuffers] = []
        await b.start_server(7, keeping(protocols, lambda: SmallBuffers(fail=True)))
        transport, client = await a.open_connection(SERVER, 7, Recorder)
        assert isinstance(client, Recorder)
        transport.write(b"x" * 100)  # one segment, so one receive: 15 buffers' worth
        assert isinstance(await lost(client), ConnectionResetError)
        assert protocols[0].updates == [7]
        assert len(handled.contexts) == 1
        a.close()
        b.close()

    run(main)


def test_a_protocol_without_data_callbacks_has_its_data_dropped_and_is_closed_at_eof() -> None:
    """A bare BaseProtocol has neither data_received nor eof_received: its data is discarded (not an adapter
    failure) and the end of stream closes the connection, as eof_received returning a false value would."""

    async def main() -> None:
        a, b = await two_networks()
        await b.start_server(7, asyncio.BaseProtocol)
        transport, client = await a.open_connection(SERVER, 7, Recorder)
        assert isinstance(client, Recorder)
        transport.write(b"to nobody")
        transport.write_eof()
        assert await lost(client) is None
        assert client.eof.is_set()
        assert b.tcp.stats["internal-error"] == 0
        a.close()
        b.close()

    run(main)


# ---------------------------------------------------------------- servers


def test_server_close_stops_serving_and_accepting_but_existing_connections_live_on() -> None:
    async def main() -> None:
        a, b = await two_networks()
        servers: list[Recorder] = []
        server = await b.start_server(7, keeping(servers, Recorder))
        assert server.is_serving()
        transport, client = await a.open_connection(SERVER, 7, Recorder)
        assert isinstance(client, Recorder)
        await until(lambda: servers)  # the handshake's last ACK has reached the server
        server.close()
        assert not server.is_serving()
        await asyncio.wait_for(server.wait_closed(), 1)
        with pytest.raises(ConnectionRefusedError):
            await a.open_connection(SERVER, 7, Recorder)
        transport.write(b"still here")
        await until(lambda: servers and servers[0].data == b"still here")
        transport.close()
        a.close()
        b.close()

    run(main)


def test_closing_a_closed_server_again_leaves_a_newer_server_on_its_port_alone() -> None:
    async def main() -> None:
        a, b = await two_networks()
        old = await b.start_server(7, Recorder)
        old.close()
        new = await b.start_server(7, Recorder)
        old.close()
        assert new.is_serving()
        transport, _ = await a.open_connection(SERVER, 7, Recorder)
        transport.close()
        a.close()
        b.close()

    run(main)


def test_a_handshake_completed_after_its_server_closed_is_reset_not_started() -> None:
    async def main() -> None:
        made: list[Recorder] = []
        peer = RawPeer()
        sockets = TcpSockets(peer.layer, IdleDriver(), asyncio.get_running_loop())
        server = sockets.listen(80, keeping(made, Recorder))
        peer.inject(SYN, 1000, options=build_options(mss=1460))
        (syn_ack,) = peer.out()
        peer.inject(ACK, 1001, syn_ack.seq + 1)  # accepted in the layer...
        server.close()                            # ...and the server closes before the news is dispatched
        sockets.dispatch()
        assert made == []
        assert [segment.flags & RST for segment in peer.out()] == [RST]
        assert not peer.layer.by_id

    virtual_time.run(main())


# ---------------------------------------------------------------- TcpSockets


def test_sockets_transport_finds_a_live_connection_and_forgets_a_lost_one() -> None:
    async def main() -> None:
        protocol = Recorder()
        peer, sockets, _ = await raw_accept(protocol)
        (conn,) = peer.layer.by_id
        assert sockets.transport(conn) is protocol.transport
        assert sockets.transport(conn + 1) is None
        protocol.tcp().abort()
        assert sockets.transport(conn) is None

    virtual_time.run(main())


class PingPong(Recorder):
    """Answers each delivery by calling `answer` (which makes the peer send on the other connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.answer: Callable[[], None] = lambda: None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.answer()


def test_events_beyond_the_dispatch_rounds_wait_for_the_next_loop_iteration() -> None:
    """Two connections play ping-pong: each delivery makes the peer send a byte on the other connection at
    once (inside data_received), so each batch of events makes the next. One dispatch handles DISPATCH_ROUNDS
    batches and no more (it cannot starve the loop); the rest is dispatched in the next loop iteration, though
    no frame or timer comes to dispatch again (the driver is idle)."""
    total = DISPATCH_ROUNDS + 5

    async def main() -> None:
        peer = RawPeer()
        sockets = TcpSockets(peer.layer, IdleDriver(), asyncio.get_running_loop())
        protocols: list[PingPong] = []
        sockets.listen(80, keeping(protocols, PingPong))
        ours: dict[int, int] = {}
        theirs: dict[int, int] = {}
        for port in (40000, 40001):
            peer.inject(SYN, 1000, options=build_options(mss=1460), src_port=port)
            (syn_ack,) = peer.out()
            peer.inject(ACK, 1001, syn_ack.seq + 1, src_port=port)
            sockets.dispatch()
            ours[port], theirs[port] = syn_ack.seq + 1, 1001

        def received() -> int:
            return sum(len(protocol.data) for protocol in protocols)

        def send(port: int) -> Callable[[], None]:
            def answer() -> None:
                if received() < total:
                    peer.inject(ACK, theirs[port], ours[port], b"x", src_port=port)
                    theirs[port] += 1
            return answer

        protocols[0].answer, protocols[1].answer = send(40001), send(40000)
        send(40000)()
        sockets.dispatch()
        assert received() == DISPATCH_ROUNDS
        for _ in range(3):
            await asyncio.sleep(0)
        assert received() == total
        assert protocols[0].data + protocols[1].data == b"x" * total

    virtual_time.run(main())


# ---------------------------------------------------------------- connect cancelled


def test_a_cancelled_connect_leaves_no_connection_behind() -> None:
    async def main() -> None:
        a, b = await two_networks()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(a.open_connection("10.9.0.99", 7, Recorder), 1.0)  # nobody answers
        assert a.stats()["tcp-connections"] == 0
        a.close()
        b.close()

    virtual_time.run(main())


def broken_factory() -> Recorder:
    raise RuntimeError("no protocol")


@pytest.mark.parametrize("factory_works", [True, False])
def test_a_handshake_completing_after_the_connect_was_cancelled_is_aborted(factory_works: bool) -> None:
    async def main() -> None:
        made: list[Recorder] = []
        peer, sockets, task, syn = await raw_connect(keeping(made, Recorder if factory_works else broken_factory))
        task.cancel()  # the wait is cancelled, its clean-up has not run yet...
        peer.inject(SYN | ACK, 7000, syn.seq + 1, options=build_options(mss=1460))
        sockets.dispatch()  # ...when the handshake completes
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not peer.layer.by_id
        assert RST in [segment.flags & RST for segment in peer.out()]
        for protocol in made:  # a protocol that was made is also told that its connection is gone
            assert await lost(protocol) is None
            assert protocol.losses == [None]

    virtual_time.run(main())


def test_a_refusal_arriving_after_the_connect_was_cancelled_is_no_internal_error() -> None:
    async def main() -> None:
        peer, sockets, task, syn = await raw_connect(Recorder)
        task.cancel()
        peer.inject(RST | ACK, 0, syn.seq + 1)
        sockets.dispatch()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert peer.layer.stats["internal-error"] == 0
        assert not peer.layer.by_id

    virtual_time.run(main())


def test_a_connection_connected_behind_the_sockets_back_is_aborted() -> None:
    """A Connected event for a connect that TcpSockets is not waiting for is aborted, not leaked."""

    async def main() -> None:
        peer = RawPeer(port=5000, peer_port=6000)
        sockets = TcpSockets(peer.layer, IdleDriver(), asyncio.get_running_loop())
        conn = peer.layer.connect(0.0, US, THEM, 6000, local_port=5000)
        (syn,) = peer.out()
        peer.inject(SYN | ACK, 7000, syn.seq + 1, options=build_options(mss=1460))
        peer.out()
        sockets.dispatch()
        assert conn not in peer.layer.by_id
        assert [segment.flags & RST for segment in peer.out()] == [RST]
        assert sockets.transport(conn) is None

    virtual_time.run(main())


def test_a_connect_cancelled_after_the_handshake_completed_closes_its_transport() -> None:
    """A `wait_for` around a connect that times out in the loop iteration the handshake completes in: the
    transport was started and its protocol told; the cancel must end both (it aborted only the layer's
    connection, leaving the transport registered for ever and its protocol never told: a peer timing its
    SYN-ACK to the connect-back's timeout could leave one per try)."""
    async def main() -> None:
        made: list[Recorder] = []
        peer, sockets, task, syn = await raw_connect(keeping(made, Recorder))
        peer.inject(SYN | ACK, 7000, syn.seq + 1, options=build_options(mss=1460))
        sockets.dispatch()  # the transport is started and the wait's result set...
        (protocol,) = made
        assert protocol.made == 1
        (conn,) = peer.layer.by_id
        task.cancel()       # ...and the task is cancelled before it resumes (wait_for timing out just then)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not peer.layer.by_id
        await asyncio.sleep(1.0)
        assert protocol.losses == [None]
        assert protocol.tcp().is_closing()
        assert sockets.transport(conn) is None

    virtual_time.run(main())
