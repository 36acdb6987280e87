"""The five endpoints of DESIGN.md's table: what each port does with a connection, and the outcome it ends in.

Each handler gets an admitted connection (a PlainChannel) and the peer's address, and returns an outcome or
raises `RefusedError`; admission, recording and the ledger are the service's (`appliance.service`). Only the
endpoints that may give the secret away hold the vault; the pages get the site, which holds a prover.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from adapters.tls_channel import PlainChannel, RefusedError, TlsChannel
from appliance.config import Limits, Ports
from appliance.http import HttpError, RequestParser, error_response, serialize_response
from appliance.net import Network, open_stream
from appliance.pki import IssuedPKI
from appliance.sources import Sources
from appliance.tls_engine import EngineFactory
from appliance.validation import PeerRejectedError
from appliance.vault import Vault
from appliance.web import Site
from outcomes.category import Category
from tls.x509 import Purpose

Outcome = tuple[Category, str]
Handler = Callable[[PlainChannel, str], Awaitable[Outcome]]


def plain_channel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limits: Limits) -> PlainChannel:
    return PlainChannel(reader, writer, read_chunk=limits.tls_read_chunk, send_timeout=limits.send_timeout)


class Endpoints:
    """The handlers, with what they need and no more: the vault (for `release`) is theirs alone."""

    def __init__(self, *, network: Network, engines: EngineFactory, pki: IssuedPKI, vault: Vault, site: Site,
                 limits: Limits, ports: Ports, sources: Sources) -> None:
        self.network = network
        self.engines = engines
        self.pki = pki
        self._vault = vault
        self.site = site
        self.limits = limits
        self.ports = ports
        self.sources = sources

    def table(self) -> dict[int, tuple[str, Handler]]:
        """Port -> (endpoint name as the ledger and statistics know it, handler)."""
        return {
            self.ports.http: ("http", self.http),
            self.ports.https: ("https", self.https),
            self.ports.mutual: ("mutual", self.mutual),
            self.ports.callback: ("callback", self.callback),
            self.ports.reverse: ("reverse", self.reverse),
        }

    # -- the vault -------------------------------------------------------------------------------------

    def _release(self, chain: tuple[bytes, ...], purpose: Purpose) -> bytes:
        try:
            return self._vault.release(chain, purpose, self.sources.now())
        except PeerRejectedError as rejected:
            raise RefusedError(rejected.category, rejected.reason) from None

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.limits.handshake_timeout

    # -- the endpoints -------------------------------------------------------------------------------------

    async def http(self, channel: PlainChannel, source: str) -> Outcome:
        return await self._http(channel)

    async def https(self, channel: PlainChannel, source: str) -> Outcome:
        tls = TlsChannel(self.engines.server(self.pki.web, require_client_cert=False), channel)
        try:
            await tls.handshake(self._deadline())
            return await self._http(tls)
        finally:
            await tls.close()

    async def mutual(self, channel: PlainChannel, source: str) -> Outcome:
        tls = TlsChannel(self.engines.server(self.pki.server, require_client_cert=True), channel)
        try:
            complete = await tls.handshake(self._deadline())
            await tls.send(self._release(complete.peer_chain, Purpose.CLIENT_AUTH) + b"\n")
            return Category.SUCCESS, f"secret sent ({complete.version})"
        finally:
            await tls.close()

    async def callback(self, channel: PlainChannel, source: str) -> Outcome:
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
        tls = TlsChannel(self.engines.client(self.pki.client), plain_channel(reader, writer, self.limits))
        try:
            complete = await tls.handshake(self._deadline())
            await self._send_as_client(tls, self._release(complete.peer_chain, Purpose.SERVER_AUTH))
            return Category.SUCCESS, f"secret sent on connect-back ({complete.version})"
        finally:
            await tls.close()

    async def reverse(self, channel: PlainChannel, source: str) -> Outcome:
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
