"""ICMPv6 errors about our TCP segments: IPv6 quotes, RFC 4443 types and codes read by the quote's family
(the numbers overlap ICMP's), packet too big (RFC 8201) with its 1280 floor, and RFC 5927's checks."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.connection import Connection
from netstack.tcp.counters import Count
from netstack.tcp.icmp import Kind, classify, classify6, parse_quote
from netstack.tcp.segment import ACK, SYN, build_options
from netstack.tcp.state import State
from tests.netstack.tcp.raw import THEM, THEM6, US, US6, RawPeer


def quote6(seq: int, *, next_header: int = 6, src: bytes = US6, dst: bytes = THEM6, sport: int = 80,
           dport: int = 40000, tcp_len: int = 8) -> bytes:
    """Our IPv6 header and the start of our TCP header, as an ICMPv6 error quotes them."""
    ip = struct.pack("!IHBB", 6 << 28, 20, next_header, 64) + src + dst
    return ip + struct.pack("!HHII", sport, dport, seq, 0)[:tcp_len]


def quote4(seq: int, *, src: bytes = US) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 60, 0, 0, 64, 6, 0, src, THEM) + struct.pack("!HHI", 80, 40000, seq)


# ---------------------------------------------------------------------------------------------------- quotes

def test_an_ipv6_quote_names_the_connection_as_the_layer_files_it() -> None:
    assert parse_quote(quote6(123456)) == ((THEM6, 40000, US6, 80), 123456)


@pytest.mark.parametrize(("raw", "reason"), [
    (quote6(1)[:19], Count.ICMP_SHORT_QUOTE),
    (quote6(1, tcp_len=7), Count.ICMP_BAD_QUOTE),          # fewer than 8 TCP bytes after the 40-byte header
    (quote6(1)[:40], Count.ICMP_BAD_QUOTE),
    (quote6(1, next_header=17), Count.ICMP6_QUOTE_NOT_TCP),
    (quote6(1, next_header=0), Count.ICMP6_QUOTE_NOT_TCP),  # hop-by-hop options: we never send extension headers
    (quote6(1, next_header=44), Count.ICMP6_QUOTE_NOT_TCP),  # a fragment header: not ours either
])
def test_malformed_ipv6_quotes(raw: bytes, reason: Count) -> None:
    assert parse_quote(raw) is reason


@given(st.sampled_from([b"", b"\x60", b"\x45"]), st.binary(max_size=80))
@settings(max_examples=500)
def test_arbitrary_quotes_never_raise(version: bytes, raw: bytes) -> None:
    result = parse_quote(version + raw)
    assert isinstance(result, (Count, tuple))


# ---------------------------------------------------------------------------------------------------- kinds

@pytest.mark.parametrize(("icmp_type", "code", "connecting", "kind"), [
    (2, 0, False, Kind.FRAG_NEEDED),     # packet too big
    (2, 0, True, Kind.FRAG_NEEDED),
    (1, 4, True, Kind.REFUSED),          # port unreachable while connecting
    (1, 1, True, Kind.REFUSED),          # administratively prohibited
    (1, 5, True, Kind.REFUSED),          # source address failed ingress/egress policy
    (1, 6, True, Kind.REFUSED),          # reject route to destination
    (1, 0, True, Kind.SOFT),             # no route: soft even while connecting
    (1, 2, True, Kind.SOFT),             # beyond the scope of the source address
    (1, 3, True, Kind.SOFT),             # address unreachable
    (1, 4, False, Kind.SOFT),            # established: never hard (RFC 5927)
    (3, 0, True, Kind.UNREACHABLE),      # hop limit exceeded in transit
    (3, 1, True, Kind.SOFT),             # reassembly time exceeded
    (3, 0, False, Kind.SOFT),
    (4, 1, True, Kind.REFUSED),          # parameter problem: unrecognized next header (protocol unreachable)
    (4, 1, False, Kind.SOFT),
    (4, 0, True, Kind.IGNORED),          # other parameter problems, as ICMP's
    (4, 2, True, Kind.IGNORED),
    (11, 0, True, Kind.IGNORED),         # ICMP's time exceeded number means nothing in ICMPv6
    (128, 0, True, Kind.IGNORED),        # echo request: not an error
    (137, 0, True, Kind.IGNORED),        # redirect
])
def test_icmpv6_kinds(icmp_type: int, code: int, connecting: bool, kind: Kind) -> None:
    assert classify6(icmp_type, code, connecting=connecting, hard_errors=True) is kind


def test_icmpv6_hard_errors_can_be_switched_off() -> None:
    for icmp_type, code in ((1, 4), (3, 0), (4, 1)):
        assert classify6(icmp_type, code, connecting=True, hard_errors=False) is Kind.SOFT


@pytest.mark.parametrize(("icmp_type", "code", "v4", "v6"), [
    (3, 3, Kind.REFUSED, Kind.SOFT),          # ICMP port unreachable / ICMPv6 time exceeded, code 3 unassigned
    (3, 0, Kind.SOFT, Kind.UNREACHABLE),      # ICMP net unreachable / ICMPv6 hop limit exceeded
    (3, 4, Kind.FRAG_NEEDED, Kind.SOFT),      # ICMP fragmentation needed / ICMPv6 time exceeded
    (4, 1, Kind.IGNORED, Kind.REFUSED),       # ICMP source quench / ICMPv6 unrecognized next header
    (11, 0, Kind.UNREACHABLE, Kind.IGNORED),  # ICMP TTL exceeded / unassigned in ICMPv6
    (2, 0, Kind.IGNORED, Kind.FRAG_NEEDED),   # unassigned in ICMP / ICMPv6 packet too big
])
def test_the_same_numbers_mean_different_things(icmp_type: int, code: int, v4: Kind, v6: Kind) -> None:
    assert classify(icmp_type, code, connecting=True, hard_errors=True) is v4
    assert classify6(icmp_type, code, connecting=True, hard_errors=True) is v6


# ---------------------------------------------------------------------------------------------------- layer

def peer6(**config: object) -> RawPeer:
    return RawPeer(TcpConfig(**config), peer_addr=THEM6, us=US6)  # type: ignore[arg-type]


def connecting(peer: RawPeer, remote: bytes, local: bytes) -> tuple[int, int]:
    """Our SYN out, unanswered: (connection id, its ISS)."""
    conn = peer.layer.connect(peer.now, local, remote, 40000, local_port=80)
    (syn,) = peer.out()
    return conn, syn.seq


def test_packet_too_big_lowers_the_mss_and_resends() -> None:
    peer = peer6(timestamps=False)
    conn, iss = peer.accept(mss=1440)
    tcb = peer.layer.connection(conn)
    assert tcb is not None
    assert tcb.mss == 1440
    peer.layer.send(peer.now, conn, b"m" * 6000)
    assert [len(s.payload) for s in peer.out()] == [1440] * 4 + [240]
    peer.layer.icmp_error_received(peer.now, 2, 0, quote6(iss + 1), 1400)
    assert tcb.mss == 1400 - 60
    (again,) = peer.out()
    assert len(again.payload) == 1340
    assert peer.layer.stats["pmtu-reduced"] == 1
    peer.layer.icmp_error_received(peer.now, 2, 0, quote6(iss + 1), 1280)    # the floor itself is honoured
    assert tcb.mss == 1220
    assert peer.layer.fragmentable == frozenset()                             # IPv6 never clears DF


def test_packet_too_big_counts_the_timestamp_option() -> None:
    peer = peer6()
    conn, iss = peer.accept(mss=1440)
    tcb = peer.layer.connection(conn)
    assert tcb is not None
    peer.layer.send(peer.now, conn, b"m" * 3000)
    peer.out()
    peer.layer.icmp_error_received(peer.now, 2, 0, quote6(iss + 1), 1280)
    assert tcb.mss == 1280 - 60 - (12 if tcb.ts_enabled else 0)


@pytest.mark.parametrize("mtu", [1279, 1000, 576, 68, 0])
def test_packet_too_big_below_1280_is_discarded(mtu: int) -> None:
    """RFC 8201 §4: no IPv6 path is smaller, so the path MTU is never taken below 1280 and such a message is
    dropped; nor does it turn DF off as an IPv4 one below `min_path_mtu` does."""
    peer = peer6(timestamps=False)
    conn, iss = peer.accept(mss=1440)
    peer.layer.send(peer.now, conn, b"m" * 3000)
    peer.out()
    peer.layer.icmp_error_received(peer.now, 2, 0, quote6(iss + 1), mtu)
    tcb = peer.layer.connection(conn)
    assert tcb is not None
    assert tcb.mss == 1440
    assert peer.layer.stats["icmp6-ptb-below-minimum"] == 1
    assert peer.layer.stats["pmtu-floor"] == 0
    assert peer.layer.fragmentable == frozenset()
    assert not peer.out()


def test_packet_too_big_without_an_mtu_is_counted() -> None:
    peer = peer6(timestamps=False)
    conn, iss = peer.accept(mss=1440)
    peer.layer.send(peer.now, conn, b"m" * 3000)
    peer.out()
    peer.layer.icmp_error_received(peer.now, 2, 0, quote6(iss + 1), None)
    assert peer.layer.stats["icmp-frag-needed-no-mtu"] == 1


@pytest.mark.parametrize("offset", [0, 3001, 100_000, 2**31])
def test_packet_too_big_quoting_a_sequence_out_of_window_is_refused(offset: int) -> None:
    """RFC 5927 §4.1: only SND.UNA <= SEG.SEQ < SND.NXT; a blind attacker must guess it."""
    peer = peer6(timestamps=False)
    conn, iss = peer.accept(mss=1440)
    peer.layer.send(peer.now, conn, b"m" * 3000)
    peer.out()
    peer.layer.icmp_error_received(peer.now, 2, 0, quote6((iss + 1 + offset - (offset == 0)) % 2**32), 1280)
    tcb = peer.layer.connection(conn)
    assert tcb is not None
    assert tcb.mss == 1440
    assert peer.layer.stats["icmp-seq-out-of-window"] == 1


def test_an_error_for_no_connection_of_ours() -> None:
    peer = peer6(timestamps=False)
    conn, iss = peer.accept(mss=1440)
    other = THEM6[:15] + b"\x09"
    peer.layer.icmp_error_received(peer.now, 2, 0, quote6(iss + 1, dst=other), 1280)
    peer.layer.icmp_error_received(peer.now, 2, 0, quote6(iss + 1, sport=81), 1280)
    assert peer.layer.stats["icmp-no-connection"] == 2
    peer.layer.icmp_error_received(peer.now, 2, 0, quote6(iss + 1, next_header=0), 1280)
    assert peer.layer.stats["icmp6-quote-not-tcp"] == 1
    assert peer.layer.connection(conn) is not None


@pytest.mark.parametrize(("code", "error"), [(4, "refused"), (1, "refused"), (6, "refused")])
def test_a_hard_icmpv6_unreachable_ends_an_attempt_in_syn_sent(code: int, error: str) -> None:
    peer = peer6()
    conn, iss = connecting(peer, THEM6, US6)
    peer.layer.icmp_error_received(peer.now, 1, code, quote6(iss), None)
    assert peer.layer.connection(conn) is None
    assert ev.Closed(conn, error) in peer.layer.take_events()
    assert peer.layer.stats["icmp-hard-error"] == 1


def test_hop_limit_exceeded_ends_an_attempt_as_unreachable() -> None:
    peer = peer6()
    conn, iss = connecting(peer, THEM6, US6)
    peer.layer.icmp_error_received(peer.now, 3, 0, quote6(iss), None)
    assert ev.Closed(conn, "unreachable") in peer.layer.take_events()


def test_address_unreachable_is_soft_even_in_syn_sent() -> None:
    peer = peer6()
    conn, iss = connecting(peer, THEM6, US6)
    peer.layer.icmp_error_received(peer.now, 1, 3, quote6(iss), None)
    tcb = peer.layer.connection(conn)
    assert tcb is not None
    assert tcb.state == State.SYN_SENT
    assert tcb.error == "unreachable"
    assert peer.layer.stats["icmp-soft-error"] == 1


def test_an_established_connection_survives_port_unreachable() -> None:
    peer = peer6(timestamps=False)
    conn, iss = peer.accept(mss=1440)
    peer.layer.send(peer.now, conn, b"x" * 10)
    peer.out()
    peer.layer.icmp_error_received(peer.now, 1, 4, quote6(iss + 1), None)
    assert peer.layer.state_of(conn) == State.ESTABLISHED
    assert peer.layer.stats["icmp-soft-error"] == 1


def test_the_quote_decides_the_numbering_not_the_type() -> None:
    """Type 3 code 3: port unreachable to an IPv4 connection (hard in SYN-SENT), an unassigned time-exceeded
    code to an IPv6 one (soft). Same call, same numbers: only the quote differs."""
    peer = RawPeer(peer_addr=THEM6, us=US6)
    conn6, iss6 = connecting(peer, THEM6, US6)
    conn4, iss4 = connecting(peer, THEM, US)
    peer.layer.icmp_error_received(peer.now, 3, 3, quote6(iss6), None)
    peer.layer.icmp_error_received(peer.now, 3, 3, quote4(iss4), None)
    assert peer.layer.state_of(conn6) == State.SYN_SENT
    assert peer.layer.state_of(conn4) == State.CLOSED
    assert ev.Closed(conn4, "refused") in peer.layer.take_events()
    # And the other way: ICMPv6 time exceeded (3, 0) ends the IPv6 attempt; ICMP net unreachable is soft.
    other_us = US[:3] + b"\x07"
    conn4b, iss4b = connecting(peer, THEM, other_us)
    peer.layer.icmp_error_received(peer.now, 3, 0, quote6(iss6), None)
    peer.layer.icmp_error_received(peer.now, 3, 0, quote4(iss4b, src=other_us), None)
    assert peer.layer.state_of(conn6) == State.CLOSED
    assert peer.layer.state_of(conn4b) == State.SYN_SENT


def test_ipv6_syn_ack_is_not_needed_for_an_error_to_reach_syn_sent() -> None:
    """The SYN's own sequence number is the only one in flight in SYN-SENT: the one an error must quote."""
    peer = peer6()
    conn, iss = connecting(peer, THEM6, US6)
    peer.layer.icmp_error_received(peer.now, 1, 4, quote6(iss + 1), None)
    assert peer.layer.stats["icmp-seq-out-of-window"] == 1
    assert peer.layer.state_of(conn) == State.SYN_SENT
    peer.inject(SYN | ACK, 9000, iss + 1, options=build_options(mss=1440))
    assert peer.layer.state_of(conn) == State.ESTABLISHED


