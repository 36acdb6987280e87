"""Corners of the state machine and its timers that the bulk and conformance tests do not reach: each test
drives one by hand and checks what goes on the wire, what the user is told and what is counted."""

from __future__ import annotations

import struct

import pytest

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.layer import TcpError, TcpLayer
from netstack.tcp.segment import ACK, FIN, RST, SYN, build_options
from netstack.tcp.state import State
from netstack.tcp.tcb import HANDSHAKE_DONE
from tests.netstack.tcp.raw import THEM, US, RawPeer


def quote(conn_seq: int, local_port: int, remote_port: int) -> bytes:
    """What an ICMP error quotes of one of our segments: its IPv4 header and first eight TCP bytes."""
    ip = bytes((0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0)) + US + THEM
    return ip + struct.pack("!HHI", local_port, remote_port, conn_seq)


def test_shutdown_during_a_simultaneous_open_sends_the_fin_once_established() -> None:
    peer = RawPeer(port=6000, peer_port=5000)
    conn = peer.layer.connect(0.0, US, THEM, 5000, local_port=6000)
    (syn,) = peer.out()
    peer.inject(SYN, 7000, options=build_options(mss=1460))
    peer.out()
    peer.layer.shutdown(peer.now, conn)
    assert peer.layer.state_of(conn) == State.SYN_RECEIVED
    assert peer.out() == []                                  # no FIN before the handshake is done
    peer.inject(ACK, 7001, syn.seq + 1)
    assert peer.layer.state_of(conn) == State.FIN_WAIT_1
    (fin,) = peer.out()
    assert fin.flags & FIN
    assert fin.seq == syn.seq + 1


@pytest.mark.parametrize("how", ["close", "shutdown"])
def test_closing_a_connection_still_opening_forgets_it_quietly(how: str) -> None:
    peer = RawPeer()
    conn = peer.layer.connect(0.0, US, THEM, 40000)
    peer.out()
    getattr(peer.layer, how)(peer.now, conn)
    assert peer.layer.connection(conn) is None
    assert peer.layer.state_of(conn) == State.CLOSED
    assert peer.out() == []                                  # no RST: nothing was synchronized
    assert not [e for e in peer.layer.take_events() if isinstance(e, ev.Closed)]
    assert peer.layer.per_source == {}


def test_an_orphaned_fin_wait_2_times_out() -> None:
    peer = RawPeer(TcpConfig(fin_wait_2_timeout=60.0))
    conn, _iss = peer.accept()
    peer.layer.shutdown(peer.now, conn)
    (fin,) = peer.out()
    peer.inject(ACK, 1001, fin.seq + 1)
    assert peer.layer.state_of(conn) == State.FIN_WAIT_2
    peer.advance(100.0)                                      # half closed, still owned: no timeout
    assert peer.layer.state_of(conn) == State.FIN_WAIT_2
    peer.layer.close(peer.now, conn)                         # now nobody will read: the FIN-WAIT-2 timer runs
    peer.advance(59.0)
    assert peer.layer.state_of(conn) == State.FIN_WAIT_2
    peer.advance(2.0)
    assert peer.layer.connection(conn) is None
    assert peer.layer.stats["fin-wait-2-timeout"] == 1
    assert peer.out() == []


def test_a_path_mtu_drop_while_connecting_shrinks_the_mss_without_a_resend() -> None:
    peer = RawPeer()
    conn_id = peer.layer.connect(0.0, US, THEM, 40000, local_port=80)
    (syn,) = peer.out()
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    assert conn.mss == 536                                   # RFC 9293's default until the SYN-ACK says more
    peer.layer.icmp_error_received(peer.now, 3, 4, quote(syn.seq, 80, 40000), 560)
    assert conn.mss == 520
    assert peer.out() == []                                  # the SYN carries no data to cut
    peer.layer.icmp_error_received(peer.now, 3, 4, quote(syn.seq, 80, 40000), 1400)
    assert conn.mss == 520                                   # a larger MTU never grows it back
    assert peer.layer.stats["pmtu-reduced"] == 1
    peer.layer.icmp_error_received(peer.now, 3, 4, quote(syn.seq, 80, 40000), None)
    assert peer.layer.stats["icmp-frag-needed-no-mtu"] == 1


@pytest.mark.parametrize("drop", [True, False])
def test_a_syn_fin_answer_to_our_syn(drop: bool) -> None:
    """Dropped (BSD drop_synfin), or taken without its FIN: never a half-closed connection at birth."""
    peer = RawPeer(TcpConfig(drop_syn_fin=drop))
    conn = peer.layer.connect(0.0, US, THEM, 40000, local_port=80)
    (syn,) = peer.out()
    peer.inject(SYN | ACK | FIN, 5000, syn.seq + 1)
    assert peer.layer.stats["syn-fin"] == 1
    if drop:
        assert peer.layer.state_of(conn) == State.SYN_SENT
        assert peer.out() == []
    else:
        assert peer.layer.state_of(conn) == State.ESTABLISHED
        (ack,) = peer.out()
        assert ack.ack == 5001                               # the SYN's octet only: no FIN taken


