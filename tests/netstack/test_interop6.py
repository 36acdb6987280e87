"""The stack's IPv6 half on a TAP device against the Linux kernel, in a namespace this test creates and deletes.

Proves by running: neighbour discovery both ways (the kernel resolves us, we resolve it) and kernel pings of
our link-local and static global addresses; SLAAC from a router advertisement crafted on the namespace side
(an RFC 7217 address, not the EUI-64 one, and a default router); ICMPv6 port unreachable seen by a kernel
socket as ECONNREFUSED; and crafted IPv6 attacks (scapy, bounded floods) dropped and counted while the
stack keeps answering pings.

The namespace's kernel skips DAD (`accept_dad=0`) so its addresses are usable at once; ours always runs DAD
(about a second), which the tests wait for by polling with a deadline.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import socket
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from adapters.stack_driver import Driver
from netstack.addresses6 import ip6_from_text, ip6_to_text, is_link_local
from netstack.config import StaticIp6, UseSlaac, parse_static
from netstack.limits import DEFAULT_STACK_LIMITS
from netstack.link.tap import TapLink
from netstack.reasons import Drop
from netstack.stack import Stack, StackConfig
from tests.netstack import netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not netns.available(), reason="needs root, netns and /dev/net/tun")]

KernelSocket = socket.socket  # Rig.socket shadows the module inside the class
STACK_MAC = bytes.fromhex("02504e000062")
STACK_MAC_TEXT = "02:50:4e:00:00:62"
PREFIX = "2001:db8:6::"
KERNEL_IP6 = "2001:db8:6::1"
STACK_IP6 = "2001:db8:6::2"
SLAAC_PREFIX = "2001:db8:7::"
KERNEL_SLAAC_IP6 = "2001:db8:7::1"


def eui64(prefix: str, mac: bytes) -> bytes:
    """The modified EUI-64 address (RFC 4291 appendix A) the stack must NOT form (RFC 7217, RFC 8064)."""
    iid = bytes([mac[0] ^ 0x02, *mac[1:3], 0xFF, 0xFE, *mac[3:6]])
    return ip6_from_text(prefix)[:8] + iid


@dataclass
class Rig:
    ns: str
    tap_name: str
    drivers: list[Driver] = field(default_factory=list)
    sockets: list[KernelSocket] = field(default_factory=list)
    _raw: KernelSocket | None = None
    _seq: int = 0

    def start(self, *, slaac: bool = False) -> Driver:
        """Open the TAP inside the namespace, give the kernel side its addresses, and run our stack on it."""
        sysctl(self.ns, "net.ipv6.conf.default.accept_dad=0")
        sysctl(self.ns, "net.ipv6.conf.default.accept_ra=0")
        link = netns.run_in(self.ns, lambda: TapLink(self.tap_name, STACK_MAC))
        netns.ip(self.ns, "addr", "add", "10.79.0.1/24", "dev", self.tap_name)
        netns.ip(self.ns, "-6", "addr", "add", f"{KERNEL_IP6}/64", "dev", self.tap_name, "nodad")
        if slaac:
            netns.ip(self.ns, "-6", "addr", "add", f"{KERNEL_SLAAC_IP6}/64", "dev", self.tap_name, "nodad")
        netns.ip(self.ns, "link", "set", self.tap_name, "up")
        ipv6 = UseSlaac() if slaac else StaticIp6(ip6_from_text(STACK_IP6), 64)
        config = StackConfig(STACK_MAC, parse_static("10.79.0.2/24"), ipv6=ipv6, ipv6_secret=bytes(range(32)))
        driver = Driver(link, Stack(config, None, rng=random.Random(62)))
        self.drivers.append(driver)
        driver.start()
        return driver

    def socket(self, family: int, kind: int, proto: int = 0) -> KernelSocket:
        sock = netns.run_in(self.ns, lambda: socket.socket(family, kind, proto))
        sock.setblocking(False)
        self.sockets.append(sock)
        return sock

    def wire(self) -> KernelSocket:
        """A packet socket on the kernel's side of the TAP: what it sends arrives at our stack as is."""
        sock = netns.run_in(self.ns, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)))
        sock.bind((self.tap_name, 0))
        self.sockets.append(sock)
        return sock

    def kernel_link_local(self) -> str:
        out = netns.ip(self.ns, "-6", "-o", "addr", "show", "dev", self.tap_name, "scope", "link")
        return out.split("inet6 ")[1].split("/")[0]

    def kernel_mac(self) -> str:
        return netns.ip(self.ns, "link", "show", self.tap_name).split("link/ether ")[1].split()[0]

    async def ping(self, address: str, count: int = 3, size: int = 56) -> None:
        """`ping -6 -c COUNT` from the namespace (a kernel raw ICMPv6 socket: no ping binary needed); fails the
        test unless every echo got its reply with the same payload."""
        if self._raw is None:
            self._raw = self.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        scope = netns.run_in(self.ns, lambda: socket.if_nametoindex(self.tap_name)) if address.startswith("fe80") \
            else 0
        for seq in range(count):
            payload = bytes([seq]) * size
            self._seq += 1
            assert await netns.ping6(self._raw, address, 0x6666, self._seq, payload, scope_id=scope) == payload

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        for driver in self.drivers:
            driver.close()
        self.drivers.clear()