# ------------------------------------------------------------------------------- the IPv6 link MTU (RFC 4861 §6.3.4)

def test_a_lower_link_mtu_shrinks_the_mss_of_new_ipv6_connections() -> None:
    """An RA's MTU option (passed on by the stack as link_mtu6_changed) sets the MSS we advertise and the most
    we send (RFC 9293 §3.7.1): 1280 - 60, not the 1440 of the configured 1500."""
    peer = peer6(timestamps=False, mtu=1500)
    peer.layer.link_mtu6_changed(peer.now, 1280)
    peer.layer.listen(80)
    peer.inject(SYN, 1000, options=build_options(mss=1440))
    (syn_ack,) = peer.out()
    assert syn_ack.options.mss == 1220
    conn = peer.layer.connect(peer.now, US6, THEM6, 443, local_port=50000)
    (syn,) = peer.out()
    assert syn.flags == SYN
    assert syn.options.mss == 1220
    tcb = peer.layer.connection(conn)
    assert tcb is not None
    assert tcb.rcv_mss == 1220
    assert peer.layer.local_mss_for(US) == 1460  # IPv4 keeps the configured MTU
    peer.layer.link_mtu6_changed(peer.now, 1500)  # an MTU back up applies to new connections again
    assert peer.layer.local_mss_for(US6) == 1440


