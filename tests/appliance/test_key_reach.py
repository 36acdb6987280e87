"""DESIGN.md rule 5, checked on a running appliance: from the root the composition builds, the wallet key is
reachable only through the vault, and the boot CA's private key not at all.

The appliance is built in-process by `appliance.main.assemble` (the composition root's own function) with
`--test-pki` export, which is how the test learns the CA key it then looks for. The walk runs while the
event loop is stopped, so no frame of this test is on the loop's ready queue; what the walk can and cannot
see is in `tests.appliance.reach`. Each check has a twin that plants or uncovers a key, to show the walker
would have found one.
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.network import NetworkConfig, start_network
from appliance import bitcoin
from appliance.config import Limits, Ports
from appliance.data_disk import provision
from appliance.disk import Disk
from appliance.log import JsonLog
from appliance.main import SYSTEM, assemble
from appliance.net import KernelNetwork, Network, UserspaceNetwork
from appliance.service import Appliance
from appliance.vault import Vault
from netstack.config import parse_static
from netstack.link.memory import memory_link_pair
from tests.appliance.reach import Needles, Reached, find, project_globals, walk
from tests.appliance.running import KNOWN_WIF, free_offset

LIMITS = Limits(ledger_region_bytes=128 * 1024)
APPLIANCE_MAC, PEER_MAC = bytes.fromhex("020000000b01"), bytes.fromhex("020000000b02")


@dataclass
class Booted:
    appliance: Appliance
    pki: Path
    disk: Disk
    console: TextIO
    far_end: object  # the memory link's other end, held by the test as a peer machine would hold it


def _wallet() -> Needles:
    return Needles.of_wallet(bitcoin.wif_decode(KNOWN_WIF), KNOWN_WIF)


def _ca(pki: Path) -> Needles:
    key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Needles.of_ec_key("CA key", key)


def _mutual_success(port: int, pki: Path) -> bytes:
    """A peer with the exported client identity takes the secret from 10000 (so a release has happened)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(pki / "ca.pem")
    context.load_cert_chain(pki / "client.pem", pki / "client.key")
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw, context.wrap_socket(raw) as tls:
        data = b""
        while chunk := tls.recv(4096):
            data += chunk
        return data


async def _boot(tmp_path: Path, net: str, tls: str) -> Booted:
    disk = Disk(tmp_path / "disk")
    provision(disk, bitcoin.wif_decode(KNOWN_WIF), LIMITS.ledger_region_bytes)
    far_end: object = None
    network: Network
    if net == "memory":
        ours, theirs = memory_link_pair(APPLIANCE_MAC, PEER_MAC, rng=random.Random(3))
        network = UserspaceNetwork(await start_network(ours, NetworkConfig(parse_static("10.67.0.2/24"))), "memory")
        far_end = theirs
        ports = Ports()
    else:
        network = KernelNetwork("127.0.0.1")
        ports = Ports().shifted(free_offset())
    console = (tmp_path / "console.log").open("w")
    appliance = await assemble(
        disk=disk, network=network, tls=tls, limits=LIMITS, ports=ports, log=JsonLog(console), manifest=None,
        sources=SYSTEM, test_pki=tmp_path / "pki",
    )
    return Booted(appliance, tmp_path / "pki", disk, console, far_end)


@pytest.fixture(params=[("kernel", "ours"), ("kernel", "stdlib"), ("memory", "ours")], ids="-".join)
def booted(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Booted]:
    net, tls = request.param
    loop = asyncio.new_event_loop()
    try:
        booted = loop.run_until_complete(_boot(tmp_path, net, tls))
        appliance = booted.appliance
        if net == "kernel":  # a release has happened, and its connection has ended, before the walk
            sent = loop.run_until_complete(asyncio.to_thread(_mutual_success, appliance.ports.mutual, booted.pki))
            assert sent == KNOWN_WIF.encode() + b"\n"
            loop.run_until_complete(_drain(appliance))
            loop.run_until_complete(loop.shutdown_default_executor())
        yield booted
        loop.run_until_complete(appliance.stop())
        booted.disk.close()
        booted.console.close()
    finally:
        loop.close()


async def _drain(appliance: Appliance) -> None:
    while appliance.gate.total or appliance._tasks:
        await asyncio.sleep(0.01)


def _roots(booted: Booted) -> list[object]:
    return [booted.appliance, *project_globals()]


def test_the_wallet_key_is_reachable_only_through_the_vault(booted: Booted) -> None:
    wallet = _wallet()
    assert find(walk(_roots(booted), stop_at=(Vault,)), wallet) == []
    # The same walk entering the vault finds the key there: the walker can see it, and the vault was reached.
    through_vault = find(walk(_roots(booted)), wallet)
    assert through_vault
    assert all("Vault" in hit for hit in through_vault), through_vault


def test_the_ca_private_key_is_reachable_from_nothing(booted: Booted) -> None:
    ca = _ca(booted.pki)
    reached = walk(_roots(booted))
    assert len(reached.objects) > 10_000  # the walk did cover the running appliance
    assert any(obj is booted.appliance.site for obj in reached.objects)
    assert find(reached, ca) == []


def test_the_walker_finds_a_planted_ca_key_in_each_form(booted: Booted) -> None:
    """Plant the CA key, one representation at a time, where a careless change could leave it (on the TLS
    factory the endpoints hold): each must be found, through the path that leads to it."""
    ca = _ca(booted.pki)
    key = serialization.load_pem_private_key((booted.pki / "ca.key").read_bytes(), password=None)
    engines = booted.appliance.engines
    plants: list[object] = [key, ca.scalar, *ca.byte_forms, *ca.text_forms]
    for plant in plants:
        booted.appliance.engines = _Leaky(engines, plant)  # type: ignore[assignment]
        try:
            hits = find(walk(_roots(booted)), ca)
        finally:
            booted.appliance.engines = engines
        assert hits, f"a planted {type(plant).__name__} was not found"
        assert all("_Leaky" in hit for hit in hits), hits


def test_the_walker_finds_a_wallet_key_that_escapes_the_vault(booted: Booted) -> None:
    """The WIF held beside the vault (as a page that kept what `release` returned would hold it) is found."""
    wallet = _wallet()
    site = booted.appliance.site
    site.__dict__["kept"] = KNOWN_WIF.encode()  # as bytes, the way the endpoints send it
    try:
        hits = find(walk(_roots(booted), stop_at=(Vault,)), wallet)
    finally:
        del site.__dict__["kept"]
    assert hits
    assert all("Site" in hit for hit in hits), hits


class _Leaky:
    """A TLS factory that kept something it should not have."""

    def __init__(self, inner: object, leaked: object) -> None:
        self.inner = inner
        self.leaked = leaked


def test_paths_name_the_chain_of_types() -> None:
    inner = [b"x"]
    reached: Reached = walk([{"k": inner}])
    assert reached.path(inner[0]) == "dict -> list -> bytes"
