"""RFC 7323 negotiation (window scaling and timestamps only when both sides offer them) and PAWS."""

from __future__ import annotations

import random

import pytest

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.connection import Connection
from netstack.tcp.segment import ACK, RST, SYN, Segment, build_options, parse_segment
from netstack.tcp.state import State
from tests.netstack.tcp.raw import THEM, US, RawPeer
from tests.netstack.tcp.sim import A_ADDR, B_ADDR, Pair, Wire, establish, transfer


def sent_segments(pair: Pair, direction: str) -> list[Segment]:
    src, dst = (A_ADDR, B_ADDR) if direction == "a->b" else (B_ADDR, A_ADDR)
    return [parse_segment(src, dst, memoryview(raw)) for _t, d, raw in pair.tap if d == direction]


def connections(pair: Pair, client: int, server: int) -> tuple[Connection, Connection]:
    a, b = pair.a.connection(client), pair.b.connection(server)
    assert a is not None
    assert b is not None
    return a, b


def test_both_sides_offering_negotiates_scaling_and_timestamps() -> None:
    pair = Pair()
    client, server = establish(pair)
    a, b = connections(pair, client, server)
    assert (a.wscale_ok, b.wscale_ok, a.ts_enabled, b.ts_enabled) == (True, True, True, True)
    # a 256 KiB buffer needs a shift of 3 to be advertised in 16 bits; each side uses the other's shift
    assert a.rcv_wscale == b.snd_wscale == 3
    assert b.rcv_wscale == a.snd_wscale == 3
    data = random.Random(1).randbytes(400_000)
    assert transfer(pair, "a", client, server, data) == data
    assert a.max_snd_wnd > 0xFFFF               # the scaled window really opened beyond 64 KiB
    assert a.mss == b.mss == 1460 - 12          # the timestamp option is paid for in every segment
    after_syn = sent_segments(pair, "a->b")[1:] + sent_segments(pair, "b->a")[1:]
    assert after_syn
    assert all(seg.options.ts_val is not None and seg.options.wscale is None for seg in after_syn)
    assert a.rtt.srtt > 0


@pytest.mark.parametrize(("config_a", "config_b"), [
    (TcpConfig(window_scaling=False), TcpConfig()),
    (TcpConfig(), TcpConfig(window_scaling=False)),
    (TcpConfig(timestamps=False), TcpConfig()),
    (TcpConfig(), TcpConfig(timestamps=False)),
])
def test_an_option_one_side_does_not_offer_is_used_by_neither(config_a: TcpConfig, config_b: TcpConfig) -> None:
    pair = Pair(Wire(seed=4, loss=0.02), config_a, config_b)
    client, server = establish(pair)
    a, b = connections(pair, client, server)
    scaling = config_a.window_scaling and config_b.window_scaling
    stamps = config_a.timestamps and config_b.timestamps
    assert (a.wscale_ok, b.wscale_ok) == (scaling, scaling)
    assert (a.ts_enabled, b.ts_enabled) == (stamps, stamps)
    if not scaling:
        assert a.rcv_wscale == a.snd_wscale == b.rcv_wscale == b.snd_wscale == 0
    data = random.Random(2).randbytes(300_000)
    assert transfer(pair, "a", client, server, data) == data
    assert transfer(pair, "b", server, client, data[::-1]) == data[::-1]
    if not scaling:
        assert max(a.max_snd_wnd, b.max_snd_wnd) <= 0xFFFF
    after_syn = sent_segments(pair, "a->b")[1:] + sent_segments(pair, "b->a")[1:]
    assert all((seg.options.ts_val is not None) == stamps for seg in after_syn if not seg.flags & RST)


@pytest.mark.parametrize(("offered", "expect_ws", "expect_ts"), [
    (build_options(mss=1460, wscale=7, ts=(5000, 0)), True, True),
    (build_options(mss=1460, wscale=7), True, False),
    (build_options(mss=1460, ts=(5000, 0)), False, True),
    (build_options(mss=1460), False, False),
])
def test_syn_ack_echoes_only_what_the_syn_offered(offered: bytes, expect_ws: bool, expect_ts: bool) -> None:
    peer = RawPeer()
    peer.layer.listen(80)
    peer.inject(SYN, 1000, options=offered)
    (syn_ack,) = peer.out()
    assert (syn_ack.options.wscale is not None) == expect_ws
    assert (syn_ack.options.ts_val is not None) == expect_ts
    if expect_ts:
        assert syn_ack.options.ts_ecr == 5000


