from __future__ import annotations

import asyncio
import dataclasses
import gc
import io
import json
import logging
import os
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from appliance import bitcoin
from appliance import main as appliance_main
from appliance.config import DEFAULT_LIMITS, TCP_HEADROOM, Limits, Ports, describe
from appliance.data_disk import SECP256K1_ORDER
from appliance.disk import Disk
from appliance.library_log import LibraryLog
from appliance.log import JsonLog
from appliance.main import (
    SYSTEM,
    FatalBootError,
    Options,
    apply_limit_overrides,
    check_policy,
    issue_boot_pki,
    make_engines,
    parse_run_args,
    settle_heap,
    settle_imports,
)
from appliance.net import NetworkStartError, parse_net_spec, userspace_network
from appliance.sources import Sources
from tests import virtual_time
from tests.appliance.running import KNOWN_WIF

ROOT = Path(__file__).resolve().parents[2]


def _options(*extra: str) -> Options:
    return parse_run_args(["--disk", "/tmp/x", *extra])


def test_production_refuses_test_material_and_comparison_modes() -> None:
    with pytest.raises(FatalBootError, match="CA key"):
        check_policy(_options("--net", "tap:x", "--test-pki", "/tmp/p"), production=True)
    with pytest.raises(FatalBootError, match="TLS"):
        check_policy(_options("--net", "tap:x", "--tls", "stdlib"), production=True)
    with pytest.raises(FatalBootError, match="network"):
        check_policy(_options(), production=True)
    with pytest.raises(FatalBootError, match="limits"):
        check_policy(_options("--net", "tap:x", "--limit", "idle_timeout=1"), production=True)
    check_policy(_options("--net", "packet:eth0"), production=True)
    check_policy(_options("--test-pki", "/tmp/p", "--tls", "stdlib"), production=False)


def test_limit_overrides_reach_every_part_of_the_tree() -> None:
    limits = apply_limit_overrides(Limits(), (
        "idle_timeout=2.5", "max_connections=3", "tcp.rcv_buffer=65536", "tcp.timestamps=off",
        "stack.reassembly.datagrams=8", "tls.max_ccs=0", "tls.x509.max_candidates=4",
    ))
    assert (limits.idle_timeout, limits.max_connections) == (2.5, 3)
    assert (limits.tcp.rcv_buffer, limits.tcp.timestamps) == (65536, False)
    assert limits.stack.reassembly.datagrams == 8
    assert (limits.tls.max_ccs, limits.tls.x509.max_candidates) == (0, 4)
    assert Limits().stack.reassembly.datagrams != 8  # the default tree is untouched
    bad_ones = ("nope=1", "max_connections=x", "max_connections", "__class__=1", "tcp=1", "tcp.nope=1",
                "stack.reassembly=1", "tcp.timestamps=maybe", "tcp.max_connections=5", "tcp.max_per_source=5",
                "idle_timeout.x=1", "idle_timeout=nan", "idle_timeout=inf", "max_connections=-1")
    for bad in bad_ones:
        with pytest.raises(FatalBootError):
            apply_limit_overrides(Limits(), (bad,))


def test_the_displacement_age_is_a_limit_of_the_tree() -> None:
    """The age after which a full table may displace an unanswered connection (appliance.admission) is
    printed with the tree and set like any leaf."""
    assert describe(Limits())["displace_unanswered_after"] == 2.0
    limits = apply_limit_overrides(Limits(), ("displace_unanswered_after=5",))
    assert limits.displace_unanswered_after == 5.0
    assert describe(limits)["displace_unanswered_after"] == 5.0
    with pytest.raises(FatalBootError):
        apply_limit_overrides(Limits(), ("displace_unanswered_after=-1",))


def test_the_described_tree_holds_every_leaf_at_its_effective_value() -> None:
    limits = apply_limit_overrides(Limits(), ("max_connections=10", "stack.icmp.echo_rate=5"))
    tree = describe(limits)
    assert set(tree) >= {"tcp", "stack", "tls", "max_connections", "ledger_region_bytes"}
    assert "x509" not in tree  # one place for the chain bounds: under tls
    assert tree["tcp"]["max_connections"] == TCP_HEADROOM * 10  # derived, as TCP runs it
    assert tree["stack"]["icmp"]["echo_rate"] == 5.0
    assert tree["tls"]["x509"]["max_chain_certificates"] == limits.tls.x509.max_chain_certificates
    json.dumps(tree)  # what the boot log prints: plain JSON, no objects

    def leaves(node: dict[str, object]) -> int:
        return sum(leaves(v) if isinstance(v, dict) else 1 for v in node.values())

    def dataclass_leaves(node: object) -> int:
        values = [getattr(node, f.name) for f in dataclasses.fields(node)]  # type: ignore[arg-type]
        return sum(dataclass_leaves(value) if dataclasses.is_dataclass(value) else 1 for value in values)

    assert leaves(tree) == dataclass_leaves(limits)  # nothing of the tree is left out


