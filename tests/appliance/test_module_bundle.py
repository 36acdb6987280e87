"""The image's module bundle: written by image/bundle.py, imported from by appliance.module_bundle."""

from __future__ import annotations

import importlib
import marshal
import runpy
import sys
from collections.abc import Iterator
from importlib.util import MAGIC_NUMBER
from pathlib import Path
from typing import Any

import pytest

from appliance import module_bundle
from appliance.module_bundle import INDEX_LENGTH_BYTES, MAGIC, BundleError, read_index
from image import bundle
from image.compile_pyc import pyc_bytes

SOURCES = {
    "app/bsample/__init__.py": b"VALUE = 'package'\n",
    "app/bsample/first.py": b"from . import second\nNAME = 'first:' + second.NAME\n",
    "app/bsample/second.py": b"from pathlib import Path\nNAME = 'second'\nHERE = Path(__file__).parent\n",
    "app/bsample/__main__.py": b"import sys\nRAN = True\n",
    "app/bsample/inner/__init__.py": b"",
    "app/bsample/inner/deep.py": b"def where():\n    raise ValueError('line 2')\n",
}


def _bundle_bytes() -> bytes:
    return bundle.write({path + "c": pyc_bytes(source, "/" + path) for path, source in SOURCES.items()})


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[module_bundle.BundleFinder]:
    path = tmp_path / "modules.bundle"
    path.write_bytes(_bundle_bytes())
    finder = module_bundle.install(str(path))
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if n.startswith("bsample")]:
            del sys.modules[name]


def test_modules_import_from_the_bundle_with_their_paths(installed: module_bundle.BundleFinder) -> None:
    first = importlib.import_module("bsample.first")
    assert first.NAME == "first:second"  # a relative import, also from the bundle
    package = sys.modules["bsample"]
    assert package.VALUE == "package"
    assert package.__path__ == ["/app/bsample"]  # extension modules are still found in the directory
    second = sys.modules["bsample.second"]
    assert second.__file__ == "/app/bsample/second.py"
    assert str(second.HERE) == "/app/bsample"
    assert installed.names() == sorted(["bsample", "bsample.first", "bsample.second", "bsample.__main__",
                                        "bsample.inner", "bsample.inner.deep"])
    assert module_bundle.installed() is installed


def test_tracebacks_name_the_image_path_and_line(installed: module_bundle.BundleFinder) -> None:
    deep = importlib.import_module("bsample.inner.deep")
    with pytest.raises(ValueError, match="line 2") as info:
        deep.where()
    last = info.tb
    while last.tb_next is not None:
        last = last.tb_next
    assert (last.tb_frame.f_code.co_filename, last.tb_lineno) == ("/app/bsample/inner/deep.py", 2)


def test_runpy_runs_a_package_main_from_the_bundle(installed: module_bundle.BundleFinder) -> None:
    assert runpy.run_module("bsample", run_name="__main__")["RAN"] is True


def test_what_the_bundle_lacks_falls_through(installed: module_bundle.BundleFinder) -> None:
    assert installed.find_spec("json") is None
    assert importlib.import_module("json").dumps([1]) == "[1]"
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("bsample.absent")


def test_module_names_from_image_paths() -> None:
    assert bundle.module_name("usr/lib/python3.11/json/decoder.pyc") == ("json.decoder", False)
    assert bundle.module_name("app/appliance/__init__.pyc") == ("appliance", True)
    assert bundle.module_name("app/appliance/PRODUCTION") is None
    assert bundle.module_name("lib/x86_64-linux-gnu/libc.so.6") is None
    with pytest.raises(ValueError, match="not a module"):
        bundle.write({"etc/passwd.pyc": bytes(20)})
    source = pyc_bytes(b"x = 1\n", "/app/x.py")
    with pytest.raises(ValueError, match="a second module named json"):
        bundle.write({"usr/lib/python3.11/json.pyc": source, "app/json.pyc": source})
    with pytest.raises(ValueError, match="2 different Python versions"):
        bundle.write({"app/a.pyc": source, "app/b.pyc": b"\x00\x00\r\n" + source[4:]})


def test_the_same_modules_make_the_same_bytes() -> None:
    assert _bundle_bytes() == _bundle_bytes()


def _header(index: Any, pyc_magic: bytes = MAGIC_NUMBER) -> bytes:
    encoded = marshal.dumps(index)
    return MAGIC + pyc_magic + len(encoded).to_bytes(INDEX_LENGTH_BYTES, "big") + encoded


@pytest.mark.parametrize("data", [
    b"",
    b"not a bundle at all",
    MAGIC + MAGIC_NUMBER + (10**6).to_bytes(INDEX_LENGTH_BYTES, "big") + b"short",
    MAGIC + MAGIC_NUMBER + (3).to_bytes(INDEX_LENGTH_BYTES, "big") + b"\xff\xff\xff",
    _header({}, pyc_magic=b"\x00\x00\r\n"),  # compiled by another Python
    _header(["a list"]),
    _header({"name": (0, 1, "not a bool", "/app/x.py")}),
    _header({1: (0, 1, False, "/app/x.py")}),
    _header({"tail": (-10, 5, False, "/app/tail.py")}),  # would read the file's last bytes through the map
    _header({"back": (0, -1, False, "/app/back.py")}),
])
def test_anything_but_a_bundle_is_refused(data: bytes) -> None:
    with pytest.raises(BundleError):
        read_index(data)


def test_an_entry_past_the_end_of_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "modules.bundle"
    path.write_bytes(_header({"ghost": (0, 100, False, "/app/ghost.py")}))
    finder = module_bundle.install(str(path))
    try:
        with pytest.raises(BundleError, match="no code"):
            finder.get_code("ghost")
    finally:
        sys.meta_path.remove(finder)


def test_an_empty_file_is_not_a_bundle(tmp_path: Path) -> None:
    path = tmp_path / "modules.bundle"
    path.write_bytes(b"")
    with pytest.raises(BundleError):
        module_bundle.install(str(path))
    assert module_bundle.installed() is None


def test_a_file_cut_inside_its_index_is_refused(tmp_path: Path) -> None:
    whole = _header({"m": (0, 0, False, "/app/m.py")})
    path = tmp_path / "modules.bundle"
    path.write_bytes(whole[:-3])
    with pytest.raises(BundleError, match="cut short"):
        module_bundle.install(str(path))


def test_an_index_longer_than_the_first_read_is_read_whole(tmp_path: Path) -> None:
    index = {f"m{n:06d}": (0, 0, False, f"/app/m{n:06d}.py") for n in range(60_000)}
    path = tmp_path / "modules.bundle"
    path.write_bytes(_header(index))
    assert path.stat().st_size > 1 << 20
    finder = module_bundle.install(str(path))
    try:
        assert len(finder.names()) == 60_000
    finally:
        sys.meta_path.remove(finder)
