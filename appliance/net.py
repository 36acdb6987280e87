"""The Network the appliance runs on: the kernel's sockets or our userspace stack, one small interface.

Both give asyncio Transports and Protocols, so the endpoints are written once, over asyncio streams,
and the benchmark can swap the stack underneath them (DESIGN.md, "appliance").
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from adapters import network as stack_network
from appliance.config import DEFAULT_LIMITS, Limits
from appliance.log import Value
from netstack.addresses import ip_to_text
from netstack.config import (
    ConfigError,
    Ipv6Addressing,
    StaticIp,
    UseDhcp,
    UseSlaac,
    parse_cmdline,
    parse_cmdline6,
    parse_ip6,
    parse_static,
)
from netstack.link.base import Link
from netstack.link.packet import PacketLink
from netstack.link.tap import TapLink

ProtocolFactory = Callable[[], asyncio.Protocol]


@dataclass(frozen=True)
class Addresses:
    """The interface's addresses as the log reports them: the IPv4 address with its prefix length and gateway
    (None until a DHCP lease binds, and again if it is lost), and the usable IPv6 addresses (link-local first;
    tentative ones are not listed). Why the log says it: with DHCP or SLAAC only the appliance knows where it
    can be reached, and an operator reads it from the console."""

    ipv4: str | None
    gateway: str | None
    ipv6: tuple[str, ...]

    def fields(self) -> dict[str, Value]:
        """For a log line: the IPv6 addresses space-separated ("" for none), as `describe` lists them."""
        return {"ipv4": self.ipv4, "gateway": self.gateway, "ipv6": " ".join(self.ipv6)}


class Listener(Protocol):
    def close(self) -> None: ...


class Network(Protocol):
    name: str

    async def start_server(self, port: int, factory: ProtocolFactory) -> Listener: ...

    async def open_connection(
        self, host: str, port: int, factory: ProtocolFactory
    ) -> tuple[asyncio.BaseTransport, asyncio.Protocol]: ...

    async def close(self) -> None: ...

    def counters(self) -> dict[str, int]:
        """The stack's own drop and event counters, for /stats.json (empty when the kernel does the work)."""
        ...

    def watch_addresses(self, report: Callable[[Addresses], None], min_interval: float) -> None:
        """Call `report` with the addresses whenever they change, first when there is one, at most once per
        `min_interval` (nothing when the host kernel has them: they are the host's)."""
        ...


DEFAULT_KERNEL_HOSTS = "127.0.0.1,::1"
"""`--host` with `--net kernel`: both loopbacks, so the host-kernel mode answers over both families too."""


def parse_hosts(text: str) -> tuple[str, ...]:
    """`--host`: one address or a comma-separated list (`0.0.0.0,::` for every interface of both families:
    asyncio makes IPv6 listeners IPv6-only, so each family is named)."""
    hosts = tuple(h.strip() for h in text.split(",") if h.strip())
    if not hosts:
        raise ValueError(f"--host {text!r}: expected an address or a comma-separated list of them")
    return hosts


class KernelNetwork:
    """Plain asyncio over the host kernel's TCP/IP: for quick runs, tests and side-by-side benchmarks.
    `host`: one address, or several (an IPv4 and an IPv6 one for both families); each port listens on all."""

    def __init__(self, host: str | Sequence[str]) -> None:
        self.hosts = parse_hosts(host) if isinstance(host, str) else tuple(host)
        self.host = self.hosts[0]
        self.name = f"kernel:{','.join(self.hosts)}"
        self._servers: list[asyncio.Server] = []

    async def start_server(self, port: int, factory: ProtocolFactory) -> Listener:
        loop = asyncio.get_running_loop()
        hosts = self.hosts[0] if len(self.hosts) == 1 else list(self.hosts)
        server = await loop.create_server(factory, hosts, port, reuse_address=True, backlog=128)
        self._servers.append(server)
        return server

    async def open_connection(
        self, host: str, port: int, factory: ProtocolFactory
    ) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
        loop = asyncio.get_running_loop()
        return await loop.create_connection(factory, host, port)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()

    def counters(self) -> dict[str, int]:
        return {}  # the host kernel keeps its own (/proc/net/snmp); they are not the appliance's to publish

    def watch_addresses(self, report: Callable[[Addresses], None], min_interval: float) -> None:
        """Nothing to report: the host's addresses are the host's, and it names them."""


class NetworkStartError(RuntimeError):
    """`--net tap:` / `--net packet:` cannot start: the addressing (`--ip`, `--ip6`, or the kernel command
    line's `ip=` / `ip6=`) is malformed or the link does not open."""


LOCAL_MAC_PREFIX = b"\x02\x50\x4e"  # locally administered ("PN"): a TAP device needs a MAC for our side


