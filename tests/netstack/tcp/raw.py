"""A hand-driven peer: craft segments into one TcpLayer and parse what it answers (tests only)."""

from __future__ import annotations

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.layer import TcpLayer
from netstack.tcp.segment import ACK, SYN, Segment, build_options, build_segment, parse_segment

US = bytes([10, 0, 0, 1])
THEM = bytes([10, 0, 0, 2])
US6 = bytes.fromhex("20010db8000000010000000000000001")    # 2001:db8:0:1::1
THEM6 = bytes.fromhex("20010db8000000020000000000000002")  # 2001:db8:0:2::2


class RawPeer:
    def __init__(self, config: TcpConfig | None = None, *, port: int = 80, peer_port: int = 40000,
                 peer_addr: bytes = THEM, us: bytes = US) -> None:
        self.layer = TcpLayer(b"k" * 32, config)
        self.port = port
        self.peer_port = peer_port
        self.peer = peer_addr
        self.us = us
        self.now = 0.0

    def inject(self, flags: int, seq: int, ack: int = 0, payload: bytes = b"", *, window: int = 65535,
               options: bytes = b"", src: bytes | None = None, src_port: int | None = None) -> None:
        source = src or self.peer
        sport = src_port if src_port is not None else self.peer_port
        segment = build_segment(source, self.us, sport, self.port, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags,
                                window, options, payload)
        self.layer.segment_received(self.now, source, self.us, memoryview(segment))

    def out(self) -> list[Segment]:
        return [parse_segment(src, dst, memoryview(seg)) for src, dst, seg in self.layer.take_outgoing()]

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every timer due on the way."""
        target = self.now + seconds
        while True:
            deadline = self.layer.next_deadline()
            if deadline is None or deadline > target:
                break
            self.now = max(self.now, deadline)
            self.layer.timers_expired(self.now)
        self.now = target

    def next_output(self, limit: float = 1000.0) -> list[Segment]:
        """Fire timers in order until one of them sends something (next_deadline may be early, never late);
        fails if none is due by `limit`."""
        while True:
            deadline = self.layer.next_deadline()
            assert deadline is not None
            assert deadline <= limit
            self.now = max(self.now, deadline)
            self.layer.timers_expired(self.now)
            out = self.out()
            if out:
                return out

    def accept(self, peer_isn: int = 1000, *, mss: int = 1460) -> tuple[int, int]:
        """Passive open by hand: returns (connection id, our ISS)."""
        if self.port not in self.layer.listeners:
            self.layer.listen(self.port)
        self.inject(SYN, peer_isn, options=build_options(mss=mss))
        (syn_ack,) = self.out()
        assert syn_ack.flags == SYN | ACK
        assert syn_ack.ack == peer_isn + 1
        self.inject(ACK, peer_isn + 1, syn_ack.seq + 1)
        accepted = [e for e in self.layer.take_events() if isinstance(e, ev.Accepted)]
        assert len(accepted) == 1
        return accepted[0].conn, syn_ack.seq
