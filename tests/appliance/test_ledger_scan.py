"""The frame search of a ledger region skips runs of zeros without missing a frame (appliance.ledger_scan), and
a region scans the same whether it is bytes or a read-only map of the disk (as recovery reads it).

The skip exists for boot time: the search used to try its lookahead at every offset of a region's empty
megabytes (2 s under TCG on a boot after a power cut). What must hold is that it finds exactly what the
plain search finds, on any region: so the reference here is the pattern run over every offset.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance import ledger_record as rec
from appliance.ledger_scan import ZERO_RUN, _candidates, _frame_starts, scan_region, search
from tests.appliance.mapped import as_buffer

EPOCH = 6
MAX_PAYLOAD = 1024
PATTERN = _frame_starts(rec.FOLLOWING_KINDS, EPOCH)


def _frame_like(gap: int) -> bytes:
    """The bytes the pattern looks for: two zero length bytes, six more, a kind, the epoch (no checksum)."""
    return bytes(2) + bytes([gap % 256]) + bytes(5) + bytes([rec.KIND_EVENT]) + EPOCH.to_bytes(4, "big")


chunks = st.one_of(
    st.integers(0, 3 * ZERO_RUN).map(bytes),  # zero runs, shorter and longer than the skip's threshold
    st.binary(max_size=40),
    st.integers(0, 255).map(_frame_like),
    # A frame whose own zeros (length bytes, and more when its third byte is zero too) lengthen the run
    # before it: the run the skip sees ends inside the frame.
    st.tuples(st.integers(ZERO_RUN - 12, ZERO_RUN + 4), st.integers(0, 2)).map(
        lambda t: b"\x01" + bytes(t[0]) + _frame_like(t[1])),
)


@given(st.lists(chunks, max_size=30), st.integers(0, 400))
def test_skipping_zero_runs_finds_exactly_what_the_full_search_finds(parts: list[bytes], start: int) -> None:
    buf = b"".join(parts)
    assert list(_candidates(PATTERN, buf, start)) == [m.start() for m in PATTERN.finditer(buf, start)]


def test_a_record_after_megabytes_of_zeros_is_found() -> None:
    """A whole record far beyond a torn tail, past a long empty stretch: the resynchronising search finds it."""
    event = rec.Event(time=1.0, endpoint="http", category="served", source="10.0.0.1", reason="")
    record = rec.encode(rec.Record(EPOCH, 41, event), MAX_PAYLOAD)
    buf = b"\x07" * 100 + bytes(4 << 20) + record + bytes(1000)
    found = search(buf, 0, EPOCH, 41, MAX_PAYLOAD)
    assert found is not None
    assert (found.start, found.seq) == (100 + (4 << 20), 41)



def _record(epoch: int, seq: int, what: int) -> bytes:
    body: rec.Event | rec.Marker = (rec.Marker(rec.MARKS[what % len(rec.MARKS)]) if what % 5 == 0 else
                                    rec.Event(float(seq), "http", "served", f"10.0.0.{what}", "r" * what))
    return rec.encode(rec.Record(epoch, seq, body), MAX_PAYLOAD)


@st.composite
def regions(draw: st.DrawFn) -> bytes:
    """A region as the ledger leaves it, and worse: a checkpoint (or not), records of two generations with
    runs of seqs, terminators, zero runs and garbage between, and a few bytes flipped anywhere."""
    seq = draw(st.integers(0, 1000))
    parts = [rec.encode(rec.Record(EPOCH, seq, rec.Checkpoint(b"{}")), rec.CHECKPOINT_MAX_BYTES)
             if draw(st.booleans()) else b""]
    for _ in range(draw(st.integers(0, 25))):
        choice = draw(st.integers(0, 5))
        if choice <= 2:
            seq += 1 + (draw(st.integers(0, 3)) if choice == 2 else 0)
            parts.append(_record(EPOCH, seq, draw(st.integers(0, 40))))
        elif choice == 3:
            parts.append(_record(EPOCH - 2, draw(st.integers(0, 1000)), draw(st.integers(0, 40))))
        elif choice == 4:
            parts.append(bytes(draw(st.sampled_from([8, ZERO_RUN, 3 * ZERO_RUN]))))
        else:
            parts.append(draw(st.binary(min_size=1, max_size=40)))
    data = bytearray(b"".join(parts) + bytes(draw(st.integers(0, 200))))
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


@pytest.mark.parametrize("bodies", [False, True])
@given(regions(), st.sampled_from([(), (EPOCH,), (EPOCH + 2, EPOCH)]))
def test_a_region_scans_the_same_as_bytes_and_through_a_map(bodies: bool, data: bytes,
                                                            candidates: tuple[int, ...]) -> None:
    def scan(kind: str) -> object:
        with as_buffer(kind, data) as buf:
            return scan_region(buf, 0, max_payload=MAX_PAYLOAD, epoch_candidates=candidates, batch_records=4,
                               bodies=bodies)

    assert scan("mmap") == scan("bytes")
