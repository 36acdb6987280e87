"""One clock and one randomness source, passed down from the composition root (DESIGN.md rule 1): each
part that draws randomness or reads the time does so through the `Sources` it was given."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import coincurve
import pytest

from appliance import bitcoin, pki
from appliance.config import Limits, Ports, override
from appliance.data_disk import SECP256K1_ORDER, RandomSourceError, new_wallet_key
from appliance.endpoints import Endpoints
from appliance.log import JsonLog
from appliance.main import SYSTEM, provision_main
from appliance.net import KernelNetwork
from appliance.ours_tls import OursFactory
from appliance.sources import Sources
from appliance.vault import Vault
from outcomes.category import Category
from tls.events import HandshakeFailed
from tls.x509 import Purpose

WALL = 1_800_000_000.5


class Seeded:
    """A reproducible random source that counts what it gave."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self.drawn = 0

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(self._seed + self.drawn.to_bytes(8, "big") + len(out).to_bytes(4, "big")).digest()
        self.drawn += 1
        return out[:n]


def _sources(random: Seeded) -> Sources:
    return Sources(wall=lambda: WALL, monotonic=lambda: 0.0, random=random)


def test_now_is_the_wall_clock_in_utc() -> None:
    assert _sources(Seeded(b"x")).now() == datetime.datetime.fromtimestamp(WALL, datetime.UTC)
    assert _sources(Seeded(b"x")).now().tzinfo is datetime.UTC


def test_the_boot_pki_comes_from_the_given_source_alone() -> None:
    now = _sources(Seeded(b"x")).now()
    one, two = pki.generate(now, Seeded(b"same")), pki.generate(now, Seeded(b"same"))
    for label in ("ca", "server", "client", "web"):
        a, b = getattr(one, label), getattr(two, label)
        assert a.key.private_numbers().private_value == b.key.private_numbers().private_value
        assert a.certificate.serial_number == b.certificate.serial_number
    other = pki.generate(now, Seeded(b"other"))
    assert other.ca.key.private_numbers().private_value != one.ca.key.private_numbers().private_value


@pytest.mark.parametrize("fill", [0x00, 0xFF])
def test_a_p256_key_is_in_range_whatever_the_bytes(fill: int) -> None:
    value = pki.new_key(lambda n: bytes([fill]) * n).private_numbers().private_value
    assert 1 <= value < pki.P256_ORDER


def test_a_wallet_key_is_a_draw_from_the_source() -> None:
    random = Seeded(b"wallet")
    expected = Seeded(b"wallet")(32)
    assert new_wallet_key(random) == expected
    coincurve.PrivateKey(expected)  # a valid secp256k1 key


def test_a_wallet_key_draw_out_of_range_is_drawn_again() -> None:
    draws = iter([bytes(32), SECP256K1_ORDER.to_bytes(32, "big"), b"\x07" * 31, b"\x07" * 32])
    assert new_wallet_key(lambda n: next(draws)) == b"\x07" * 32


@pytest.mark.parametrize("broken", [bytes(32), b"\xff" * 32, b"\x01" * 31], ids=["zeros", "ones", "short"])
def test_a_broken_source_makes_no_wallet_key(broken: bytes) -> None:
    with pytest.raises(RandomSourceError):
        new_wallet_key(lambda n: broken)


def test_provision_generate_uses_the_root_source(tmp_path: Path) -> None:
    out = io.StringIO()
    random = Seeded(b"provision")
    secret = Seeded(b"provision")(32)
    assert provision_main(["--generate", "--disk", str(tmp_path / "d")], JsonLog(out), _sources(random)) == 0
    line = json.loads(out.getvalue())
    public = coincurve.PrivateKey(secret).public_key.format(compressed=True)
    assert line["address"] == bitcoin.p2wpkh_address(public)


def test_provision_refuses_a_broken_source_before_touching_the_disk(tmp_path: Path) -> None:
    out = io.StringIO()
    broken = Sources(wall=lambda: WALL, monotonic=lambda: 0.0, random=bytes)
    assert provision_main(["--generate", "--disk", str(tmp_path / "d")], JsonLog(out), broken) == 1
    assert "provision-failed" in out.getvalue()
    assert not (tmp_path / "d").exists()


def test_our_engine_draws_from_the_source_it_was_given() -> None:
    random = Seeded(b"tls")
    boot = pki.generate(datetime.datetime.fromtimestamp(WALL, datetime.UTC), os.urandom)
    factory = OursFactory(boot.ca_der, _sources(random))
    engine = factory.client(boot.client)
    assert engine.data_to_send()  # the ClientHello
    assert random.drawn > 0


class RecordingValidator:
    def __init__(self) -> None:
        self.times: list[datetime.datetime] = []

    def __call__(self, chain: Sequence[bytes], purpose: Purpose, now: datetime.datetime) -> None:
        self.times.append(now)


def test_a_release_checks_the_chain_at_the_root_clocks_time() -> None:
    validator = RecordingValidator()
    endpoints = Endpoints(
        network=KernelNetwork("127.0.0.1"), engines=None, identities=None, site=None,  # type: ignore[arg-type]
        vault=Vault(b"\x07" * 32, validator), limits=Limits(), ports=Ports(), sources=_sources(Seeded(b"x")),
    )
    endpoints._release((b"leaf",), Purpose.CLIENT_AUTH)
    assert validator.times == [datetime.datetime.fromtimestamp(WALL, datetime.UTC)]


def test_the_log_stamps_lines_with_the_clock_it_was_given() -> None:
    out = io.StringIO()
    JsonLog(out, clock=lambda: WALL).event("x")
    assert json.loads(out.getvalue())["t"] == round(WALL, 3)


def test_the_root_uses_the_operating_systems_sources() -> None:
    assert SYSTEM.random is os.urandom
    assert abs(SYSTEM.wall() - datetime.datetime.now(datetime.UTC).timestamp()) < 60


def test_our_engine_enforces_the_tls_part_of_the_limits_tree() -> None:
    """A server engine from the factory refuses a ClientHello larger than `tls.max_handshake_message`
    allows, and accepts it with the default tree."""
    boot = pki.generate(datetime.datetime.fromtimestamp(WALL, datetime.UTC), os.urandom)
    hello = OursFactory(boot.ca_der, _sources(Seeded(b"c"))).client(boot.client).data_to_send()
    tight = override(Limits(), "tls.max_handshake_message", "64").tls

    def first_events(limits: Limits) -> list[object]:
        server = OursFactory(boot.ca_der, _sources(Seeded(b"s")), limits.tls).server(boot.server,
                                                                                     require_client_cert=True)
        server.receive_data(hello)
        return list(server.events())

    assert not any(isinstance(e, HandshakeFailed) for e in first_events(Limits()))
    failed = [e for e in first_events(replace(Limits(), tls=tight)) if isinstance(e, HandshakeFailed)]
    assert [e.category for e in failed] == [Category.RESOURCE_LIMIT]
