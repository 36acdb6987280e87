"""Admission over IPv6: a /64 is one source, SYN cookies, and pairs of addresses no connection can have."""

from __future__ import annotations

import pytest

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.layer import AddressError, TcpError
from netstack.tcp.segment import ACK, PSH, RST, SYN, build_options, build_segment
from tests.netstack.tcp.raw import THEM, THEM6, US, US6, RawPeer

PREFIX = THEM6[:8]  # the attacker's /64


def host(iid: int, prefix: bytes = PREFIX) -> bytes:
    return prefix + iid.to_bytes(8, "big")


def peer6(**config: object) -> RawPeer:
    return RawPeer(TcpConfig(**config), peer_addr=THEM6, us=US6)  # type: ignore[arg-type]


def handshake6(peer: RawPeer, src: bytes) -> None:
    """A whole passive handshake from `src` (the ACK answers whatever SYN-ACK came, if one did)."""
    peer.inject(SYN, 5, options=build_options(mss=1440), src=src)
    syn_acks = [seg for seg in peer.out() if seg.flags == SYN | ACK]
    if syn_acks:
        peer.inject(ACK, 6, syn_acks[-1].seq + 1, src=src)
        peer.out()


def test_one_slash_64_is_one_source() -> None:
    """64 connections from 64 different addresses of one /64 reach `max_per_source`; the 65th address of that
    /64 is refused, and another /64 is not."""
    peer = peer6(syn_cookies=False)
    peer.layer.listen(80)
    for i in range(64):
        handshake6(peer, host(0x1000 + i * 7919))
    assert len(peer.layer.by_id) == 64
    assert peer.layer.stats["per-source-limit"] == 0
    handshake6(peer, host(0xDEAD_BEEF))
    assert peer.layer.stats["per-source-limit"] == 1
    assert len(peer.layer.by_id) == 64
    handshake6(peer, host(1, prefix=PREFIX[:7] + b"\x99"))
    assert len(peer.layer.by_id) == 65
    assert dict(peer.layer.per_source) == {PREFIX: 64, PREFIX[:7] + b"\x99": 1}


def test_the_slash_64_share_is_given_back() -> None:
    peer = peer6(max_per_source=2, syn_cookies=False)
    peer.layer.listen(80)
    for i in range(3):
        handshake6(peer, host(i + 1))
    assert len(peer.layer.by_id) == 2
    for conn_id in list(peer.layer.by_id):
        peer.layer.abort(peer.now, conn_id)
    assert peer.layer.per_source == {}
    handshake6(peer, host(3))
    assert len(peer.layer.by_id) == 1


def test_ipv4_sources_stay_one_address_each() -> None:
    peer = RawPeer(TcpConfig(max_per_source=1, syn_cookies=False))
    peer.layer.listen(80)
    for last in range(1, 5):
        peer.inject(SYN, 5, options=build_options(mss=1460), src=bytes([10, 0, 0, last + 10]))
    assert len(peer.layer.by_id) == 4
    assert peer.layer.stats["per-source-limit"] == 0


