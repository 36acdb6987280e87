"""asyncio Transports over the TCP layer: the thin adapter between `TcpLayer` events and `asyncio.Protocol`s.

Nothing here decides protocol behaviour. Events are dispatched after every frame batch and timer (the driver's
`after_io` hook) and after application calls (one coalesced `call_soon` per loop iteration), so a protocol
callback never runs inside the layer's own input processing.

Write-side flow control follows asyncio's contract: `write` hands bytes to the layer's send buffer (our
"kernel"); what does not fit waits in the transport and counts towards `get_write_buffer_size`, and crossing
the high/low water marks calls `pause_writing` / `resume_writing`. Read-side flow control is real TCP flow
control: a paused transport stops draining the receive buffer, so the advertised window closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from netstack.addresses import ip_to_text
from netstack.addresses6 import ip6_to_text
from netstack.tcp import events as ev
from netstack.tcp.layer import TcpError, TcpLayer

logger = logging.getLogger(__name__)

DEFAULT_HIGH_WATER = 64 * 1024
READ_CHUNK = 256 * 1024
DISPATCH_ROUNDS = 64  # event batches handled per dispatch: protocol callbacks cause more events (a write
                      # makes Writable, a close makes Closed); what is left waits for the next loop iteration

ERROR_TYPES: dict[str, type[OSError]] = {
    "reset": ConnectionResetError,
    "refused": ConnectionRefusedError,
    "timeout": TimeoutError,
    "aborted": ConnectionAbortedError,
    "unreachable": OSError,
    "idle": TimeoutError,
}


class DriverLike(Protocol):
    """What the socket layer needs from adapters.stack_driver.Driver."""

    after_io: list[Callable[[], None]]

    def kick(self) -> None: ...

    def now(self) -> float: ...


def sockaddr(address: bytes, port: int) -> tuple[str, int] | tuple[str, int, int, int]:
    """What asyncio's own transports report for `peername` and `sockname`: `(host, port)` for IPv4 and
    `(host, port, flowinfo, scope_id)` for IPv6 (the AF_INET6 socket address), so code written against
    kernel sockets (`peer[0]`, `len(peer)`) works unchanged. The host is RFC 5952 text, without a zone: we
    have one interface, so the scope id is 0, and the text is one `ip6_from_text` reads back."""
    if len(address) == 16:
        return ip6_to_text(address), port, 0, 0
    return ip_to_text(address), port


def connection_error(error: str | None) -> OSError | None:
    if error is None:
        return None
    return ERROR_TYPES.get(error, OSError)(f"TCP connection closed: {error}")


class TcpTransport(asyncio.Transport):
    """One connection as an asyncio Transport."""

    def __init__(self, sockets: TcpSockets, conn: int, protocol: asyncio.BaseProtocol) -> None:
        super().__init__()
        self._sockets = sockets
        self._layer = sockets.layer
        self._conn = conn
        self._protocol = protocol
        (local, lport), (remote, rport) = sockets.layer.addresses(conn)
        self._extra = {"sockname": sockaddr(local, lport), "peername": sockaddr(remote, rport), "socket": None}
        self._pending = bytearray()
        self._closing = False          # close() called: no more writes, close once pending is drained
        self._eof_requested = False
        self._lost = False             # connection_lost delivered
        self._reading = True
        self._writing_paused = False
        self._high = DEFAULT_HIGH_WATER
        self._low = DEFAULT_HIGH_WATER // 4
        self._peer_eof = False
        self._eof_delivered = False

    # -------------------------------------------------------------- BaseTransport

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        if self._closing or self._lost:
            return
        self._closing = True
        self._flush_pending()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    # -------------------------------------------------------------- ReadTransport

    def is_reading(self) -> bool:
        return self._reading and not self._lost

    def pause_reading(self) -> None:
        if not self._reading or self._lost:
            return
        self._reading = False
        self._layer.pause_reading(self._conn)

    def resume_reading(self) -> None:
        if self._reading or self._lost:
            return
        self._reading = True
        try:
            self._layer.resume_reading(self._conn)
        except TcpError:
            return
        self._sockets.loop.call_soon(self._on_readable)  # an end of stream may be waiting behind no data
        self._sockets.kick_soon()

    # -------------------------------------------------------------- WriteTransport

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._check_water()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def get_write_buffer_size(self) -> int:
        return len(self._pending)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        if self._lost or self._closing or not data:
            # As asyncio's own transports do: once the connection is closing or gone (a peer's RST can
            # get there first), writes are dropped, not raised into the protocol.
            return
        if self._eof_requested:
            raise RuntimeError("write after write_eof()")
        if self._pending:
            self._pending += data
        else:
            try:
                taken = self._layer.send(self._sockets.now(), self._conn, data)
            except TcpError:
                return
            if taken < len(data):
                self._pending += memoryview(data)[taken:]
        self._check_water()
        self._sockets.kick_soon()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        if self._eof_requested or self._closing:
            return
        self._eof_requested = True
        self._flush_pending()

    def can_write_eof(self) -> bool:
        return True

    def abort(self) -> None:
        if self._lost:
            return
        self._layer.abort(self._sockets.now(), self._conn)
        self._sockets.kick_soon()
        self._connection_lost(None)

    # -------------------------------------------------------------- event handling

    def _check_water(self) -> None:
        size = len(self._pending)
        if not self._writing_paused and size > self._high:
            self._writing_paused = True
            self._call(self._protocol.pause_writing)
        elif self._writing_paused and size <= self._low:
            self._writing_paused = False
            self._call(self._protocol.resume_writing)

    def _flush_pending(self) -> None:
        """Move waiting bytes into the layer; then carry out a requested close or EOF once nothing waits."""
        if self._lost:
            return
        now = self._sockets.now()
        try:
            if self._pending:
                taken = self._layer.send(now, self._conn, self._pending)
                del self._pending[:taken]
            if not self._pending:
                if self._closing:
                    self._layer.close(now, self._conn)
                    self._sockets.kick_soon()
                    self._connection_lost(None)
                    return
                if self._eof_requested:
                    self._layer.shutdown(now, self._conn)
        except TcpError:
            self._pending.clear()
        self._check_water()
        self._sockets.kick_soon()

    def _on_readable(self) -> None:
        if not self._reading or self._lost:
            return
        protocol = self._protocol
        while self._reading and not self._lost:
            try:
                data = self._layer.receive(self._sockets.now(), self._conn, READ_CHUNK)
            except TcpError:
                return  # the connection is already gone
            if not data:
                break
            if isinstance(protocol, asyncio.BufferedProtocol):
                self._deliver_buffered(protocol, data)
            elif isinstance(protocol, asyncio.Protocol):
                self._call(protocol.data_received, data)
        if self._peer_eof and not self._eof_delivered and self._reading and not self._lost and \
                not self._layer.readable_bytes(self._conn) and self._layer.connection(self._conn) is not None:
            self._deliver_eof()

    def _deliver_buffered(self, protocol: asyncio.BufferedProtocol, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._lost:
            buffer = memoryview(protocol.get_buffer(len(view)))
            n = min(len(buffer), len(view))
            buffer[:n] = view[:n]
            self._call(protocol.buffer_updated, n)
            view = view[n:]

    def _on_peer_closed(self) -> None:
        self._peer_eof = True
        self._on_readable()  # delivers the EOF after the data, or later when a paused reader resumes

    def _deliver_eof(self) -> None:
        self._eof_delivered = True
        protocol = self._protocol
        keep_open = False
        if isinstance(protocol, asyncio.Protocol | asyncio.BufferedProtocol):
            keep_open = bool(self._call(protocol.eof_received))
        if not keep_open:
            self.close()

    def _on_closed(self, error: str | None) -> None:
        if self._lost:
            return
        self._on_readable()
        self._connection_lost(connection_error(error))

    def _connection_lost(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._pending.clear()
        self._sockets.forget(self._conn)
        self._sockets.loop.call_soon(self._call, self._protocol.connection_lost, exc)

    def _call(self, callback: Callable[..., Any], *args: Any) -> Any:
        try:
            return callback(*args)
        except Exception as error:  # noqa: BLE001 (handed to the loop exception handler, as asyncio does)
            self._sockets.loop.call_exception_handler({
                "message": "protocol callback failed; aborting the connection",
                "exception": error,
                "transport": self,
                "protocol": self._protocol,
            })
            if not self._lost:
                self.abort()
            return None


class TcpServer:
    """What `start_server` returns: stops accepting on close(); existing connections live on."""

    def __init__(self, sockets: TcpSockets, port: int) -> None:
        self._sockets = sockets
        self.port = port
        self._closed = asyncio.Event()

    def close(self) -> None:
        if not self._closed.is_set():
            self._sockets.stop_listening(self.port)
            self._closed.set()

    def is_serving(self) -> bool:
        return not self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()


ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class TcpSockets:
    """Owns the transports of one TcpLayer and turns its events into protocol callbacks."""

    def __init__(self, layer: TcpLayer, driver: DriverLike, loop: asyncio.AbstractEventLoop) -> None:
        self.layer = layer
        self.driver = driver
        self.loop = loop
        self._factories: dict[int, ProtocolFactory] = {}
        self._transports: dict[int, TcpTransport] = {}
        self._connecting: dict[int, tuple[asyncio.Future[TcpTransport], ProtocolFactory]] = {}
        self._kick_scheduled = False
        driver.after_io.append(self.dispatch)

    def now(self) -> float:
        return self.driver.now()

    def kick_soon(self) -> None:
        """Flush output and dispatch events at the end of this loop iteration (coalesced)."""
        if not self._kick_scheduled:
            self._kick_scheduled = True
            self.loop.call_soon(self._kick)

    def _kick(self) -> None:
        self._kick_scheduled = False
        self.dispatch()
        self.driver.kick()

    def listen(self, port: int, factory: ProtocolFactory, backlog: int = 128) -> TcpServer:
        self.layer.listen(port, backlog)
        self._factories[port] = factory
        return TcpServer(self, port)

    def stop_listening(self, port: int) -> None:
        self.layer.unlisten(port)
        self._factories.pop(port, None)

    async def connect(self, local: bytes, remote: bytes, port: int,
                      factory: ProtocolFactory) -> tuple[TcpTransport, asyncio.BaseProtocol]:
        conn = self.layer.connect(self.now(), local, remote, port)
        future: asyncio.Future[TcpTransport] = self.loop.create_future()
        self._connecting[conn] = (future, factory)
        self.driver.kick()
        try:
            transport = await future
        except asyncio.CancelledError:
            self._connecting.pop(conn, None)
            started = self._transports.get(conn)
            if started is not None:
                # The handshake completed, and the protocol was made and told, in the same loop iteration as
                # the cancel (a `wait_for` timing out just then): the transport goes as asyncio's
                # create_connection closes one it made, and its protocol hears connection_lost. Aborting the
                # layer connection alone left the transport registered, and its protocol never told.
                started.abort()
            else:
                self.layer.abort(self.now(), conn)
            self.driver.kick()
            raise
        return transport, transport.get_protocol()

    def forget(self, conn: int) -> None:
        self._transports.pop(conn, None)

    def transport(self, conn: int) -> TcpTransport | None:
        return self._transports.get(conn)

    def dispatch(self) -> None:
        for _ in range(DISPATCH_ROUNDS):
            events = self.layer.take_events()
            if not events:
                return
            for event in events:
                try:
                    self._handle(event)
                except Exception as exc:  # noqa: BLE001 (an adapter bug must not stop the driver)
                    self.layer.internal_error(f"TCP event dispatch failed for {event!r}", exc)
        self.kick_soon()

    def _start(self, conn: int, factory: ProtocolFactory) -> TcpTransport | None:
        try:
            protocol = factory()
        except Exception:
            logger.exception("protocol factory failed; aborting connection")
            self.layer.abort(self.now(), conn)
            return None
        transport = TcpTransport(self, conn, protocol)
        self._transports[conn] = transport
        transport._call(protocol.connection_made, transport)
        return transport

    def _handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.Accepted):
            factory = self._factories.get(event.port)
            if factory is None:
                self.layer.abort(self.now(), event.conn)
                return
            self._start(event.conn, factory)
        elif isinstance(event, ev.Connected):
            pending = self._connecting.pop(event.conn, None)
            if pending is None:
                self.layer.abort(self.now(), event.conn)
                return
            future, factory = pending
            transport = self._start(event.conn, factory)
            if future.done():
                if transport is not None:
                    transport.abort()
            elif transport is None:
                future.set_exception(ConnectionAbortedError("protocol factory failed"))
            else:
                future.set_result(transport)
        elif isinstance(event, ev.Closed):
            pending = self._connecting.pop(event.conn, None)
            if pending is not None:
                if not pending[0].done():
                    pending[0].set_exception(connection_error(event.error or "refused") or OSError())
                return
            transport = self._transports.get(event.conn)
            if transport is not None:
                transport._on_closed(event.error)
        else:
            transport = self._transports.get(event.conn)
            if transport is None:
                return
            if isinstance(event, ev.Readable):
                transport._on_readable()
            elif isinstance(event, ev.Writable):
                transport._flush_pending()
            elif isinstance(event, ev.PeerClosed):
                transport._on_peer_closed()
