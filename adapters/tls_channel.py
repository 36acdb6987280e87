"""Byte channels: a stream with deadlines, and a sans-I/O TLS engine driven over one.

The one TLS-over-asyncio adapter: the appliance's endpoints, the command-line peers (`adapters.tls_cli`) and
the benchmarks all run their TLS through it, so what the benchmarks measure is what production runs. It sits
between asyncio (which owns the socket and the clock) and an engine (which owns the protocol): any
`asyncio.StreamReader`/`StreamWriter` pair will do, the kernel's sockets or our netstack's. Every way a
connection can end short of success becomes `RefusedError(category, reason)`; nothing here decides policy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from outcomes.category import Category
from tls.alerts import AlertDescription
from tls.events import AlertReceived, ApplicationData, Closed, Event, HandshakeComplete, HandshakeFailed, RequestRefused


class TlsEngine(Protocol):
    """The sans-I/O interface the channel drives: ours (`tls.server`/`tls.client`) and the stdlib `ssl`
    comparison engine both have it."""

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; b"" means the transport reached EOF."""

    def events(self) -> list[Event]: ...

    def data_to_send(self) -> bytes: ...

    def send_application_data(self, data: bytes) -> None: ...

    def close(self) -> None: ...


CLOSE_NOTIFY = int(AlertDescription.CLOSE_NOTIFY)


class RefusedError(Exception):
    """The connection ended short of success. `alert`: the alert we sent, when our engine refused;
    `peer_alert`: the alert the peer sent, when it refused."""

    def __init__(self, category: Category, reason: str, *, alert: int | None = None,
                 peer_alert: int | None = None) -> None:
        super().__init__(f"{category}: {reason}")
        self.category = category
        self.reason = reason
        self.alert = alert
        self.peer_alert = peer_alert


