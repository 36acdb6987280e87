"""Build step: the table of compiled dataclass methods that the image's boot uses (appliance.method_cache).

Run by the staged interpreter (`python -S -X no_debug_ranges image/record_methods.py OUT PACKAGES EXTRAS`, the
image's /app on its path): it imports what the import trace imports, with `dataclasses`' `exec` replaced by a
recorder, and writes every method source's compiled code under the source's digest, in digest order, with the
number of classes made from it (appliance.method_cache drops an entry after that many uses).
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib
import json
import pkgutil
import sys
from pathlib import Path
from types import CodeType
from typing import Any

from appliance.method_cache import Table, compiled, digest, write_table


def record(packages: list[str], extras: list[str]) -> Table:
    table: Table = {}

    def recording_exec(source: str | CodeType, globals_: dict[str, Any] | None = None,
                       locals_: dict[str, Any] | None = None) -> None:
        if isinstance(source, str):
            key = digest(source)
            code, uses = table.get(key) or (compiled(source), 0)
            table[key] = (code, uses + 1)
        else:
            code = source
        builtins.exec(code, globals_, locals_)  # noqa: S102 - what dataclasses would exec

    dataclasses.exec = recording_exec  # type: ignore[attr-defined]
    try:
        for name in packages:
            package = importlib.import_module(name)
            for info in pkgutil.walk_packages(package.__path__, name + "."):
                importlib.import_module(info.name)
        for name in extras:
            importlib.import_module(name)
    finally:
        del dataclasses.exec  # type: ignore[attr-defined]
    return table


def main() -> int:
    out, packages, extras = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    Path(out).write_bytes(write_table(record(packages, extras)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
