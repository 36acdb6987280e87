"""The whole userspace stack behind one asyncio-shaped object: `net = await start_network(link, config)`.

Composition only: a TcpLayer (pure) under a Stack (pure) under a Driver (asyncio), with TcpSockets turning TCP
events into Transport/Protocol callbacks. The randomness the pure layers need (the ISN/cookie secret, DHCP
transaction ids) is drawn here, from the OS, and passed in.

Both families: IPv6 is on by default (SLAAC, RFC 4862, with RFC 7217 stable identifiers keyed by
`NetworkConfig.ipv6_secret`); listeners are port-only and take either family, and a connection leaves from
the address the stack picks for the remote's family (`Stack.source_for`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from adapters.stack_driver import Driver
from adapters.tcp_sockets import ProtocolFactory, TcpServer, TcpSockets, TcpTransport
from netstack.addresses import ip_to_text
from netstack.addresses6 import address_from_text, address_to_text, ip6_to_text, is_v4_mapped
from netstack.config import Ipv6Addressing, StaticIp, UseDhcp, UseSlaac
from netstack.limits import DEFAULT_STACK_LIMITS, StackLimits
from netstack.link.base import Link
from netstack.stack import Stack, StackConfig
from netstack.tcp.config import TcpConfig
from netstack.tcp.layer import TcpLayer

_SLAAC = UseSlaac()
StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None]
STREAM_LIMIT = 64 * 1024


@dataclass(frozen=True)
class NetworkConfig:
    """What `start_network` needs beyond the link: how IPv4 and IPv6 get their addresses, and the TCP and stack
    limits (the appliance passes its limits tree's). The randomness is drawn by `start_network` from the OS,
    save the IPv6 secret, which a caller may fix."""

    addressing: StaticIp | UseDhcp
    tcp: TcpConfig = field(default_factory=TcpConfig)
    stack: StackLimits = DEFAULT_STACK_LIMITS
    ipv6: Ipv6Addressing = _SLAAC
    ipv6_secret: bytes | None = field(default=None, repr=False)
    """Keys the RFC 7217 identifiers: the same secret on the same network gives the same IPv6 addresses
    (None: `start_network` draws one, so the addresses change at every start). Not in the repr: a secret must
    not reach a log line or a failed assertion's message."""


def _parse_address(address: str | bytes) -> bytes:
    """IPv4 or IPv6, as text or as 4 or 16 bytes (`netstack.addresses6.address_from_text`; bytes of an
    IPv4-mapped address likewise mean the IPv4 host)."""
    if isinstance(address, str):
        return address_from_text(address)
    if len(address) not in (4, 16):
        raise ValueError("addresses are 4 bytes (IPv4) or 16 bytes (IPv6)")
    return address[12:] if len(address) == 16 and is_v4_mapped(address) else address


class Network:
    """A running interface: TCP servers and clients over our own stack."""

    def __init__(self, link: Link, stack: Stack, tcp: TcpLayer, driver: Driver, sockets: TcpSockets) -> None:
        self.link = link
        self.stack = stack
        self.tcp = tcp
        self.driver = driver
        self.sockets = sockets
        self._moved: asyncio.Event | None = None  # set when our addresses change, for whoever waits in _until
        self.on_address_change(self._addresses_moved)

    def _addresses_moved(self) -> None:
        if self._moved is not None:
            self._moved.set()
            self._moved = None  # the next wait takes a new one

    @property
    def address(self) -> bytes | None:
        return self.stack.address

    async def wait_address(self, timeout: float = 30.0) -> bytes:
        """Our IPv4 address, waiting for DHCP if need be."""
        address = await self._until(lambda: self.stack.address, timeout)
        if address is None:
            raise TimeoutError("no IPv4 address (DHCP did not complete)")
        return address

    async def wait_source(self, remote: bytes, timeout: float = 30.0) -> bytes:
        """Our address to reach `remote` from (its family's), waiting for one to be configured: DHCP for
        IPv4; duplicate address detection, or router advertisements for a global address, for IPv6. With
        IPv6 off, an IPv6 remote is unreachable at once (nothing would ever come)."""
        if len(remote) == 4:
            return await self.wait_address(timeout)
        if self.stack.ipv6 is None:
            raise OSError(errno.ENETUNREACH, "IPv6 is off on this interface")
        local = await self._until(lambda: self.stack.source_for(remote), timeout)
        if local is None:
            raise TimeoutError(f"no IPv6 address to reach {address_to_text(remote)} from (no router advertised "
                               "a prefix, or duplicate address detection did not complete)")
        return local

    async def _until(self, found: Callable[[], bytes | None], timeout: float) -> bytes | None:
        """`found()` once it is not None, or None after `timeout` seconds. It is asked now, then each time our
        addresses change (`on_address_change`: a DHCP lease bound, an IPv6 address made usable by DAD), not
        on a clock. The waiters share one event and the network one callback, so that a wait costs nothing
        per frame: frames that change no address (a peer can send those at will) wake no one."""
        value = found()
        if value is not None:
            return value
        try:
            async with asyncio.timeout(timeout):
                while (value := found()) is None:
                    if self._moved is None:
                        self._moved = asyncio.Event()
                    await self._moved.wait()
                return value
        except TimeoutError:
            return None

    async def start_server(self, port: int, protocol_factory: ProtocolFactory, backlog: int = 128) -> TcpServer:
        """Both families: the TCP layer's listeners are port-only."""
        return self.sockets.listen(port, protocol_factory, backlog)

    async def open_connection(self, address: str | bytes, port: int, protocol_factory: ProtocolFactory,
                              timeout: float = 30.0) -> tuple[TcpTransport, asyncio.BaseProtocol]:
        """Connect over the remote's family; `timeout` bounds the wait for a local address of that family."""
        remote = _parse_address(address)
        local = await self.wait_source(remote, timeout)
        return await self.sockets.connect(local, remote, port, protocol_factory)

    async def start_stream_server(self, port: int, handler: StreamHandler, backlog: int = 128) -> TcpServer:
        """Like asyncio.start_server: `handler(reader, writer)` per accepted connection."""
        loop = asyncio.get_running_loop()

        def factory() -> asyncio.StreamReaderProtocol:
            reader = asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop)
            return asyncio.StreamReaderProtocol(reader, handler, loop=loop)

        return await self.start_server(port, factory, backlog)

    async def open_stream(self, address: str | bytes, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Like asyncio.open_connection."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport, _ = await self.open_connection(address, port, lambda: protocol)
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    def stats(self) -> dict[str, int]:
        out = dict(self.stack.stats())
        out.update({f"tcp-{k}": v for k, v in self.tcp.stats.items()})
        out["tcp-connections"] = len(self.tcp.by_id)
        out["tcp-half-open"] = len(self.tcp.half_open)
        out["tcp-time-wait"] = self.tcp.time_wait
        return out

    def on_address_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` after each batch of frames or timer in which our addresses changed (a DHCP lease
        bound or lost, an IPv6 address made usable by DAD or expired: Stack.address_changes), and once now."""
        seen: int | None = None

        def check() -> None:
            nonlocal seen
            changes = self.stack.address_changes
            if changes != seen:
                seen = changes
                callback()

        self.driver.after_io.append(check)
        check()

    def ipv6_addresses(self) -> tuple[tuple[bytes, int], ...]:
        """Usable IPv6 addresses with their prefix lengths, link-local first (empty when IPv6 is off)."""
        return self.stack.ipv6.addresses.addresses() if self.stack.ipv6 is not None else ()

    def ipv6_texts(self) -> tuple[str, ...]:
        """The usable IPv6 addresses as ADDR/LEN, link-local first: how `describe` and the appliance's
        `address` log line write them."""
        return tuple(f"{ip6_to_text(address)}/{length}" for address, length in self.ipv6_addresses())

    def describe(self) -> str:
        """The IPv4 address and MTU, then the usable IPv6 addresses (none listed while they are tentative)."""
        address = self.stack.address
        text = f"{ip_to_text(address) if address else 'unconfigured'} mtu {self.stack.mtu}"
        if self.stack.ipv6 is None:
            return text + " ipv6 off"
        usable = " ".join(self.ipv6_texts())
        return f"{text} ipv6 {usable}" if usable else text

    def close(self) -> None:
        self.driver.close()


async def start_network(link: Link, config: NetworkConfig,
                        random_bytes: Callable[[int], bytes] = os.urandom) -> Network:
    """Compose and start the stack on `link` (call from inside the running loop). `random_bytes`: the
    caller's randomness source (the appliance passes its one source down; tests may seed one)."""
    loop = asyncio.get_running_loop()
    tcp_config = dataclasses.replace(config.tcp, mtu=link.mtu)
    tcp = TcpLayer(random_bytes(32), tcp_config)
    rng = random.Random(random_bytes(16))  # noqa: S311 (DHCP transaction ids and IP ids, not secrets)
    # Drawn here rather than by the stack: its generator is for packet ids, not for a secret.
    ipv6_secret = config.ipv6_secret if config.ipv6_secret is not None else random_bytes(32)
    stack_config = StackConfig(mac=link.mac, addressing=config.addressing, mtu=link.mtu, limits=config.stack,
                               ipv6=config.ipv6, ipv6_secret=ipv6_secret)
    stack = Stack(stack_config, tcp, rng=rng)
    driver = Driver(link, stack, loop)
    sockets = TcpSockets(tcp, driver, loop)
    driver.start()
    return Network(link, stack, tcp, driver, sockets)
