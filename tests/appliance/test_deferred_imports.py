"""Deferred imports: a module imported but not used runs at its first use, once, with import's semantics kept."""

from __future__ import annotations

import copy
import importlib
import importlib.machinery
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from appliance import deferred_imports
from appliance.deferred_imports import DeferredLoader, DeferredModule, DeferringFinder

SAMPLES = {
    "dsample_plain": "import sys\nsys.dsample_runs = getattr(sys, 'dsample_runs', 0) + 1\nVALUE = 'ran'\n",
    "dsample_failing": "import sys\nsys.dsample_tries = getattr(sys, 'dsample_tries', 0) + 1\n"
                       "if sys.dsample_tries == 1:\n    raise LookupError('first try fails')\nVALUE = 'second try'\n",
    "dsample_cycle": "import dsample_cycle\nSEEN = sorted(k for k in vars(dsample_cycle) if k.isupper())\n"
                     "VALUE = 'after the cycle'\n",
    "dsample_own_class": "import sys, types\nclass WithProperty(types.ModuleType):\n"
                         "    @property\n    def DOUBLED(self):\n        return 2 * self.HALF\n"
                         "HALF = 21\nsys.modules[__name__].__class__ = WithProperty\n",
    "dsample_slow": "import sys\nsys.dsample_slow_started.set()\nsys.dsample_slow_go.wait()\n"
                    "sys.dsample_slow_runs = getattr(sys, 'dsample_slow_runs', 0) + 1\nVALUE = 'complete'\n",
}
COUNTERS = ("dsample_runs", "dsample_tries", "dsample_slow_runs", "dsample_slow_started", "dsample_slow_go")


@pytest.fixture
def finder(tmp_path: Path) -> Iterator[DeferringFinder]:
    for name, source in SAMPLES.items():
        (tmp_path / f"{name}.py").write_text(source)
    sys.path.insert(0, str(tmp_path))
    installed = deferred_imports.install(frozenset(SAMPLES))
    try:
        yield installed
    finally:
        sys.meta_path.remove(installed)
        sys.path.remove(str(tmp_path))
        for name in SAMPLES:
            module = sys.modules.pop(name, None)
            deferred_imports._PENDING.pop(module, None)  # type: ignore[arg-type]
        for counter in COUNTERS:
            if hasattr(sys, counter):
                delattr(sys, counter)


def test_importing_runs_nothing_and_the_first_attribute_runs_the_module_once(finder: DeferringFinder) -> None:
    module = importlib.import_module("dsample_plain")
    assert type(module) is DeferredModule
    assert not hasattr(sys, "dsample_runs")
    assert "dsample_plain" in deferred_imports.deferred()
    # What the import system reads, and importing again, run nothing.
    assert module.__name__ == "dsample_plain"
    assert module.__spec__ is not None
    assert module.__spec__.name == "dsample_plain"
    assert isinstance(module.__loader__, DeferredLoader)
    assert module.__file__ is not None
    assert module.__file__.endswith("dsample_plain.py")
    assert isinstance(module, ModuleType)
    assert importlib.import_module("dsample_plain") is module
    exec("import dsample_plain", {})
    assert not hasattr(sys, "dsample_runs")
    assert module.VALUE == "ran"
    assert sys.dsample_runs == 1  # type: ignore[attr-defined]
    assert type(module) is ModuleType  # an ordinary module from now on
    assert "dsample_plain" not in deferred_imports.deferred()
    assert module.VALUE == "ran"
    assert sys.dsample_runs == 1  # type: ignore[attr-defined]


def test_a_from_import_is_a_use(finder: DeferringFinder) -> None:
    namespace: dict[str, object] = {}
    exec("from dsample_plain import VALUE", namespace)
    assert namespace["VALUE"] == "ran"
    assert sys.dsample_runs == 1  # type: ignore[attr-defined]


def test_reading_the_namespace_is_a_use(finder: DeferringFinder) -> None:
    module = importlib.import_module("dsample_plain")
    assert "VALUE" in vars(module)
    assert sys.dsample_runs == 1  # type: ignore[attr-defined]


def test_setting_or_deleting_an_attribute_runs_the_module_first(finder: DeferringFinder) -> None:
    module = importlib.import_module("dsample_plain")
    module.VALUE = "set before any read"  # type: ignore[attr-defined]
    assert sys.dsample_runs == 1  # type: ignore[attr-defined]
    assert module.VALUE == "set before any read"  # the module's own code did not overwrite it afterwards
    sys.modules.pop("dsample_plain")
    again = importlib.import_module("dsample_plain")
    del again.VALUE
    assert sys.dsample_runs == 2  # type: ignore[attr-defined]
    assert not hasattr(again, "VALUE")