def test_a_lower_link_mtu_shrinks_existing_ipv6_connections_as_packet_too_big_does() -> None:
    peer = peer6(timestamps=False)
    conn, _ = peer.accept(mss=1440)
    tcb = peer.layer.connection(conn)
    assert tcb is not None
    assert tcb.mss == 1440
    peer.layer.send(peer.now, conn, b"m" * 3000)
    peer.out()
    peer.layer.link_mtu6_changed(peer.now, 1400)
    assert tcb.mss == 1340
    (again,) = peer.out()
    assert len(again.payload) == 1340
    assert peer.layer.stats["pmtu-reduced"] == 1
    peer.layer.link_mtu6_changed(peer.now, 1500)  # never raised without probing
    assert tcb.mss == 1340
    assert peer.layer.stats["pmtu-reduced"] == 1


@pytest.mark.parametrize("timestamps", [False, True])
def test_a_link_mtu_lowered_in_syn_sent_still_holds_after_the_syn_ack(timestamps: bool) -> None:
    """Review s26 #2: the RA shrank the MSS in SYN-SENT and the peer's SYN-ACK put the old one back (its MSS
    option against `rcv_mss`, which our SYN had advertised from the old MTU): every full segment was 1500 bytes
    on a 1280-byte link. The path bounds the sending MSS whatever the peer offers."""
    peer = peer6(timestamps=timestamps)
    conn, iss = connecting(peer, THEM6, US6)
    peer.layer.link_mtu6_changed(peer.now, 1280)
    assert peer.out() == []  # nothing to resend in SYN-SENT
    options = build_options(mss=1440, ts=(7, 1) if timestamps else None)
    peer.inject(SYN | ACK, 9000, iss + 1, options=options)
    assert peer.layer.state_of(conn) == State.ESTABLISHED
    peer.out()
    peer.layer.send(peer.now, conn, b"d" * 5000)
    packets = [40 + len(segment) for _src, _dst, segment in peer.layer.take_outgoing()]  # IPv6 header + TCP
    assert max(packets) == 1280


