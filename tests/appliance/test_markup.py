"""appliance.markup.escape against the standard library's html.escape, which it stands in for at boot."""

from __future__ import annotations

import html
import random

import pytest

from appliance.markup import escape

SPECIAL = "&<>\"'"


@pytest.mark.parametrize("text", [
    "", "plain", "&", "&amp;", "<script>alert(1)</script>", "\"'", "a\"b'c<d>e&f", "&lt;&#x27;",
    "<svg onload=x>", "ünïcødé & ☃ <>", "\x00<\x7f>",
])
def test_escape_is_html_escape(text: str) -> None:
    assert escape(text) == html.escape(text, quote=True)


def test_escape_is_html_escape_on_random_text() -> None:
    """Strings dense in the five special characters, their replacements' own characters and others."""
    rng = random.Random(17)
    alphabet = SPECIAL + "amplgtquo#x27; é\n"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        assert escape(text) == html.escape(text, quote=True)


def test_nothing_special_survives() -> None:
    escaped = escape(SPECIAL * 3)
    assert not set("<>\"'") & set(escaped)
    assert escaped.count("&") == 15  # each of the 15 is the start of a reference, none is left bare
