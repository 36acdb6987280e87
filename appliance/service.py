"""The running bounty: the endpoints (`appliance.endpoints`) over a Network, each connection admitted or
refused at the gate (`appliance.admission`) and ending in exactly one recorded outcome (ledger and statistics).

Protocol lives in `tls`, `appliance.http` and the network stack; what each port does in
`appliance.endpoints`; persistence in `appliance.ledger`. A handler either returns an outcome or raises
`RefusedError`; any other exception is a bug, recorded as `internal-error`, and the service keeps running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from adapters.tls_channel import RefusedError
from appliance.admission import Gate
from appliance.alternates import start_issuing
from appliance.config import Limits, Ports
from appliance.counted_lines import CountedLines, on_running_loop
from appliance.endpoints import Endpoints, Handler, plain_channel
from appliance.identities import ServerIdentities
from appliance.ledger import Ledger
from appliance.ledger_record import Event, RecordError
from appliance.log import JsonLog
from appliance.net import Network
from appliance.pki import IssuedPKI, PendingAlternates
from appliance.sources import Sources
from appliance.stats import Stats
from appliance.tls_engine import EngineFactory
from appliance.vault import Vault
from appliance.web import Site
from outcomes.category import Category


@dataclass
class Appliance:
    """The running service as `assemble` built it: each part it was handed (the capabilities of DESIGN.md rule 5,
    and no CA key), the gate that admits connections, and the one place an outcome is recorded."""

    network: Network
    engines: EngineFactory
    identities: ServerIdentities  # the leaves and the CA certificate; no CA key (DESIGN.md rule 5)
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
        # At most log_connection_lines_per_second connection lines on the console, on the records' own clock
        # (the wall); the count of the others is said (appliance.counted_lines). The ledger and statistics
        # keep every one.
        self._lines = CountedLines(self.limits.log_connection_lines_per_second, clock=self.sources.wall,
                                   say=self._say_count, schedule=on_running_loop)

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def pki(self) -> IssuedPKI:
        return self.identities.current

    async def start(self, alternates: PendingAlternates | None = None) -> None:
        """Listen on every port; then, given the `PendingAlternates` of a PKI whose RSA leaves are still to
        come, have them made in the background (appliance.alternates). Only the task made for that holds the
        `PendingAlternates`, and with it the CA key; this object keeps the task, to cancel it at `stop`."""
        endpoints = Endpoints(network=self.network, engines=self.engines, identities=self.identities,
                              vault=self.vault, site=self.site, limits=self.limits, ports=self.ports,
                              sources=self.sources)
        for port, (name, handler) in endpoints.table().items():
            await self.network.start_server(port, self._factory(name, handler))
        if alternates is not None:
            task = start_issuing(alternates, self.identities, self.log, self.sources.monotonic,
                                 timeout=self.limits.rsa_leaves_timeout)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        await self.network.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._lines.close()  # the run's last count, whatever the rate
        try:
            self.ledger.mark_stopped(self.stats.checkpoint)
        except (OSError, RecordError) as exc:
            self.log.event("ledger-sync-failed", error=type(exc).__name__)

    def _factory(
        self, name: str, handler: Handler
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
        handler: Handler,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if peer else "unknown"
        channel = plain_channel(reader, writer, self.limits)
        slot = self.gate.admit(source, asyncio.get_running_loop().time(), lambda: _withdraw(reader))
        if isinstance(slot, str):
            channel.abort()
            self.record(name, source, Category.RESOURCE_LIMIT, slot)
            return
        category, reason = Category.INTERNAL_ERROR, "unfinished"
        try:
            category, reason = await handler(channel, slot)
        except RefusedError as refused:
            category, reason = refused.category, refused.reason
        except asyncio.CancelledError:
            category, reason = Category.CONNECTION_RESET, "service shutting down"
            raise
        except Exception as exc:  # noqa: BLE001 - one connection's bug must not stop the service
            category, reason = Category.INTERNAL_ERROR, type(exc).__name__
        finally:
            # The outcome is known before the close, and the close may be cancelled (the lingering close at
            # `stop`, which cancels every task): the slot is given back and the outcome recorded whichever
            # way the close ends, so that every connection ends in exactly one record. A handler's TLS is
            # closed here too (`Slot.closer`: its close_notify, then the connection's), for the same reason.
            try:
                await (slot.closer or channel.close)()
            except asyncio.CancelledError:  # the channel aborted the connection before passing it on
                reason = f"{reason}; close cut short (service shutting down)"
                raise
            finally:
                if channel.cut_off is not None:  # the peer went on sending, or never closed, after our last bytes
                    reason = f"{reason}; lingering close cut off at {channel.cut_off}"
                self.gate.release(slot)
                self.record(name, source, category, reason)

    # -- recording -------------------------------------------------------------------------------------

    def record(self, endpoint: str, source: str, category: Category, reason: str) -> None:
        event = Event(self.sources.wall(), endpoint, str(category), source, reason[: self.limits.ledger_reason_bytes])
        suppressed = self._lines.admit(event.time)
        if suppressed is not None:
            self.log.event(
                "connection", endpoint=endpoint, source=source, category=str(category), reason=event.reason,
                suppressed=suppressed,
            )
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

    def _say_count(self, count: int) -> None:
        """The count of connection lines not printed, in a line of its own: when no connection followed a
        burst to carry it, and at the end of the run."""
        self.log.event("connection-lines-suppressed", suppressed=count, limit="log_connection_lines_per_second")

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


def _withdraw(reader: asyncio.StreamReader) -> None:
    """The gate gave this connection's slot away: its handler's wait for more bytes ends at once, as if the
    peer had reset (the handler sees `Slot.displaced` and ends as served). The reader is the service's own;
    unlike closing the transport, this leaves the handler to close the way it always does (TLS sends its
    close_notify first), and what it had already written is still flushed by that close."""
    reader.set_exception(ConnectionAbortedError("connection slot given to a newcomer"))
