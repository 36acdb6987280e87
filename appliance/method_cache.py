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
import, a table from another build) is compiled here, as `exec` would have, and counted.

Each entry carries how many classes the build made from its source (one text can serve several: an empty
class's `__init__`, a frozen class's `__setattr__`), and leaves the table when that many have used it. Those
are the classes the image's modules make as they are imported: the boot's, and those of the modules imported
on first use (the TLS engines, with the first TLS connection), which so find all their methods built. A table
that dropped what the boot had used at its end, and each entry at its first use after that, left 54 of the
engines' 318 sources to be compiled inside the first handshake.

Why the whole table is unmarshalled at once: one `marshal.loads` of the file is about 25 ms of the boot in the
VM. Unmarshalling each entry when it is used, from a map of an indexed file, cost about 150 ms more than that,
spread over the imports (A/B with stamps in /init).
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

Table = dict[bytes, tuple[CodeType, int]]
"""Digest of a method source -> (its compiled code, how many classes the build made from it)."""


def digest(source: str) -> bytes:
    return hashlib.sha256(source.encode("utf-8")).digest()[:DIGEST_BYTES]


def compiled(source: str) -> CodeType:
    """What `exec(source)` would run, from `dataclasses` (a module without future imports)."""
    return compile(source, "<string>", "exec", dont_inherit=True)


class CompiledMethods:
    """Stands in for `exec` inside `dataclasses`: the built code when the table has it, else a compile."""

    def __init__(self, table: Table) -> None:
        self._table = table
        self.hits = 0
        self.misses = 0

    def __call__(self, source: str | CodeType, globals_: dict[str, Any] | None = None,
                 locals_: dict[str, Any] | None = None) -> None:
        if not isinstance(source, str):
            builtins.exec(source, globals_, locals_)  # noqa: S102 - already code: nothing to look up
            return
        key = digest(source)
        entry = self._table.get(key)
        if entry is None:
            self.misses += 1
            code = compiled(source)
        else:
            self.hits += 1
            code, uses = entry
            # Its last use takes it. Two threads making classes from one source at once (only an import on the
            # RSA thread could) may leave it one use too many: it then stays, as an entry never used does.
            if uses > 1:
                self._table[key] = (code, uses - 1)
            else:
                self._table.pop(key, None)
        builtins.exec(code, globals_, locals_)  # noqa: S102 - what dataclasses would exec, compiled once

    @property
    def entries(self) -> int:
        """Entries still in the table: sources that a class the build made has not yet been made from here."""
        return len(self._table)


def write_table(table: Table) -> bytes:
    """The file: the bytecode version of the interpreter that compiled the methods, then the marshalled table."""
    return MAGIC_NUMBER + marshal.dumps(dict(sorted(table.items())))


def read_table(data: bytes) -> Table:
    """The table from the bytes `write_table` made; ValueError for anything else (a damaged or foreign file, or
    one compiled by another Python: its code would not be this interpreter's to run)."""
    if not data.startswith(MAGIC_NUMBER):
        raise ValueError("not a method table of this Python version")
    try:
        table = marshal.loads(data[len(MAGIC_NUMBER):])  # noqa: S302 - the image's own file, as trusted as its .pyc
    except (EOFError, ValueError, TypeError) as exc:
        raise ValueError(f"not a method table: {exc}") from exc
    if not isinstance(table, dict) or not all(
        isinstance(key, bytes) and len(key) == DIGEST_BYTES and isinstance(entry, tuple) and len(entry) == 2
        and isinstance(entry[0], CodeType) and type(entry[1]) is int and entry[1] > 0
        for key, entry in table.items()
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


def report() -> dict[str, int]:
    """How the boot went, for its `ready` line: methods built from the table, compiled, left in the table."""
    hook = installed()
    if hook is None:
        return {}
    return {"methods_built": hook.hits, "methods_compiled": hook.misses, "methods_left": hook.entries}
