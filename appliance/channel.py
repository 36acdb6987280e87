"""Byte channels for the endpoints: a plain stream, and a TLS engine driven over one.

This is the thin adapter between asyncio (which owns the socket and the clock) and a sans-I/O TLS engine
(which owns the protocol). Every way a connection can end short of success becomes `RefusedError(category,
reason)`, which the service records; nothing here decides policy.
"""

from __future__ import annotations

import asyncio
import contextlib

from appliance.config import Limits
from appliance.tls_engine import TLSEngine
from outcomes.category import Category
from tls.events import AlertReceived, ApplicationData, Closed, HandshakeComplete, HandshakeFailed


class RefusedError(Exception):
    def __init__(self, category: Category, reason: str) -> None:
        super().__init__(f"{category}: {reason}")
        self.category = category
        self.reason = reason


class PlainChannel:
    """A stream with a deadline on every wait, sending included.

    Receiving is bounded by the caller's timeouts; sending is bounded here by `limits.send_timeout`,
    because a peer that stops reading would otherwise hold its connection slot (and our buffered
    response) for as long as it likes: `drain()` waits on the peer's window, not on us.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limits: Limits) -> None:
        self._reader = reader
        self._writer = writer
        self._chunk = limits.tls_read_chunk
        self._send_timeout = limits.send_timeout

    async def recv(self, timeout: float) -> bytes:
        """Up to one chunk; b"" at EOF. Raises RefusedError on timeout or reset."""
        if timeout <= 0:
            raise RefusedError(Category.TIMEOUT, "deadline passed")
        try:
            return await asyncio.wait_for(self._reader.read(self._chunk), timeout)
        except TimeoutError as exc:
            raise RefusedError(Category.TIMEOUT, "no data from the peer in time") from exc
        except (ConnectionError, OSError) as exc:
            raise RefusedError(Category.CONNECTION_RESET, "connection reset by the peer") from exc

    async def send(self, data: bytes) -> None:
        """Write and wait until the peer has taken enough of it (the transport's low-water mark).

        On timeout the connection is aborted: what is still queued will never be read, and a
        graceful close would wait on the same stalled peer again.
        """
        if not data:
            return
        try:
            self._writer.write(data)
            async with asyncio.timeout(self._send_timeout):  # no extra task, unlike wait_for: a hot path
                await self._writer.drain()
        except TimeoutError as exc:
            self.abort()
            raise RefusedError(Category.TIMEOUT, "peer did not accept our data in time") from exc
        except (ConnectionError, OSError) as exc:
            raise RefusedError(Category.CONNECTION_RESET, "connection reset while sending") from exc

    async def close(self) -> None:
        """Close gracefully (flushing what is queued) within the send timeout, else abort."""
        with contextlib.suppress(ConnectionError, OSError):
            self._writer.close()
        try:
            async with asyncio.timeout(self._send_timeout):
                await self._writer.wait_closed()
        except TimeoutError:
            self.abort()
        except (ConnectionError, OSError):
            pass

    def abort(self) -> None:
        self._writer.transport.abort()


class TlsChannel:
    def __init__(self, engine: TLSEngine, plain: PlainChannel) -> None:
        self._engine = engine
        self._plain = plain
        self._received = bytearray()
        self._closed = False
        self._eof = False
        self._alert: AlertReceived | None = None

    async def handshake(self, deadline: float) -> HandshakeComplete:
        """Drive the engine until HandshakeComplete; `deadline` is in the event loop's clock."""
        loop = asyncio.get_running_loop()
        while True:
            complete = await self._pump()
            if complete is not None:
                return complete
            if self._closed or self._eof:
                raise self._closed_refusal()
            data = await self._plain.recv(deadline - loop.time())
            self._eof = not data
            self._engine.receive_data(data)

    async def _pump(self) -> HandshakeComplete | None:
        events = self._engine.events()
        await self._plain.send(self._engine.data_to_send())
        complete = None
        for event in events:
            if isinstance(event, HandshakeComplete):
                complete = event
            elif isinstance(event, ApplicationData):
                self._received += event.data
            elif isinstance(event, HandshakeFailed):
                self._closed = True
                raise RefusedError(event.category, event.reason)
            elif isinstance(event, AlertReceived):
                self._alert = event
            elif isinstance(event, Closed):
                self._closed = True
        return complete

    def _closed_refusal(self) -> RefusedError:
        if self._alert is not None:
            return RefusedError(Category.PEER_ALERT, f"peer sent alert {self._alert.description}")
        return RefusedError(Category.CONNECTION_RESET, "peer closed the connection")

    async def recv(self, timeout: float) -> bytes:
        """Application data, or b"" once the peer closed."""
        while not self._received and not self._closed and not self._eof:
            data = await self._plain.recv(timeout)
            self._eof = not data  # an engine that says nothing about EOF must not make us spin on it
            self._engine.receive_data(data)
            await self._pump()
        data = bytes(self._received)
        self._received.clear()
        return data

    async def send(self, data: bytes) -> None:
        if self._closed:
            raise RefusedError(Category.CONNECTION_RESET, "TLS connection already closed")
        self._engine.send_application_data(data)
        await self._pump()

    async def close(self) -> None:
        if not self._closed:
            self._engine.close()
            with contextlib.suppress(RefusedError):
                await self._pump()
        await self._plain.close()
