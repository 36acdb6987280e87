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
import, a table from another build) is compiled here, as `exec` would have, and counted. `release`, once the
boot is over, drops what the boot used and keeps the rest for the modules imported on first use (the TLS
engines, with the first TLS connection), which would otherwise compile about 300 methods then, a few tenths
of a second of that connection's handshake under TCG. From then on an entry goes as it is used. A source the
boot and such a module share (an empty class's `__init__`, say: 24 of the TLS engines' 318) went with the
boot's and is compiled when the module comes.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import marshal
from importlib._bootstrap_external import MAGIC_NUMBER  # (importlib.util's, without its imports)
from pathlib import Path
from types import CodeType
from typing import Any

CACHE_FILE = Path("/app/dataclass-methods.marshal")
DIGEST_BYTES = 16


def digest(source: str) -> bytes:
    return hashlib.sha256(source.encode("utf-8")).digest()[:DIGEST_BYTES]


def compiled(source: str) -> CodeType:
    """What `exec(source)` would run, from `dataclasses` (a module without future imports)."""
    return compile(source, "<string>", "exec", dont_inherit=True)


class CompiledMethods:
    """Stands in for `exec` inside `dataclasses`: the built code when the table has it, else a compile."""

    def __init__(self, table: dict[bytes, CodeType]) -> None:
        self._table = table
        self._used: set[bytes] | None = set()  # until release: the entries the boot used; then None
        self.hits = 0
        self.misses = 0

    def __call__(self, source: str | CodeType, globals_: dict[str, Any] | None = None,
                 locals_: dict[str, Any] | None = None) -> None:
        if not isinstance(source, str):
            builtins.exec(source, globals_, locals_)  # noqa: S102 - already code: nothing to look up
            return
        key = digest(source)
        code = self._table.get(key)
        if code is None:
            self.misses += 1
            code = compiled(source)
        else:
            self.hits += 1
            if self._used is None:
                self._table.pop(key, None)  # after the boot, each entry serves one class and goes
            else:
                self._used.add(key)
        builtins.exec(code, globals_, locals_)  # noqa: S102 - what dataclasses would exec, compiled once

    def release(self) -> None:
        """Drop the methods the boot made; keep those no class has used yet, for the modules imported on first
        use, each dropped as it is used. The table is the build's: it never grows."""
        used, self._used = tuple(self._used or ()), None  # one C call under the GIL: a copy no thread can change
        for key in used:
            self._table.pop(key, None)

    @property
    def kept(self) -> int:
        """Entries still in the table."""
        return len(self._table)


def write_table(table: dict[bytes, CodeType]) -> bytes:
    """The file: the bytecode version of the interpreter that compiled the methods, then the marshalled table."""
    return MAGIC_NUMBER + marshal.dumps(dict(sorted(table.items())))


def read_table(data: bytes) -> dict[bytes, CodeType]:
    """The table from the bytes `write_table` made; ValueError for anything else (a damaged or foreign file, or
    one compiled by another Python: its code would not be this interpreter's to run)."""
    if not data.startswith(MAGIC_NUMBER):
        raise ValueError("not a method table of this Python version")
    try:
        table = marshal.loads(data[len(MAGIC_NUMBER):])  # noqa: S302 - the image's own file, as trusted as its .pyc
    except (EOFError, ValueError, TypeError) as exc:
        raise ValueError(f"not a method table: {exc}") from exc
    if not isinstance(table, dict) or not all(
        isinstance(key, bytes) and len(key) == DIGEST_BYTES and isinstance(code, CodeType)
        for key, code in table.items()
    ):
        raise ValueError("not a method table: wrong shape")
    return table


def install(path: Path = CACHE_FILE) -> CompiledMethods | None:
    """Put the table at `path` in front of `dataclasses`' compiles; None (nothing installed) when there is no
    file (the host) or it is not a table (the methods are then compiled at boot, as without this module)."""
    try:
        table = read_table(path.read_bytes())
    except (OSError, ValueError):
        return None
    hook = CompiledMethods(table)
    dataclasses.exec = hook  # type: ignore[attr-defined]  # a module global, found before the builtin
    return hook


def installed() -> CompiledMethods | None:
    hook = getattr(dataclasses, "exec", None)
    return hook if isinstance(hook, CompiledMethods) else None


def release() -> dict[str, int]:
    """End of boot: free what the boot used of the table, keep the rest for first-use imports; how the boot
    went, for the log."""
    hook = installed()
    if hook is None:
        return {}
    hook.release()
    return {"methods_built": hook.hits, "methods_compiled": hook.misses, "methods_kept": hook.kept}