class PlainChannel:
    """A stream with a deadline on every wait, sending included, and a close that delivers what was sent.

    Receiving is bounded by the caller's timeouts; sending is bounded here by `send_timeout`, because a
    peer that stops reading would otherwise hold its connection slot (and our buffered response) for as
    long as it likes: `drain()` waits on the peer's window, not on us. `read_chunk` is the most one `recv`
    returns (and so the most handed to a TLS engine at once).

    `linger_seconds` and `linger_bytes` bound the lingering close (see `close`): how long, and how many of
    the peer's bytes, we read and discard after our last send while waiting for the peer's end of stream.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, read_chunk: int,
                 send_timeout: float, linger_seconds: float, linger_bytes: int) -> None:
        self._reader = reader
        self._writer = writer
        self._chunk = read_chunk
        self._send_timeout = send_timeout
        self._linger_seconds = linger_seconds
        self._linger_bytes = linger_bytes
        self._closed = False
        self.cut_off: str | None = None
        """Which bound ended a lingering close ("linger_bytes" or "linger_seconds"), if one did: the caller
        records it with the connection's outcome, since exceeding a limit is counted and visible."""

    def peer(self) -> tuple[str, int] | None:
        """The remote address and port, as the transport reports them."""
        name = self._writer.get_extra_info("peername")
        return (str(name[0]), int(name[1])) if isinstance(name, tuple) and len(name) >= 2 else None

    async def recv(self, timeout: float) -> bytes:
        """Up to one chunk; b"" at EOF. Raises RefusedError on timeout or reset.

        The bound is a timer that cancels this task, as `asyncio.timeout` does (not `wait_for`, which runs
        the read in a task of its own: two more turns of the event loop per read, and a TLS handshake's reads
        made half its loop turns), but without its context manager, whose state machine and three
        running-loop lookups cost more than the read itself and came three to four times per connection:
        `_Deadline` turns the timer's own cancellation into TimeoutError and lets any other pass through."""
        if timeout <= 0:
            raise RefusedError(Category.TIMEOUT, "deadline passed")
        try:
            with _Deadline(timeout):
                return await self._reader.read(self._chunk)
        except TimeoutError as exc:  # ours, or the transport's own (our TCP's retransmission or idle timeout)
            raise RefusedError(Category.TIMEOUT, "no data from the peer in time") from exc
        except (ConnectionError, OSError) as exc:
            raise RefusedError(Category.CONNECTION_RESET, "connection reset by the peer") from exc

    async def send(self, data: bytes) -> None:
        """Write and wait until the peer has taken enough of it (the transport's low-water mark).

        On timeout the connection is aborted: what is still queued will never be read, and a
        graceful close would wait on the same stalled peer again.

        When the transport took every byte at once (nothing buffered, so writing is not paused), is not
        closing, and the reader holds no error (the service sets one to withdraw a slot), `drain` would
        return at once: it is skipped, and with it the deadline it would need. That is most sends, and each
        armed and cancelled a timer. Otherwise `drain` runs, bounded by a `_Deadline`, and raises what it
        raises.
        """
        if not data:
            return
        try:
            self._writer.write(data)
            transport = self._writer.transport
            if not transport.is_closing() and not transport.get_write_buffer_size() and (
                    self._reader.exception() is None):
                return
            with _Deadline(self._send_timeout):
                await self._writer.drain()
        except TimeoutError as exc:  # ours, or the transport's own
            self.abort()
            raise RefusedError(Category.TIMEOUT, "peer did not accept our data in time") from exc
        except (ConnectionError, OSError) as exc:
            raise RefusedError(Category.CONNECTION_RESET, "connection reset while sending") from exc

    async def close(self, *, linger: bool = True) -> None:
        """Close, so that the peer reads what we sent last (an alert, a close_notify, an error response).

        Why linger: a TCP that is closed while the peer's bytes sit unread in its receive buffer, or that
        receives more of them after the close, answers with a RST (RFC 9293 §3.6.1; Linux and BSD do), and
        the peer's stack then discards what it had received from us but its application had not read yet:
        a client still sending when we refuse it would see "connection reset" instead of our alert. So the
        close is a lingering one: shut down our write side (a FIN after what we sent), read and discard until
        the peer's end of stream, then close, which is graceful because nothing is left unread. A peer that
        goes on past `linger_bytes` or `linger_seconds` is aborted instead (a RST, at once): the bounds keep
        a peer that never stops, or never closes, from holding the connection.

        `linger=False` skips the lingering, for a connection we close with nothing sent on it (there is
        nothing a RST could destroy). A transport that cannot half-close (TLS under asyncio, some test
        doubles) is closed at once too: without our FIN the peer would have no reason to end its stream.
        Then the close itself flushes what is queued within the send timeout, else aborts. When nothing is
        queued (the common case: the kernel or our TCP took every byte), there is nothing to flush and no
        wait: the kernel's transport has then scheduled its `connection_lost`, ours has called it (or, if its
        TCP layer refused the last bytes because the connection was already gone, hears that end from the
        layer's own event), and waiting for that callback cost two more turns of the event loop per
        connection. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        try:
            delivered = not linger or await self._linger()
        except BaseException:  # cancelled while lingering: the connection must not outlive its task
            self.abort()
            raise
        if not delivered:
            self.abort()
            return
        with contextlib.suppress(ConnectionError, OSError):
            self._writer.close()
        if not self._writer.transport.get_write_buffer_size():
            return  # nothing to flush, so nothing the send timeout could bound
        try:
            with _Deadline(self._send_timeout):
                await self._writer.wait_closed()
        except TimeoutError:  # what is queued was not taken in time (ours), or the peer is gone (the transport's)
            self.abort()
        except (ConnectionError, OSError):
            pass

    async def _linger(self) -> bool:
        """Half-close, then read and discard until the peer's end of stream. False if a bound was reached
        (the peer misbehaves: abort it); True when a plain close is now safe, including when the connection
        is already gone or cannot half-close."""
        try:
            if self._writer.is_closing() or not self._writer.can_write_eof():
                return True
            self._writer.write_eof()
        except (NotImplementedError, RuntimeError, ConnectionError, OSError):
            return True  # no half-close here, or the connection is already gone: nothing to wait for
        discarded = 0
        try:
            with _Deadline(self._linger_seconds):  # one bound on all the reads, as recv's on one
                while data := await self._reader.read(self._chunk):
                    discarded += len(data)
                    if discarded > self._linger_bytes:
                        self.cut_off = "linger_bytes"
                        return False
        except TimeoutError:  # ours, or the transport's own: the peer is as good as silent
            self.cut_off = "linger_seconds"
            return False
        except (ConnectionError, OSError):
            return True  # reset (or the slot withdrawn): what was sent is flushed or lost either way
        return True

    def abort(self) -> None:
        self._writer.transport.abort()


class _Deadline:
    """`with _Deadline(delay):` cancels the running task `delay` seconds from now unless the block ends first:
    the bound on one wait (a read, a drain, the close's flush, or the lingering close's reads together).

    At the block's end the timer is disarmed; if it had fired, its cancellation is taken back from the task
    (`uncancel`), and when that was the only one since the block began (the count is back where it was then)
    the CancelledError leaves the block as TimeoutError. A cancellation from anyone else passes through.
    A plain (synchronous) context manager: exceptions from the awaits inside reach `__exit__` all the same.

    Why not `asyncio.timeout`: its context manager's state machine and three running-loop lookups cost more
    than a read itself, three to four times per connection. And its rule for telling its own cancellation
    apart: Python 3.11's compares the count with zero, not with the count at the start (3.12's rule, and
    this one's), so in a task with a cancellation already in flight (a handler's close in its `finally` at
    shutdown) its timeout came out as CancelledError: the stalled connection was not aborted, and the
    handler neither recorded the connection's outcome nor gave back its slot."""

    __slots__ = ("_cancelling", "_fired", "_handle", "_task")

    def __init__(self, delay: float) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a running task")
        self._task = task
        self._cancelling = task.cancelling()
        self._fired = False
        self._handle = task.get_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._fired = True
        self._task.cancel()

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._handle.cancel()
        if self._fired and self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc


