"""Stdlib modules the boot imports but never uses before it serves, executed at their first use instead.

Why: under TCG every line a module runs at import costs about ten times what it costs on a host, and some
modules are imported only because a module the boot needs imports them at its top for a function the boot
never calls. `dataclasses` imports `inspect` (which imports `ast`, `dis`, `tokenize` and `linecache`) to
write a signature into the docstring of a class that has none; `logging` imports `traceback`, which imports
`linecache` and `textwrap`, to format exceptions; `dataclasses` imports `copy` for `asdict`. Measured in the
VM: importing `inspect` and what only it imports was 0.13 s of the boot. (`subprocess` imports `locale` the
same way, but the boot's `argparse` uses it, through `gettext`.)

How: `install` puts a finder first on `sys.meta_path` that, for the names in DEFERRED, asks the finders after
it for the module as usual and wraps the loader it gets. The import statement then completes with a module
object whose code has not run (`DeferredModule`); the first read, write or deletion of one of its attributes
runs the code (the real loader's `exec_module`) and turns it into an ordinary module. Reading the attributes
the import system itself reads (`__spec__`, `__name__`, `__loader__` ...) does not run it, so importing the
module again elsewhere does not either; `from inspect import signature` does, as it reads an attribute.

Semantics kept: a module runs once. A second thread that touches it while its code runs waits for it; the
running thread itself (a circular import) sees the partial module, as an ordinary import's cycle would. If
the code raises, the exception reaches the code that touched the module, and the module leaves
`sys.modules`, as a failed import's does; touching the same object again runs the code again.

A list rather than a rule, because whether a module is used before the first request is a fact about the
boot, not about the module: tests/appliance/test_boot_imports.py runs the boot to its first page with this
finder installed and fails if any name here ran, so the list cannot go stale silently.
"""

from __future__ import annotations

import _thread
import sys
from importlib.machinery import BuiltinImporter, FrozenImporter, ModuleSpec
from types import ModuleType
from typing import Any

DEFERRED = frozenset({"inspect", "linecache", "textwrap", "copy"})
"""Each is imported at boot by a module the boot needs and used by none of its code before the first page."""

IMPORT_METADATA = frozenset({"__spec__", "__name__", "__loader__", "__package__", "__path__", "__file__",
                             "__cached__", "__class__"})
"""What the import system and `isinstance` read of a module: set before the module's code runs, and reading
them does not run it. `__doc__` and `__dict__` are not here: the code sets the one and fills the other."""


class _Pending:
    """A deferred module's loader, and whether its code has started (a flag read under the lock)."""

    __slots__ = ("loader", "lock", "started")

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.lock = _thread.RLock()  # re-entered by the thread running the code (a circular import)
        self.started = False


_PENDING: dict[ModuleType, _Pending] = {}
"""Modules whose code has not run yet (they are in sys.modules too, so this keeps nothing alive longer)."""


def _execute(module: ModuleType) -> None:
    pending = _PENDING.get(module)
    if pending is None:
        return  # ran already
    with pending.lock:
        if pending.started:
            return  # this thread is running it (a cycle sees the partial module), or another thread just did
        pending.started = True
        try:
            pending.loader.exec_module(module)
        except BaseException:
            pending.started = False
            name = ModuleType.__getattribute__(module, "__name__")
            if sys.modules.get(name) is module:
                del sys.modules[name]
            raise
        module.__class__ = ModuleType
        del _PENDING[module]


class DeferredModule(ModuleType):
    """A module whose code runs at the first touch of an attribute other than the import system's own."""

    def __getattribute__(self, name: str) -> Any:
        if name not in IMPORT_METADATA:
            _execute(self)
        return ModuleType.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        _execute(self)
        ModuleType.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        _execute(self)
        ModuleType.__delattr__(self, name)


class DeferredLoader:
    """Wraps a loader: the module object is made as the loader makes it, its code runs at first use. Any other
    attribute (get_code, get_source for tracebacks ...) is the wrapped loader's."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        made: ModuleType | None = self.loader.create_module(spec)
        return made

    def exec_module(self, module: ModuleType) -> None:
        if type(module) is not ModuleType:
            self.loader.exec_module(module)  # a loader's own module type: its class cannot be swapped safely
            return
        _PENDING[module] = _Pending(self.loader)
        module.__class__ = DeferredModule

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class DeferringFinder:
    """First on sys.meta_path: for a name in `names`, the spec the later finders give, with its loader
    wrapped. Built-in and frozen modules are left alone (their code is in the interpreter)."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname not in self.names or self not in sys.meta_path:
            return None
        for finder in sys.meta_path[sys.meta_path.index(self) + 1 :]:
            find = getattr(finder, "find_spec", None)
            spec: ModuleSpec | None = find(fullname, path, target) if find is not None else None
            if spec is None:
                continue
            if spec.loader is not None and finder not in (BuiltinImporter, FrozenImporter):
                spec.loader = DeferredLoader(spec.loader)  # type: ignore[assignment]  # (duck-typed loader)
            return spec
        return None


def install(names: frozenset[str] = DEFERRED) -> DeferringFinder:
    """Defer `names` from now on (a module imported already stays as it is)."""
    finder = DeferringFinder(names)
    sys.meta_path.insert(0, finder)
    return finder


def deferred() -> list[str]:
    """The names of the modules whose code has not run yet."""
    return sorted(ModuleType.__getattribute__(module, "__name__") for module in _PENDING)