def test_a_packet_too_big_in_syn_sent_still_holds_after_the_syn_ack() -> None:
    """Review s26 #2, the same through a packet too big quoting our SYN: it is learnt in SYN-SENT, kept."""
    peer = peer6(timestamps=False)
    conn, iss = connecting(peer, THEM6, US6)
    peer.layer.icmp_error_received(peer.now, 2, 0, quote6(iss, sport=80, dport=40000), 1400)
    peer.inject(SYN | ACK, 9000, iss + 1, options=build_options(mss=1440))
    tcb = peer.layer.connection(conn)
    assert tcb is not None
    assert tcb.mss == 1340


@pytest.mark.parametrize(("peer_mss", "link_mtu", "expected"), [(1440, None, 1440), (1000, 1280, 1000)])
def test_the_peer_mss_still_bounds_after_a_link_mtu_change_in_syn_sent(peer_mss: int, link_mtu: int | None,
                                                                         expected: int) -> None:
    """Controls for the above: with no MTU change the peer's 1440 is taken; a peer MSS below the path wins."""
    peer = peer6(timestamps=False)
    conn, iss = connecting(peer, THEM6, US6)
    if link_mtu is not None:
        peer.layer.link_mtu6_changed(peer.now, link_mtu)
    peer.inject(SYN | ACK, 9000, iss + 1, options=build_options(mss=peer_mss))
    tcb = peer.layer.connection(conn)
    assert tcb is not None
    assert tcb.mss == expected