class UserspaceNetwork:
    """Our own Ethernet/ARP/IPv4/IPv6/TCP stack (`adapters.network`) on a TAP device or an AF_PACKET socket:
    every listener takes both families."""

    def __init__(self, network: stack_network.Network, description: str) -> None:
        self._network = network
        self.name = description
        self._servers: list[Listener] = []
        self._report_timer: asyncio.TimerHandle | None = None  # a change held back by watch_addresses

    async def start_server(self, port: int, factory: ProtocolFactory) -> Listener:
        server = await self._network.start_server(port, factory)
        self._servers.append(server)
        return server

    async def open_connection(
        self, host: str, port: int, factory: ProtocolFactory
    ) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
        transport, protocol = await self._network.open_connection(host, port, factory)
        assert isinstance(protocol, asyncio.Protocol)
        return transport, protocol

    async def close(self) -> None:
        if self._report_timer is not None:  # a closed network has no addresses left to report
            self._report_timer.cancel()
            self._report_timer = None
        for server in self._servers:
            server.close()
        self._network.close()

    def counters(self) -> dict[str, int]:
        """Every netstack counter (drops per reason, TCP events, link errors): what attackers threw at the
        layers below TLS, which never becomes a connection and so never reaches the ledger."""
        return {name: int(value) for name, value in sorted(self._network.stats().items())}

    def addresses(self) -> Addresses:
        """What the stack has now: its IPv4 configuration and its usable IPv6 addresses."""
        ipv4 = self._network.stack.interface
        return Addresses(
            ipv4=f"{ip_to_text(ipv4.address)}/{ipv4.prefix_len}" if ipv4 is not None else None,
            gateway=ip_to_text(ipv4.gateway) if ipv4 is not None and ipv4.gateway is not None else None,
            ipv6=self._network.ipv6_texts(),
        )

    def watch_addresses(self, report: Callable[[Addresses], None], min_interval: float) -> None:
        """On every change the stack counts (adapters.network.Network.on_address_change), report the addresses
        if they differ from the last report; the first report is the first address, at once. A change within
        `min_interval` of the last report waits for its end and is reported then, as the addresses are by
        then: an attacker on the link who makes the addresses change (router advertisements, a rogue DHCP
        server) gets one line per interval at most, and the last line always tells the current state."""
        loop = asyncio.get_running_loop()
        last = Addresses(None, None, ())
        reported_at = -math.inf

        def changed() -> None:
            nonlocal last, reported_at
            current = self.addresses()
            if current == last or self._report_timer is not None:
                return
            wait = reported_at + min_interval - loop.time()
            if wait > 0:
                self._report_timer = loop.call_later(wait, flush)
                return
            last, reported_at = current, loop.time()
            report(current)

        def flush() -> None:
            self._report_timer = None
            changed()

        self._network.on_address_change(changed)


def parse_net_spec(spec: str) -> tuple[str, str]:
    kind, _, interface = spec.partition(":")
    if kind not in ("tap", "packet") or not interface:
        raise ValueError(f"--net {spec!r}: expected kernel, tap:IF or packet:IF")
    return kind, interface


def _addressing(addressing: str | None) -> StaticIp | UseDhcp:
    if addressing == "dhcp":
        return UseDhcp()
    if addressing is not None:
        return parse_static(addressing)
    cmdline = Path("/proc/cmdline").read_text() if Path("/proc/cmdline").exists() else ""
    return parse_cmdline(cmdline) or UseDhcp()


def ipv6_addressing(text: str | None, cmdline: str | None = None) -> Ipv6Addressing:
    """`--ip6`: "auto" (SLAAC), "off", "ADDR/LEN[,gw=G]", or None for the kernel command line's `ip6=`
    (SLAAC when it has none). A malformed value, given or on the command line, is a NetworkStartError."""
    if text is not None:
        try:
            return parse_ip6(text)
        except ConfigError as exc:
            raise NetworkStartError(f"--ip6 {text!r}: {exc}") from exc
    if cmdline is None:
        cmdline = Path("/proc/cmdline").read_text() if Path("/proc/cmdline").exists() else ""
    try:
        return parse_cmdline6(cmdline) or UseSlaac()
    except ConfigError as exc:
        raise NetworkStartError(f"the kernel command line's ip6=: {exc}") from exc


async def userspace_network(
    spec: str, addressing: str | None, random_bytes: Callable[[int], bytes], limits: Limits = DEFAULT_LIMITS,
    addressing6: str | None = None,
) -> Network:
    """`tap:IF` or `packet:IF` over `adapters.network.start_network`. `addressing`: "dhcp", "A.B.C.D/N[,gw=G]",
    or None for the kernel command line's `ip=` (DHCP when it has none); `addressing6` likewise for IPv6
    (`ipv6_addressing`).

    The RFC 7217 secret behind the IPv6 addresses is drawn at every boot from the appliance's random source,
    so the SLAAC addresses change at each boot (the static one does not). Stable addresses would need a
    durable, non-secret identity to derive the secret from, and the data disk has none: its header holds the
    wallet key and the layout, nothing random that is not key material, and the secret is never derived
    from the wallet key. Operators who need a fixed IPv6 address give one (`--ip6 ADDR/LEN`)."""
    kind, interface = parse_net_spec(spec)
    try:
        chosen = _addressing(addressing)
    except ConfigError as exc:
        raise NetworkStartError(f"--ip {addressing!r}: {exc}") from exc
    chosen6 = ipv6_addressing(addressing6)
    try:
        link: Link = (
            TapLink(interface, LOCAL_MAC_PREFIX + random_bytes(3)) if kind == "tap" else PacketLink(interface)
        )
    except OSError as exc:
        raise NetworkStartError(f"--net {spec}: cannot open the link: {exc}") from exc
    config = stack_network.NetworkConfig(addressing=chosen, tcp=limits.effective_tcp(), stack=limits.stack,
                                         ipv6=chosen6)  # start_network draws the RFC 7217 secret from random_bytes
    network = await stack_network.start_network(link, config, random_bytes)
    return UserspaceNetwork(network, f"{kind}:{interface} {chosen} ip6={chosen6}")


async def open_stream(
    network: Network, host: str, port: int, limit: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio streams over any Network's transports (what asyncio.open_connection does for sockets)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    transport, protocol = await network.open_connection(
        host, port, lambda: asyncio.StreamReaderProtocol(reader, loop=loop)
    )
    assert isinstance(protocol, asyncio.StreamReaderProtocol)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)  # type: ignore[arg-type]
    return reader, writer
