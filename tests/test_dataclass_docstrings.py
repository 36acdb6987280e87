"""Every dataclass in the shipped packages has a docstring.

Why: for a class without one, Python 3.11's `dataclasses` makes one from `inspect.signature(cls)`
(`_process_class`), when the class is created, which is at import. The image boots under QEMU's TCG, where
Python runs 3-15 times slower, and a profile of the boot in the VM found those signatures a noticeable share of
its imports (issue 17). A written docstring costs nothing there (`image.compile_pyc` keeps class docstrings for
this reason) and says why the class exists.

The check reads the source with `ast` rather than importing every module to look at `__doc__`: it sees every
class, those in host-only modules too, without running any import's side effects.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from image.rootfs import PROJECT_PACKAGES, ROOT


def _is_dataclass_decorator(decorator: ast.expr) -> bool:
    """`@dataclass`, `@dataclass(...)`, `@dataclasses.dataclass` or `@dataclasses.dataclass(...)`."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Name) and target.id == "dataclass") or (
        isinstance(target, ast.Attribute) and target.attr == "dataclass"
    )


def undocumented(source: str) -> list[str]:
    """The dataclasses in `source` without a (non-empty) docstring, nested ones included, as `name:line`."""
    return [
        f"{node.name}:{node.lineno}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ClassDef)
        and any(_is_dataclass_decorator(d) for d in node.decorator_list)
        and not ast.get_docstring(node)
    ]


def _shipped_sources() -> list[Path]:
    return sorted(path for package in PROJECT_PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_every_dataclass_in_the_shipped_packages_has_a_docstring() -> None:
    missing = [
        f"{path.relative_to(ROOT)}:{where}"
        for path in _shipped_sources()
        for where in undocumented(path.read_text(encoding="utf-8"))
    ]
    listed = "\n".join(missing)
    assert not missing, f"dataclasses without a docstring (each costs an inspect.signature at import):\n{listed}"


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("@dataclass\nclass A:\n    x: int\n", ["A:2"]),
        ("@dataclass(frozen=True, slots=True)\nclass A:\n    x: int\n", ["A:2"]),
        ("@dataclasses.dataclass\nclass A:\n    x: int\n", ["A:2"]),
        ("@dataclasses.dataclass(frozen=True)\nclass A:\n    x: int\n", ["A:2"]),
        ("def f():\n    @dataclass\n    class Inner:\n        x: int\n", ["Inner:3"]),
        ('@dataclass\nclass A:\n    ""\n    x: int\n', ["A:2"]),  # empty: dataclasses still makes one
        ('@dataclass\nclass A:\n    """Why A exists."""\n\n    x: int\n', []),
        ("class A:\n    x: int\n", []),
        ("@final\nclass A:\n    x: int\n", []),
    ],
)
def test_what_counts_as_an_undocumented_dataclass(source: str, found: list[str]) -> None:
    assert undocumented(source) == found
