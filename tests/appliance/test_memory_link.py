"""The production composition in one process: our network stack (over the in-memory link) and our TLS
engine, with a second instance of our stack as the attacker's machine."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from adapters.network import NetworkConfig, start_network
from adapters.tls_channel import PlainChannel, TlsChannel
from appliance.config import Limits, Ports
from appliance.data_disk import provision
from appliance.disk import Disk
from appliance.log import JsonLog
from appliance.main import SYSTEM, assemble
from appliance.net import UserspaceNetwork
from appliance.stdlib_tls import StdlibFactory
from netstack.config import parse_static
from netstack.link.memory import Impairment, memory_link_pair
from tests.appliance.running import KNOWN_WIF

APPLIANCE_MAC = bytes.fromhex("020000000a01")
ATTACKER_MAC = bytes.fromhex("020000000a02")


async def _scenario(tmp_path: Path) -> dict[str, bytes]:
    from appliance import bitcoin

    limits = Limits()
    disk = Disk(tmp_path / "disk")
    provision(disk, bitcoin.wif_decode(KNOWN_WIF), 128 * 1024)
    link_a, link_b = memory_link_pair(APPLIANCE_MAC, ATTACKER_MAC, Impairment(), random.Random(7))
    ours = await start_network(link_a, NetworkConfig(parse_static("10.66.0.2/24")))
    attacker = await start_network(link_b, NetworkConfig(parse_static("10.66.0.1/24")))
    console = tmp_path / "console.log"
    with console.open("w") as stream:
        appliance = await assemble(
            disk=disk, network=UserspaceNetwork(ours, "memory"), tls="ours", limits=limits, ports=Ports(),
            log=JsonLog(stream), manifest=None, sources=SYSTEM,
        )
        pki = appliance.pki
        results: dict[str, bytes] = {}
        try:
            reader, writer = await attacker.open_stream("10.66.0.2", 80)
            writer.write(b"GET /ca.pem HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            results["http"] = await asyncio.wait_for(reader.read(), 20)
            writer.close()

            # 10000: the attacker holds a client certificate from the boot CA (the stdlib engine plays it).
            reader, writer = await attacker.open_stream("10.66.0.2", 10000)
            tls = TlsChannel(StdlibFactory(pki).client(pki.client), _plain(reader, writer, limits))
            await tls.handshake(asyncio.get_running_loop().time() + 20)
            results["mutual"] = await tls.recv(20)
            await tls.close()

            # 10001: the attacker listens on 40001 and gets the secret on the connect-back.
            got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

            async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                server = StdlibFactory(pki).server(pki.server, require_client_cert=True)
                channel = TlsChannel(server, _plain(r, w, limits))
                await channel.handshake(asyncio.get_running_loop().time() + 20)
                got.set_result(await channel.recv(20))
                await channel.close()

            await attacker.start_stream_server(40001, on_connect)
            _, poke = await attacker.open_stream("10.66.0.2", 10001)
            results["callback"] = await asyncio.wait_for(got, 30)
            poke.close()

            reader, writer = await attacker.open_stream("10.66.0.2", 80)
            writer.write(b"GET /stats.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            results["stats"] = await asyncio.wait_for(reader.read(), 20)
            writer.close()
        finally:
            await appliance.stop()
            attacker.close()
            disk.close()
    results["console"] = console.read_bytes()
    return results



def _plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limits: Limits) -> PlainChannel:
    return PlainChannel(reader, writer, read_chunk=limits.tls_read_chunk, send_timeout=limits.send_timeout,
                        linger_seconds=limits.linger_seconds, linger_bytes=limits.linger_bytes)

def test_secret_over_our_stack_and_our_tls(tmp_path: Path) -> None:
    results = asyncio.run(asyncio.wait_for(_scenario(tmp_path), 90))
    assert results["http"].startswith(b"HTTP/1.1 200 ")
    assert b"BEGIN CERTIFICATE" in results["http"]
    assert results["mutual"] == KNOWN_WIF.encode() + b"\n"
    assert results["callback"] == KNOWN_WIF.encode() + b"\n"
    assert b'"category":"success"' in results["console"]
    addresses = [json.loads(line) for line in results["console"].splitlines() if b'"event":"address"' in line]
    assert addresses  # the static address was reported, once per change (DAD then adds the IPv6 link-local)
    assert all(a["ipv4"] == "10.66.0.2/24" and a["gateway"] is None for a in addresses)
    assert all(earlier != later for earlier, later in itertools.pairwise(addresses))  # changes only
    assert KNOWN_WIF.encode() not in results["console"]
    network = json.loads(results["stats"].partition(b"\r\n\r\n")[2])["network"]
    assert network["tcp-connections"] >= 1  # this very request's connection, counted by our stack
    assert network["tcp-syn-received"] >= 4  # 80, 10000, 10001 and this one were accepted by our TCP



def test_the_boot_pki_is_made_while_the_event_loop_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """So that the loop answers the interface meanwhile (its DHCP exchange, in the image): while the PKI is made,
    a callback handed to the loop runs. Made on the loop's own thread, the PKI would wait for that callback in
    vain (the bounded wait fails the test)."""
    from appliance import main

    loop_ran: list[bool] = []
    original = main.issue_boot_pki
    holder: dict[str, asyncio.AbstractEventLoop] = {}

    def waiting_for_the_loop(*args: Any, **kwargs: Any) -> Any:
        ran = threading.Event()
        holder["loop"].call_soon_threadsafe(ran.set)
        loop_ran.append(ran.wait(10))
        return original(*args, **kwargs)

    async def scenario() -> dict[str, bytes]:
        holder["loop"] = asyncio.get_running_loop()
        return await _scenario(tmp_path)

    monkeypatch.setattr(main, "issue_boot_pki", waiting_for_the_loop)
    results = asyncio.run(asyncio.wait_for(scenario(), 90))
    assert results["mutual"] == KNOWN_WIF.encode() + b"\n"
    assert loop_ran == [True]
