"""The boot's table of compiled dataclass methods (appliance.method_cache, image/record_methods.py)."""

from __future__ import annotations

import dataclasses
import importlib
import marshal
import sys
from collections.abc import Iterator
from importlib.util import MAGIC_NUMBER
from pathlib import Path

import pytest

from appliance import method_cache
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


@dataclass
class Empty:
    pass
'''
LATER = '''
from dataclasses import dataclass


@dataclass(order=True)
class Later:
    name: str


@dataclass
class AlsoEmpty:  # the same method sources as shapes.Empty's
    pass
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
    assert hook.hits == 3  # AlsoEmpty's __init__, __repr__ and __eq__: the same sources as shapes.Empty's
    assert hook.misses > 0
    assert later.Later("a") < later.Later("b")
    assert later.Later.__init__.__annotations__ == {"name": str, "return": None}


def test_each_entry_serves_as_many_classes_as_the_build_made_from_it(package: Path, tmp_path: Path) -> None:
    """A module imported after the boot (as the TLS engines are) finds its methods built, even those whose
    source a boot class had used (AlsoEmpty's, the same as Empty's); once every class the build made is made,
    the table is empty, and a class made again is compiled."""
    (package / "mcsample" / "later.py").write_text(LATER)  # before the table is made: the build imports it
    table = method_cache.read_table(_table(tmp_path).read_bytes())
    hook = method_cache.install(_table(tmp_path))
    assert hook is not None
    assert hook.entries == len(table)
    assert max(uses for _code, uses in table.values()) == 2  # Empty's and AlsoEmpty's sources

    shapes = importlib.import_module("mcsample.shapes")
    built_at_boot = hook.hits
    assert method_cache.report() == {"methods_built": built_at_boot, "methods_compiled": 0,
                                     "methods_left": hook.entries}
    assert 0 < hook.entries < len(table)  # Later's, and one use each of the empty class's

    later = importlib.import_module("mcsample.later")
    assert hook.misses == 0
    assert hook.entries == 0  # every entry used as many times as the build used it, then gone
    assert later.Later("a") < later.Later("b")
    assert later.AlsoEmpty() == later.AlsoEmpty()
    assert repr(later.AlsoEmpty()) == "AlsoEmpty()"
    assert shapes.Empty() != later.AlsoEmpty()

    del sys.modules["mcsample.shapes"]
    shapes = importlib.import_module("mcsample.shapes")
    assert hook.misses >= 6
    assert shapes.Point(1, 2) == shapes.Point(1, 2)


CODE = compile("x = 1", "<string>", "exec")


@pytest.mark.parametrize("data", [
    b"",
    b"not marshal at all",
    MAGIC_NUMBER + marshal.dumps([1, 2, 3]),
    MAGIC_NUMBER + marshal.dumps({b"short": (CODE, 1)}),
    MAGIC_NUMBER + marshal.dumps({bytes(16): ("source, not code", 1)}),
    MAGIC_NUMBER + marshal.dumps({bytes(16): CODE}),  # an older table's entry: no count of uses
    MAGIC_NUMBER + marshal.dumps({bytes(16): (CODE, 0)}),  # would never leave the table, nor serve
    MAGIC_NUMBER + marshal.dumps({bytes(16): (CODE, -1)}),
    MAGIC_NUMBER + marshal.dumps({bytes(16): (CODE, True)}),
    MAGIC_NUMBER + marshal.dumps({bytes(16): (CODE, 1, 2)}),
    b"\x00\x00\r\n" + marshal.dumps({bytes(16): (CODE, 1)}),  # another Python's
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
