"""Dataclass methods compiled when the image is built, so that the boot does not compile them again.

`@dataclass` writes the source of each method it generates (`__init__`, `__eq__`, `__repr__`, the frozen
`__setattr__`, ...) and compiles it with `exec` as the class is made: about 790 sources for the appliance's
classes, compiled on every boot, a sixth of the appliance's import time, which under TCG is the largest part
of the boot. The image builder (image/record_methods.py) imports the appliance once, keeps each source's
compiled code under the digest of the source, and ships the table; `install`, first thing in /init, puts a
lookup in front of `exec` for the `dataclasses` module alone.

Why this cannot change what runs: the key is the digest of the exact text `dataclasses` would compile, and
compiling is a pure function of that text (the flags are fixed: `dont_inherit`, as `dataclasses` compiles
without future features). A source not in the table (a class made after boot, a module the builder did not
import, a table from another build, an entry that does not decode) is compiled here, as `exec` would have,
and counted.

Why the table is mapped and each entry unmarshalled when it is used: the file is the module bundle's kind of
container (appliance.module_bundle), already in RAM as part of the initramfs, so the map costs only its index
(about 140 KB). Unmarshalled whole, the table was 1.7 MB of code objects, most of which the made classes do
not keep. The table is never emptied: the modules imported on first use (the TLS engines, with the first TLS
connection) find every source there, including those a boot class shared with them (24 of the engines' 318)
and those several of their classes share (30), which a table emptied as it went compiled inside the first
handshake.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import marshal
import mmap
from importlib._bootstrap_external import MAGIC_NUMBER  # (importlib.util's, without its imports)
from pathlib import Path
from types import CodeType
from typing import Any

from appliance import module_bundle

CACHE_FILE = Path("/app/dataclass-methods.marshal")
MAGIC = b"pinata-methods-1\n"
DIGEST_BYTES = 16

Entry = tuple[int, int]
"""Where a method source's compiled code is: offset from the end of the index, length."""


def digest(source: str) -> bytes:
    return hashlib.sha256(source.encode("utf-8")).digest()[:DIGEST_BYTES]


def compiled(source: str) -> CodeType:
    """What `exec(source)` would run, from `dataclasses` (a module without future imports)."""
    return compile(source, "<string>", "exec", dont_inherit=True)


class CompiledMethods:
    """Stands in for `exec` inside `dataclasses`: the built code when the table has it, else a compile."""

    def __init__(self, pages: mmap.mmap, base: int, index: dict[bytes, Entry]) -> None:
        self._pages = pages  # the mapped file
        self._base = base  # where the compiled code begins: after the header and the index
        self._index = index
        self.hits = 0
        self.misses = 0  # compiled here: not in the table, or (counted in `undecodable` too) not code
        self.undecodable = 0

    def __call__(self, source: str | CodeType, globals_: dict[str, Any] | None = None,
                 locals_: dict[str, Any] | None = None) -> None:
        if not isinstance(source, str):
            builtins.exec(source, globals_, locals_)  # noqa: S102 - already code: nothing to look up
            return
        code = self._lookup(digest(source))
        if code is None:
            self.misses += 1
            code = compiled(source)
        else:
            self.hits += 1
        builtins.exec(code, globals_, locals_)  # noqa: S102 - what dataclasses would exec, compiled once

    def _lookup(self, key: bytes) -> CodeType | None:
        entry = self._index.get(key)
        if entry is None:
            return None
        code = module_bundle.load_blob(self._pages, self._base + entry[0], entry[1])
        if isinstance(code, CodeType):
            return code
        self._index.pop(key, None)  # not tried again; popped, not deleted: an import on a thread may race
        self.undecodable += 1
        return None

    @property
    def entries(self) -> int:
        return len(self._index)


def write_table(table: dict[bytes, CodeType]) -> bytes:
    """The file: a container (appliance.module_bundle) whose index maps each digest to its marshalled code,
    in digest order, with the bytecode version of the interpreter that compiled the methods."""
    index: dict[bytes, Entry] = {}
    blobs: list[bytes] = []
    offset = 0
    for key, code in sorted(table.items()):
        blob = marshal.dumps(code)
        index[key] = (offset, len(blob))
        blobs.append(blob)
        offset += len(blob)
    return module_bundle.container(MAGIC, MAGIC_NUMBER, index, blobs)


def table_index(index: object) -> dict[bytes, Entry]:
    """The decoded index, if it has the table's shape; ValueError if not."""
    if not isinstance(index, dict) or not all(
        isinstance(key, bytes) and len(key) == DIGEST_BYTES and isinstance(entry, tuple) and len(entry) == 2
        and isinstance(entry[0], int) and isinstance(entry[1], int)
        and entry[0] >= 0 and entry[1] >= 0  # a slice of the map would count a negative one from the end
        for key, entry in index.items()
    ):
        raise ValueError("not a method table: wrong shape")
    return index


def install(path: Path = CACHE_FILE) -> CompiledMethods | None:
    """Put the table at `path` in front of `dataclasses`' compiles; None (nothing installed) when there is no
    file (the host) or it is not a table of this interpreter's (the methods are then compiled at boot, as
    without this module)."""
    try:
        pages, base, index = module_bundle.map_container(str(path), MAGIC)
        hook = CompiledMethods(pages, base, table_index(index))
    except (OSError, ValueError, module_bundle.BundleError):
        return None
    dataclasses.exec = hook  # type: ignore[attr-defined]  # a module global, found before the builtin
    return hook


def installed() -> CompiledMethods | None:
    hook = getattr(dataclasses, "exec", None)
    return hook if isinstance(hook, CompiledMethods) else None


def report() -> dict[str, int]:
    """How the boot went, for its `ready` line: methods built from the table, compiled, in the table."""
    hook = installed()
    if hook is None:
        return {}
    return {"methods_built": hook.hits, "methods_compiled": hook.misses, "methods_undecodable": hook.undecodable,
            "methods_in_table": hook.entries}
