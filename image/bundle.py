"""Build step: the image's compiled modules in one file, for appliance.module_bundle.

Which modules stay files: those /init has imported before it installs the bundle (the interpreter's own
start, the bundle's module and what it imports) and `os`, the landmark the interpreter finds its prefix by.
Every other .pyc goes into the bundle, named by its path (`usr/lib/python3.11/json/decoder.pyc` is
`json.decoder`, `app/appliance/__init__.pyc` the package `appliance`), sorted by name so that the same
modules always make the same bytes.
"""

from __future__ import annotations

import marshal

from appliance.module_bundle import INDEX_LENGTH_BYTES, MAGIC, PYC_MAGIC_BYTES, Entry
from image.compile_pyc import HEADER_BYTES

ROOTS = ("usr/lib/python3.11/", "app/")


def module_name(image_path: str) -> tuple[str, bool] | None:
    """(module name, is it a package) for a .pyc under one of ROOTS; None for any other file."""
    root = next((r for r in ROOTS if image_path.startswith(r)), None)
    if root is None or not image_path.endswith(".pyc"):
        return None
    parts = image_path[len(root) : -len(".pyc")].split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def write(pycs: dict[str, bytes]) -> bytes:
    """The bundle holding `pycs` (image path -> .pyc bytes, each under one of ROOTS, all compiled by one
    interpreter, whose magic number the bundle keeps for the reader to compare with its own)."""
    index: dict[str, Entry] = {}
    blobs: list[bytes] = []
    offset = 0
    magics = {pyc[:PYC_MAGIC_BYTES] for pyc in pycs.values()}
    if len(magics) > 1:
        raise ValueError(f"the modules were compiled by {len(magics)} different Python versions")
    for image_path, pyc in sorted(pycs.items(), key=lambda item: module_name(item[0]) or ("", False)):
        named = module_name(image_path)
        if named is None:
            raise ValueError(f"{image_path}: not a module the bundle can hold")
        name, is_package = named
        if name in index:  # e.g. the same name in the stdlib and in /app: sys.path order would decide
            raise ValueError(f"{image_path}: a second module named {name}")
        code = pyc[HEADER_BYTES:]
        index[name] = (offset, len(code), is_package, "/" + image_path[: -len("c")])
        blobs.append(code)
        offset += len(code)
    encoded = marshal.dumps(index)
    pyc_magic = next(iter(magics), bytes(PYC_MAGIC_BYTES))
    return MAGIC + pyc_magic + len(encoded).to_bytes(INDEX_LENGTH_BYTES, "big") + encoded + b"".join(blobs)
