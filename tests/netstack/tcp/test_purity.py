"""The TCP core is sans-I/O: time, randomness and sockets are passed in, never imported."""

from __future__ import annotations

import ast
from pathlib import Path

TCP_SOURCES = Path(__file__).resolve().parents[3] / "netstack" / "tcp"
FORBIDDEN = {"asyncio", "socket", "time", "os", "random", "secrets", "select", "selectors", "threading", "adapters"}


def test_no_io_imports_in_netstack_tcp() -> None:
    found = []
    for path in sorted(TCP_SOURCES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.name}: {name}" for name in names if name.split(".")[0] in FORBIDDEN]
    assert not found
    assert len(list(TCP_SOURCES.glob("*.py"))) > 10  # the glob did find the package
