"""The reassembly queue: segments that arrived ahead of RCV.NXT, kept until the hole before them is filled.

Why apart: what may be queued (window, per-connection and shared limits) is the connection's decision, but
how queued segments are ordered, deduplicated and handed back as the stream advances is a data structure with
its own invariants (`bytes` is the sum of the queued payloads; nothing queued starts at or before RCV.NXT once
`drain` has run), and is tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable

from netstack.tcp.seq import HALF, MASK, seq_diff

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

    def end(self) -> int | None:
        """The sequence number after the furthest queued byte, None when nothing is queued. Entries are sorted
        by their distance ahead of the stream and never overlap, so the last one ends furthest."""
        if not self.segments:
            return None
        seq, data, _fin = self.segments[-1]
        return (seq + len(data)) & MASK

    def fin_seq(self) -> int | None:
        """The sequence number of the peer's FIN when one is queued, else None. `ReceiveSide` refuses text
        beyond it and a second FIN elsewhere (`data-beyond-fin`, `fin-conflict`), so a queued FIN is always
        the last entry: the end of the stream."""
        if self.segments and self.segments[-1][2]:
            seq, data, _fin = self.segments[-1]
            return (seq + len(data)) & MASK
        return None

    def gaps(self, seq: int, length: int) -> list[tuple[int, int]]:
        """The pieces (start, end), as offsets from `seq`, of the `length` bytes at `seq` that no queued entry
        holds yet. Queued entries never overlap (`add` keeps them apart) and are sorted, so one pass finds them."""
        pieces: list[tuple[int, int]] = []
        start = 0
        for queued_seq, data, _fin in self.segments:
            rel = seq_diff(queued_seq, seq)
            if rel >= length:
                break
            end = rel + len(data)
            if end <= start:
                continue
            if rel > start:
                pieces.append((start, rel))
            start = end
        if start < length:
            pieces.append((start, length))
        return pieces

    def add(self, seq: int, data: bytes, fin: bool, rcv_nxt: int) -> int:
        """Queue what of `data` no entry holds yet, and say how many bytes that was. The first copy of a byte
        wins, whatever the shape of the overlap: RFC 9293 leaves the choice open, and a stack that lets
        later copies win for some shapes and not others delivers a stream that depends on how the sender
        (or an attacker racing it) cut its retransmissions, which is what IDS evasion through overlapping
        segments plays on. `ReceiveSide` applies the same rule to in-order text overlapping queued text."""
        return self.add_pieces(seq, data, self.gaps(seq, len(data)), fin, rcv_nxt)

    def add_pieces(self, seq: int, data: bytes, pieces: list[tuple[int, int]], fin: bool, rcv_nxt: int) -> int:
        """`add`, for a caller that has the gaps already (`gaps(seq, len(data))`, or the ones it means to
        queue): the pieces go in with one sort, not a search and a sort each."""
        added = 0
        for start, end in pieces:
            self.segments.append(((seq + start) & MASK, data[start:end], fin and end == len(data)))
            added += end - start
        if fin and (not pieces or pieces[-1][1] != len(data)):
            self.segments.append(((seq + len(data)) & MASK, b"", True))  # the FIN, after bytes already held
        self.segments.sort(key=lambda entry: (entry[0] - rcv_nxt) & MASK)
        self.bytes += added
        return added

    def drain(self, rcv_nxt: int, take: Callable[[bytes], int]) -> tuple[int, bool, bool]:
        """Hand `take` what now continues the stream at `rcv_nxt`, in order; `take` keeps what fits and says
        how much. Returns (the new RCV.NXT, whether the queue changed the stream, whether a FIN was reached).
        Segments still ahead of the stream stay queued; the rest, delivered or wholly duplicate, go. Nothing
        after a FIN is taken: the stream ends there (RFC 9293 §3.10.7.4), whatever was queued beyond it
        (`ReceiveSide` queues nothing beyond a FIN, but `add` itself does not refuse it)."""
        changed = fin = False
        keep: list[Entry] = []
        for seq, data, seg_fin in sorted(self.segments, key=lambda entry: (entry[0] - rcv_nxt) & MASK):
            if fin:
                break
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
