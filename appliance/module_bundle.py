"""The image's compiled modules in one file, imported without the filesystem search for each of them.

The usual import of a module from a directory asks the filesystem several times: the directory's
modification time for every search of every `sys.path` entry and package, then open, stat, read and close
of the .pyc. Under TCG every system call is emulated, and the appliance's boot imports about 400 modules:
measured in the VM, the search and the reads were 0.4 s of a 2.4 s import (issue 17). The image builder
(image/bundle.py) writes every .pyc that /init does not need before this module into one file, with an
index; `install` maps the file and reads the index once, and puts a finder before the path-based one, so that
an import is a dictionary lookup and an unmarshal straight from the mapped pages, with no system call (a
`pread` per module had been 0.09 s of the boot's 2.7 s under a profiler in the VM, 288 of them). The map
costs no memory: the file is already in RAM (the initramfs), and the map shares its pages. Extension modules
(.so) and data files stay in the directories, and a package's `__path__` is its directory, so that the
path-based finder still finds its extension modules.

Modules keep their `__file__` (the path the source had, which tracebacks also name), so code that finds its
data files beside its module works unchanged. The bundle is part of the image, as trusted as the .pyc files
it replaces: a bundle that is not well formed stops the boot (`BundleError`), as a missing module would.
"""

from __future__ import annotations

import marshal
import mmap
import os
import sys
from importlib._bootstrap_external import MAGIC_NUMBER  # (importlib.util's, without what importlib.util imports)
from importlib.machinery import ModuleSpec, PathFinder
from types import CodeType, ModuleType

TYPE_CHECKING = False  # typing's own would import typing before the bundle is there to import it from
if TYPE_CHECKING:
    from typing import Any

BUNDLE_FILE = "/app/modules.bundle"
MAGIC = b"pinata-modules-2\n"
PYC_MAGIC_BYTES = 4  # after MAGIC: the .pyc magic number of the interpreter that compiled the modules
INDEX_LENGTH_BYTES = 8

Entry = tuple[int, int, bool, str]
"""Where a module's code is (offset from the end of the index, length), whether it is a package, and its
`__file__`."""


class BundleError(Exception):
    """The bundle file is not one the image builder wrote."""


def index_length(header: bytes, magic: bytes = MAGIC) -> int:
    """The length of the index, from the first `header_bytes(magic)` of the file."""
    if not header.startswith(magic) or len(header) < header_bytes(magic):
        raise BundleError("not a module bundle" if magic == MAGIC else "not a file the image builder wrote")
    return int.from_bytes(header[header_bytes(magic) - INDEX_LENGTH_BYTES : header_bytes(magic)], "big")


def header_bytes(magic: bytes) -> int:
    """The fixed part of a container file that begins with `magic`: the magic, the .pyc magic number of the
    interpreter that compiled what it holds, the index's length."""
    return len(magic) + PYC_MAGIC_BYTES + INDEX_LENGTH_BYTES


def read_container(header: bytes, magic: bytes) -> tuple[int, object]:
    """(length of the header and index, the decoded index) of a container file: the fixed part, then the
    marshalled index, then the blobs it points at. The bundle and the dataclass method table
    (appliance.method_cache) are such files; the index's shape is each one's to check. What they hold must
    have been compiled by this interpreter."""
    start = header_bytes(magic)
    length = index_length(header, magic)
    if header[len(magic) : len(magic) + PYC_MAGIC_BYTES] != MAGIC_NUMBER:
        raise BundleError("compiled for another Python version")
    if len(header) < start + length:
        raise BundleError("the index is cut short")
    try:
        index = marshal.loads(header[start : start + length])  # noqa: S302 - the image's own file
    except (EOFError, ValueError, TypeError) as exc:
        raise BundleError(f"the index does not decode: {exc}") from exc
    return start + length, index


def container(magic: bytes, pyc_magic: bytes, index: dict[Any, Any] | list[Any], blobs: list[bytes]) -> bytes:
    """The file `read_container` reads, as the image builder writes it."""
    encoded = marshal.dumps(index)
    return magic + pyc_magic + len(encoded).to_bytes(INDEX_LENGTH_BYTES, "big") + encoded + b"".join(blobs)


