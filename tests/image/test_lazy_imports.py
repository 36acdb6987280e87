"""Modules the appliance imports on first use are in the image.

The build ships the stdlib and third-party modules its import trace sees (image.rootfs): a module imported
inside a function is not seen, and is missing in the VM unless EXTRA_MODULES lists it or its package ships
whole. Found by review: RSASSA-PSS certificates raised ModuleNotFoundError in the VM after pyasn1's schema
became a first-use import (issue 17). This reads every such import in the shipped packages and checks it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from image.rootfs import EXTRA_MODULES, HOST_ONLY_MODULES, PROJECT_PACKAGES, ROOT, WHOLE_PACKAGES


def _imports_inside_functions(path: Path) -> list[str]:
    """Module names imported in function bodies: `import a.b` gives a.b, `from a import b` gives a.b and a."""
    names: list[str] = []
    for function in ast.walk(ast.parse(path.read_bytes())):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names += [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
    return names


def _shipped(name: str) -> bool:
    """Shipped whatever the trace saw: the project's packages and the packages shipped whole, EXTRA_MODULES
    and the packages they are in, and the host-only modules (never imported in the image)."""
    top = name.split(".", maxsplit=1)[0]
    return (top in PROJECT_PACKAGES or top in WHOLE_PACKAGES or name in HOST_ONLY_MODULES
            or any(extra == name or extra.startswith(name + ".") for extra in EXTRA_MODULES))


def test_every_first_use_import_of_the_shipped_code_is_in_the_image() -> None:
    missing = [
        f"{path.relative_to(ROOT)}: {name}"
        for package in PROJECT_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in _imports_inside_functions(path)
        # `from module import attribute` names an attribute: its module is what must be shipped
        if not _shipped(name) and not _shipped(name.rsplit(".", 1)[0])
    ]
    assert not missing, missing


def test_the_check_sees_a_missing_module() -> None:
    """The finding itself: without its EXTRA_MODULES entry, pyasn1_modules.rfc4055 is not shipped."""
    assert _shipped("pyasn1_modules.rfc4055")
    assert not _shipped("pyasn1_modules.rfc9999")
    assert "pyasn1_modules.rfc4055" in _imports_inside_functions(ROOT / "tls" / "x509" / "pss.py")
