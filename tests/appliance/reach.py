"""What a running appliance can reach: a walk of `gc.get_referents` from a root, and a search of what it
found for key material in every representation we know (DESIGN.md rule 5: the wallet key reachable only
from the vault, the CA private key from nothing).

What the walk sees: every object the garbage collector can traverse (instances, their `__dict__` or slots,
containers, closures, bound methods, coroutines and their frames, classes), starting at the root.

What it does not see, stated so that a pass is not read as more than it is:
- the inside of C and Rust objects that keep their state out of Python: a `cryptography` private key
  (OpenSSL's EVP_PKEY; the wallet key is one, on secp256k1, inside `appliance.wallet_key.WalletKey`, as the
  CA and leaf keys are on P-256), an `ssl.SSLContext` (the stdlib engine's leaf keys live in OpenSSL). A
  `cryptography` key object is recognised when it is itself reached (its private value is asked for, on any
  curve), but a key held only inside OpenSSL, with no Python object for it, is invisible;
- module globals: the walk does not enter a module or a module's `__dict__` (every function leads to one
  through `__globals__`, and from there to every module of the process, the test's own included); those
  of the project's packages are walked as roots of their own by `project_globals`;
- memory that is unreachable but not yet overwritten: CPython does not clear what it frees, so this
  proves the key cannot be *reached*, not that its bytes are gone from RAM;
- bytes inside a `memoryview` are searched through the object it views (which the walk reaches), not
  through the view itself.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

PROJECT_PACKAGES = ("appliance", "tls", "netstack", "adapters", "outcomes")


@dataclass
class Reached:
    """Every object reached, and for each the object it was first reached from (to explain a finding)."""

    objects: list[object] = field(default_factory=list)
    parent: dict[int, int] = field(default_factory=dict)
    by_id: dict[int, object] = field(default_factory=dict)

    def path(self, obj: object) -> str:
        """The chain of types from a root to `obj`, e.g. `Appliance -> dict -> Site -> ...`."""
        names: list[str] = []
        current: int | None = id(obj)
        while current is not None and len(names) < 60:
            names.append(type(self.by_id[current]).__name__)
            current = self.parent.get(current)
        return " -> ".join(reversed(names))


def project_globals() -> list[object]:
    """The globals of every loaded module of the project's packages (not of tests, nor third parties)."""
    return [
        vars(module)
        for name, module in sorted(sys.modules.items())
        if isinstance(module, ModuleType) and name.split(".")[0] in PROJECT_PACKAGES
    ]


def walk(roots: Iterable[object], *, stop_at: tuple[type, ...] = (), stop_ids: frozenset[int] = frozenset()) -> Reached:
    """Everything reachable from `roots` through `gc.get_referents`. Objects of a `stop_at` type or with an
    id in `stop_ids` are reached but not entered (a boundary: "only inside the vault" is a walk that stops
    at the vault). Module dicts are entered only when given as roots (see the module docstring)."""
    roots = list(roots)
    root_ids = {id(r) for r in roots}
    module_dicts = {id(vars(m)) for m in list(sys.modules.values()) if isinstance(m, ModuleType)} - root_ids
    reached = Reached()
    stack: list[tuple[object, int | None]] = [(r, None) for r in roots]
    while stack:
        obj, parent = stack.pop()
        key = id(obj)
        if key in reached.by_id:
            continue
        reached.by_id[key] = obj
        reached.objects.append(obj)
        if parent is not None:
            reached.parent[key] = parent
        if isinstance(obj, ModuleType) or key in module_dicts or key in stop_ids or isinstance(obj, stop_at):
            continue
        stack.extend((child, key) for child in gc.get_referents(obj))
    return reached


@dataclass(frozen=True)
class Needles:
    """One key in every form it could take in memory."""

    label: str
    scalar: int
    byte_forms: tuple[bytes, ...]
    text_forms: tuple[str, ...]

    @classmethod
    def of_wallet(cls, secret: bytes, wif: str) -> Needles:
        """The raw forms, the WIF, and the DER and PEM encodings: the vault holds the key as an OpenSSL key
        object (secp256k1), which a careless change could serialise."""
        key = ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256K1())
        encoded = cls.of_ec_key("wallet key", key)
        return cls(
            "wallet key", encoded.scalar, (*encoded.byte_forms, wif.encode("ascii")),
            (*encoded.text_forms, wif, secret.hex().upper()),
        )

    @classmethod
    def of_ec_key(cls, label: str, key: ec.EllipticCurvePrivateKey) -> Needles:
        scalar = key.private_numbers().private_value
        raw = scalar.to_bytes(32, "big")
        forms = [raw, raw[::-1]]
        for encoding, fmt in (
            (serialization.Encoding.DER, serialization.PrivateFormat.PKCS8),
            (serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL),
            (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8),
            (serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL),
        ):
            forms.append(key.private_bytes(encoding, fmt, serialization.NoEncryption()))
        pem_lines = [form.decode("ascii").splitlines()[1] for form in forms[-2:]]  # a base64 line of each PEM
        texts = (raw.hex(), *(f.decode("ascii") for f in forms[-2:]), *pem_lines)
        return cls(label, scalar, (*forms, *(line.encode("ascii") for line in pem_lines)), texts)


def _is_key_object(obj: object, needles: Needles) -> bool:
    if isinstance(obj, ec.EllipticCurvePrivateKey):
        return obj.private_numbers().private_value == needles.scalar
    return False


def find(reached: Reached, needles: Needles) -> list[str]:
    """Where `needles` occur among the reached objects: one line per hit, with the path that reached it."""
    hits = []
    for obj in reached.objects:
        kind = type(obj)
        what = None
        if kind is bytes or kind is bytearray:
            assert isinstance(obj, bytes | bytearray)
            if any(form in obj for form in needles.byte_forms):
                what = f"{kind.__name__} of {len(obj)}"
        elif kind is str:
            assert isinstance(obj, str)
            if any(form in obj for form in needles.text_forms):
                what = f"str of {len(obj)}"
        elif kind is int:
            if obj == needles.scalar:
                what = "int (the scalar)"
        elif _is_key_object(obj, needles):
            what = f"key object {kind.__qualname__}"
        if what is not None:
            hits.append(f"{needles.label} as {what}: {reached.path(obj)}")
    return hits