def map_container(path: str, magic: bytes) -> tuple[mmap.mmap, int, object]:
    """(the file's pages, where its blobs begin, its decoded index): the file is mapped, not read. The map
    costs no memory: the file is already in RAM (the initramfs), and the map shares its pages."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pages = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)  # the map keeps the file; the descriptor can go
    except ValueError as exc:  # an empty file cannot be mapped
        raise BundleError("an empty file") from exc
    finally:
        os.close(fd)
    fixed = header_bytes(magic)
    end, index = read_container(pages[: fixed + index_length(pages[:fixed], magic)], magic)
    return pages, end, index


def load_blob(pages: mmap.mmap, start: int, length: int) -> object:
    """The object marshalled at [start, start + length) of the map; None when the file ends before the
    slice does or the slice does not decode."""
    with memoryview(pages)[start : start + length] as data:  # released at once: no view outlives this
        try:
            loaded = marshal.loads(data)  # noqa: S302 - the image's own file, as trusted as its .pyc files
        except (EOFError, ValueError, TypeError):
            return None
        return loaded if len(data) == length else None


def read_index(header: bytes) -> tuple[int, dict[str, Entry]]:
    """(length of the header and index, the index) from the bundle's first bytes."""
    end, index = read_container(header, MAGIC)
    return end, bundle_index(index)


def bundle_index(index: object) -> dict[str, Entry]:
    """The decoded index, if it has the bundle's shape."""
    if not isinstance(index, dict) or not all(
        isinstance(name, str) and isinstance(entry, tuple) and len(entry) == 4
        and isinstance(entry[0], int) and isinstance(entry[1], int) and isinstance(entry[2], bool)
        and entry[0] >= 0 and entry[1] >= 0  # a slice of the map would count a negative one from the end
        and isinstance(entry[3], str)
        for name, entry in index.items()
    ):
        raise BundleError("the bundle's index has the wrong shape")
    return index


class BundleFinder:
    """A meta path finder and loader over the bundle (the two protocols of importlib, duck-typed: importing
    importlib.abc would cost more than it checks)."""

    def __init__(self, pages: mmap.mmap, base: int, index: dict[str, Entry]) -> None:
        self._pages = pages
        self._base = base  # where the modules' code begins: after the magic, the index length and the index
        self._index = index

    def names(self) -> list[str]:
        """Every module in the bundle (what pkgutil.walk_packages would list from the directories)."""
        return sorted(self._index)

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        entry = self._index.get(fullname)
        if entry is None:
            return None
        _offset, _length, is_package, origin = entry
        spec = ModuleSpec(fullname, self, origin=origin, is_package=is_package)  # type: ignore[arg-type]  # (duck-typed)
        spec.has_location = True  # __file__ = origin
        if is_package:
            spec.submodule_search_locations = [origin.rsplit("/", 1)[0]]
        return spec

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        exec(self.get_code(module.__name__), module.__dict__)  # noqa: S102 - the image's own compiled module

    def get_code(self, fullname: str) -> CodeType:
        """The module's code (runpy asks for it to run `appliance.__main__`)."""
        offset, length, _is_package, _origin = self._index[fullname]
        code = load_blob(self._pages, self._base + offset, length)
        if not isinstance(code, CodeType):
            raise BundleError(f"{fullname}: the bundle holds no code for it")
        return code

    def is_package(self, fullname: str) -> bool:
        return self._index[fullname][2]

    def get_source(self, fullname: str) -> None:
        return None  # sourceless, like the .pyc files


def install(path: str = BUNDLE_FILE) -> BundleFinder:
    """Open the bundle and put its finder before the path-based finder (built-in and frozen modules keep
    theirs, extension modules and anything else fall through to the directories)."""
    try:
        pages, end, index = map_container(path, MAGIC)
    except BundleError as exc:
        raise BundleError(f"not a module bundle: {exc}") from exc
    finder = BundleFinder(pages, end, bundle_index(index))
    position = next((i for i, f in enumerate(sys.meta_path) if f is PathFinder), len(sys.meta_path))
    sys.meta_path.insert(position, finder)
    return finder


def installed() -> BundleFinder | None:
    return next((f for f in sys.meta_path if isinstance(f, BundleFinder)), None)