def test_bad_network_specs_are_refused_before_anything_opens() -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_net_spec("wifi:x")
    with pytest.raises(ValueError, match="expected"):
        parse_net_spec("tap:")
    assert parse_net_spec("packet:eth0") == ("packet", "eth0")
    with pytest.raises(NetworkStartError, match="--ip"):
        asyncio.run(userspace_network("tap:pinata-t0", "10.0.0.0/24", os.urandom))  # a network address


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_provision_imports_a_wif_once(tmp_path: Path) -> None:
    disk = str(tmp_path / "disk")
    first = _run("provision", "--wif", KNOWN_WIF, "--disk", disk)
    assert first.returncode == 0, first.stdout
    assert '"event":"provisioned"' in first.stdout
    assert KNOWN_WIF not in first.stdout
    again = _run("provision", "--generate", "--disk", disk)
    assert again.returncode == 1
    assert "already holds" in again.stdout
    header = (tmp_path / "disk").read_bytes()[:64]
    assert bitcoin.wif_decode(KNOWN_WIF) in header


def test_provision_refuses_a_bad_wif(tmp_path: Path) -> None:
    result = _run("provision", "--wif", KNOWN_WIF[:-1] + "x", "--disk", str(tmp_path / "disk"))
    assert result.returncode == 1
    assert "invalid WIF" in result.stdout
    assert KNOWN_WIF[:-1] not in result.stdout


@pytest.mark.parametrize("scalar", [0, SECP256K1_ORDER, 2**256 - 1], ids=["zero", "order", "all-ones"])
def test_provision_refuses_a_wif_that_is_not_a_key_before_touching_the_disk(tmp_path: Path, scalar: int) -> None:
    """A well-formed WIF whose 32 bytes are not a secp256k1 key: a counted refusal, no traceback, no file."""
    result = _run("provision", "--wif", bitcoin.wif_encode(scalar.to_bytes(32, "big")), "--disk",
                  str(tmp_path / "disk"))
    assert result.returncode == 1, result.stderr
    assert '"event":"provision-failed"' in result.stdout
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "disk").exists()


def test_run_with_a_bad_network_exits_with_a_message(tmp_path: Path) -> None:
    result = _run("--net", "tap:pinata-t1", "--ip", "300.1.1.1/24", "--disk", str(tmp_path / "disk"), "--tls", "stdlib")
    assert result.returncode == 2
    assert '"event":"fatal"' in result.stdout


def test_tcp_admission_follows_the_appliance_limits() -> None:
    """TCP's caps follow appliance.config's (one place), stay above the appliance's own so the appliance is
    the one that refuses and counts, and keep the stack inside the image's memory."""
    for limits in (DEFAULT_LIMITS, Limits(max_connections=32, max_connections_per_source=2)):
        tcp = limits.effective_tcp()
        assert tcp.max_connections > limits.max_connections
        assert tcp.max_per_source > limits.max_connections_per_source
        assert tcp.worst_case_bytes() < 0.4 * 128 * 1024 * 1024
    assert DEFAULT_LIMITS.effective_tcp() != Limits(max_connections=32, max_connections_per_source=2).effective_tcp()


def test_settle_heap_turns_collection_on_and_freezes_what_boot_left() -> None:
    garbage: list[object] = []
    garbage.append(garbage)  # a cycle: only the cyclic collector can free it
    probe = weakref.ref(_Cyclic(garbage))
    del garbage
    gc.disable()
    try:
        settle_heap()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        assert probe() is None  # boot's garbage was collected before the freeze, not frozen with the rest
    finally:
        gc.unfreeze()
        gc.enable()


def test_the_imports_are_frozen_as_they_are_and_only_what_the_run_made_is_collected() -> None:
    """settle_imports keeps the imports' garbage (frozen, never walked again); the garbage made after it, where
    secrets live, is what settle_heap collects."""
    gc.disable()
    try:
        before_run = weakref.ref(_Cyclic(None))  # garbage already: a cycle nothing points to
        settle_imports()
        assert gc.get_freeze_count() > 0
        during_run = weakref.ref(_Cyclic(None))
        settle_heap()
        assert during_run() is None
        assert before_run() is not None  # kept, as the docstring says: frozen before the collection
    finally:
        gc.unfreeze()
        gc.enable()
        gc.collect()


def test_with_the_collector_on_nothing_is_frozen_at_the_start() -> None:
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    settle_imports()
    assert gc.get_freeze_count() == frozen


class _Cyclic:
    def __init__(self, other: object) -> None:
        self.other = other
        self.me = self