def test_syn_cookies_over_ipv6() -> None:
    """A full backlog answers with a cookie; its ACK makes the connection, with the MSS the cookie carried and
    our IPv6 MSS advertised. The same ACK from another address of the peer's /64 is refused."""
    peer = peer6(max_backlog=1)
    peer.layer.listen(80, backlog=1)
    peer.inject(SYN, 100, options=build_options(mss=1440), src_port=1111)      # fills the backlog
    peer.out()
    peer.inject(SYN, 200, options=build_options(mss=1440))
    (syn_ack,) = peer.out()
    assert peer.layer.stats["syn-cookie-sent"] == 1
    assert syn_ack.options.mss == 1440
    peer.inject(ACK, 201, syn_ack.seq + 1, src=host(0x77))                       # a neighbour replays it
    assert peer.layer.stats["syn-cookie-accepted"] == 0
    assert peer.layer.stats["listen-ack"] == 1
    assert [seg.flags for seg in peer.out()] == [RST]
    peer.inject(ACK | PSH, 201, syn_ack.seq + 1, b"hello")
    assert peer.layer.stats["syn-cookie-accepted"] == 1
    (accepted,) = [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    conn = peer.layer.connection(accepted.conn)
    assert conn is not None
    assert (conn.mss, conn.rcv_mss) == (1440, 1440)
    assert peer.layer.receive(peer.now, accepted.conn) == b"hello"


def test_a_cookie_for_an_ipv6_peer_does_not_open_for_ipv4() -> None:
    peer = peer6(max_backlog=1)
    peer.layer.listen(80, backlog=1)
    peer.inject(SYN, 100, options=build_options(mss=1440), src_port=1111)
    peer.out()
    peer.inject(SYN, 200, options=build_options(mss=1440))
    (syn_ack,) = peer.out()
    segment = build_segment(THEM, US, 40000, 80, 201, syn_ack.seq + 1, ACK, 65535)
    peer.layer.segment_received(peer.now, THEM, US, memoryview(segment))
    assert peer.layer.stats["syn-cookie-accepted"] == 0
    assert peer.layer.stats["listen-ack"] == 1


def test_without_an_mss_option_an_ipv6_peer_gets_1220() -> None:
    peer = peer6(timestamps=False)
    peer.layer.listen(80)
    peer.inject(SYN, 100)
    (syn_ack,) = peer.out()
    assert syn_ack.options.mss == 1440
    peer.inject(ACK, 101, syn_ack.seq + 1)
    (accepted,) = [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    conn = peer.layer.connection(accepted.conn)
    assert conn is not None
    assert conn.mss == 1220


def test_a_peer_mss_above_ours_is_clamped_to_the_ipv6_mss() -> None:
    peer = peer6(timestamps=False)
    conn_id, _ = peer.accept(mss=9000)
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    assert conn.mss == 1440


# ---------------------------------------------------------------------------------------------------- refusals

@pytest.mark.parametrize(("local", "remote"), [
    (US, THEM6), (US6, THEM), (US[:3], THEM[:3]), (US6 + b"\0", THEM6 + b"\0"),
])
def test_connect_refuses_a_mixed_or_unknown_pair(local: bytes, remote: bytes) -> None:
    layer = RawPeer().layer
    with pytest.raises(AddressError):
        layer.connect(0.0, local, remote, 80)
    assert issubclass(AddressError, ValueError)
    assert issubclass(AddressError, TcpError)
    assert not layer.by_id
    assert not layer.take_outgoing()


@pytest.mark.parametrize("remote", [
    bytes.fromhex("ff020000000000000000000000000001"),      # multicast
    bytes(10) + b"\xff\xff" + THEM,                          # IPv4-mapped
    bytes(16),                                               # unspecified
    bytes(15) + b"\x01",                                     # loopback
])
def test_connect_refuses_an_ipv6_address_no_host_has(remote: bytes) -> None:
    layer = RawPeer().layer
    with pytest.raises(AddressError):
        layer.connect(0.0, US6, remote, 80)
    with pytest.raises(AddressError):
        layer.connect(0.0, remote, THEM6, 80)


@pytest.mark.parametrize(("src", "dst"), [(THEM, US6), (THEM6, US), (THEM[:3], US[:3]), (b"", b"")])
def test_a_segment_between_families_is_counted_and_dropped(src: bytes, dst: bytes) -> None:
    peer = peer6()
    peer.layer.listen(80)
    segment = build_segment(THEM6, US6, 40000, 80, 1, 0, SYN, 65535)
    peer.layer.segment_received(0.0, src, dst, memoryview(segment))
    assert peer.layer.stats["address-family-mismatch"] == 1
    assert peer.layer.stats["internal-error"] == 0
    assert not peer.out()
    assert not peer.layer.by_id


@pytest.mark.parametrize(("src", "dst"), [
    (THEM6, bytes.fromhex("ff020000000000000000000000000001")),     # to a multicast group
    (bytes.fromhex("ff0e0000000000000000000000000001"), US6),       # from a multicast group
    (bytes(10) + b"\xff\xff" + THEM, US6),                           # IPv4-mapped source
    (bytes(16), US6),                                                # unspecified source
])
def test_a_segment_with_an_ipv6_end_no_host_has_is_dropped(src: bytes, dst: bytes) -> None:
    peer = peer6()
    peer.layer.listen(80)
    segment = build_segment(src, dst, 40000, 80, 1, 0, SYN, 65535)
    peer.layer.segment_received(0.0, src, dst, memoryview(segment))
    assert peer.layer.stats["bad-address6"] == 1
    assert not peer.out()
    assert not peer.layer.by_id


def test_a_closed_ipv6_port_answers_with_an_ipv6_reset() -> None:
    peer = peer6()
    peer.inject(SYN, 500)
    ((src, dst, _),) = peer.layer.outgoing
    assert (src, dst) == (US6, THEM6)
    (rst,) = peer.out()
    assert rst.flags == RST | ACK
    assert rst.ack == 501