def test_a_wrong_ack_in_syn_received_is_answered_with_a_reset() -> None:
    peer = RawPeer()
    peer.layer.listen(80)
    peer.inject(SYN, 1000, options=build_options(mss=1460))
    (syn_ack,) = peer.out()
    peer.inject(ACK, 1001, syn_ack.seq + 5)                  # acknowledges what was never sent
    (rst,) = peer.out()
    assert rst.flags == RST
    assert rst.seq == syn_ack.seq + 5
    assert peer.layer.stats["syn-received-bad-ack"] == 1
    assert not peer.layer.take_events()                      # not accepted


def test_an_out_of_window_segment_in_syn_received_is_dropped_silently() -> None:
    peer = RawPeer()
    peer.layer.listen(80)
    peer.inject(SYN, 1000, options=build_options(mss=1460))
    (syn_ack,) = peer.out()
    peer.inject(ACK, 1000 + 10_000_000, syn_ack.seq + 1, b"far away")
    assert peer.out() == []
    assert peer.layer.stats["out-of-window"] == 1


def test_data_after_the_peers_fin_is_counted_and_acknowledged() -> None:
    peer = RawPeer()
    conn, iss = peer.accept()
    peer.inject(ACK | FIN, 1001, iss + 1)
    peer.out()
    assert peer.layer.state_of(conn) == State.CLOSE_WAIT
    peer.inject(ACK, 1002, iss + 1, b"too late")
    (ack,) = peer.out()
    assert ack.ack == 1002                                   # nothing after the FIN is taken
    assert peer.layer.stats["data-after-fin"] == 1
    assert peer.layer.readable_bytes(conn) == 0


def test_an_empty_segment_off_rcv_nxt_with_a_closed_window_is_not_acceptable() -> None:
    peer = RawPeer(TcpConfig(rcv_buffer=2920, keepalive=False))
    conn, iss = peer.accept()
    peer.layer.pause_reading(conn)
    peer.inject(ACK, 1001, iss + 1, bytes(1460))
    peer.inject(ACK, 1001 + 1460, iss + 1, bytes(1460))     # the window is now closed
    peer.out()
    peer.inject(ACK, 1001 + 2920 + 5, iss + 1)               # empty, but not at RCV.NXT
    (answer,) = peer.out()
    assert (answer.ack, answer.window) == (1001 + 2920, 0)
    assert peer.layer.stats["out-of-window"] == 1
    peer.layer.resume_reading(conn)
    assert ev.Readable(conn) in peer.layer.take_events()


def test_out_of_order_data_is_cut_to_the_window() -> None:
    peer = RawPeer(TcpConfig(rcv_buffer=4380, keepalive=False))
    conn_id, iss = peer.accept()
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    window = conn.rcv_buf_size
    peer.inject(ACK | FIN, 1001 + window - 100, iss + 1, bytes(300))   # straddles the right edge
    assert conn.reassembly.segments == [(1001 + window - 100, bytes(100), False)]  # cut, and its FIN dropped
    peer.inject(ACK, 1001 + window + 50, iss + 1, b"beyond")  # wholly beyond: refused by the first check
    assert peer.layer.stats["out-of-window"] == 1
    assert len(conn.reassembly.segments) == 1


def test_user_calls_on_bad_arguments_raise_tcp_errors() -> None:
    layer = TcpLayer(b"k" * 32, TcpConfig(max_listeners=1))
    with pytest.raises(TcpError):
        layer.listen(0)
    layer.listen(80)
    with pytest.raises(TcpError):
        layer.listen(80)
    with pytest.raises(TcpError):
        layer.listen(81)                                     # the listener limit
    with pytest.raises(TcpError):
        layer.connect(0.0, US, b"\x01", 80)
    conn = layer.connect(0.0, US, THEM, 9, local_port=5555)
    with pytest.raises(TcpError):
        layer.connect(0.0, US, THEM, 9, local_port=5555)     # the same four-tuple
    layer.shutdown(0.0, conn)                                # SYN-SENT: forgotten at once
    with pytest.raises(TcpError):
        layer.send(0.0, conn, b"x")
    layer.abort(0.0, conn)                                   # unknown by now: nothing happens
    assert layer.stats["aborted"] == 0


def test_writes_after_shutdown_are_refused() -> None:
    peer = RawPeer()
    conn, _iss = peer.accept()
    peer.layer.shutdown(peer.now, conn)
    with pytest.raises(TcpError):
        peer.layer.send(peer.now, conn, b"late")


def test_handshake_data_lives_only_as_long_as_the_handshake() -> None:
    peer = RawPeer(port=6000, peer_port=5000)
    conn_id = peer.layer.connect(0.0, US, THEM, 5000, local_port=6000)
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    (syn,) = peer.out()
    assert conn.handshake is not HANDSHAKE_DONE
    assert conn.handshake.syn_options                        # kept to retransmit the SYN
    peer.inject(SYN, 7000, 0, b"early", options=build_options(mss=1460))  # simultaneous open, with data
    peer.out()
    assert conn.handshake.syn_data == b"early"
    peer.inject(ACK, 7006, syn.seq + 1)
    assert conn.handshake is HANDSHAKE_DONE
    assert peer.layer.receive(peer.now, conn_id) == b"early"   # delivered once established
    assert (HANDSHAKE_DONE.passive, HANDSHAKE_DONE.listener_port, HANDSHAKE_DONE.syn_data,
            HANDSHAKE_DONE.syn_options) == (False, 0, b"", b"")