def test_the_boot_pki_is_exported_in_test_mode_then_kept_without_its_ca_key(tmp_path: Path) -> None:
    out = io.StringIO()
    issued, pending = issue_boot_pki(SYSTEM, tmp_path / "pki", JsonLog(out))
    assert not hasattr(issued, "ca")
    assert not pending.spent  # the CA key waits there for the RSA leaves (appliance.alternates), and only there
    assert (tmp_path / "pki" / "ca.pem").read_bytes() == issued.ca_pem
    exported = serialization.load_pem_private_key((tmp_path / "pki" / "ca.key").read_bytes(), password=None)
    assert exported.public_key() == issued.ca_certificate.public_key()  # the export is the CA that issued these
    assert '"test-pki-exported"' in out.getvalue()


def test_without_test_mode_nothing_is_exported(tmp_path: Path) -> None:
    out = io.StringIO()
    issue_boot_pki(SYSTEM, None, JsonLog(out))
    assert out.getvalue() == ""
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_tls_engine_is_refused() -> None:
    issued, _ = issue_boot_pki(SYSTEM, None, JsonLog(io.StringIO()))
    with pytest.raises(ValueError, match="unknown TLS engine"):
        make_engines("openssl", issued, SYSTEM)
    assert make_engines("ours", issued, SYSTEM).name == "ours"


class _Interface:
    """A network that records whether it was closed."""

    name = "recorded"

    def __init__(self) -> None:
        self.closed = False

    async def start_server(self, port: int, factory: object) -> object:
        raise AssertionError("no listener: the boot failed before them")

    async def open_connection(self, host: str, port: int, factory: object) -> object:
        raise AssertionError("no connection either")

    async def close(self) -> None:
        self.closed = True

    def counters(self) -> dict[str, int]:
        return {}

    def watch_addresses(self, report: object, min_interval: float) -> None:
        return


@pytest.mark.parametrize("from_factory", [True, False])
def test_a_boot_that_fails_after_the_interface_came_up_closes_the_one_it_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, from_factory: bool,
) -> None:
    """The interface comes up before the PKI now (appliance.main.assemble): a PKI that fails must not leave one
    that assemble opened; one the caller passed in is the caller's to close."""
    from appliance import main

    def failing(*args: object, **kwargs: object) -> object:
        raise OSError("the boot PKI could not be made")

    monkeypatch.setattr(main, "issue_boot_pki", failing)
    interface = _Interface()

    async def opened() -> _Interface:
        return interface

    async def boot() -> None:
        await main.assemble(
            disk=Disk(tmp_path / "disk"), network=opened if from_factory else interface,  # type: ignore[arg-type]
            tls="ours", limits=Limits(), ports=Ports(), log=JsonLog(io.StringIO()), manifest=None,
            sources=main.SYSTEM,
        )

    with pytest.raises(OSError, match="the boot PKI could not be made"):
        asyncio.run(boot())
    assert interface.closed is from_factory


def test_a_run_prints_the_libraries_records_as_json_lines_and_unroutes_them_when_it_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """appliance.library_log wired into `run`: a netstack warning during the run is a `library` line of the run's
    log (not plain text on stderr), and after the run the root logger is as it was."""

    async def the_run(*_args: object) -> None:
        logging.getLogger("netstack.stack6").warning("IPv6 address %s is in use by another node", "fe80::2")

    monkeypatch.setattr(appliance_main, "_run_routed", the_run)
    out = io.StringIO()
    asyncio.run(appliance_main.run(_options(), JsonLog(out), SYSTEM))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["limits", "library"]
    assert lines[1]["logger"] == "netstack.stack6"
    assert lines[1]["message"] == "IPv6 address fe80::2 is in use by another node"
    assert not any(isinstance(handler, LibraryLog) for handler in logging.getLogger().handlers)


def test_a_run_says_the_count_of_a_burst_before_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's handler has a Schedule on its loop: a burst beyond the rate gets its count in a line of its own
    while the run goes on, not only at its end (the run here waits, on the virtual clock, past the flush)."""
    seen_during_run: list[list[dict[str, object]]] = []
    out = io.StringIO()

    async def the_run(*_args: object) -> None:
        for n in range(int(DEFAULT_LIMITS.log_library_lines_per_second) + 3):  # the bucket's burst, and 3 more
            logging.getLogger("netstack.stack6").warning("IPv6 address fe80::%d is in use by another node", n)
        await asyncio.sleep(10)
        seen_during_run.append([json.loads(line) for line in out.getvalue().splitlines()])

    monkeypatch.setattr(appliance_main, "_run_routed", the_run)
    sources = Sources(wall=time.time, monotonic=lambda: asyncio.get_running_loop().time(), random=os.urandom)
    virtual_time.run(appliance_main.run(_options(), JsonLog(out), sources))
    [lines] = seen_during_run
    assert lines[-1]["logger"] == "appliance.library_log"
    assert lines[-1]["suppressed"] == 3
