"""ICMP quotes and error kinds, on their own (the layer's use of them is tested in test_corners and rcv-icmp)."""

from __future__ import annotations

import struct

import pytest

from netstack.tcp.config import TcpConfig
from netstack.tcp.counters import Count
from netstack.tcp.icmp import Kind, classify, parse_quote
from tests.netstack.tcp.raw import RawPeer

US = bytes([10, 0, 0, 1])
THEM = bytes([10, 0, 0, 2])


def quote(*, version_ihl: int = 0x45, protocol: int = 6, options: bytes = b"", tcp: bytes | None = None) -> bytes:
    ip = bytes((version_ihl, 0, 0, 40, 0, 0, 0, 0, 64, protocol, 0, 0)) + US + THEM + options
    return ip + (tcp if tcp is not None else struct.pack("!HHI", 80, 40000, 123456))


def test_a_quote_names_the_connection_as_the_layer_files_it() -> None:
    assert parse_quote(quote()) == ((THEM, 40000, US, 80), 123456)
    assert parse_quote(quote(version_ihl=0x46, options=bytes(4))) == ((THEM, 40000, US, 80), 123456)


@pytest.mark.parametrize(("raw", "reason"), [
    (bytes(19), Count.ICMP_SHORT_QUOTE),
    (quote(version_ihl=0x65), Count.ICMP_BAD_QUOTE),       # not IPv4
    (quote(version_ihl=0x44), Count.ICMP_BAD_QUOTE),       # header shorter than 20 bytes
    (quote(protocol=17), Count.ICMP_BAD_QUOTE),            # not TCP
    (quote(tcp=bytes(7)), Count.ICMP_BAD_QUOTE),           # fewer than the 8 TCP bytes RFC 792 promises
    (quote(version_ihl=0x46), Count.ICMP_BAD_QUOTE),       # options claimed, so the TCP bytes run short
])
def test_malformed_quotes(raw: bytes, reason: Count) -> None:
    assert parse_quote(raw) is reason


@pytest.mark.parametrize(("icmp_type", "code", "connecting", "kind"), [
    (3, 4, False, Kind.FRAG_NEEDED),
    (3, 4, True, Kind.FRAG_NEEDED),
    (3, 3, True, Kind.REFUSED),          # port unreachable while connecting
    (3, 13, True, Kind.REFUSED),         # administratively prohibited
    (3, 3, False, Kind.SOFT),            # established: never hard (RFC 5927)
    (3, 1, True, Kind.SOFT),             # host unreachable: soft even while connecting
    (11, 0, True, Kind.UNREACHABLE),     # TTL exceeded in transit
    (11, 1, True, Kind.SOFT),            # reassembly time exceeded
    (11, 0, False, Kind.SOFT),
    (5, 0, True, Kind.IGNORED),          # redirect
    (12, 0, False, Kind.IGNORED),        # parameter problem
])
def test_kinds(icmp_type: int, code: int, connecting: bool, kind: Kind) -> None:
    assert classify(icmp_type, code, connecting=connecting, hard_errors=True) is kind


def test_hard_errors_can_be_switched_off() -> None:
    assert classify(3, 3, connecting=True, hard_errors=False) is Kind.SOFT
    assert classify(11, 0, connecting=True, hard_errors=False) is Kind.SOFT


def test_a_next_hop_mtu_below_the_floor_sets_the_floor_and_clears_df() -> None:
    """Issue 15: an ICMP fragmentation-needed saying 68 made 28-byte segments (64 with the old MSS floor),
    still with DF, so a path really that small black-holed them. RFC 1191 practice (Linux: 552): the path is
    taken at the floor and its segments go without DF, for as long as a connection that learned it lives."""
    peer = RawPeer(TcpConfig(timestamps=False))
    conn, iss = peer.accept()
    peer.layer.send(peer.now, conn, b"m" * 5000)
    peer.out()
    quote = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 60, 0, 0, 64, 6, 0, US, THEM) + struct.pack("!HHI", 80, 40000,
                                                                                            iss + 1)
    peer.layer.icmp_error_received(peer.now, 3, 4, quote, 68)
    c = peer.layer.connection(conn)
    assert c is not None
    assert c.mss == 552 - 40
    (again,) = peer.out()
    assert len(again.payload) == 512
    assert peer.layer.fragmentable == {THEM}
    assert peer.layer.stats["pmtu-floor"] == 1
    peer.layer.icmp_error_received(peer.now, 3, 4, quote, 100)               # again: already at the floor
    assert peer.layer.stats["pmtu-floor"] == 1
    assert c.mss == 512
    peer.layer.abort(peer.now, conn)
    assert peer.layer.fragmentable == frozenset()
