"""Compile the image's Python sources to sourceless .pyc files, as the target interpreter runs them.

Run by the staged interpreter (`python -S -X no_debug_ranges image/compile_pyc.py`, jobs as JSON on stdin), so it
imports nothing but the standard library. Two things make the files smaller than `py_compile`'s, and each is a
byte of RAM for the life of the VM (the initramfs is a ramfs) and a byte to unpack at every boot:

- module and function docstrings are left out. Class docstrings stay: a dataclass without one computes one at
  class creation (`inspect.signature`), which would cost boot time, and classes are where the few readers of
  `__doc__` look. Unlike `-OO`, `assert` statements stay: some guard invariants.
- `-X no_debug_ranges` (PEP 657) drops the column tables; tracebacks keep their line numbers.

The header is PEP 552's unchecked-hash form: no timestamps (reproducible), and never compared with a source
the image does not ship.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import marshal
import sys
from pathlib import Path

UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, not checked against the source
HEADER_BYTES = 16  # PEP 552: magic, flags, source hash


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


class DocstringStripper(ast.NodeTransformer):
    """Removes the docstrings of the module and of every function; a body left empty gets a `pass`."""

    def _strip(self, node: ast.Module | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if node.body and _is_docstring(node.body[0]):
            first = node.body.pop(0)
            if not node.body:
                node.body.append(ast.copy_location(ast.Pass(), first))

    def visit_Module(self, node: ast.Module) -> ast.Module:
        self._strip(node)
        self.generic_visit(node)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self._strip(node)
        self.generic_visit(node)
        return node

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AsyncFunctionDef:
        self._strip(node)
        self.generic_visit(node)
        return node


def pyc_bytes(source: bytes, shown: str) -> bytes:
    """The .pyc for `source`; `shown` is the file name tracebacks print (the path in the image)."""
    tree = DocstringStripper().visit(ast.parse(source, filename=shown))
    code = compile(tree, shown, "exec", dont_inherit=True)
    header = importlib.util.MAGIC_NUMBER + UNCHECKED_HASH.to_bytes(4, "little") + importlib.util.source_hash(source)
    return header + marshal.dumps(code)


def main() -> int:
    for source, target, shown in json.loads(sys.stdin.read()):
        out = Path(target)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(pyc_bytes(Path(source).read_bytes(), shown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
