"""The real service (`Appliance`: gate, endpoints, pages, recording) over in-memory connections, for tests that
run on the virtual clock (`tests.virtual_time`).

Why not sockets: the bounds these tests check are minutes long (a connection's lifetime, a client trickling
one request every 28 s). On the virtual clock they take no time and cannot race a busy machine; and any
source address can connect, so fairness between sources is testable without configuring addresses.
A connection here is a pair of objects: the service's side is an asyncio Transport feeding the protocol the
service's factory made, the client's side is a StreamReader plus `send`/`close`.
"""

from __future__ import annotations

import asyncio
import io
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from appliance.config import Limits, Ports
from appliance.disk import Disk
from appliance.identities import ServerIdentities
from appliance.ledger import Ledger, LedgerArea
from appliance.log import JsonLog
from appliance.net import Addresses
from appliance.ours_tls import OursFactory
from appliance.pki import IssuedPKI
from appliance.service import Appliance
from appliance.sources import Sources
from appliance.stats import Stats
from appliance.vault import Vault
from appliance.web import Site
from outcomes.category import Category

ProtocolFactory = Callable[[], asyncio.Protocol]
T = TypeVar("T")
WALL = 1_800_000_000.0


class _ServiceSide(asyncio.Transport):
    """The transport the service writes to: what it writes reaches the client's reader at once."""

    def __init__(self, source: str, to_client: asyncio.StreamReader, *, half_close: bool = False) -> None:
        super().__init__()
        self._peer = (source, 40000)
        self._to_client = to_client
        self._half_close = half_close  # True: the service's close lingers (PlainChannel.close), as on TCP
        self._eof_written = False
        self._protocol: asyncio.Protocol | None = None
        self.closing = False

    def connect(self, protocol: asyncio.Protocol) -> None:
        self._protocol = protocol
        protocol.connection_made(self)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self._peer, "sockname": ("192.0.2.254", 80)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.closing and not self._eof_written:
            self._to_client.feed_data(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        self._to_client.feed_eof()
        assert self._protocol is not None
        asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return self._half_close

    def write_eof(self) -> None:
        if not self._half_close:
            raise NotImplementedError
        self._eof_written = True
        self._to_client.feed_eof()

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass  # the client side delivers only when a test sends

    def resume_reading(self) -> None:
        pass

    def deliver(self, data: bytes) -> None:
        if not self.closing and self._protocol is not None:
            self._protocol.data_received(data)

    def deliver_eof(self) -> None:
        if not self.closing and self._protocol is not None:
            self._protocol.eof_received()


@dataclass
class Client:
    """The client's end of one connection."""

    reader: asyncio.StreamReader
    _transport: _ServiceSide

    def send(self, data: bytes) -> None:
        self._transport.deliver(data)

    def close(self) -> None:
        self._transport.deliver_eof()

    async def response(self) -> tuple[int, dict[str, str], bytes] | None:
        """The next whole response (status, headers with lower-case names, body), or None at end of stream."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    async def responses(self) -> list[int]:
        """Statuses of everything until the service closes."""
        statuses = []
        while (answer := await self.response()) is not None:
            statuses.append(answer[0])
        return statuses


class MemoryNetwork:
    """The `Network` the service listens on: a test connects from any source address it names."""

    name = "memory"

    def __init__(self) -> None:
        self._servers: dict[int, ProtocolFactory] = {}

    async def start_server(self, port: int, factory: ProtocolFactory) -> _Listener:
        self._servers[port] = factory
        return _Listener()

    async def open_connection(self, host: str, port: int, factory: ProtocolFactory) -> tuple[
            asyncio.BaseTransport, asyncio.Protocol]:
        raise OSError("no connect-back in memory")

    async def close(self) -> None:
        self._servers.clear()

    def counters(self) -> dict[str, int]:
        return {}

    def watch_addresses(self, report: Callable[[Addresses], None], min_interval: float) -> None:
        """No addresses to report: a test names its sources itself."""

    def connect(self, port: int, source: str, *, half_close: bool = False) -> Client:
        reader = asyncio.StreamReader()
        transport = _ServiceSide(source, reader, half_close=half_close)
        transport.connect(self._servers[port]())
        return Client(reader, transport)


class _Listener:
    def close(self) -> None:
        pass


@dataclass
class Outcome:
    endpoint: str
    source: str
    category: Category
    reason: str
    at: float  # virtual time of the record: when the connection ended


@dataclass
class MemoryService:
    service: Appliance
    network: MemoryNetwork
    outcomes: list[Outcome] = field(default_factory=list)

    def connect(self, source: str, *, https: bool = False, half_close: bool = False) -> Client:
        """`half_close`: the connection can half-close, so the service's close lingers until the client
        closes too (else it closes at once, as on a transport that cannot)."""
        ports = self.service.ports
        return self.network.connect(ports.https if https else ports.http, source, half_close=half_close)

    async def settle(self) -> None:
        """Let every ready task run (the virtual clock stands still while any can)."""
        for _ in range(20):
            await asyncio.sleep(0)


def _no_random(n: int) -> bytes:
    raise AssertionError("serving HTTP draws no randomness")


async def start_memory_service(tmp_path: Path, limits: Limits, pki: IssuedPKI | None = None, *,
                               settled: bool = True) -> MemoryService:
    """The service with a ledger on a temporary disk, a site with a fresh (unfunded) key, and its outcomes
    captured as they are recorded; the wall clock stands still (so rate limits never refill by themselves).
    With `pki` (issued at `WALL`), port 443 runs our TLS engine; without, only port 80 can be used. Not
    `settled`: the server identities wait for their RSA leaves, which the test settles
    (`service.identities.settle`), as after a boot whose RSA key is still being made."""
    stats = Stats(limits)
    ledger = Ledger(LedgerArea(Disk(tmp_path / "disk"), limits.ledger_region_bytes), limits)
    ledger.open(stats.initial, stats.replay, stats.checkpoint)
    site = Site(Vault(os.urandom(32), lambda *a: None).prover(), b"ca\n", stats, None, Ports(), limits, "memory")
    network = MemoryNetwork()
    loop = asyncio.get_running_loop()
    sources = Sources(wall=lambda: WALL, monotonic=loop.time, random=_no_random if pki is None else os.urandom)
    engines = None if pki is None else OursFactory(pki.ca_der, sources, limits.tls)
    service = Appliance(
        network=network,
        engines=engines,  # type: ignore[arg-type]
        vault=None,  # type: ignore[arg-type]
        identities=None if pki is None else ServerIdentities(pki, settled=settled),  # type: ignore[arg-type]
        stats=stats, ledger=ledger, site=site, limits=limits, ports=Ports(), log=JsonLog(io.StringIO()),
        sources=sources,
    )
    running = MemoryService(service, network)
    record = service.record

    def capture(endpoint: str, source: str, category: Category, reason: str) -> None:
        running.outcomes.append(Outcome(endpoint, source, category, reason, loop.time()))
        record(endpoint, source, category, reason)

    service.record = capture  # type: ignore[method-assign]
    await service.start()
    return running


class TlsClient:
    """Python's ssl over a memory connection: a browser's side of HTTPS (by default one that verifies
    nothing: these tests check the service, not trust)."""

    def __init__(self, client: Client, context: ssl.SSLContext | None = None) -> None:
        if context is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._in, self._out)
        self._client = client

    async def _step(self, action: Callable[[], T]) -> T:
        while True:
            try:
                result = action()
            except ssl.SSLWantReadError:
                self._client.send(self._out.read())
                data = await self._client.reader.read(65536)
                if data:
                    self._in.write(data)
                else:
                    self._in.write_eof()
            else:
                self._client.send(self._out.read())
                return result

    async def handshake(self) -> None:
        await self._step(self.tls.do_handshake)

    async def get(self, path: str) -> bytes:
        self.tls.write(get(path))
        return await self._step(lambda: self.tls.read(65536))

    async def read(self) -> bytes:
        return await self._step(lambda: self.tls.read(65536))


def get(path: str) -> bytes:
    """A keep-alive GET."""
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