class TlsChannel:
    """An engine over a PlainChannel: `handshake`, then `recv`/`send` plaintext, then `close`.

    `recv` and `send` may run in two tasks at once (a client relaying stdin while it prints what arrives):
    only `recv` feeds the engine, so application data is never taken by the other task.

    `on_request_refused` hears of each request the engine refused with a warning and went on (`RequestRefused`:
    a TLS 1.2 renegotiation): nothing else in the channel changes for it, so this is how the caller records it."""

    def __init__(self, engine: TlsEngine, plain: PlainChannel, *,
                 on_request_refused: Callable[[RequestRefused], None] | None = None) -> None:
        self._engine = engine
        self._plain = plain
        self._on_request_refused = on_request_refused
        self._received = bytearray()
        self._closed = False
        self._eof = False
        self._alert: AlertReceived | None = None
        self._refusal: RefusedError | None = None

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
                self._refusal = RefusedError(event.category, event.reason, alert=event.alert)
                raise self._refusal
            elif isinstance(event, AlertReceived):
                self._alert = event
            elif isinstance(event, Closed):
                self._closed = True
            elif isinstance(event, RequestRefused) and self._on_request_refused is not None:
                self._on_request_refused(event)
        return complete

    def _closed_refusal(self) -> RefusedError:
        if self._alert is not None:
            return self._peer_refusal(self._alert)
        return RefusedError(Category.CONNECTION_RESET, "peer closed the connection")

    @staticmethod
    def _peer_refusal(alert: AlertReceived) -> RefusedError:
        return RefusedError(Category.PEER_ALERT, f"peer sent alert {alert.description}", peer_alert=alert.description)

    async def recv(self, timeout: float) -> bytes:
        """Application data, or b"" once the peer closed; RefusedError(TIMEOUT) if none within `timeout`.

        `timeout` bounds the whole wait, not each read: a peer trickling one byte of a record at a time
        must not stretch it (the HTTP layer's request, idle and lifetime bounds all arrive through it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._received and not self._closed and not self._eof:
            data = await self._plain.recv(deadline - loop.time())
            self._eof = not data  # an engine that says nothing about EOF must not make us spin on it
            self._engine.receive_data(data)
            await self._pump()
        data = bytes(self._received)
        self._received.clear()
        return data

    @property
    def ended_by(self) -> RefusedError | None:
        """Once the connection has ended: why, if not by a clean close (a refusal after the handshake, such
        as a TLS 1.3 server rejecting our certificate, arrives as the peer's alert)."""
        if self._refusal is not None:
            return self._refusal
        if self._alert is not None and self._alert.description != CLOSE_NOTIFY:
            return self._peer_refusal(self._alert)
        return None

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


async def start_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, engine: TlsEngine, *,
                    read_chunk: int, send_timeout: float, handshake_timeout: float, linger_seconds: float,
                    linger_bytes: int) -> tuple[TlsChannel, HandshakeComplete]:
    """Run `engine`'s handshake over a connected stream, within `handshake_timeout`. A refused handshake
    closes the stream (whatever alert the engine has sends first, then the lingering close that lets the peer
    read it) and raises the RefusedError."""
    tls = TlsChannel(engine, PlainChannel(reader, writer, read_chunk=read_chunk, send_timeout=send_timeout,
                                          linger_seconds=linger_seconds, linger_bytes=linger_bytes))
    try:
        done = await tls.handshake(asyncio.get_running_loop().time() + handshake_timeout)
    except RefusedError:
        await tls.close()
        raise
    return tls, done


async def connect_tls(host: str, port: int, engine: TlsEngine, *, read_chunk: int, send_timeout: float,
                      handshake_timeout: float, linger_seconds: float, linger_bytes: int,
                      ) -> tuple[TlsChannel, HandshakeComplete]:
    """A kernel TCP connection to `host:port` with `engine`'s handshake run over it (connect included in
    `handshake_timeout`). OSError if the connection cannot be made; RefusedError if the handshake fails."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + handshake_timeout
    async with asyncio.timeout_at(deadline):
        reader, writer = await asyncio.open_connection(host, port, limit=read_chunk)
    return await start_tls(reader, writer, engine, read_chunk=read_chunk, send_timeout=send_timeout,
                           handshake_timeout=max(0.0, deadline - loop.time()), linger_seconds=linger_seconds,
                           linger_bytes=linger_bytes)
