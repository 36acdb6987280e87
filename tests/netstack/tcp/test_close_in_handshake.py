"""A close during a simultaneous open never sends a FIN numbered with our ISS (netstack/tcp/receive.py
`_fin_received`): the FIN is repeated at SND.MAX - 1 only when it really is outstanding."""

from __future__ import annotations

from netstack.tcp.segment import ACK, FIN, SYN, build_options
from netstack.tcp.state import State
from tests.netstack.tcp.raw import THEM, US, RawPeer


def test_a_close_in_simultaneous_open_sends_its_fin_after_the_syn() -> None:
    peer = RawPeer(port=50000, peer_port=443)
    conn = peer.layer.connect(peer.now, US, THEM, 443, local_port=50000)
    (syn,) = peer.out()
    iss = syn.seq
    peer.inject(SYN, 5000, options=build_options(mss=1460))    # simultaneous open: SYN-RECEIVED
    peer.out()
    peer.layer.shutdown(peer.now, conn)
    peer.inject(ACK | FIN, 5001, iss + 1)
    out = peer.out()
    fins = [s for s in out if s.flags & FIN]
    assert [s.seq for s in fins] == [iss + 1]                  # never iss, the SYN's number
    assert fins[0].ack == 5002                                 # and it acknowledges their FIN
    assert peer.layer.state_of(conn) == State.CLOSING
    peer.inject(ACK, 5002, iss + 2)
    assert peer.layer.state_of(conn) == State.TIME_WAIT


def test_a_simultaneous_close_still_repeats_the_outstanding_fin() -> None:
    """Negative: our FIN already sent and unacknowledged, their FIN arrives: ours is repeated, same number."""
    peer = RawPeer()
    conn, iss = peer.accept(1000)
    peer.layer.shutdown(peer.now, conn)
    (ours,) = peer.out()
    assert ours.flags & FIN
    assert ours.seq == iss + 1
    peer.inject(ACK | FIN, 1001, iss + 1)                     # does not acknowledge our FIN
    (again,) = peer.out()
    assert again.flags == FIN | ACK
    assert (again.seq, again.ack) == (iss + 1, 1002)
    assert peer.layer.state_of(conn) == State.CLOSING
