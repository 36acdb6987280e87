"""Stdlib modules the boot imports but never uses before it serves, executed at their first use instead.

Why: under TCG every line a module runs at import costs about ten times what it costs on a host, and some
modules are imported only because a module the boot needs imports them at its top for a function the boot
never calls. `dataclasses` imports `inspect` (which imports `ast`, `dis`, `tokenize` and `linecache`) to
write a signature into the docstring of a class that has none; `logging` imports `traceback`, which imports
`linecache` and `textwrap`, to format exceptions. Measured in the VM: importing `inspect` and what only it
imports was 0.13 s of the boot. (`subprocess` imports `locale`, and `dataclasses` imports `copy`, the same way;
but the boot's `argparse` uses the one, through `gettext`, and the other for every repeatable option given.)

How: `install` puts a finder first on `sys.meta_path` that, for the names in DEFERRED, asks the finders after
it for the module as usual and wraps the loader it gets. The import statement then completes with a module
object whose code has not run (`DeferredModule`); the first read, write or deletion of one of its attributes
runs the code (the real loader's `exec_module`) and turns it into an ordinary module. Reading the attributes
the import system itself reads (`__spec__`, `__name__`, `__loader__` ...) does not run it, so importing the
module again elsewhere does not either; `from inspect import signature` does, as it reads an attribute.

Semantics kept: a module runs once. A second thread that touches it while its code runs waits for it; the
running thread itself (a circular import) sees the partial module, as an ordinary import's cycle would. If
the code raises, the exception reaches the code that touched the module, and the module stays in
`sys.modules`, still deferred: its importers already hold this object (an import that succeeded), so the next
touch, from them or from a later import, runs the same object's code again, and there is never a second copy.
A module whose code sets its own class (module properties) keeps that class.

Limits, none of which the listed modules come near: packages are never deferred (a submodule's import would
run before its package's code). The module lock is this module's own, not importlib's, so a deferred module
whose code imports a module whose code touches it back, on two threads at once, could deadlock where an
import would have handed out the partial module. A module that replaces its own entry in `sys.modules` leaves
its importers the deferred object. While the code runs, `__spec__._initializing` is not set, so an import
cycle's error lacks importlib's "partially initialized" wording.

Why not `importlib.util.LazyLoader`: in 3.11 any attribute read runs the module, `__spec__` included, which
every later `import` of the name reads; it has no lock between threads, and a failure leaves the module
broken.

A list rather than a rule, because whether a module is used before the first request is a fact about the
boot, not about the module: tests/appliance/test_boot_imports.py runs the boot to its first page with this
finder installed and fails if any name here ran, so the list cannot go stale silently. What the deferral
moves rather than saves: the first use (an exception formatted with its source lines, asyncio's report of
one) pays the import, about 0.13 s on the loop in the VM, once.
"""

from __future__ import annotations

import _thread
import sys
from importlib.machinery import BuiltinImporter, FrozenImporter, ModuleSpec
from types import ModuleType
from typing import Any

DEFERRED = frozenset({"inspect", "linecache", "textwrap"})
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
"""Modules whose code has not run yet (each is in sys.modules too, where a failed run leaves it)."""


def _execute(module: ModuleType) -> None:
    """Run a deferred module's code, once: the first caller runs it, another thread meanwhile waits on the lock
    and then finds it run, and the running thread's own re-entry (an import cycle) returns at once."""
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
            pending.started = False  # still deferred, still in sys.modules: the next touch runs it again
            raise
        if type(module) is DeferredModule:  # unless its code gave it a class of its own
            ModuleType.__setattr__(module, "__class__", ModuleType)
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
        try:
            loader = self.__dict__["loader"]
        except KeyError:  # (a copy being made, before its __init__): not the loader's attribute either
            raise AttributeError(name) from None
        return getattr(loader, name)


class DeferringFinder:
    """First on sys.meta_path: for a name in `names`, the spec the later finders give, with its loader
    wrapped. Built-in and frozen modules are left alone (their code is in the interpreter), and so are
    packages (see the module docstring's limits)."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname not in self.names:
            return None
        try:
            later = sys.meta_path[sys.meta_path.index(self) + 1 :]
        except ValueError:  # not installed: nothing after it to ask
            return None
        for finder in later:
            find = getattr(finder, "find_spec", None)
            spec: ModuleSpec | None = find(fullname, path, target) if find is not None else None
            if spec is None:
                continue
            if (spec.loader is not None and finder not in (BuiltinImporter, FrozenImporter)
                    and spec.submodule_search_locations is None):
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
    return sorted(module.__name__ for module in list(_PENDING))  # (import metadata: reading it runs nothing)


def report() -> dict[str, str]:
    """For the ready line: the deferred modules that have not run (none where nothing was deferred)."""
    return {"deferred_unrun": " ".join(deferred())}
