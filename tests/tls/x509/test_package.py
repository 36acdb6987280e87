"""tls.x509's interface: every exported name is its module's object, imported on first use, and importing the
package (or a light module of it) loads none of the parser, the model or path validation."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import tls.x509
from tls.x509 import _HOMES


@pytest.mark.parametrize("name", tls.x509.__all__)
def test_each_exported_name_is_the_object_its_module_defines(name: str) -> None:
    home = importlib.import_module(f"tls.x509.{_HOMES[name]}")
    assert getattr(tls.x509, name) is getattr(home, name)


def test_the_exports_and_their_homes_are_the_same_list() -> None:
    assert sorted(_HOMES) == sorted(tls.x509.__all__)
    assert set(tls.x509.__all__) <= set(dir(tls.x509))


def test_no_module_of_the_package_is_named_like_an_export() -> None:
    """Importing a submodule sets it as an attribute of the package: one named like an export (the validator
    was once `validate.validate`) would replace the exported name with the module, depending on import order."""
    assert set(_HOMES).isdisjoint(_HOMES.values())
    for path in tls.x509.__path__:
        modules = {entry.stem for entry in Path(path).glob("*.py")}
        assert set(_HOMES).isdisjoint(modules), sorted(set(_HOMES) & modules)


def test_validate_stays_the_function_after_its_module_is_imported() -> None:
    import tls.x509.validation  # the import is the point: it sets an attribute on the package
    assert callable(tls.x509.validate)
    assert tls.x509.validate is tls.x509.validation.validate


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'verify'"):
        tls.x509.verify  # noqa: B018 - the lookup is the test
    with pytest.raises(ImportError):
        exec("from tls.x509 import verify", {})  # a from-import of a name that is not there


def test_the_package_and_its_light_modules_load_no_parser() -> None:
    script = ("import json, sys; import tls.x509.oids, tls.x509.der, tls.x509.peek, tls.x509.purpose; "
              "from tls.x509 import Purpose, DEFAULT_LIMITS; "
              "print(json.dumps(sorted(m for m in sys.modules if m.startswith('tls.x509'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                       check=True).stdout)
    assert loaded == ["tls.x509", "tls.x509.der", "tls.x509.errors", "tls.x509.limits", "tls.x509.oids",
                      "tls.x509.peek", "tls.x509.purpose"]