def simultaneous_open_with_data(peer: RawPeer) -> tuple[int, int]:
    """Our SYN out with 3000 bytes queued behind it, and the peer's SYN crossing it: SYN-RECEIVED, our SYN-ACK
    sent. (connection id, ISS)"""
    conn, iss = connecting(peer, THEM6, US6)
    assert peer.layer.send(peer.now, conn, b"D" * 3000) == 3000
    peer.inject(SYN, 9000, options=build_options(mss=1440))
    assert [(s.flags, s.seq, len(s.payload)) for s in peer.out()] == [(SYN | ACK, iss, 0)]
    assert peer.layer.state_of(conn) == State.SYN_RECEIVED
    return conn, iss


def test_a_link_mtu_change_before_synchronization_sends_no_data_at_the_iss() -> None:
    """Review s26 #3: in SYN-RECEIVED (simultaneous open with data queued) the MTU change resent "the first
    segment", one byte of data at SEQ = ISS, our SYN's own number. Only the MSS changes until synchronized."""
    peer = peer6(timestamps=False)
    conn, iss = simultaneous_open_with_data(peer)
    peer.layer.link_mtu6_changed(peer.now, 1280)
    assert peer.out() == []
    tcb = peer.layer.connection(conn)
    assert tcb is not None
    assert tcb.mss == 1220
    assert peer.layer.stats["pmtu-reduced"] == 1
    # Control: once synchronized the queued data goes out from ISS + 1, at the new MSS.
    peer.inject(SYN | ACK, 9000, iss + 1, options=build_options(mss=1440))
    assert peer.layer.state_of(conn) == State.ESTABLISHED
    sent = [(s.seq - iss, len(s.payload)) for s in peer.out() if s.payload]
    assert sent == [(1, 1220), (1221, 1220), (2441, 560)]


