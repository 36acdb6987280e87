"""RFC 5961: blind RST, SYN and data injection need the exact sequence number (or a valid ACK) to work."""

from __future__ import annotations

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.segment import ACK, RST, SYN
from netstack.tcp.state import State
from tests.netstack.tcp.raw import RawPeer


def established(config: TcpConfig | None = None) -> tuple[RawPeer, int, int]:
    peer = RawPeer(config or TcpConfig(timestamps=False))
    conn, iss = peer.accept()
    peer.out()
    return peer, conn, iss


def test_rst_exactly_at_rcv_nxt_resets() -> None:
    peer, conn, _ = established()
    peer.inject(RST, 1001)
    assert peer.out() == []
    assert ev.Closed(conn, "reset") in peer.layer.take_events()


def test_rst_in_window_but_not_exact_gets_challenge_ack() -> None:
    peer, conn, iss = established()
    peer.inject(RST, 1001 + 5000)
    (challenge,) = peer.out()
    assert challenge.flags == ACK
    assert (challenge.seq, challenge.ack) == (iss + 1, 1001)
    assert peer.layer.state_of(conn) == State.ESTABLISHED
    assert peer.layer.stats["rst-challenge-ack"] == 1


def test_rst_out_of_window_is_dropped_silently() -> None:
    peer, conn, _ = established()
    peer.inject(RST, 1001 + 10_000_000)
    peer.inject(RST, 1001 - 10)
    assert peer.out() == []
    assert peer.layer.state_of(conn) == State.ESTABLISHED
    assert peer.layer.stats["rst-out-of-window"] == 2


def test_insecure_mode_accepts_any_in_window_rst() -> None:
    peer, conn, _ = established(TcpConfig(timestamps=False, challenge_rst=False))
    peer.inject(RST, 1001 + 5000)
    assert ev.Closed(conn, "reset") in peer.layer.take_events()


def test_syn_in_established_gets_challenge_ack_not_reset() -> None:
    peer, conn, _iss = established()
    for seq in (1001, 1001 + 100, 5):           # in window, at the edge, far outside
        peer.inject(SYN, seq)
        (challenge,) = peer.out()
        assert challenge.flags == ACK
        assert challenge.ack == 1001
    assert peer.layer.state_of(conn) == State.ESTABLISHED


def test_insecure_syn_in_window_resets() -> None:
    peer, conn, _ = established(TcpConfig(timestamps=False, challenge_syn=False))
    peer.inject(SYN, 1001 + 10)
    (rst,) = peer.out()
    assert rst.flags & RST
    assert ev.Closed(conn, "reset") in peer.layer.take_events()


def test_blind_data_injection_with_old_ack_is_refused() -> None:
    """§5: data whose ACK lies below SND.UNA - MAX.SND.WND is dropped with a challenge ACK."""
    peer, conn, iss = established()
    peer.inject(ACK, 1001, iss + 1 - 200_000, b"injected")
    (challenge,) = peer.out()
    assert challenge.flags == ACK
    assert challenge.ack == 1001
    assert peer.layer.readable_bytes(conn) == 0
    assert peer.layer.stats["ack-too-old"] == 1
    # the same data with an acceptable ACK is taken
    peer.inject(ACK, 1001, iss + 1, b"genuine")
    assert peer.layer.receive(peer.now, conn) == b"genuine"


def test_ack_for_unsent_data_is_refused() -> None:
    peer, conn, iss = established()
    peer.inject(ACK, 1001, iss + 1 + 50_000, b"injected")
    assert peer.out()[0].flags == ACK
    assert peer.layer.readable_bytes(conn) == 0
    assert peer.layer.stats["ack-unsent-data"] == 1


def test_challenge_acks_are_rate_limited() -> None:
    peer, _, _ = established(TcpConfig(timestamps=False, challenge_ack_limit=5))
    for i in range(50):
        peer.inject(RST, 1001 + 1000 + i)
    assert len(peer.out()) == 5
    assert peer.layer.stats["challenge-ack-rate-limited"] == 45
    peer.advance(1.0)                            # a new second, a new allowance
    peer.inject(RST, 1001 + 999)
    assert len(peer.out()) == 1
