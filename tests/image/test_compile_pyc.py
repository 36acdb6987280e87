"""The image's .pyc files: smaller, and the same program (image.compile_pyc)."""

from __future__ import annotations

import importlib
import importlib.util
import marshal
import sys
import traceback
from pathlib import Path

import pytest

from image.compile_pyc import UNCHECKED_HASH, pyc_bytes

SOURCE = b'''"""Module docstring: gone in the image."""
from __future__ import annotations

from dataclasses import dataclass


def documented(x: int) -> int:
    """Function docstring: gone."""
    assert x >= 0, "negative"
    return x + 1


def only_a_docstring() -> None:
    """Nothing else in the body: a pass takes its place."""


async def coroutine() -> int:
    """Gone too."""
    return 2


@dataclass(frozen=True)
class Kept:
    """Class docstrings stay."""

    value: int

    def method(self) -> int:
        """Gone."""
        return self.value


def fails() -> None:
    raise ValueError("line 34")
'''


@pytest.fixture
def module(tmp_path: Path) -> object:
    """The compiled file imported sourceless, as the image imports it."""
    (tmp_path / "shipped.pyc").write_bytes(pyc_bytes(SOURCE, "/app/shipped.py"))
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("shipped")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("shipped", None)


def test_docstrings_go_but_class_docstrings_stay(module: object) -> None:
    assert module.__doc__ is None
    assert module.documented.__doc__ is None  # type: ignore[attr-defined]
    assert module.only_a_docstring() is None  # type: ignore[attr-defined]
    assert module.coroutine.__doc__ is None  # type: ignore[attr-defined]
    assert module.Kept.__doc__ == "Class docstrings stay."  # type: ignore[attr-defined]
    assert module.Kept.method.__doc__ is None  # type: ignore[attr-defined]
    assert module.Kept(3).method() == 3  # type: ignore[attr-defined]


def test_asserts_stay_and_tracebacks_keep_their_lines(module: object) -> None:
    assert module.documented(1) == 2  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match="negative"):
        module.documented(-1)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="line 34") as info:
        module.fails()  # type: ignore[attr-defined]
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (last.filename, last.lineno) == ("/app/shipped.py", 34)


def test_the_header_is_an_unchecked_hash_of_the_source() -> None:
    data = pyc_bytes(SOURCE, "/app/shipped.py")
    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(data[4:8], "little") == UNCHECKED_HASH
    assert data[8:16] == importlib.util.source_hash(SOURCE)
    assert pyc_bytes(SOURCE, "/app/shipped.py") == data  # reproducible


def test_smaller_than_the_plain_compile() -> None:
    source = (Path(__file__).resolve().parents[2] / "appliance" / "ledger.py").read_bytes()
    plain = 16 + len(marshal.dumps(compile(source, "/app/appliance/ledger.py", "exec", dont_inherit=True)))
    assert len(pyc_bytes(source, "/app/appliance/ledger.py")) < 0.9 * plain
