"""The boot's table of compiled dataclass methods (appliance.method_cache, image/record_methods.py)."""

from __future__ import annotations

import dataclasses
import importlib
import marshal
import sys
from collections.abc import Iterator
from importlib.util import MAGIC_NUMBER
from pathlib import Path
from typing import Any

import pytest

from appliance import method_cache, module_bundle
from image.record_methods import record

# No `from __future__ import annotations` here: the generated __init__'s annotations are then objects,
# which a method compiled with the wrong flags would turn into strings.
SAMPLE = '''
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Point:
    x: int
    y: int = 0


@dataclass
class Bag:
    items: list = field(default_factory=list)
'''
LATER = '''
from dataclasses import dataclass


@dataclass(order=True)
class Later:
    name: str
'''


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "src"
    (root / "mcsample").mkdir(parents=True)
    (root / "mcsample" / "__init__.py").write_text("")
    (root / "mcsample" / "shapes.py").write_text(SAMPLE)
    sys.path.insert(0, str(root))
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n.startswith("mcsample")]:
            del sys.modules[name]
        if hasattr(dataclasses, "exec"):
            del dataclasses.exec


def _table(tmp_path: Path) -> Path:
    table = record(["mcsample"], [])
    for name in [n for n in sys.modules if n.startswith("mcsample")]:
        del sys.modules[name]  # made again below, through the table
    path = tmp_path / "methods.marshal"
    path.write_bytes(method_cache.write_table(table))
    return path


def test_recorded_methods_are_used_and_behave_as_compiled_ones(package: Path, tmp_path: Path) -> None:
    hook = method_cache.install(_table(tmp_path))
    assert hook is not None
    shapes = importlib.import_module("mcsample.shapes")
    assert hook.misses == 0
    assert hook.hits >= 6  # Point: __init__ __repr__ __eq__ __hash__ __setattr__ __delattr__; Bag: ...
    point = shapes.Point(1, 2)
    assert point == shapes.Point(1, 2)
    assert repr(point) == "Point(x=1, y=2)"
    assert hash(point) == hash(shapes.Point(1, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 3
    assert shapes.Point.__init__.__annotations__ == {"x": int, "y": int, "return": None}
    assert shapes.Bag().items == []


def test_a_source_not_in_the_table_is_compiled_as_exec_would(package: Path, tmp_path: Path) -> None:
    hook = method_cache.install(_table(tmp_path))
    assert hook is not None
    (package / "mcsample" / "later.py").write_text(LATER)  # after the table was made: none of it is there
    later = importlib.import_module("mcsample.later")
    assert hook.hits == 0
    assert hook.misses > 0
    assert later.Later("a") < later.Later("b")
    assert later.Later.__init__.__annotations__ == {"name": str, "return": None}


def test_the_table_serves_every_class_that_comes_after_the_boot(package: Path, tmp_path: Path) -> None:
    """A module imported on first use (as the TLS engines are) finds its methods built, and so does a class
    made again from a source the boot used: the table is never emptied."""
    (package / "mcsample" / "later.py").write_text(LATER)
    hook = method_cache.install(_table(tmp_path))
    assert hook is not None
    whole = hook.entries
    importlib.import_module("mcsample.shapes")
    built_at_boot = hook.hits
    assert method_cache.report() == {
        "methods_built": built_at_boot, "methods_compiled": 0, "methods_undecodable": 0, "methods_in_table": whole,
    }

    later = importlib.import_module("mcsample.later")
    assert hook.hits > built_at_boot
    assert later.Later("a") < later.Later("b")

    del sys.modules["mcsample.shapes"]
    shapes = importlib.import_module("mcsample.shapes")
    assert hook.misses == 0
    assert hook.hits >= 2 * built_at_boot
    assert hook.entries == whole
    assert shapes.Point(1, 2) == shapes.Point(1, 2)


def test_an_entry_that_is_not_code_is_compiled_instead_and_dropped(package: Path, tmp_path: Path) -> None:
    path = _table(tmp_path)
    table = bytearray(path.read_bytes())
    _end, index = module_bundle.read_container(bytes(table), method_cache.MAGIC)
    assert isinstance(index, dict)
    blobs_start = len(table) - sum(length for _offset, length in index.values())
    first_offset, first_length = min(index.values())
    table[blobs_start + first_offset : blobs_start + first_offset + first_length] = b"\xff" * first_length
    path.write_bytes(bytes(table))
    hook = method_cache.install(path)
    assert hook is not None
    shapes = importlib.import_module("mcsample.shapes")
    assert (hook.undecodable, hook.misses) == (1, 1)  # the damaged source, compiled from its text
    assert hook.entries == len(index) - 1
    assert shapes.Point(1, 2) == shapes.Point(1, 2)
    assert repr(shapes.Bag()) == "Bag(items=[])"


def _container(
    index: dict[Any, Any] | list[Any], pyc_magic: bytes = MAGIC_NUMBER, magic: bytes = method_cache.MAGIC,
) -> bytes:
    return module_bundle.container(magic, pyc_magic, index, [])


@pytest.mark.parametrize("data", [
    b"",
    b"not marshal at all",
    marshal.dumps({bytes(16): compile("x = 1", "<string>", "exec")}),  # the old format: a marshalled dict
    _container({bytes(16): (0, 0)}, magic=module_bundle.MAGIC),  # a module bundle
    _container({bytes(16): (0, 0)}, pyc_magic=b"\x00\x00\r\n"),  # another Python's
    _container([1, 2, 3]),
    _container({b"short": (0, 1)}),
    _container({bytes(16): "source, not a place"}),
    _container({bytes(16): (0, 1, 2)}),
    _container({bytes(16): (-5, 5)}),  # would read the file's last bytes through the map
    _container({bytes(16): (0, -1)}),
    method_cache.MAGIC + MAGIC_NUMBER + (10**6).to_bytes(module_bundle.INDEX_LENGTH_BYTES, "big") + b"short",
])
def test_anything_but_a_table_is_not_installed(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "methods.marshal"
    path.write_bytes(data)
    assert method_cache.install(path) is None
    assert method_cache.installed() is None
    assert method_cache.report() == {}


def test_no_file_no_hook(tmp_path: Path) -> None:
    assert method_cache.install(tmp_path / "absent") is None
    assert not hasattr(dataclasses, "exec")
