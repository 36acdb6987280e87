"""The running bounty: five endpoints over a Network, each connection ending in exactly one recorded outcome.

Policy lives here (who gets the secret, what is counted as what); protocol lives in `tls`, `appliance.http`
and the network stack; persistence in `appliance.ledger`. A handler either returns an outcome or raises
`RefusedError`; any other exception is a bug, recorded as `internal-error`, and the service keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from adapters.tls_channel import PlainChannel, RefusedError, TlsChannel
from appliance.config import Limits, Ports
from appliance.http import HttpError, RequestParser, error_response, serialize_response
from appliance.ledger import Ledger
from appliance.ledger_record import Event, RecordError
from appliance.log import JsonLog
from appliance.net import Network, open_stream
from appliance.pki import IssuedPKI
from appliance.sources import Sources
from appliance.stats import Stats
from appliance.tls_engine import EngineFactory
from appliance.validation import PeerRejectedError
from appliance.vault import Vault
from appliance.web import Site
from netstack.ratelimit import per_second
from outcomes.category import Category
from tls.x509 import Purpose

Outcome = tuple[Category, str]


class Gate:
    """Concurrent connections, overall and per source: admission is refused (and counted), never queued."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._per_source: Counter[str] = Counter()
        self.total = 0

    def admit(self, source: str) -> str | None:
        """None when admitted; otherwise the reason for refusing."""
        if self.total >= self._limits.max_connections:
            return f"more than {self._limits.max_connections} concurrent connections"
        if self._per_source[source] >= self._limits.max_connections_per_source:
            return f"more than {self._limits.max_connections_per_source} concurrent connections from one source"
        self.total += 1
        self._per_source[source] += 1
        return None

    def release(self, source: str) -> None:
        self.total -= 1
        self._per_source[source] -= 1
        if not self._per_source[source]:
            del self._per_source[source]