def test_a_failure_reaches_the_user_and_the_same_module_object_runs_again(finder: DeferringFinder) -> None:
    module = importlib.import_module("dsample_failing")
    with pytest.raises(LookupError, match="first try fails"):
        _ = module.VALUE
    assert sys.modules["dsample_failing"] is module  # its importers hold it: no second copy may appear
    assert type(module) is DeferredModule  # still not run: touching it again runs it again
    assert importlib.import_module("dsample_failing") is module
    assert module.VALUE == "second try"
    assert sys.dsample_tries == 2  # type: ignore[attr-defined]
    assert type(module) is ModuleType


def test_a_module_that_sets_its_own_class_keeps_it(finder: DeferringFinder) -> None:
    module = importlib.import_module("dsample_own_class")
    assert module.DOUBLED == 42
    assert type(module).__name__ == "WithProperty"


def test_a_cycle_sees_the_partial_module_as_an_import_cycle_does(finder: DeferringFinder) -> None:
    module = importlib.import_module("dsample_cycle")
    assert module.VALUE == "after the cycle"
    assert module.SEEN == []  # its own code, reading itself while it ran, saw nothing yet and did not recurse


def test_a_second_thread_waits_for_the_first_to_finish_running_it(finder: DeferringFinder) -> None:
    sys.dsample_slow_started = threading.Event()  # type: ignore[attr-defined]
    sys.dsample_slow_go = threading.Event()  # type: ignore[attr-defined]
    module = importlib.import_module("dsample_slow")
    seen: dict[str, object] = {}

    def read(key: str) -> None:
        try:
            seen[key] = module.VALUE
        except AttributeError as exc:  # a reader that did not wait sees the partial module
            seen[key] = exc

    first = threading.Thread(target=read, args=("first",))
    first.start()
    assert sys.dsample_slow_started.wait(60)  # type: ignore[attr-defined]  # the first thread is running it
    second = threading.Thread(target=read, args=("second",))
    second.start()
    # Wait (by state, not by time) until the second reader is inside _execute, at the lock, or done.
    while second.is_alive() and not _inside(sys._current_frames().get(second.ident or 0), "_execute"):
        pass
    sys.dsample_slow_go.set()  # type: ignore[attr-defined]
    first.join(60)
    second.join(60)
    assert seen == {"first": "complete", "second": "complete"}
    assert sys.dsample_slow_runs == 1  # type: ignore[attr-defined]


def _loader_found(names: frozenset[str], name: str) -> object:
    """The loader of the spec that a DeferringFinder for `names`, installed first, gives for `name`."""
    deferring = DeferringFinder(names)
    sys.meta_path.insert(0, deferring)
    try:
        spec = deferring.find_spec(name)
        assert spec is not None
        return spec.loader
    finally:
        sys.meta_path.remove(deferring)


def test_names_not_listed_and_builtin_modules_are_left_to_the_other_finders(finder: DeferringFinder) -> None:
    assert finder.find_spec("json.decoder") is None  # not listed: the finders after it answer as usual
    assert _loader_found(frozenset({"time"}), "time") is importlib.machinery.BuiltinImporter
    assert DeferringFinder(frozenset({"dsample_plain"})).find_spec("dsample_plain") is None  # not installed


def test_packages_are_not_deferred(finder: DeferringFinder, tmp_path: Path) -> None:
    """A deferred package would run after its submodules (the parent runs when a submodule is set on it)."""
    (tmp_path / "dsample_package").mkdir()
    (tmp_path / "dsample_package" / "__init__.py").write_text("ORDER = ['package']\n")
    assert not isinstance(_loader_found(frozenset({"dsample_package"}), "dsample_package"), DeferredLoader)
    assert isinstance(_loader_found(frozenset({"dsample_plain"}), "dsample_plain"), DeferredLoader)  # a module is


def test_a_copy_of_the_wrapped_loader_does_not_recurse(finder: DeferringFinder) -> None:
    spec = finder.find_spec("dsample_plain")
    assert spec is not None
    loader: object = spec.loader
    assert isinstance(loader, DeferredLoader)
    assert copy.copy(loader).loader is loader.loader  # a copy is made before its __init__ runs


def test_the_wrapped_loader_answers_for_the_real_one(finder: DeferringFinder) -> None:
    spec = finder.find_spec("dsample_plain")
    assert spec is not None
    loader: object = spec.loader
    assert isinstance(loader, DeferredLoader)
    assert loader.is_package("dsample_plain") is False
    assert "VALUE = 'ran'" in loader.get_source("dsample_plain")  # what tracebacks show


def test_each_listed_name_is_a_plain_source_module_of_the_stdlib() -> None:
    """Not built in, not frozen, not a package: kinds the finder leaves alone, which the list would not defer."""
    for name in deferred_imports.DEFERRED:
        spec = importlib.machinery.PathFinder.find_spec(name)
        assert spec is not None, name
        assert str(spec.origin).endswith(".py"), name
        assert spec.submodule_search_locations is None, name


def _inside(frame: object, function: str) -> bool:
    """Whether `frame` or a frame that called it runs `function`."""
    while frame is not None:
        if frame.f_code.co_name == function:  # type: ignore[attr-defined]
            return True
        frame = frame.f_back  # type: ignore[attr-defined]
    return False
