"""The composed stack over both families (issue 19): listeners take IPv4 and IPv6 alike, a connection leaves
from our address of the remote's family, and the transports name IPv6 ends as asyncio's AF_INET6 sockets do.
Virtual time throughout (tests/virtual_time.py): duplicate address detection's second passes at once."""

from __future__ import annotations

import asyncio
import errno
import random
from collections.abc import Awaitable, Callable

import pytest

from adapters.network import Network, NetworkConfig, _parse_address, start_network
from adapters.tcp_sockets import sockaddr
from netstack.addresses6 import address_to_text, ip6_from_text
from netstack.config import NoIpv6, UseSlaac, parse_ip6, parse_static
from netstack.link.memory import Impairment, memory_link_pair
from netstack.stack import StackConfig
from netstack.tcp.config import TcpConfig
from tests import virtual_time
from tests.netstack.builders import PEER_MAC, US_MAC, until

A6 = "2001:db8:9::1"
B6 = "2001:db8:9::2"


def run(coro: Callable[[], Awaitable[None]]) -> None:
    virtual_time.run(asyncio.wait_for(coro(), 60))


async def dual(ipv6_a: str = f"{A6}/64", ipv6_b: str = f"{B6}/64") -> tuple[Network, Network]:
    link_a, link_b = memory_link_pair(US_MAC, PEER_MAC, Impairment(), random.Random(5))
    tcp = TcpConfig(rto_min=0.2, rto_initial=0.2)
    a = await start_network(link_a, NetworkConfig(parse_static("10.9.0.1/24"), tcp, ipv6=parse_ip6(ipv6_a),
                                                  ipv6_secret=b"a" * 32))
    b = await start_network(link_b, NetworkConfig(parse_static("10.9.0.2/24"), tcp, ipv6=parse_ip6(ipv6_b),
                                                  ipv6_secret=b"b" * 32))
    return a, b


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class Collect(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()

    def data_received(self, data: bytes) -> None:
        self.data += data


def test_one_listener_serves_both_families_and_names_them_as_asyncio_does() -> None:
    async def main() -> None:
        a, b = await dual()
        peers: list[object] = []

        class Recording(Echo):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                peers.append(transport.get_extra_info("peername"))

        await b.start_server(7, Recording)
        for remote in ("10.9.0.2", B6, ip6_from_text(B6)):
            transport, client = await a.open_connection(remote, 7, Collect)
            assert isinstance(client, Collect)
            transport.write(b"ping")
            await until(lambda client=client: bytes(client.data) == b"ping")  # type: ignore[misc]
            transport.close()
        v4, v6, v6_bytes = peers
        assert v4 == ("10.9.0.1", v4[1])  # type: ignore[index]
        assert v6 == (A6, v6[1], 0, 0)  # type: ignore[index]  # (host, port, flowinfo, scope_id)
        assert v6_bytes[0] == A6  # type: ignore[index]
        a.close()
        b.close()

    run(main)


def test_the_source_follows_the_remote_family() -> None:
    async def main() -> None:
        a, b = await dual()
        await b.start_server(7, Echo)
        transport, _ = await a.open_connection(B6, 7, Collect)
        assert transport.get_extra_info("sockname")[:1] == (A6,)
        assert transport.get_extra_info("peername") == (B6, 7, 0, 0)
        transport.close()
        transport, _ = await a.open_connection("10.9.0.2", 7, Collect)
        assert transport.get_extra_info("sockname")[0] == "10.9.0.1"
        transport.close()
        a.close()
        b.close()

    run(main)


def test_describe_and_stats_show_ipv6() -> None:
    async def main() -> None:
        a, b = await dual()
        await until(lambda: len(a.ipv6_addresses()) == 2)  # link-local, then the static one
        text = a.describe()
        assert text.startswith("10.9.0.1 mtu 1500 ipv6 fe80::")
        assert text.endswith(f" {A6}/64")
        stats = a.stats()
        assert stats["ipv6-addresses"] == 2
        assert "tcp-connections" in stats
        assert "rx-frames" in stats
        a.close()
        b.close()

    run(main)


def test_ipv6_off_refuses_an_ipv6_remote_at_once() -> None:
    async def main() -> None:
        a, b = await dual(ipv6_a="off")
        await b.start_server(7, Echo)
        assert a.stack.ipv6 is None
        assert a.describe() == "10.9.0.1 mtu 1500 ipv6 off"
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(OSError, match="IPv6 is off") as raised:
            await a.open_connection(B6, 7, Collect)
        assert raised.value.errno == errno.ENETUNREACH
        assert loop.time() == started  # no wait for an address that can never come
        a.close()
        b.close()

    run(main)


def test_no_global_address_without_a_router_times_out() -> None:
    """SLAAC with nobody advertising a prefix: the link-local address comes, a global one never does, so a
    global remote waits out its timeout (virtual seconds) and says why."""

    async def main() -> None:
        a, b = await dual(ipv6_a="auto")
        await b.start_server(7, Echo)
        with pytest.raises(TimeoutError, match="IPv6"):
            await a.open_connection(B6, 7, Collect, timeout=5.0)
        a.close()
        b.close()

    run(main)


def test_a_waiter_wakes_when_duplicate_address_detection_passes_not_on_a_clock() -> None:
    """`wait_source` is woken by the driver's batch that made the address usable: it returns at that virtual
    instant (a poll would return up to its period later), and leaves no callback behind, nor does a timeout."""

    async def main() -> None:
        a, b = await dual(ipv6_a="auto", ipv6_b="auto")
        loop = asyncio.get_running_loop()
        link_local = ip6_from_text("fe80::1")
        usable_at: list[float] = []
        a.driver.after_io.append(lambda: usable_at.append(loop.time()) if a.stack.source_for(link_local) else None)
        callbacks = len(a.driver.after_io)
        assert a.stack.source_for(link_local) is None  # tentative: DAD has a second to go
        local = await a.wait_source(link_local)
        assert loop.time() == usable_at[0] > 0
        assert local == a.ipv6_addresses()[0][0]
        assert len(a.driver.after_io) == callbacks
        with pytest.raises(TimeoutError, match="IPv6"):
            await a.wait_source(ip6_from_text(B6), timeout=3.0)  # no router: no global address comes
        assert len(a.driver.after_io) == callbacks
        a.close()
        b.close()

    run(main)


def test_frames_that_change_no_address_wake_no_waiter_and_a_cancelled_wait_leaves_nothing() -> None:
    """A peer can send frames at will: while a connect-back waits for a global address that no router gives,
    they must not make it look again (it looked at every frame batch, then at every 50 ms tick before that). A
    wait cancelled midway (the connect-back's own timeout) leaves no callback, and the next wait still wakes."""

    async def main() -> None:
        a, b = await dual(ipv6_a="auto", ipv6_b="auto")
        await until(lambda: a.ipv6_addresses() and b.ipv6_addresses())
        (a_ll, _), = a.ipv6_addresses()
        callbacks = len(a.driver.after_io)
        looks = 0
        real_source_for = a.stack.source_for

        def counted(dst: bytes) -> bytes | None:
            nonlocal looks
            looks += 1
            return real_source_for(dst)

        a.stack.source_for = counted  # type: ignore[method-assign]
        waiter = asyncio.ensure_future(a.wait_source(ip6_from_text(B6), timeout=30.0))
        await asyncio.sleep(0)
        for _ in range(20):  # each SYN to a closed port: a batch of frames at a, and a RST back
            with pytest.raises(ConnectionRefusedError):
                await b.open_connection(a_ll, 9, Collect)
        assert not waiter.done()
        assert looks == 2  # before waiting, and once more as the wait began: no frame woke it
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert len(a.driver.after_io) == callbacks
        a.stack.source_for = real_source_for  # type: ignore[method-assign]
        assert await a.wait_source(ip6_from_text("fe80::9")) == a_ll  # a link-local remote: at once
        a.close()
        b.close()

    run(main)


def test_link_local_peers_connect_without_a_router() -> None:
    async def main() -> None:
        a, b = await dual(ipv6_a="auto", ipv6_b="auto")
        await until(lambda: a.ipv6_addresses() and b.ipv6_addresses())
        (b_ll, _), = b.ipv6_addresses()
        await b.start_server(7, Echo)
        transport, client = await a.open_connection(b_ll, 7, Collect)
        assert isinstance(client, Collect)
        transport.write(b"hi")
        await until(lambda: bytes(client.data) == b"hi")
        assert transport.get_extra_info("sockname")[0] == address_to_text(a.ipv6_addresses()[0][0])
        transport.close()
        a.close()
        b.close()

    run(main)


def test_network_config_defaults_to_slaac() -> None:
    assert NetworkConfig(parse_static("10.0.0.2/24")).ipv6 == UseSlaac()
    assert NetworkConfig(parse_static("10.0.0.2/24"), ipv6=NoIpv6()).ipv6_secret is None


def test_the_same_secret_gives_the_same_link_local_address() -> None:
    """RFC 7217: the secret decides the identifier (same secret, same network: same address after a restart);
    without one, each start draws its own from the caller's randomness."""

    async def link_local(secret: bytes | None, seed: int) -> bytes:
        link, peer = memory_link_pair(US_MAC, PEER_MAC)
        peer.start(lambda frames: None)
        rng = random.Random(seed)
        net = await start_network(link, NetworkConfig(parse_static("10.9.0.1/24"), ipv6_secret=secret),
                                  random_bytes=rng.randbytes)
        await until(net.ipv6_addresses)
        address = net.ipv6_addresses()[0][0]
        net.close()
        return address

    async def main() -> None:
        assert await link_local(b"s" * 32, 1) == await link_local(b"s" * 32, 2)
        assert await link_local(None, 1) != await link_local(None, 2)

    run(main)


@pytest.mark.parametrize(("text", "packed"), [
    ("10.9.0.2", bytes([10, 9, 0, 2])),
    ("2001:db8::2", ip6_from_text("2001:db8::2")),
    ("::ffff:10.9.0.2", bytes([10, 9, 0, 2])),  # a dual-stack kernel socket's name for an IPv4 peer
    (ip6_from_text("::ffff:10.9.0.2"), bytes([10, 9, 0, 2])),
    (ip6_from_text("fe80::1"), ip6_from_text("fe80::1")),
])
def test_addresses_of_both_families_parse(text: str | bytes, packed: bytes) -> None:
    assert _parse_address(text) == packed


@pytest.mark.parametrize("bad", ["2001:db8::g", "2001:db8::1%eth0", "1:2:3:4:5:6:7:8:9", "::1/128", bytes(5),
                                 bytes(15), "010.9.0.0002"])
def test_bad_addresses_of_either_family_are_refused(bad: str | bytes) -> None:
    with pytest.raises(ValueError, match=r"IPv4|IPv6"):
        _parse_address(bad)


def test_sockaddr_matches_asyncio_families() -> None:
    assert sockaddr(bytes([10, 0, 0, 1]), 80) == ("10.0.0.1", 80)
    assert sockaddr(ip6_from_text("2001:DB8:0:0:0:0:0:1"), 443) == ("2001:db8::1", 443, 0, 0)  # RFC 5952 text


def test_the_rfc7217_secret_never_shows_in_a_repr() -> None:
    secret = b"\x5a" * 32
    config = NetworkConfig(parse_static("10.0.0.2/24"), ipv6_secret=secret)
    stack_config = StackConfig(b"\x02" + bytes(5), parse_static("10.0.0.2/24"), ipv6=parse_ip6("auto"),
                               ipv6_secret=secret)
    for text in (repr(config), repr(stack_config)):
        assert "ipv6_secret" not in text
        assert repr(secret)[2:-1] not in text
