"""The address family by address length, and what the configuration sizes by it (the MSS)."""

from __future__ import annotations

import pytest

from netstack.tcp import family
from netstack.tcp.config import TcpConfig

V4 = bytes([10, 0, 0, 1])
V6 = bytes.fromhex("20010db8000000000000000000000001")


@pytest.mark.parametrize(("local", "remote", "ok"), [
    (V4, V4, True),
    (V6, V6, True),
    (V4, V6, False),
    (V6, V4, False),
    (b"\x01" * 5, b"\x01" * 5, False),
    (b"", b"", False),
])
def test_pair_ok(local: bytes, remote: bytes, ok: bool) -> None:
    assert family.pair_ok(local, remote) is ok


def test_mss_per_family() -> None:
    config = TcpConfig()
    assert config.local_mss == config.local_mss_for(V4) == 1460
    assert config.local_mss_for(V6) == 1440
    jumbo = TcpConfig(mtu=9000)
    assert (jumbo.local_mss_for(V4), jumbo.local_mss_for(V6)) == (8960, 8940)


def test_default_peer_mss_per_family() -> None:
    """RFC 9293 §3.7.1: a peer that sends no MSS option can take 536 bytes over IPv4, 1220 over IPv6."""
    config = TcpConfig()
    assert config.default_peer_mss_for(V4) == 536
    assert config.default_peer_mss_for(V6) == 1220
