"""The five endpoints of DESIGN.md's table: what each port does with a connection, and the outcome it ends in.

Each handler gets an admitted connection (a PlainChannel) and its slot at the gate (the peer's address, when
it was accepted, whether the gate took it back), and returns an outcome or
raises `RefusedError`; admission, recording and the ledger are the service's (`appliance.service`), and so is
the close: a handler that runs TLS leaves its channel's close in `Slot.closer`, not in a `finally` of its own.
That close lingers; cancelled there (at `stop`), it would replace the outcome already known (a secret sent
included) by the cancellation. Only the
endpoints that may give the secret away hold the vault; the pages get the site, which holds a prover.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from adapters.tls_channel import PlainChannel, RefusedError, TlsChannel
from appliance.admission import Slot
from appliance.config import Limits, Ports
from appliance.http import HttpError, Request, RequestParser, Response, error_response, serialize_response
from appliance.identities import ServerIdentities
from appliance.net import Network, open_stream
from appliance.pki import IssuedPKI
from appliance.sources import Sources
from appliance.tls_engine import EngineFactory
from appliance.validation import PeerRejectedError
from appliance.vault import Vault
from appliance.web import Site
from outcomes.category import Category
from tls.events import HandshakeComplete, RequestRefused
from tls.x509 import Purpose

Outcome = tuple[Category, str]
DISPLACED_UNANSWERED = "slot given to a newcomer before anything was answered (table full)"
Handler = Callable[[PlainChannel, Slot], Awaitable[Outcome]]


def plain_channel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limits: Limits) -> PlainChannel:
    """A connection's channel with the appliance's bounds: every close of it is a lingering one (within
    `linger_seconds` and `linger_bytes`), so that a refusal's alert or error response reaches the peer."""
    return PlainChannel(reader, writer, read_chunk=limits.tls_read_chunk, send_timeout=limits.send_timeout,
                        linger_seconds=limits.linger_seconds, linger_bytes=limits.linger_bytes)


