"""The reassembly queue: segments that arrived ahead of RCV.NXT, kept until the hole before them is filled.

Why apart: what may be queued (window, per-connection and shared limits) is the connection's decision, but
how queued segments are ordered, deduplicated and handed back as the stream advances is a data structure with
its own invariants (`bytes` is the sum of the queued payloads; nothing queued starts at or before RCV.NXT once
`drain` has run), and is tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable

from netstack.tcp.seq import HALF, MASK

Entry = tuple[int, bytes, bool]  # (sequence number, payload, FIN after it)


class Reassembly:
    """Out-of-order segments, sorted by distance from RCV.NXT at the time they were queued."""

    __slots__ = ("bytes", "segments")

    def __init__(self) -> None:
        self.segments: list[Entry] = []
        self.bytes = 0

    def __len__(self) -> int:
        return len(self.segments)

    def charge(self, entry_overhead: int) -> int:
        """What the queue costs against the layer's out-of-order budget: its bytes plus a fixed overhead per
        entry for the Python objects that hold it."""
        return self.bytes + len(self.segments) * entry_overhead

    def holds(self, seq: int, length: int) -> bool:
        """Whether a queued segment at `seq` already covers `length` bytes (a duplicate)."""
        return any(existing_seq == seq and len(data) >= length for existing_seq, data, _fin in self.segments)

    def add(self, seq: int, data: bytes, fin: bool, rcv_nxt: int) -> None:
        self.segments.append((seq, data, fin))
        self.segments.sort(key=lambda entry: (entry[0] - rcv_nxt) & MASK)
        self.bytes += len(data)

    def drain(self, rcv_nxt: int, take: Callable[[bytes], int]) -> tuple[int, bool, bool]:
        """Hand `take` what now continues the stream at `rcv_nxt`, in order; `take` keeps what fits and says
        how much. Returns (the new RCV.NXT, whether the queue changed the stream, whether a FIN was reached).
        Segments still ahead of the stream stay queued; the rest, delivered or wholly duplicate, go."""
        changed = fin = False
        keep: list[Entry] = []
        for seq, data, seg_fin in sorted(self.segments, key=lambda entry: (entry[0] - rcv_nxt) & MASK):
            skip = (rcv_nxt - seq) & MASK
            if skip >= HALF:
                keep.append((seq, data, seg_fin))
            elif skip < len(data):
                taken = take(data[skip:])
                rcv_nxt = (rcv_nxt + taken) & MASK
                changed = True
                if seg_fin and taken == len(data) - skip:
                    fin = True
            elif skip == len(data) and seg_fin:
                fin = changed = True
        self.segments = keep
        self.bytes = sum(len(data) for _seq, data, _fin in keep)
        return rcv_nxt, changed, fin

    def clear(self) -> None:
        self.segments = []
        self.bytes = 0



# What a connection holds until its first out-of-order segment: shared, and never added to (most connections
# never see one, so they need no queue of their own). A connection that queues one replaces it first.
NO_REASSEMBLY = Reassembly()

__all__ = ["NO_REASSEMBLY", "Reassembly"]
