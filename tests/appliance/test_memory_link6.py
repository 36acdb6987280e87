"""The production composition over IPv6 (issue 19): our stack and our TLS engine on the in-memory link, the
attacker a second instance of our stack reaching the appliance at its IPv6 address. Port 10001 connects back
over the caller's family, and the statistics count the connections as IPv6."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

from adapters.network import NetworkConfig, start_network
from adapters.tls_channel import TlsChannel
from appliance import bitcoin
from appliance.config import Limits, Ports
from appliance.data_disk import provision
from appliance.disk import Disk
from appliance.log import JsonLog
from appliance.main import SYSTEM, assemble
from appliance.net import UserspaceNetwork
from appliance.stdlib_tls import StdlibFactory
from netstack.config import UseDhcp, parse_ip6, parse_static
from netstack.link.memory import Impairment, memory_link_pair
from tests.appliance.running import KNOWN_WIF
from tests.appliance.test_memory_link import APPLIANCE_MAC, ATTACKER_MAC, _plain

APPLIANCE6 = "2001:db8:66::2"
ATTACKER6 = "2001:db8:66::1"


async def _scenario(tmp_path: Path) -> dict[str, bytes]:
    limits = Limits()
    disk = Disk(tmp_path / "disk")
    provision(disk, bitcoin.wif_decode(KNOWN_WIF), 128 * 1024)
    link_a, link_b = memory_link_pair(APPLIANCE_MAC, ATTACKER_MAC, Impairment(), random.Random(11))
    ours = await start_network(link_a, NetworkConfig(parse_static("10.66.0.2/24"),
                                                     ipv6=parse_ip6(f"{APPLIANCE6}/64")))
    attacker = await start_network(link_b, NetworkConfig(parse_static("10.66.0.1/24"),
                                                         ipv6=parse_ip6(f"{ATTACKER6}/64")))
    console = tmp_path / "console.log"
    results: dict[str, bytes] = {}
    with console.open("w") as stream:
        appliance = await assemble(
            disk=disk, network=UserspaceNetwork(ours, "memory"), tls="ours", limits=limits, ports=Ports(),
            log=JsonLog(stream), manifest=None, sources=SYSTEM,
        )
        pki = appliance.pki
        try:
            got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            peers: list[object] = []

            async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                peers.append(w.get_extra_info("peername"))
                server = StdlibFactory(pki).server(pki.server, require_client_cert=True)
                channel = TlsChannel(server, _plain(r, w, limits))
                await channel.handshake(asyncio.get_running_loop().time() + 20)
                got.set_result(await channel.recv(20))
                await channel.close()

            await attacker.start_stream_server(40001, on_connect)
            _, poke = await attacker.open_stream(APPLIANCE6, 10001)
            results["callback"] = await asyncio.wait_for(got, 30)
            results["callback_peer"] = json.dumps(peers[0]).encode()
            poke.close()

            reader, writer = await attacker.open_stream(APPLIANCE6, 80)
            writer.write(b"GET /stats.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            results["stats"] = await asyncio.wait_for(reader.read(), 20)
            writer.close()
        finally:
            await appliance.stop()
            attacker.close()
            disk.close()
    results["console"] = console.read_bytes()
    return results


def test_callback_connects_back_over_ipv6_and_the_statistics_count_it(tmp_path: Path) -> None:
    results = asyncio.run(asyncio.wait_for(_scenario(tmp_path), 90))
    assert results["callback"] == KNOWN_WIF.encode() + b"\n"
    assert json.loads(results["callback_peer"])[0] == APPLIANCE6  # it came back over IPv6, from our v6 address
    console = results["console"].decode()
    assert f'"source":"{ATTACKER6}"' in console  # the ledger and the log keep the full address
    stats = json.loads(results["stats"].partition(b"\r\n\r\n")[2])
    assert stats["by_family"]["ipv6"] >= 1  # the callback's connection was recorded before this request
    assert stats["by_family"]["ipv4"] == 0
    assert stats["network"]["ipv6-rx-packets"] > 0  # the stack's IPv6 counters are in the network stats
    assert stats["network"]["ipv6-addresses"] >= 1


async def _ipv6_only(tmp_path: Path) -> tuple[bytes, str, list[dict[str, object]]]:
    """The appliance on a network with no IPv4 at all: it asks DHCP, which nobody answers, and serves over
    IPv6 in the meantime (nothing waits for an IPv4 address before listening). Every address change gets its
    line at once (`log_address_seconds=0`): with the default second, the static address's line could still be
    waiting when the test ends."""
    limits = Limits(log_address_seconds=0.0)
    disk = Disk(tmp_path / "disk")
    provision(disk, bitcoin.wif_decode(KNOWN_WIF), 128 * 1024)
    link_a, link_b = memory_link_pair(APPLIANCE_MAC, ATTACKER_MAC, Impairment(), random.Random(12))
    ours = await start_network(link_a, NetworkConfig(UseDhcp(), ipv6=parse_ip6(f"{APPLIANCE6}/64")))
    attacker = await start_network(link_b, NetworkConfig(parse_static("10.66.0.1/24"),
                                                         ipv6=parse_ip6(f"{ATTACKER6}/64")))
    with (tmp_path / "console.log").open("w") as stream:
        appliance = await assemble(
            disk=disk, network=UserspaceNetwork(ours, "memory"), tls="ours", limits=limits, ports=Ports(),
            log=JsonLog(stream), manifest=None, sources=SYSTEM,
        )
        try:
            reader, writer = await attacker.open_stream(APPLIANCE6, 80)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            page = await asyncio.wait_for(reader.read(), 20)
            writer.close()
            described = ours.describe()
        finally:
            await appliance.stop()
            attacker.close()
            disk.close()
    console = (tmp_path / "console.log").read_text().splitlines()
    return page, described, [json.loads(line) for line in console if '"event":"address"' in line]


def test_an_ipv6_only_network_is_served_while_dhcp_goes_unanswered(tmp_path: Path) -> None:
    page, described, addresses = asyncio.run(asyncio.wait_for(_ipv6_only(tmp_path), 90))
    assert page.startswith(b"HTTP/1.1 200")
    assert addresses  # the log says where the appliance can be reached: IPv6 only, no IPv4 yet
    assert all(a["ipv4"] is None and a["gateway"] is None for a in addresses)
    assert f"{APPLIANCE6}/64" in str(addresses[-1]["ipv6"]).split()  # (lines not coalesced here: see _ipv6_only)
    assert b"bc1q" in page
    assert described.startswith("unconfigured")  # no IPv4 address: DHCP had no answer
    assert f"{APPLIANCE6}/64" in described
