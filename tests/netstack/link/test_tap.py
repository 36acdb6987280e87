from __future__ import annotations

import pytest

from netstack.link.tap import TapLink


def test_interface_name_length_is_checked_before_opening() -> None:
    with pytest.raises(ValueError, match="15 bytes"):
        TapLink("a" * 16, bytes(6))