@pytest.mark.parametrize(("offered", "expect_ws", "expect_ts"), [
    (build_options(mss=1400, wscale=7, ts=(5000, 0)), True, True),
    (build_options(mss=1400, wscale=7), True, False),
    (build_options(mss=1400, ts=(5000, 0)), False, True),
    (build_options(mss=1400), False, False),
    (b"", False, False),
], ids=["all", "wscale", "timestamps", "mss", "none"])
def test_simultaneous_open_syn_ack_echoes_only_what_the_peers_syn_offered(offered: bytes, expect_ws: bool,
                                                                           expect_ts: bool) -> None:
    """Our SYN offered everything; the SYN-ACK answering the peer's crossing SYN (and its retransmission) may
    carry window scale and timestamps only if that SYN did (RFC 7323 §1.3, §3.2), always with our MSS."""
    peer = RawPeer(port=6000, peer_port=5000)
    conn = peer.layer.connect(0.0, US, THEM, 5000, local_port=6000)
    (syn,) = peer.out()
    assert syn.options.wscale is not None
    assert syn.options.ts_val is not None
    peer.inject(SYN, 7000, options=offered)
    peer.advance(peer.layer.config.rto_initial)
    syn_ack, again = peer.out()
    for seg in (syn_ack, again):
        assert seg.flags == SYN | ACK
        assert seg.options.mss == syn.options.mss == peer.layer.config.local_mss
        assert seg.options.wscale == (syn.options.wscale if expect_ws else None)
        assert (seg.options.ts_val is not None) == expect_ts
        if expect_ts:
            assert seg.options.ts_ecr == 5000
    state = peer.layer.connection(conn)
    assert state is not None
    assert (state.wscale_ok, state.ts_enabled) == (expect_ws, expect_ts)
    # the peer's MSS (536 without the option), less the timestamp option it costs in every segment
    assert state.mss == (1400 if offered else 536) - (12 if expect_ts else 0)
    peer.inject(SYN | ACK, 7000, syn.seq + 1, options=offered)
    assert peer.layer.state_of(conn) == State.ESTABLISHED


PEER_ISN = 1000


def timestamped_peer() -> tuple[RawPeer, int, int]:
    """An established connection whose peer sends timestamps; its TS.Recent is 1000."""
    peer = RawPeer()
    peer.layer.listen(80)
    peer.inject(SYN, PEER_ISN, options=build_options(mss=1460, ts=(900, 0)))
    (syn_ack,) = peer.out()
    peer.inject(ACK, PEER_ISN + 1, syn_ack.seq + 1, options=build_options(ts=(1000, syn_ack.options.ts_val or 0)))
    (accepted,) = peer.layer.take_events()
    assert isinstance(accepted, ev.Accepted)
    conn = peer.layer.connection(accepted.conn)
    assert conn is not None
    assert conn.ts_enabled
    assert conn.ts_recent == 1000
    return peer, accepted.conn, syn_ack.seq + 1


def test_paws_drops_an_old_timestamp_and_answers_with_an_ack() -> None:
    peer, conn, ack = timestamped_peer()
    peer.inject(ACK, PEER_ISN + 1, ack, b"fresh", options=build_options(ts=(2000, 0)))
    assert peer.layer.receive(peer.now, conn) == b"fresh"
    peer.out()
    # an in-window segment whose timestamp is older than TS.Recent: an old duplicate from a previous wrap
    peer.inject(ACK, PEER_ISN + 6, ack, b"stale", options=build_options(ts=(1999, 0)))
    assert peer.layer.stats["paws"] == 1
    assert peer.layer.readable_bytes(conn) == 0
    (answer,) = peer.out()
    assert answer.flags == ACK
    assert answer.ack == PEER_ISN + 6
    assert answer.options.ts_ecr == 2000
    # "older" is modular (RFC 7323 §5.3): 2^31 - 1 behind wraps to behind, 2^31 + 1 behind is ahead
    peer.inject(ACK, PEER_ISN + 6, ack, b"stale", options=build_options(ts=((2000 - (2**31 - 1)) % 2**32, 0)))
    assert peer.layer.stats["paws"] == 2
    peer.inject(ACK, PEER_ISN + 6, ack, b"newer", options=build_options(ts=((2000 - (2**31 + 1)) % 2**32, 0)))
    assert peer.layer.stats["paws"] == 2
    assert peer.layer.receive(peer.now, conn) == b"newer"


def test_paws_accepts_an_equal_timestamp_and_never_blocks_a_reset() -> None:
    peer, conn, ack = timestamped_peer()
    peer.inject(ACK, PEER_ISN + 1, ack, b"one", options=build_options(ts=(3000, 0)))
    peer.inject(ACK, PEER_ISN + 4, ack, b"two", options=build_options(ts=(3000, 0)))  # same tick: fine
    assert peer.layer.receive(peer.now, conn) == b"onetwo"
    assert peer.layer.stats["paws"] == 0
    peer.inject(RST, PEER_ISN + 7, options=build_options(ts=(1, 0)))                  # old stamp on a RST
    assert peer.layer.stats["paws"] == 0
    assert ev.Closed(conn, "reset") in peer.layer.take_events()