@dataclass
class Appliance:
    network: Network
    engines: EngineFactory
    pki: IssuedPKI  # the leaves and the CA certificate; no CA key (DESIGN.md rule 5)
    vault: Vault
    stats: Stats
    ledger: Ledger
    site: Site
    limits: Limits
    ports: Ports
    log: JsonLog
    sources: Sources  # the root's clocks: records, pages and the time a peer's chain is checked at

    def __post_init__(self) -> None:
        self.gate = Gate(self.limits)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sync_handle: asyncio.TimerHandle | None = None
        self._log_bucket = per_second(self.limits.log_connection_lines_per_second)
        self._log_suppressed = 0

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        handlers: dict[int, tuple[str, Callable[[PlainChannel, str], Awaitable[Outcome]]]] = {
            self.ports.http: ("http", self._http_endpoint),
            self.ports.https: ("https", self._https_endpoint),
            self.ports.mutual: ("mutual", self._mutual_endpoint),
            self.ports.callback: ("callback", self._callback_endpoint),
            self.ports.reverse: ("reverse", self._reverse_endpoint),
        }
        for port, (name, handler) in handlers.items():
            await self.network.start_server(port, self._factory(name, handler))

    async def stop(self) -> None:
        await self.network.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            self.ledger.mark_stopped(self.stats.checkpoint)
        except (OSError, RecordError) as exc:
            self.log.event("ledger-sync-failed", error=type(exc).__name__)

    def _factory(
        self, name: str, handler: Callable[[PlainChannel, str], Awaitable[Outcome]]
    ) -> Callable[[], asyncio.Protocol]:
        def make() -> asyncio.Protocol:
            loop = asyncio.get_running_loop()
            reader = asyncio.StreamReader(limit=self.limits.tls_max_buffered, loop=loop)

            def connected(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                task = loop.create_task(self._serve(name, handler, r, w))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

            return asyncio.StreamReaderProtocol(reader, connected, loop=loop)

        return make

    async def _serve(
        self,
        name: str,
        handler: Callable[[PlainChannel, str], Awaitable[Outcome]],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if peer else "unknown"
        channel = self._plain(reader, writer)
        refusal = self.gate.admit(source)
        if refusal is not None:
            channel.abort()
            self.record(name, source, Category.RESOURCE_LIMIT, refusal)
            return
        category, reason = Category.INTERNAL_ERROR, "unfinished"
        try:
            category, reason = await handler(channel, source)
        except RefusedError as refused:
            category, reason = refused.category, refused.reason
        except asyncio.CancelledError:
            category, reason = Category.CONNECTION_RESET, "service shutting down"
            raise
        except Exception as exc:  # noqa: BLE001 - one connection's bug must not stop the service
            category, reason = Category.INTERNAL_ERROR, type(exc).__name__
        finally:
            await channel.close()
            self.gate.release(source)
            self.record(name, source, category, reason)

    # -- recording -------------------------------------------------------------------------------------

    def record(self, endpoint: str, source: str, category: Category, reason: str) -> None:
        event = Event(self.sources.wall(), endpoint, str(category), source, reason[: self.limits.ledger_reason_bytes])
        if self._log_bucket.allow(event.time):
            self.log.event(
                "connection", endpoint=endpoint, source=source, category=str(category), reason=event.reason,
                suppressed=self._log_suppressed,
            )
            self._log_suppressed = 0
        else:
            self._log_suppressed += 1  # the ledger and statistics still have it
        try:
            # The ledger first: a rollover's checkpoint holds the state before this event, which follows it.
            self.ledger.append(event, self.stats.checkpoint)
        except (OSError, RecordError) as exc:  # a failing disk costs the record, not the service
            self.log.event("ledger-write-failed", error=type(exc).__name__)
            return
        finally:
            self.stats.add(event)
        if self.ledger.sync_due():
            self._sync()
        elif self.ledger.unsynced and self._sync_handle is None:
            loop = asyncio.get_running_loop()
            self._sync_handle = loop.call_later(self.limits.ledger_batch_seconds, self._sync, True)

    def _sync(self, idle: bool = False) -> None:
        """`idle`: called by the batch timer, i.e. no full batch came in its time: the ledger marks the
        point (see Ledger.sync)."""
        if self._sync_handle is not None:
            self._sync_handle.cancel()
            self._sync_handle = None
        started = self.sources.monotonic()
        try:
            self.ledger.sync(idle=idle)
        except OSError as exc:
            self.log.event("ledger-sync-failed", error=type(exc).__name__)
        # The sync runs on the event loop: while the disk takes its time, no frame is read. A slow disk
        # is said on the console, where an operator looking for stalled connections will find it.
        took = self.sources.monotonic() - started
        if took >= self.limits.ledger_sync_slow_seconds:
            self.log.event("ledger-sync-slow", seconds=round(took, 3))

    # -- the vault -------------------------------------------------------------------------------------

    def _release(self, chain: tuple[bytes, ...], purpose: Purpose) -> bytes:
        try:
            return self.vault.release(chain, purpose, self.sources.now())
        except PeerRejectedError as rejected:
            raise RefusedError(rejected.category, rejected.reason) from None

    def _plain(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> PlainChannel:
        limits = self.limits
        return PlainChannel(reader, writer, read_chunk=limits.tls_read_chunk, send_timeout=limits.send_timeout)

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.limits.handshake_timeout

    # -- endpoints -------------------------------------------------------------------------------------

    async def _http_endpoint(self, channel: PlainChannel, source: str) -> Outcome:
        return await self._http(channel)

    async def _https_endpoint(self, channel: PlainChannel, source: str) -> Outcome:
        tls = TlsChannel(self.engines.server(self.pki.web, require_client_cert=False), channel)
        try:
            await tls.handshake(self._deadline())
            return await self._http(tls)
        finally:
            await tls.close()

    async def _mutual_endpoint(self, channel: PlainChannel, source: str) -> Outcome:
        tls = TlsChannel(self.engines.server(self.pki.server, require_client_cert=True), channel)
        try:
            complete = await tls.handshake(self._deadline())
            await tls.send(self._release(complete.peer_chain, Purpose.CLIENT_AUTH) + b"\n")
            return Category.SUCCESS, f"secret sent ({complete.version})"
        finally:
            await tls.close()

    async def _callback_endpoint(self, channel: PlainChannel, source: str) -> Outcome:
        await channel.close()
        try:
            reader, writer = await asyncio.wait_for(
                open_stream(self.network, source, self.ports.callback_target, self.limits.tls_max_buffered),
                self.limits.callback_connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            return Category.CONNECT_BACK_FAILED, f"connecting back to port {self.ports.callback_target}: " + (
                "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            )
        tls = TlsChannel(self.engines.client(self.pki.client), self._plain(reader, writer))
        try:
            complete = await tls.handshake(self._deadline())
            await self._send_as_client(tls, self._release(complete.peer_chain, Purpose.SERVER_AUTH))
            return Category.SUCCESS, f"secret sent on connect-back ({complete.version})"
        finally:
            await tls.close()

    async def _reverse_endpoint(self, channel: PlainChannel, source: str) -> Outcome:
        tls = TlsChannel(self.engines.client(self.pki.client), channel)
        try:
            complete = await tls.handshake(self._deadline())
            await self._send_as_client(tls, self._release(complete.peer_chain, Purpose.SERVER_AUTH))
            return Category.SUCCESS, f"secret sent as TLS client ({complete.version})"
        finally:
            await tls.close()

    async def _send_as_client(self, tls: TlsChannel, secret: bytes) -> None:
        """Send the secret, then let the server close first (for at most `client_linger`). Closing at once
        would make a server that is itself still about to send (our own 10000, short-circuited through a
        proxy) see close_notify before it could answer."""
        await tls.send(secret + b"\n")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(self.limits.client_linger, self.limits.idle_timeout)
        with contextlib.suppress(RefusedError):
            while await tls.recv(deadline - loop.time()):
                pass  # whatever the server says is discarded: it is never echoed or logged

    # -- HTTP ------------------------------------------------------------------------------------------

    async def _http(self, channel: PlainChannel | TlsChannel) -> Outcome:
        parser = RequestParser(self.limits)
        loop = asyncio.get_running_loop()
        served = 0
        request_started: float | None = None
        while served < self.limits.http_max_requests_per_connection:
            try:
                request = parser.next_request()
            except HttpError as error:
                return await self._http_error(channel, error)
            if request is None:
                timeout = self.limits.idle_timeout
                if request_started is not None:
                    timeout = min(timeout, request_started + self.limits.http_request_timeout - loop.time())
                try:
                    data = await channel.recv(timeout)
                except RefusedError as refused:
                    if refused.category is Category.TIMEOUT and parser.has_partial():
                        with contextlib.suppress(RefusedError):
                            await channel.send(
                                serialize_response(
                                    error_response(HttpError(408, "request not completed in time")),
                                    head_only=False, keep_alive=False,
                                )
                            )
                        return Category.TIMEOUT, "HTTP request not completed in time"
                    if refused.category in (Category.TIMEOUT, Category.CONNECTION_RESET) and served:
                        return Category.SERVED, f"{served} requests; then {refused.category}"
                    raise
                if not data:
                    if parser.has_partial():
                        return Category.BAD_REQUEST, "connection closed mid-request"
                    return Category.SERVED, f"{served} requests"
                if request_started is None:
                    request_started = loop.time()
                try:
                    parser.feed(data)
                except HttpError as error:
                    return await self._http_error(channel, error)
                continue
            request_started = loop.time() if parser.has_partial() else None
            served += 1
            keep_alive = request.keep_alive and served < self.limits.http_max_requests_per_connection
            response = self.site.handle(request, self.sources.wall())
            await channel.send(serialize_response(response, head_only=request.method == "HEAD", keep_alive=keep_alive))
            if not keep_alive:
                break
        return Category.SERVED, f"{served} requests"

    @staticmethod
    async def _http_error(channel: PlainChannel | TlsChannel, error: HttpError) -> Outcome:
        with contextlib.suppress(RefusedError):
            await channel.send(serialize_response(error_response(error), head_only=False, keep_alive=False))
        category = Category.RESOURCE_LIMIT if error.limit else Category.BAD_REQUEST
        return category, f"HTTP {error.status}: {error.reason}"
