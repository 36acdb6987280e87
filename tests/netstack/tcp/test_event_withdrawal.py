"""Events about a connection that dies before the user takes them (issue 15, Accepted/RST race)."""

from __future__ import annotations

from netstack.tcp import events as ev
from netstack.tcp.counters import Count
from netstack.tcp.segment import ACK, RST, SYN, build_options
from tests.netstack.tcp.raw import THEM, US, RawPeer


def test_final_ack_and_rst_in_one_batch_announce_nothing() -> None:
    """The handshake's final ACK and a RST arrive before the user drains events: the user must not be told of
    a connection that is already gone (the adapter failed with a TcpError on Accepted before)."""
    peer = RawPeer()
    peer.layer.listen(80)
    peer.inject(SYN, 1000, options=build_options(mss=1460))
    (syn_ack,) = peer.out()
    peer.inject(ACK, 1001, syn_ack.seq + 1)
    peer.inject(RST | ACK, 1001, syn_ack.seq + 1)
    assert peer.layer.take_events() == []
    assert not peer.layer.by_id
    assert peer.layer.stats[Count.INTERNAL_ERROR] == 0
    assert peer.layer.stats[Count.RST_ACCEPTED] == 1


def test_active_open_reset_before_taken_reports_only_the_failure() -> None:
    """An active open the user is waiting for: the Connected is withdrawn and the Closed alone tells why."""
    peer = RawPeer(port=5000, peer_port=6000)
    conn = peer.layer.connect(0.0, US, THEM, 6000, local_port=5000)
    (syn,) = peer.out()
    peer.layer.take_events()
    # Our SYN goes to THEM:6000; the peer answers from 6000 to our 5000.
    peer.port, peer.peer_port = 5000, 6000
    peer.inject(SYN | ACK, 7000, syn.seq + 1, options=build_options(mss=1460))
    peer.inject(RST | ACK, 7001, syn.seq + 1)
    assert peer.layer.take_events() == [ev.Closed(conn, "reset")]
    assert peer.layer.stats[Count.INTERNAL_ERROR] == 0


def test_events_taken_before_the_reset_stay_with_the_user() -> None:
    peer = RawPeer()
    conn, iss = peer.accept()
    peer.inject(RST | ACK, 1001, iss + 1)
    assert peer.layer.take_events() == [ev.Closed(conn, "reset")]
