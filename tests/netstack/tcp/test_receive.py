"""The receiving side (netstack/tcp/receive.py) and the end of the stream: nothing beyond the peer's FIN is
delivered, the FIN is acknowledged at its own number, and a FIN that contradicts the queue is refused."""

from __future__ import annotations

from netstack.tcp.segment import ACK, FIN, Segment
from netstack.tcp.state import State
from tests.netstack.tcp.raw import RawPeer

PEER_ISN = 1000


def connected() -> tuple[RawPeer, int, int]:
    peer = RawPeer()
    conn_id, iss = peer.accept(PEER_ISN)
    return peer, conn_id, iss


def last_ack(out: list[Segment]) -> int:
    return out[-1].ack - PEER_ISN - 1


def state(peer: RawPeer, conn_id: int) -> State:
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    return conn.state


def test_data_queued_beyond_a_queued_fin_is_refused() -> None:
    peer, conn_id, iss = connected()
    peer.inject(ACK | FIN, PEER_ISN + 11, iss + 1, b"B" * 10)   # FIN at +20
    peer.inject(ACK, PEER_ISN + 21, iss + 1, b"C" * 10)         # beyond it
    assert peer.layer.stats["data-beyond-fin"] == 1
    peer.inject(ACK, PEER_ISN + 1, iss + 1, b"A" * 10)
    assert peer.layer.receive(peer.now, conn_id) == b"A" * 10 + b"B" * 10
    assert last_ack(peer.out()) == 21
    assert state(peer, conn_id) == State.CLOSE_WAIT


def test_in_order_data_running_past_a_queued_fin_is_refused() -> None:
    peer, conn_id, iss = connected()
    peer.inject(ACK | FIN, PEER_ISN + 11, iss + 1)               # a bare FIN at +10
    peer.inject(ACK, PEER_ISN + 1, iss + 1, b"A" * 20)
    assert peer.layer.stats["data-beyond-fin"] == 1
    assert peer.layer.receive(peer.now, conn_id) == b""
    peer.inject(ACK, PEER_ISN + 1, iss + 1, b"A" * 10)           # negative: text up to the FIN is taken
    assert peer.layer.receive(peer.now, conn_id) == b"A" * 10
    assert last_ack(peer.out()) == 11
    assert state(peer, conn_id) == State.CLOSE_WAIT


def test_a_fin_before_queued_data_is_refused() -> None:
    peer, conn_id, iss = connected()
    peer.inject(ACK, PEER_ISN + 11, iss + 1, b"X" * 10)
    peer.inject(ACK | FIN, PEER_ISN + 1, iss + 1, b"A" * 10)     # FIN at +10, before the queued X
    assert peer.layer.stats["fin-conflict"] == 1
    assert peer.layer.receive(peer.now, conn_id) == b""
    assert state(peer, conn_id) == State.ESTABLISHED
    peer.inject(ACK | FIN, PEER_ISN + 1, iss + 1, b"A" * 10)     # an out-of-order FIN before it: refused too
    peer.inject(ACK | FIN, PEER_ISN + 5, iss + 1, b"A" * 2)
    assert peer.layer.stats["fin-conflict"] == 3
    peer.inject(ACK | FIN, PEER_ISN + 1, iss + 1, b"A" * 20)     # negative: a FIN after it is the end
    assert peer.layer.receive(peer.now, conn_id) == b"A" * 10 + b"X" * 10
    assert last_ack(peer.out()) == 21
    assert state(peer, conn_id) == State.CLOSE_WAIT


def test_a_second_fin_elsewhere_is_refused_and_a_repeated_one_is_a_duplicate() -> None:
    peer, conn_id, iss = connected()
    peer.inject(ACK | FIN, PEER_ISN + 11, iss + 1, b"B" * 10)    # FIN at +20
    peer.inject(ACK | FIN, PEER_ISN + 11, iss + 1)               # FIN at +10
    peer.inject(ACK | FIN, PEER_ISN + 31, iss + 1)               # FIN at +30
    assert peer.layer.stats["fin-conflict"] == 2
    peer.inject(ACK | FIN, PEER_ISN + 21, iss + 1)               # the same FIN again: a duplicate, queued once
    peer.inject(ACK | FIN, PEER_ISN + 11, iss + 1, b"B" * 10)
    assert peer.layer.stats["duplicate-segment"] == 2
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    assert sum(1 for entry in conn.reassembly.segments if entry[2]) == 1
    peer.inject(ACK, PEER_ISN + 1, iss + 1, b"A" * 10)
    assert peer.layer.receive(peer.now, conn_id) == b"A" * 10 + b"B" * 10
    assert last_ack(peer.out()) == 21
    assert state(peer, conn_id) == State.CLOSE_WAIT
