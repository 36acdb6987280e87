"""TCP segments with options into the TCP layer (netstack/tcp), as the stack hands them over: to a listening
port, to an established connection and to one we opened ourselves, with time passing and the application
sending, reading and closing in between.

Chunks: RAW, a segment from our neighbour as it is; SEGMENT, the same with its checksum made right; TO_PEER,
a segment of the established connection (ports set, sequence and acknowledgment numbers relative to where it
stands, checksum right); TO_ACTIVE, the same for the connection we opened; TIME, the clock moved on (timers
run); CALL, the application's turn on the established connection (send, read, shut down, close, abort); ICMP,
an ICMP error quoting the last segment we sent.

What must hold: nothing escapes and nothing is counted as an internal error; the options codec reads back what
it writes for whatever it parsed; every segment we send parses with a correct checksum and valid ports; the
layer's connections, byte budgets, events and transmit queue stay within their limits.
"""

from __future__ import annotations

import struct

from fuzz import chunks
from fuzz.clock import run_due_timers
from fuzz.errors import PropertyViolationError, require
from fuzz.frames import THEM, US
from netstack.checksum import checksum
from netstack.ipv4 import build_header
from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.counters import Count
from netstack.tcp.layer import TcpError, TcpLayer
from netstack.tcp.segment import (
    ACK,
    MIN_HEADER_LEN,
    SYN,
    Segment,
    SegmentError,
    build_options,
    build_segment,
    parse_options,
    parse_segment,
    pseudo_header_sum,
)
from netstack.tcp.seq import MASK

RAW, SEGMENT, TO_PEER, TO_ACTIVE, TIME, CALL, ICMP = range(7)
PEER_PORT, ACTIVE_PORT, PORT = 40000, 5000, 80
PEER_ISN = 1000
CONFIG = TcpConfig(max_connections=24, max_per_source=12, max_half_open=6)
"""The appliance's TCP with its admission limits shrunk (as `--limit tcp.max_half_open=6` would): one input's
64 chunks can then fill them, so SYN cookies and the connection and per-source limits are reached."""
BACKLOG = 4


def _fix_checksum(segment: bytes) -> bytes:
    if len(segment) < MIN_HEADER_LEN:
        return segment
    data = bytearray(segment)
    data[16:18] = b"\x00\x00"
    data[16:18] = checksum(data, pseudo_header_sum(THEM, US, len(data))).to_bytes(2, "big")
    return bytes(data)


def _relative(segment: bytes, ports: tuple[int, int], seq_base: int, ack_base: int) -> bytes:
    """The fuzzer's segment on a connection: its ports set, its numbers taken as offsets from where the
    connection stands (so that mutations stay near the window), its checksum right."""
    data = bytearray(segment.ljust(MIN_HEADER_LEN, b"\x00"))
    if data[12] >> 4 < 5:
        data[12] = 0x50 | (data[12] & 0x0F)
    seq, ack = struct.unpack_from("!II", data, 4)
    struct.pack_into("!HHII", data, 0, *ports, (seq_base + seq) & MASK, (ack_base + ack) & MASK)
    return _fix_checksum(bytes(data))


class _Harness:
    def __init__(self) -> None:
        self.layer = TcpLayer(b"fuzz-isn-secret-" * 2, CONFIG)
        self.layer.listen(PORT, BACKLOG)
        self.now = 1.0
        self.last_sent = b""
        self.layer.segment_received(self.now, THEM, US, memoryview(build_segment(
            THEM, US, PEER_PORT, PORT, PEER_ISN, 0, SYN, 65535, build_options(mss=1460, wscale=7, ts=(1, 0)))))
        (syn_ack,) = self._sent()
        self.iss = syn_ack.seq
        self.layer.segment_received(self.now, THEM, US, memoryview(build_segment(
            THEM, US, PEER_PORT, PORT, PEER_ISN + 1, self.iss + 1, ACK, 65535)))
        accepted = [e for e in self.layer.take_events() if isinstance(e, ev.Accepted)]
        require(len(accepted) == 1, "the harness's own handshake failed")
        self.conn = accepted[0].conn
        self.active = self.layer.connect(self.now, US, THEM, ACTIVE_PORT)
        (syn,) = self._sent()
        self.active_iss = syn.seq
        self.active_port = syn.src_port

    def _sent(self) -> list[Segment]:
        segments = []
        for src, dst, segment in self.layer.take_outgoing():
            try:
                parsed = parse_segment(src, dst, memoryview(segment))
            except SegmentError as bad:
                raise PropertyViolationError(f"we sent a malformed segment: {bad.reason}") from bad
            require(parsed.src_port != 0 and parsed.dst_port != 0, "we sent a segment with port 0")
            require(src == US and dst == THEM, "we sent a segment between the wrong addresses")
            self.last_sent = segment
            segments.append(parsed)
        return segments

    def segment(self, segment: bytes) -> None:
        if len(segment) >= MIN_HEADER_LEN and segment[12] >> 4 > 5:
            try:
                options = parse_options(memoryview(segment)[MIN_HEADER_LEN : (segment[12] >> 4) * 4])
            except SegmentError:
                pass
            else:
                again = build_options(mss=options.mss, wscale=options.wscale, sack_permitted=options.sack_permitted,
                                      ts=None if options.ts_val is None else (options.ts_val, options.ts_ecr or 0))
                require(parse_options(memoryview(again)) == options, "TCP options do not round-trip")
        self.layer.segment_received(self.now, THEM, US, memoryview(segment))

    def call(self, body: bytes) -> None:
        what = body[0] % 6 if body else 0
        try:
            if what == 0:
                self.layer.send(self.now, self.conn, body[1:] * (1 + (body[1] if len(body) > 1 else 0)))
            elif what == 1:
                self.layer.receive(self.now, self.conn, 1 + (body[1] if len(body) > 1 else 0) * 64)
            elif what == 2:
                self.layer.shutdown(self.now, self.conn)
            elif what == 3:
                self.layer.close(self.now, self.conn)
            elif what == 4:
                self.layer.abort(self.now, self.conn)
            else:
                self.layer.pause_reading(self.conn)
        except TcpError:
            return

    def icmp(self, body: bytes) -> None:
        """An ICMP error about the last segment we sent: body gives type, code and next-hop MTU."""
        control = body[:4].ljust(4, b"\x00")
        quoted = self.last_sent[:8] if self.last_sent else bytes(8)
        header = bytes(build_header(US, THEM, 6, len(self.last_sent), 0, ttl=64))
        self.layer.icmp_error_received(self.now, control[0] % 16, control[1] % 16, header + quoted,
                                       int.from_bytes(control[2:4], "big") or None)

    def advance(self, body: bytes) -> None:
        self.now += int.from_bytes(body[:2].ljust(2, b"\x00"), "big") / 100
        run_due_timers(self.layer, self.now)

    def check(self) -> None:
        layer = self.layer
        self._sent()
        events = layer.take_events()
        require(layer.stats[Count.INTERNAL_ERROR] == 0, "TCP counted an internal error")
        require(len(layer.connections) <= CONFIG.max_connections, "more connections than the limit")
        require(len(layer.half_open) <= CONFIG.max_half_open, "more half-open connections than the limit")
        require(len(events) <= CONFIG.max_events, "more events than the queue holds")
        budgets = layer.budgets
        count = len(layer.connections)
        require(0 <= budgets.rcv_held <= CONFIG.rcv_budget + count * CONFIG.rcv_guaranteed, "receive budget")
        require(0 <= budgets.snd_held <= CONFIG.snd_budget + count * CONFIG.snd_guaranteed, "send budget")
        require(0 <= budgets.ooo_held <= CONFIG.ooo_budget + count * CONFIG.ooo_max_bytes, "out-of-order budget")