def sysctl(ns: str, setting: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", setting], check=True)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition with a bounded deadline (the stack's timers run on the same loop meanwhile)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.02)


async def addresses_ready(driver: Driver, *wanted: bytes) -> tuple[tuple[bytes, int], ...]:
    """Wait for DAD to finish on the link-local address and on each wanted one."""
    ipv6 = driver.stack.ipv6
    assert ipv6 is not None
    await until(lambda: any(is_link_local(a) for a, _ in ipv6.addresses.addresses())
                and all(ipv6.addresses.assigned(w) for w in wanted))  # fmt: skip
    return ipv6.addresses.addresses()


def link_local_of(driver: Driver) -> bytes:
    ipv6 = driver.stack.ipv6
    assert ipv6 is not None
    return next(a for a, _ in ipv6.addresses.addresses() if is_link_local(a))


@pytest.fixture
def rig() -> Iterator[Rig]:
    with netns.namespace("pv6") as ns:
        r = Rig(ns, f"p6tap{secrets.token_hex(3)}")
        try:
            yield r
        finally:
            r.close()


def test_kernel_pings_our_link_local_and_global_and_nd_works_both_ways(rig: Rig) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        driver = rig.start()
        stack = driver.stack
        ipv6 = stack.ipv6
        assert ipv6 is not None
        await addresses_ready(driver, ip6_from_text(STACK_IP6))
        # we resolve the kernel: our datagram to a kernel UDP socket waits for our NS to be answered
        listener = rig.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        listener.bind((KERNEL_IP6, 40000))
        kernel = ip6_from_text(KERNEL_IP6)
        assert kernel not in ipv6.neighbours.entries
        stack.udp_send(driver.now(), kernel, 5555, 40000, b"from the stack")
        driver.kick()
        data, address = await asyncio.wait_for(loop.sock_recvfrom(listener, 100), 3.0)
        assert (data, address[0], address[1]) == (b"from the stack", STACK_IP6, 5555)
        assert ipv6.neighbours.lookup(kernel, driver.now()) == bytes.fromhex(rig.kernel_mac().replace(":", ""))
        # the kernel resolves us (link-local and global) and we answer its pings
        ours_ll = ip6_to_text(link_local_of(driver))
        await rig.ping(ours_ll)
        await rig.ping(STACK_IP6)
        for address in (ours_ll, STACK_IP6):
            assert STACK_MAC_TEXT in netns.ip(rig.ns, "-6", "neigh", "show", address, "dev", rig.tap_name)
        # the kernel's link-local pinged our link-local: we hold an entry for it too
        kernel_ll = ip6_from_text(rig.kernel_link_local())
        assert kernel_ll in ipv6.neighbours.entries
        assert ipv6.neighbours.entries[kernel_ll].mac is not None
        assert stack.counters[Drop.INTERNAL_ERROR] == 0

    asyncio.run(main())


def test_slaac_from_a_router_advertisement_gives_a_stable_address_and_a_router(rig: Rig) -> None:
    from scapy.layers.inet6 import (
        ICMPv6ND_RA,
        ICMPv6NDOptMTU,
        ICMPv6NDOptPrefixInfo,
        ICMPv6NDOptSrcLLAddr,
        IPv6,
    )
    from scapy.layers.l2 import Ether

    async def main() -> None:
        loop = asyncio.get_running_loop()
        driver = rig.start(slaac=True)
        ipv6 = driver.stack.ipv6
        assert ipv6 is not None
        await addresses_ready(driver)
        assert [a for a, _ in ipv6.addresses.addresses() if not is_link_local(a)] == []
        assert ipv6.addresses.default_router() is None
        kernel_ll = rig.kernel_link_local()
        kernel_mac = rig.kernel_mac()
        ra = (Ether(src=kernel_mac, dst="33:33:00:00:00:01") / IPv6(src=kernel_ll, dst="ff02::1", hlim=255)
              / ICMPv6ND_RA(routerlifetime=1800) / ICMPv6NDOptSrcLLAddr(lladdr=kernel_mac)
              / ICMPv6NDOptMTU(mtu=1500)
              / ICMPv6NDOptPrefixInfo(prefix=SLAAC_PREFIX, prefixlen=64, L=1, A=1, validlifetime=86400,
                                      preferredlifetime=14400))  # fmt: skip
        wire = rig.wire()
        await loop.run_in_executor(None, wire.send, bytes(ra))
        prefix = ip6_from_text(SLAAC_PREFIX)[:8]
        await until(lambda: any(a[:8] == prefix for a, _ in ipv6.addresses.addresses()))
        ours = next(a for a, _ in ipv6.addresses.addresses() if a[:8] == prefix)
        assert ours != eui64(SLAAC_PREFIX, STACK_MAC)  # RFC 7217 stable identifier, not the MAC
        assert link_local_of(driver) != eui64("fe80::", STACK_MAC)
        assert ipv6.addresses.default_router() == ip6_from_text(kernel_ll)
        assert (ip6_from_text(SLAAC_PREFIX), 64) in ipv6.addresses.prefixes()
        await rig.ping(ip6_to_text(ours))
        assert driver.stack.counters[Drop.INTERNAL_ERROR] == 0

    asyncio.run(main())


def test_udp_to_a_closed_port_is_refused(rig: Rig) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        driver = rig.start()
        await addresses_ready(driver, ip6_from_text(STACK_IP6))
        sock = rig.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.connect((STACK_IP6, 9))
        await loop.sock_sendall(sock, b"anyone there?")
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(loop.sock_recv(sock, 100), 3.0)
        assert driver.stack.counters[Drop.UDP_PORT_CLOSED] == 1

    asyncio.run(main())


def test_crafted_ipv6_attacks_are_dropped_and_counted(rig: Rig) -> None:
    from scapy.layers.inet6 import (
        HBHOptUnknown,
        ICMPv6EchoRequest,
        ICMPv6ND_NS,
        ICMPv6ND_RA,
        ICMPv6NDOptPrefixInfo,
        ICMPv6NDOptSrcLLAddr,
        ICMPv6ParamProblem,
        IPv6,
        IPv6ExtHdrDestOpt,
        IPv6ExtHdrFragment,
        IPv6ExtHdrRouting,
    )
    from scapy.layers.l2 import Ether
    from scapy.packet import Packet, Raw

    async def main() -> None:
        loop = asyncio.get_running_loop()
        driver = rig.start()
        stack = driver.stack
        ipv6 = stack.ipv6
        assert ipv6 is not None
        await addresses_ready(driver, ip6_from_text(STACK_IP6))
        await rig.ping(STACK_IP6, count=1)  # the kernel learns our MAC; we learn the kernel's
        kernel_mac = rig.kernel_mac()
        kernel_ll = rig.kernel_link_local()
        wire = rig.wire()
        eth = Ether(src=kernel_mac, dst=STACK_MAC_TEXT)
        counters = stack.counters
        errors = rig.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)

        async def send(frames: Sequence[Packet]) -> None:
            """In batches the TAP queue holds (it drops beyond ~500 frames), each waited for at our end."""
            datagrams = [bytes(f) for f in frames]
            for start in range(0, len(datagrams), 200):
                batch = datagrams[start : start + 200]
                seen = stack.rx_frames

                def blast(batch: list[bytes] = batch) -> None:
                    for datagram in batch:
                        wire.send(datagram)

                await loop.run_in_executor(None, blast)
                wanted = seen + len(batch)
                await until(lambda wanted=wanted: stack.rx_frames >= wanted, timeout=10)  # type: ignore[misc]

        async def parameter_problem() -> tuple[int, int]:
            """The next Parameter Problem the kernel receives from us: (code, pointer)."""
            while True:
                message = await asyncio.wait_for(loop.sock_recv(errors, 2000), 3.0)
                if message[0] == 4:
                    problem = ICMPv6ParamProblem(message)
                    return int(problem.code), int(problem.ptr)

        def echo(ident: int, *extensions: Packet) -> Packet:
            chain: Packet = IPv6(src=KERNEL_IP6, dst=STACK_IP6)
            for extension in extensions:
                chain = chain / extension
            return eth / chain / ICMPv6EchoRequest(id=ident, seq=1, data=b"attack")

        # a chain of 9 destination options headers: RFC 8200 §4.1 allows two at most (and RFC 8504 §5.3 lets a
        # host bound the chain), so the third is refused before the budget of 8 is reached
        await send([echo(1, *[IPv6ExtHdrDestOpt() for _ in range(9)])])
        await until(lambda: counters[Drop.IPV6_REPEATED_EXTENSION] == 1)
        assert counters[Drop.IPV6_TOO_MANY_EXTENSIONS] == 0
        # an unknown option whose action bits are 10: discard and send Parameter Problem code 2 (RFC 8200 §4.2)
        await send([echo(2, IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x9E, optdata=b"\x00" * 4)]))])
        await until(lambda: counters[Drop.IPV6_UNKNOWN_OPTION] == 1)
        assert await parameter_problem() == (2, 40 + 2)  # the option's type byte, after the fixed header
        # a type 0 routing header with segments left 1: deprecated (RFC 5095), an unknown routing type to us,
        # so Parameter Problem code 0 pointing at the routing type (RFC 8200 §4.4)
        await send([echo(3, IPv6ExtHdrRouting(type=0, segleft=1, addresses=["2001:db8:6::99"]))])
        await until(lambda: counters[Drop.IPV6_ROUTING_HEADER] == 1)
        assert await parameter_problem() == (0, 40 + 2)
        # overlapping fragments (RFC 5722): the whole datagram is dropped, nothing answered
        body = bytes(ICMPv6EchoRequest(id=4, seq=1, data=bytes(64)))
        header = IPv6(src=KERNEL_IP6, dst=STACK_IP6)
        first = eth / header / IPv6ExtHdrFragment(nh=58, offset=0, m=1, id=0x4444) / Raw(body[:48])
        overlap = eth / header / IPv6ExtHdrFragment(nh=58, offset=2, m=0, id=0x4444) / Raw(body[16:])
        await send([first, overlap])
        await until(lambda: counters[Drop.FRAG_OVERLAP] == 1)
        # an NS flood from 5000 random sources, each with a source link-layer option: the cache stays bounded
        flood_rng = random.Random(5000)
        solicited = "ff02::1:ff00:2"
        flood = []
        for _ in range(5000):
            mac = "02:" + ":".join(f"{b:02x}" for b in flood_rng.randbytes(5))
            source = ip6_to_text(ip6_from_text(PREFIX)[:8] + flood_rng.randbytes(8))
            flood.append(Ether(src=mac, dst="33:33:ff:00:00:02") / IPv6(src=source, dst=solicited, hlim=255)
                         / ICMPv6ND_NS(tgt=STACK_IP6) / ICMPv6NDOptSrcLLAddr(lladdr=mac))  # fmt: skip
        await send(flood)
        cache_limit = DEFAULT_STACK_LIMITS.nd.cache_entries
        await until(lambda: counters[Drop.ND_CACHE_EVICTED] >= 5000 - cache_limit, timeout=30)
        assert len(ipv6.neighbours) <= cache_limit
        # an RA flood carrying 5000 prefixes (125 RAs of 40): routers, prefixes and addresses stay bounded
        ras = []
        for batch in range(125):
            ra: Packet = (Ether(src=kernel_mac, dst="33:33:00:00:00:01") / IPv6(src=kernel_ll, dst="ff02::1", hlim=255)
                          / ICMPv6ND_RA(routerlifetime=1800) / ICMPv6NDOptSrcLLAddr(lladdr=kernel_mac))  # fmt: skip
            for i in range(40):
                n = batch * 40 + i
                ra = ra / ICMPv6NDOptPrefixInfo(prefix=f"2001:db8:{0x100 + n // 256:x}:{n % 256:x}::", prefixlen=64,
                                                L=1, A=1, validlifetime=86400, preferredlifetime=14400)  # fmt: skip
            ras.append(ra)
        await send(ras)
        slaac = DEFAULT_STACK_LIMITS.slaac
        await until(lambda: counters[Drop.ND_PREFIXES_FULL] == 5000 - slaac.prefixes, timeout=30)
        assert counters[Drop.ND_ADDRESSES_FULL] == 5000 - slaac.addresses
        assert len(ipv6.addresses.prefixes()) <= 16
        assert ipv6.addresses.routers() == (ip6_from_text(kernel_ll),)
        # still alive, still answering; nothing unexpected happened inside
        await rig.ping(STACK_IP6, count=1)
        assert counters[Drop.INTERNAL_ERROR] == 0

    asyncio.run(main())
