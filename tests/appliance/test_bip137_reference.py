"""The test-only BIP-137 verifier's own building blocks, checked against fixed encodings (not against
appliance.bitcoin, which it exists to check)."""

from __future__ import annotations

import pytest

from tests.appliance.bip137_reference import compact_size


@pytest.mark.parametrize(
    ("length", "encoded"),
    [
        (0, "00"),
        (252, "fc"),
        (253, "fdfd00"),
        (256, "fd0001"),
        (0xFFFF, "fdffff"),
        (0x10000, "fe00000100"),
        (0xFFFFFFFF, "feffffffff"),
        (1 << 32, "ff0000000001000000"),
    ],
)
def test_compact_size(length: int, encoded: str) -> None:
    assert compact_size(length).hex() == encoded
