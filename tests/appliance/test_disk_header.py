"""The header codec and the rule that picks a copy: pure, no disk."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.config import DISK_HEADER_BYTES
from appliance.disk_header import (
    COPY_BYTES,
    SLOT_BYTES,
    Copy,
    CopyState,
    DiskDamagedError,
    DiskError,
    Header,
    decode_copy,
    encode_copy,
    read_copies,
    resolve,
)

KEY = bytes(range(1, 33))
OTHER_KEY = bytes(range(2, 34))


def _block(first: bytes, second: bytes) -> bytes:
    return first + second


def _legacy(region_bytes: int, key: bytes | None) -> bytes:
    body = struct.pack(">8sIB32s", b"PINATA01", region_bytes, 1 if key else 0, key or bytes(32))
    return (body + struct.pack(">I", zlib.crc32(body))).ljust(SLOT_BYTES, b"\0")


@pytest.mark.parametrize("header", [
    Header(8192, None), Header(4 * 1024 * 1024, KEY, ledger_started=True, generation=7, format_epoch=3),
])
def test_copy_round_trip(header: Header) -> None:
    slot = encode_copy(header)
    assert len(slot) == SLOT_BYTES
    for first in (True, False):
        assert decode_copy(slot, first_slot=first) == Copy(CopyState.VALID, header)


def test_the_key_is_never_in_the_repr() -> None:
    assert KEY.hex() not in repr(Header(8192, KEY))
    assert str(KEY) not in repr(Header(8192, KEY))


@pytest.mark.parametrize(("offset", "reason"), [
    (0, "checksum mismatch"),  # magic
    (8, "checksum mismatch"),  # generation
    (16, "checksum mismatch"),  # region bytes
    (20, "checksum mismatch"),  # flags
    (21, "checksum mismatch"),  # format epoch
    (25, "checksum mismatch"),  # key
    (COPY_BYTES - 1, "checksum mismatch"),  # the CRC itself
    (COPY_BYTES, "bytes after the header copy"),
    (SLOT_BYTES - 1, "bytes after the header copy"),
])
def test_one_flipped_bit_anywhere_in_a_copy_makes_it_damaged(offset: int, reason: str) -> None:
    slot = bytearray(encode_copy(Header(8192, KEY, generation=2)))
    slot[offset] ^= 0x10
    copy = decode_copy(bytes(slot), first_slot=False)
    assert (copy.state, copy.reason, copy.header) == (CopyState.DAMAGED, reason, None)


def test_fields_out_of_range_are_damaged_even_with_a_good_checksum() -> None:
    for region_bytes, flags, key in ((4095, 1, KEY), (8192 + 1, 1, KEY), (8192, 0x80, KEY), (8192, 0, KEY)):
        body = struct.pack(">8sQIBI32s", b"PINATA02", 1, region_bytes, flags, 0, key)
        slot = (body + struct.pack(">I", zlib.crc32(body))).ljust(SLOT_BYTES, b"\0")
        assert decode_copy(slot, first_slot=True).state is CopyState.DAMAGED


def test_a_format_1_header_is_read_in_the_first_slot_only() -> None:
    slot = _legacy(8192, KEY)
    assert decode_copy(slot, first_slot=True) == Copy(CopyState.LEGACY, Header(8192, KEY))
    assert decode_copy(slot, first_slot=False).state is CopyState.DAMAGED
    flipped = bytearray(slot)
    flipped[20] ^= 1
    assert decode_copy(bytes(flipped), first_slot=True).state is CopyState.DAMAGED


@settings(max_examples=300)
@given(st.binary(min_size=0, max_size=SLOT_BYTES))
def test_random_slot_bytes_never_raise(prefix: bytes) -> None:
    copy = decode_copy(prefix.ljust(SLOT_BYTES, b"\0"), first_slot=True)
    assert copy.state in CopyState
    assert decode_copy(prefix, first_slot=False).state in CopyState


def test_read_copies_wants_the_whole_block() -> None:
    with pytest.raises(DiskError):
        read_copies(bytes(DISK_HEADER_BYTES - 1))


def test_both_blank_is_no_header() -> None:
    resolution = resolve(read_copies(bytes(DISK_HEADER_BYTES)))
    assert resolution.header is None
    assert resolution.repair == ()


def test_two_equal_copies_need_no_repair() -> None:
    slot = encode_copy(Header(8192, KEY, generation=3))
    resolution = resolve(read_copies(_block(slot, slot)))
    assert resolution.header == Header(8192, KEY, generation=3)
    assert resolution.repair == ()


@pytest.mark.parametrize("damaged_slot", [0, 1])
@pytest.mark.parametrize("damage", ["zeroed", "flipped"])
def test_one_damaged_copy_is_repaired_from_the_other(damaged_slot: int, damage: str) -> None:
    good = encode_copy(Header(8192, KEY, generation=3))
    bad = bytes(SLOT_BYTES) if damage == "zeroed" else bytes([good[0] ^ 1]) + good[1:]
    slots = [good, good]
    slots[damaged_slot] = bad
    resolution = resolve(read_copies(_block(*slots)))
    assert resolution.header == Header(8192, KEY, generation=3)
    assert resolution.repair == (damaged_slot,)


def test_the_higher_generation_wins_and_the_older_copy_is_rewritten() -> None:
    older = encode_copy(Header(8192, KEY, ledger_started=False, generation=1))
    newer = encode_copy(Header(8192, KEY, ledger_started=True, generation=2))
    for block, stale in ((_block(older, newer), 0), (_block(newer, older), 1)):
        resolution = resolve(read_copies(block))
        assert resolution.header is not None
        assert resolution.header.ledger_started
        assert resolution.repair == (stale,)


def test_copies_with_different_keys_are_refused() -> None:
    """Picking one would be guessing which key guards the funds."""
    block = _block(encode_copy(Header(8192, KEY, generation=2)), encode_copy(Header(8192, OTHER_KEY, generation=5)))
    with pytest.raises(DiskDamagedError, match="different wallet keys"):
        resolve(read_copies(block))


def test_copies_with_different_layouts_are_refused() -> None:
    block = _block(encode_copy(Header(8192, KEY, generation=1)), encode_copy(Header(16384, KEY, generation=2)))
    with pytest.raises(DiskDamagedError, match="layout"):
        resolve(read_copies(block))


def test_a_key_written_by_an_interrupted_provisioning_wins_over_no_key() -> None:
    block = _block(encode_copy(Header(8192, KEY, generation=2)), encode_copy(Header(8192, None, generation=1)))
    resolution = resolve(read_copies(block))
    assert resolution.header is not None
    assert resolution.header.key == KEY


@pytest.mark.parametrize(("first", "second"), [
    (b"\x01" + bytes(SLOT_BYTES - 1), bytes(SLOT_BYTES)),  # one damaged, one blank
    (bytes(SLOT_BYTES), b"\x01" + bytes(SLOT_BYTES - 1)),
    (b"\x01" * SLOT_BYTES, b"\x02" * SLOT_BYTES),  # both damaged
])
def test_no_readable_copy_on_a_disk_that_is_not_blank_is_refused(first: bytes, second: bytes) -> None:
    with pytest.raises(DiskDamagedError, match="will not make a new key"):
        resolve(read_copies(_block(first, second)))


def test_a_format_1_disk_is_upgraded_in_place() -> None:
    resolution = resolve(read_copies(_block(_legacy(8192, KEY), bytes(SLOT_BYTES))))
    assert resolution.legacy
    assert resolution.header == Header(8192, KEY)
    assert resolution.repair == (0, 1)


def test_an_interrupted_upgrade_keeps_the_format_1_key() -> None:
    block = _block(_legacy(8192, KEY), encode_copy(Header(8192, KEY, generation=1)))
    resolution = resolve(read_copies(block))
    assert not resolution.legacy
    assert resolution.repair == (0,)
    with pytest.raises(DiskDamagedError):
        resolve(read_copies(_block(_legacy(8192, OTHER_KEY), encode_copy(Header(8192, KEY, generation=1)))))


def test_a_keyless_copy_never_wins_over_a_keyed_one_whatever_its_generation() -> None:
    """No write removes a key, so a keyless copy beside a keyed one is stale or forged: boot keeps the key."""
    for first, second, stale in ((Header(8192, KEY, generation=3), Header(8192, None, generation=9), 1),
                                 (Header(8192, None, generation=9), Header(8192, KEY, generation=3), 0)):
        resolution = resolve(read_copies(_block(encode_copy(first), encode_copy(second))))
        assert resolution.header is not None
        assert resolution.header.key == KEY
        assert resolution.repair == (stale,)


def test_out_of_range_generation_and_region_size_are_damaged() -> None:
    for generation, region_bytes in ((1 << 62, 8192), (2**64 - 1, 8192), (1, 64 * 1024 * 1024 + 4096)):
        body = struct.pack(">8sQIBI32s", b"PINATA02", generation, region_bytes, 1, 0, KEY)
        slot = (body + struct.pack(">I", zlib.crc32(body))).ljust(SLOT_BYTES, b"\0")
        assert decode_copy(slot, first_slot=False) == Copy(CopyState.DAMAGED, reason="fields out of range")
    with pytest.raises(DiskError):
        encode_copy(Header(128 * 1024 * 1024, KEY))


def test_a_format_1_header_without_a_key_but_with_key_bytes_is_damaged() -> None:
    body = struct.pack(">8sIB32s", b"PINATA01", 8192, 0, KEY)
    slot = (body + struct.pack(">I", zlib.crc32(body))).ljust(SLOT_BYTES, b"\0")
    assert decode_copy(slot, first_slot=True).state is CopyState.DAMAGED


def test_a_format_1_header_beside_a_damaged_copy_is_named_as_such() -> None:
    with pytest.raises(DiskDamagedError, match="a format 1 header beside a damaged second copy"):
        resolve(read_copies(_block(_legacy(8192, KEY), b"\x01" + bytes(SLOT_BYTES - 1))))