def fuzz_one(data: bytes) -> None:
    harness = _Harness()
    for kind, body in chunks.split(data, 7):
        if kind == RAW:
            harness.segment(body)
        elif kind == SEGMENT:
            harness.segment(_fix_checksum(body))
        elif kind == TO_PEER:
            harness.segment(_relative(body, (PEER_PORT, PORT), PEER_ISN + 1, harness.iss + 1))
        elif kind == TO_ACTIVE:
            harness.segment(_relative(body, (ACTIVE_PORT, harness.active_port), 0, harness.active_iss + 1))
        elif kind == TIME:
            harness.advance(body)
        elif kind == CALL:
            harness.call(body)
        else:
            harness.icmp(body)
        harness.check()


def _segment(flags: int, seq: int = 0, ack: int = 0, payload: bytes = b"", options: bytes = b"") -> bytes:
    """A segment whose numbers are offsets (TO_PEER, TO_ACTIVE); ports and checksum are set by the harness."""
    header_len = (MIN_HEADER_LEN + len(options)) // 4
    return struct.pack("!HHIIBBHHH", 0, 0, seq, ack, header_len << 4, flags, 65535, 0, 0) + options + payload


def seeds() -> dict[str, bytes]:
    fin, psh, rst = 0x01, 0x08, 0x04
    ts = build_options(ts=(5, 1))
    request = _segment(ACK | psh, 0, 0, b"GET / HTTP/1.1\r\n\r\n")
    return {
        "data-and-close": chunks.join([(TO_PEER, request), (CALL, b"\x01\x10"), (CALL, b"\x00\x03reply"),
                                       (TIME, b"\x00\x0a"), (TO_PEER, _segment(ACK | fin, 18, 15)), (CALL, b"\x03"),
                                       (TIME, b"\x10\x00")]),
        "out-of-order": chunks.join([(TO_PEER, _segment(ACK, 100, 0, b"later")),
                                     (TO_PEER, _segment(ACK, 0, 0, b"x" * 100)), (CALL, b"\x01\xff")]),
        "timestamps": chunks.join([(TO_PEER, _segment(ACK, 0, 0, b"ts", ts))]),
        "rst-challenge": chunks.join([(TO_PEER, _segment(rst, 5)), (TO_PEER, _segment(SYN, 0))]),
        "active-open": chunks.join([(TO_ACTIVE, _segment(SYN | ACK, 7000, 0, b"", build_options(mss=536))),
                                    (CALL, b"\x00\x00")]),
        "syn-with-options": chunks.join([(SEGMENT, build_segment(THEM, US, 41000, PORT, 1, 0, SYN, 1024,
                                                                  build_options(mss=1200, wscale=14,
                                                                                sack_permitted=True, ts=(9, 0))))]),
        "retransmit-icmp": chunks.join([(CALL, b"\x00\x05" + b"z" * 600), (TIME, b"\x01\x00"),
                                        (ICMP, bytes((3, 4, 2, 0x40)))]),
        "closed-port": chunks.join([(RAW, build_segment(THEM, US, 41000, 81, 1, 0, SYN, 1024))]),
        "syn-flood": chunks.join([(SEGMENT, build_segment(THEM, US, 41000 + i, PORT, i, 0, SYN, 1024))
                                  for i in range(8)]),
    }