class Endpoints:
    """The handlers, with what they need and no more: the vault (for `release`) is theirs alone."""

    def __init__(self, *, network: Network, engines: EngineFactory, identities: ServerIdentities, vault: Vault,
                 site: Site, limits: Limits, ports: Ports, sources: Sources) -> None:
        self.network = network
        self.engines = engines
        self.identities = identities
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

    async def _server_identities(self, deadline: float) -> IssuedPKI:
        """The leaves a TLS server role presents, RSA leaves included: a connection that comes while those are
        still being made (appliance.alternates) waits for them, within its handshake's time, so that every
        client is offered every certificate. Once they are settled (every connection but the first few after
        boot), no timer is armed for a wait that cannot happen."""
        if self.identities.is_settled:
            return self.identities.current
        try:
            async with asyncio.timeout_at(deadline):
                return await self.identities.settled()
        except TimeoutError:
            raise RefusedError(Category.TIMEOUT, "the server's certificates were not ready in time") from None

    # -- the endpoints -------------------------------------------------------------------------------------

    async def http(self, channel: PlainChannel, slot: Slot) -> Outcome:
        return await self._http(channel, slot)

    async def https(self, channel: PlainChannel, slot: Slot) -> Outcome:
        """The pages over TLS. A connection whose peer asked to renegotiate (refused with a warning, RFC 5246
        §7.2.2, and then served or abandoned) is recorded as that attempt, the pages it got in the reason."""
        refused: list[RequestRefused] = []  # as many as the engine refuses before it ends the connection
        deadline = self._deadline()
        web = (await self._server_identities(deadline)).web
        tls = TlsChannel(self.engines.server(web, require_client_cert=False), channel,
                         on_request_refused=refused.append)
        slot.closer = tls.close
        await self._handshake(tls, deadline, slot)
        category, reason = await self._http(tls, slot)
        if refused and category is Category.SERVED:
            first = refused[0]
            return first.category, f"{first.reason} (warning alert {first.alert}); {reason}"
        return category, reason

    async def mutual(self, channel: PlainChannel, slot: Slot) -> Outcome:
        deadline = self._deadline()
        server = (await self._server_identities(deadline)).server
        tls = TlsChannel(self.engines.server(server, require_client_cert=True), channel)
        slot.closer = tls.close
        complete = await self._handshake(tls, deadline, slot)
        slot.unanswered = False  # from here on it is being answered (the release), which is never cut short
        await tls.send(self._release(complete.peer_chain, Purpose.CLIENT_AUTH) + b"\n")
        return Category.SUCCESS, f"secret sent ({complete.version})"

    async def callback(self, channel: PlainChannel, slot: Slot) -> Outcome:
        # Nothing was sent on this connection, so there is nothing for a lingering close to deliver; lingering
        # would only hold back the connect-back while a caller keeps its end open.
        await channel.close(linger=False)
        try:
            reader, writer = await asyncio.wait_for(
                open_stream(self.network, slot.source, self.ports.callback_target, self.limits.tls_max_buffered),
                self.limits.callback_connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            return Category.CONNECT_BACK_FAILED, f"connecting back to port {self.ports.callback_target}: " + (
                "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            )
        client = self.engines.client(self.identities.current.client)
        tls = TlsChannel(client, plain_channel(reader, writer, self.limits))
        slot.closer = tls.close  # the connect-back's close (the peer's connection is closed already)
        complete = await tls.handshake(self._deadline())
        await self._send_as_client(tls, self._release(complete.peer_chain, Purpose.SERVER_AUTH))
        return Category.SUCCESS, f"secret sent on connect-back ({complete.version})"

    async def reverse(self, channel: PlainChannel, slot: Slot) -> Outcome:
        tls = TlsChannel(self.engines.client(self.identities.current.client), channel)
        slot.closer = tls.close
        complete = await self._handshake(tls, self._deadline(), slot)
        slot.unanswered = False  # from here on it is being answered (the release), which is never cut short
        await self._send_as_client(tls, self._release(complete.peer_chain, Purpose.SERVER_AUTH))
        return Category.SUCCESS, f"secret sent as TLS client ({complete.version})"

    @staticmethod
    async def _handshake(tls: TlsChannel, deadline: float, slot: Slot) -> HandshakeComplete:
        """The handshake of a connection the peer opened (443, 10000, 10002), bounded from accept by
        `deadline`, during which the gate may give the slot to a newcomer (`Slot.unanswered`): the wait for
        the peer's next flight then ends at once, and the connection is recorded as that, not as a reset.
        A handshake can also complete after its slot was given away: withdrawing wakes a wait for the peer's
        bytes, not our last flight's wait for the peer to take it. Such a connection ends here too, the same
        way, before anything is released: it no longer holds a place in the table."""
        slot.unanswered = True
        try:
            complete = await tls.handshake(deadline)
        except RefusedError:
            if slot.displaced:
                raise RefusedError(Category.RESOURCE_LIMIT, DISPLACED_UNANSWERED) from None
            raise
        if slot.displaced:
            raise RefusedError(Category.RESOURCE_LIMIT, DISPLACED_UNANSWERED)
        return complete

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

    async def _http(self, channel: PlainChannel | TlsChannel, slot: Slot) -> Outcome:
        """Requests in, responses out, until the peer closes, a refusal, or one of three bounds on a connection
        that behaves: its number of requests, its lifetime from accept (one request per idle period would
        otherwise hold the slot for 100 of them), and the gate giving its slot to a newcomer while it is
        idle. Each bound ends the connection at a request boundary, the last response (if one is in progress)
        saying Connection: close, and is recorded as `served` with the bound named in the reason: the client
        got every response it asked for, and ending a persistent connection is the server's right (RFC 9112
        §9.6), not the peer's fault that `timeout` and `resource-limit` record.

        The first request is timed from the start (accept on port 80, the end of the handshake on 443), not
        from its first byte: a connection that sends nothing ends after `http_request_timeout` as `timeout`,
        rather than holding its slot for `idle_timeout` (and one byte then for another request timeout).
        Until it is complete the slot is `unanswered`: the gate may give it to a newcomer when the table is
        full, which records it as `resource-limit`."""
        parser = RequestParser(self.limits)
        loop = asyncio.get_running_loop()
        end_of_life = slot.accepted + self.limits.http_connection_lifetime
        served = 0
        request_started: float | None = loop.time()
        slot.unanswered = True
        while True:
            try:
                request = parser.next_request()
            except HttpError as error:
                return await self._http_error(channel, error, served)
            if request is None:
                timeout = self.limits.idle_timeout
                if request_started is not None:
                    timeout = min(timeout, request_started + self.limits.http_request_timeout - loop.time())
                if not parser.has_partial():  # a request under way may finish (within its own timeout)
                    timeout = min(timeout, end_of_life - loop.time())
                slot.idle = served > 0 and not parser.has_partial()
                try:
                    data = await channel.recv(timeout)
                except RefusedError as refused:
                    return await self._http_wait_ended(channel, refused, parser=parser, served=served, slot=slot,
                                                         end_of_life=end_of_life)
                finally:
                    slot.idle = False
                if not data:
                    if parser.has_partial():
                        return Category.BAD_REQUEST, "connection closed mid-request"
                    return Category.SERVED, f"{served} requests"
                if request_started is None:
                    request_started = loop.time()
                try:
                    parser.feed(data)
                except HttpError as error:
                    return await self._http_error(channel, error, served)
                if served and not parser.has_partial():
                    # The last request's body (timed as part of it) has all been discarded: the wait for the
                    # next request is the idle one again, and that request is timed from its own first byte.
                    request_started = None
                continue
            request_started = loop.time() if parser.has_partial() else None
            served += 1
            slot.unanswered = False
            response, failure = self._page(request, slot)
            ending = failure or self._http_ending(served, loop.time() >= end_of_life, slot)
            keep_alive = request.keep_alive and ending is None
            try:
                await channel.send(serialize_response(response, head_only=request.method == "HEAD",
                                                      keep_alive=keep_alive))
            except RefusedError:
                if not slot.displaced:
                    raise
                # Withdrawn while this request was on its way in: the reader's error reaches drain(), but
                # the response was written and the close flushes it.
            if failure is not None:
                return Category.INTERNAL_ERROR, f"{failure}; after {served - 1} requests served"
            if not keep_alive:
                return Category.SERVED, f"{served} requests" + (f"; {ending}" if ending and request.keep_alive else "")

    def _http_ending(self, served: int, lifetime_over: bool, slot: Slot) -> str | None:
        """Why this connection serves no request after the current one (None: it may go on)."""
        if served >= self.limits.http_max_requests_per_connection:
            return "request limit reached"
        if lifetime_over:
            return f"connection lifetime ({self.limits.http_connection_lifetime:g} s) reached"
        if slot.displaced:
            return "slot given to a newcomer (table full)"
        return None

    def _page(self, request: Request, slot: Slot) -> tuple[Response, str | None]:
        """The site's response, and what failed if a page raised. A bug in a page is answered with a 500 and
        ends the connection as an internal error, rather than leaving the client with no response at all."""
        try:
            return self.site.handle(request, self.sources.wall(), source=slot.source), None
        except Exception as exc:  # noqa: BLE001 - one page's bug must not cost the connection its answer
            return error_response(HttpError(500, "the page failed")), f"{type(exc).__name__} in a page"

    async def _http_wait_ended(self, channel: PlainChannel | TlsChannel, refused: RefusedError, *,
                               parser: RequestParser, served: int, slot: Slot, end_of_life: float) -> Outcome:
        """The wait for the peer's next bytes ended without any: the gate took the slot back, a deadline
        passed, or the peer went away. Which of these the connection's outcome says."""
        if slot.displaced and not served:
            return Category.RESOURCE_LIMIT, DISPLACED_UNANSWERED
        if slot.displaced:
            return Category.SERVED, f"{served} requests; then idle, slot given to a newcomer (table full)"
        timed_out = refused.category is Category.TIMEOUT
        if timed_out and parser.has_partial():
            with contextlib.suppress(RefusedError):
                await channel.send(serialize_response(
                    error_response(HttpError(408, "request not completed in time")), head_only=False, keep_alive=False,
                ))
            return Category.TIMEOUT, "HTTP request not completed in time"
        if timed_out and not served:
            return Category.TIMEOUT, "no HTTP request in time"
        if timed_out and served and asyncio.get_running_loop().time() >= end_of_life:
            return Category.SERVED, f"{served} requests; then connection lifetime " \
                f"({self.limits.http_connection_lifetime:g} s) reached"
        if refused.category in (Category.TIMEOUT, Category.CONNECTION_RESET) and served:
            return Category.SERVED, f"{served} requests; then {refused.category}"
        raise refused

    @staticmethod
    async def _http_error(channel: PlainChannel | TlsChannel, error: HttpError, served: int) -> Outcome:
        """Answer a refused request and close. The outcome is the refusal's; the reason keeps the requests
        served before it, so a keep-alive connection's earlier pages are not lost from the record."""
        with contextlib.suppress(RefusedError):
            await channel.send(serialize_response(error_response(error), head_only=False, keep_alive=False))
        category = Category.RESOURCE_LIMIT if error.limit else Category.BAD_REQUEST
        earlier = f"; after {served} requests served" if served else ""
        return category, f"HTTP {error.status}: {error.reason}{earlier}"
