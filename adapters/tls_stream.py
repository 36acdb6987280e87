"""asyncio adapter: run a TLS engine over ANY asyncio Transport (the kernel's sockets or our netstack's).

`TLSProtocol` is the Protocol the byte transport talks to; it drives the engine and presents the
decrypted stream to an application Protocol through `TLSTransport`. Handshake outcomes and failures are
reported to an optional `on_event` callback (for statistics) as the engine's own events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, cast

from outcomes.category import Category
from tls.alerts import AlertDescription
from tls.client import ClientConnection
from tls.errors import StateError
from tls.events import AlertReceived, ApplicationData, Closed, Event, HandshakeComplete, HandshakeFailed
from tls.server import ServerConnection

Engine: TypeAlias = ServerConnection | ClientConnection
EventCallback = Callable[[Event], None]


class TLSTransport(asyncio.Transport):
    """What the application writes to: plaintext in, records out through the engine."""

    def __init__(self, owner: TLSProtocol) -> None:
        super().__init__()
        self._owner = owner
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        self._owner.send(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._owner.close()

    def abort(self) -> None:
        self._closing = True
        self._owner.abort()

    def is_closing(self) -> bool:
        return self._closing or self._owner.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "tls_handshake":
            return self._owner.handshake
        if name == "peer_chain":
            return self._owner.handshake.peer_chain if self._owner.handshake else default
        return self._owner.transport_extra(name, default)

    def pause_reading(self) -> None:
        self._owner.pause_reading()

    def resume_reading(self) -> None:
        self._owner.resume_reading()

    def is_reading(self) -> bool:
        return not self._owner.reading_paused

    def get_write_buffer_size(self) -> int:
        return self._owner.write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._owner.set_write_buffer_limits(high, low)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._owner.app = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._owner.app


class TLSProtocol(asyncio.Protocol):
    """Drives `engine` over the transport it is connected to; `app` sees only plaintext."""

    def __init__(self, engine: Engine, app: asyncio.BaseProtocol, *, handshake_timeout: float,
                 on_event: EventCallback | None = None) -> None:
        self.engine = engine
        self.app = app
        self.handshake: HandshakeComplete | None = None
        self.closing = False
        self.reading_paused = False
        self._timeout = handshake_timeout
        self._on_event = on_event
        self._transport: asyncio.Transport | None = None
        self._app_transport = TLSTransport(self)
        self._timer: asyncio.TimerHandle | None = None
        self._app_connected = False
        self._app_lost = False

    # ---- from the byte transport --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed: our netstack's transports behave like asyncio.Transport without inheriting from it.
        self._transport = cast(asyncio.Transport, transport)
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._handshake_timed_out)
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.engine.receive_data(data)
        self._flush()
        self._process_events()

    def eof_received(self) -> bool | None:
        self.engine.receive_data(b"")
        self._process_events()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.engine.closed:
            self.engine.receive_data(b"")
            self._process_events()
        self._cancel_timer()
        self._lose_app(exc)

    def pause_writing(self) -> None:
        if self._app_connected:
            self.app.pause_writing()

    def resume_writing(self) -> None:
        if self._app_connected:
            self.app.resume_writing()

    # ---- from the application -----------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        try:
            self.engine.send_application_data(data)
        except StateError:
            return
        self._flush()

    def close(self) -> None:
        self.closing = True
        self.engine.close()
        self._flush()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        self.closing = True
        if self._transport is not None:
            self._transport.abort()

    def transport_extra(self, name: str, default: Any) -> Any:
        return self._transport.get_extra_info(name, default) if self._transport is not None else default

    def pause_reading(self) -> None:
        self.reading_paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        self.reading_paused = False
        if self._transport is not None:
            self._transport.resume_reading()

    def write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() if self._transport is not None else 0

    def set_write_buffer_limits(self, high: int | None, low: int | None) -> None:
        if self._transport is not None:
            self._transport.set_write_buffer_limits(high, low)

    # ---- internals ----------------------------------------------------------------------------------

    def _flush(self) -> None:
        data = self.engine.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _process_events(self) -> None:
        for event in self.engine.events():
            if self._on_event is not None:
                self._on_event(event)
            if isinstance(event, ApplicationData):
                if self._app_connected and isinstance(self.app, asyncio.Protocol):
                    self.app.data_received(event.data)
            elif isinstance(event, HandshakeComplete):
                self._cancel_timer()
                self.handshake = event
                self._app_connected = True
                self.app.connection_made(self._app_transport)
            elif isinstance(event, Closed):
                self._flush()
                if self._transport is not None:
                    self._transport.close()
                if self._app_connected and event.clean and isinstance(self.app, asyncio.Protocol):
                    self.app.eof_received()
                self._lose_app(None)

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if self.handshake is not None or self.engine.closed:
            return
        if self._on_event is not None:
            self._on_event(HandshakeFailed(int(AlertDescription.CLOSE_NOTIFY), Category.TIMEOUT,
                                           f"no handshake within {self._timeout} s"))
        self.engine.close()
        self._flush()
        if self._transport is not None:
            self._transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _lose_app(self, exc: Exception | None) -> None:
        if self._app_connected and not self._app_lost:
            self._app_lost = True
            self.app.connection_lost(exc)


def stream_protocol_factory(engine_factory: Callable[[], Engine],
                            client_connected_cb: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                                          Awaitable[None] | None], *,
                            handshake_timeout: float, on_event: EventCallback | None = None,
                            limit: int = 2**16) -> Callable[[], TLSProtocol]:
    """A protocol factory for any `create_server`-style API (asyncio's, or our netstack's
    `start_server(port, factory)`): each connection gets a fresh engine, and `client_connected_cb` gets
    plaintext streams once the handshake has completed (never for a refused one)."""

    def factory() -> TLSProtocol:
        reader = asyncio.StreamReader(limit=limit)
        app = asyncio.StreamReaderProtocol(reader, client_connected_cb)
        return TLSProtocol(engine_factory(), app, handshake_timeout=handshake_timeout, on_event=on_event)

    return factory


async def open_connection(host: str, port: int, engine: ClientConnection, *, handshake_timeout: float,
                          on_event: EventCallback | None = None, limit: int = 2**16,
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, HandshakeComplete]:
    """Connect over a kernel socket and finish the handshake; raises `HandshakeError` if it fails."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit)
    app = asyncio.StreamReaderProtocol(reader)
    done: asyncio.Future[HandshakeComplete] = loop.create_future()
    peer_alerts: list[AlertReceived] = []

    def watch(event: Event) -> None:
        if on_event is not None:
            on_event(event)
        if done.done():
            return
        if isinstance(event, AlertReceived):
            peer_alerts.append(event)
        elif isinstance(event, HandshakeComplete):
            done.set_result(event)
        elif isinstance(event, HandshakeFailed | Closed):
            done.set_exception(HandshakeError(event, peer_alerts[-1] if peer_alerts else None))

    protocol = TLSProtocol(engine, app, handshake_timeout=handshake_timeout, on_event=watch)
    transport, _ = await loop.create_connection(lambda: protocol, host, port)
    try:
        handshake = await done
    except HandshakeError:
        transport.close()
        raise
    writer = asyncio.StreamWriter(protocol._app_transport, app, reader, loop)
    return reader, writer, handshake


class HandshakeError(Exception):
    """The handshake did not complete: `event` is the HandshakeFailed (our refusal) or Closed that ended it,
    `peer_alert` the alert the peer sent, if any."""

    def __init__(self, event: Event, peer_alert: AlertReceived | None) -> None:
        super().__init__(str(event))
        self.event = event
        self.peer_alert = peer_alert