def test_a_packet_too_big_quoting_the_iss_sends_no_data_in_syn_received() -> None:
    """Review s26 #3 through a forged packet too big: its quote of SEQ = ISS passes the window check."""
    peer = peer6(timestamps=False)
    conn, iss = simultaneous_open_with_data(peer)
    peer.layer.icmp_error_received(peer.now, 2, 0, quote6(iss, sport=80, dport=40000), 1280)
    assert peer.out() == []
    tcb = peer.layer.connection(conn)
    assert tcb is not None
    assert tcb.mss == 1220


@pytest.mark.parametrize("faulty", [True, False])
def test_a_fault_in_one_connection_does_not_stop_a_link_mtu_change(monkeypatch: pytest.MonkeyPatch,
                                                                    faulty: bool) -> None:
    """Review s26 #4: link_mtu6_changed was the one entry point with no containment. A bug shrinking the first
    connection stopped the loop (the second kept 1440, and the stack never reports the change again) and
    escaped into the stack (into Stack.start on a restart). It is counted as a TCP internal error instead and
    the other connections still shrink. The control (no fault) counts nothing."""
    peer = peer6(timestamps=False)
    first, _ = peer.accept(mss=1440)
    peer.peer_port = 40001
    second, _ = peer.accept(mss=1440)
    peer.out()
    original = Connection.path_mtu_reduced

    def path_mtu_reduced(self: Connection, now: float, next_hop_mtu: int) -> bool:
        if faulty and self.id == first:
            raise RuntimeError("shrink bug")
        return original(self, now, next_hop_mtu)

    monkeypatch.setattr(Connection, "path_mtu_reduced", path_mtu_reduced)
    peer.layer.link_mtu6_changed(peer.now, 1280)  # does not raise
    tcb = peer.layer.connection(second)
    assert tcb is not None
    assert tcb.mss == 1220
    assert peer.layer.stats["internal-error"] == (1 if faulty else 0)
    assert peer.layer.stats["pmtu-reduced"] == (1 if faulty else 2)
    assert peer.layer.local_mss_for(US6) == 1220  # new connections fit the new MTU either way


def test_the_ipv6_link_mtu_leaves_ipv4_connections_alone() -> None:
    peer = RawPeer(TcpConfig(timestamps=False))
    conn, _ = peer.accept(mss=1460)
    tcb = peer.layer.connection(conn)
    assert tcb is not None
    peer.layer.link_mtu6_changed(peer.now, 1280)
    assert tcb.mss == 1460
    assert peer.layer.stats["pmtu-reduced"] == 0
