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

BUNDLE_FILE = "/app/modules.bundle"
MAGIC = b"pinata-modules-2\n"
PYC_MAGIC_BYTES = 4  # after MAGIC: the .pyc magic number of the interpreter that compiled the modules
INDEX_LENGTH_BYTES = 8
HEADER_BYTES = len(MAGIC) + PYC_MAGIC_BYTES + INDEX_LENGTH_BYTES

Entry = tuple[int, int, bool, str]
"""Where a module's code is (offset from the end of the index, length), whether it is a package, and its
`__file__`."""


class BundleError(Exception):
    """The bundle file is not one the image builder wrote."""


def index_length(header: bytes) -> int:
    """The length of the index, from the first HEADER_BYTES of the file."""
    if not header.startswith(MAGIC) or len(header) < HEADER_BYTES:
        raise BundleError("not a module bundle")
    return int.from_bytes(header[HEADER_BYTES - INDEX_LENGTH_BYTES : HEADER_BYTES], "big")


def read_index(header: bytes) -> tuple[int, dict[str, Entry]]:
    """(length of the header and index, the index) from the file's first bytes. The .pyc magic number the
    bundle keeps once for all its modules must be this interpreter's bytecode version."""
    start = HEADER_BYTES
    length = index_length(header)
    if header[len(MAGIC) : len(MAGIC) + PYC_MAGIC_BYTES] != MAGIC_NUMBER:
        raise BundleError("the bundle was compiled for another Python version")
    if len(header) < start + length:
        raise BundleError("the bundle's index is cut short")
    try:
        index = marshal.loads(header[start : start + length])  # noqa: S302 - the image's own file
    except (EOFError, ValueError, TypeError) as exc:
        raise BundleError(f"the bundle's index does not decode: {exc}") from exc
    if not isinstance(index, dict) or not all(
        isinstance(name, str) and isinstance(entry, tuple) and len(entry) == 4
        and isinstance(entry[0], int) and isinstance(entry[1], int) and isinstance(entry[2], bool)
        and entry[0] >= 0 and entry[1] >= 0  # a slice of the map would count a negative one from the end
        and isinstance(entry[3], str)
        for name, entry in index.items()
    ):
        raise BundleError("the bundle's index has the wrong shape")
    return start + length, index


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
        start = self._base + offset
        with memoryview(self._pages)[start : start + length] as data:  # released at once: no view outlives this
            try:
                code = marshal.loads(data)  # noqa: S302 - the image's own file, as trusted as the .pyc files it holds
            except (EOFError, ValueError, TypeError):
                code = None
            complete = len(data) == length
        if not complete or not isinstance(code, CodeType):
            raise BundleError(f"{fullname}: the bundle holds no code for it")
        return code

    def is_package(self, fullname: str) -> bool:
        return self._index[fullname][2]

    def get_source(self, fullname: str) -> None:
        return None  # sourceless, like the .pyc files


def install(path: str = BUNDLE_FILE) -> BundleFinder:
    """Open the bundle and put its finder before the path-based finder (built-in and frozen modules keep
    theirs, extension modules and anything else fall through to the directories)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        pages = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)  # the map keeps the file; the descriptor can go
    except ValueError as exc:  # an empty file cannot be mapped
        raise BundleError("not a module bundle") from exc
    finally:
        os.close(fd)
    end, index = read_index(pages[: HEADER_BYTES + index_length(pages[:HEADER_BYTES])])
    finder = BundleFinder(pages, end, index)
    position = next((i for i, f in enumerate(sys.meta_path) if f is PathFinder), len(sys.meta_path))
    sys.meta_path.insert(position, finder)
    return finder


def installed() -> BundleFinder | None:
    return next((f for f in sys.meta_path if isinstance(f, BundleFinder)), None)
