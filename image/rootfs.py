"""Assemble the initramfs: the Python runtime from pinned Debian packages, the hash-pinned wheels, and the
project's packages, all precompiled by the target interpreter; nothing else.

Steps (each a function below):
1. unpack the pinned runtime .debs (image/debian-packages.lock) into a staging root;
2. unpack the wheels of requirements.lock (hash-checked) and copy the project packages into /app;
3. trace imports: the staged interpreter imports every project module (plus a fixed list of modules
   that are imported lazily) and reports every module it loaded: that is the part of the stdlib we ship;
4. compile every shipped .py to a sourceless .pyc with that interpreter (image.compile_pyc: unchecked-hash
   pycs without timestamps, docstrings or column tables), strip the shared objects, and add the shared
   libraries they need (DT_NEEDED closure);
5. write the cpio with our own writer (sorted, fixed mtimes, uid 0).

The only executables in the archive are the interpreter, the dynamic loader it names (the kernel opens
it with exec permission) and /init, a #! script that the kernel's BINFMT_SCRIPT hands to the interpreter.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from appliance import method_cache, module_bundle
from image import bundle, cpio, debian
from image.manifest import read_lock

ROOT = Path(__file__).resolve().parent.parent
WHEEL_CACHE = debian.CACHE / "wheels"
PROJECT_PACKAGES = ("appliance", "adapters", "netstack", "outcomes", "tls")
PYTHON = "usr/bin/python3.11"
LOADER = "lib64/ld-linux-x86-64.so.2"
STDLIB = "usr/lib/python3.11"
APP = "app"
# Imported lazily (inside functions) by the appliance or its dependencies, so a plain import trace
# misses them; the boot test that exercises every endpoint is what catches a module missing here.
EXTRA_MODULES = (
    "encodings.ascii", "encodings.latin_1", "encodings.idna", "encodings.utf_8", "encodings.aliases",
    "json", "asyncio", "ctypes", "hashlib", "hmac", "secrets", "base64", "binascii", "struct", "zlib",
    "ipaddress", "urllib.parse", "http", "datetime", "argparse", "selectors", "socket", "signal",
    "runpy", "pkgutil", "importlib.resources", "cryptography.x509", "cryptography.hazmat.primitives.serialization",
    "cryptography.hazmat.primitives.asymmetric.ec", "cryptography.hazmat.primitives.asymmetric.rsa",
    "cryptography.hazmat.primitives.asymmetric.ed25519", "cryptography.hazmat.primitives.ciphers.aead",
    "cryptography.hazmat.primitives.kdf.hkdf", "cryptography.hazmat.primitives.hashes",
    "pyasn1.codec.der.decoder", "pyasn1.codec.der.encoder", "pyasn1.error", "pyasn1_modules.rfc5280",
    "pyasn1_modules.rfc4055",
)
# Project modules that exist for the host only: the stdlib-ssl TLS backend of the benchmarks (not shipped, so
# the image needs no OpenSSL of its own) and the command-line TLS peers for interop with real programs.
HOST_ONLY_MODULES = ("appliance.stdlib_tls", "adapters.tls_cli")
# Stdlib modules the trace sees on the build host but the image does without: asyncio and hashlib
# import them inside try/except and fall back (hashlib to its built-in hashes; asyncio to no ssl).
EXCLUDED_MODULES = ("ssl", "_ssl", "_hashlib", "lzma", "_lzma", "bz2", "_bz2")
# Distributions whose packages ship whole: they import their own submodules lazily in ways a trace
# of our imports cannot predict (cryptography's backend and bindings). cffi's Python package is not among
# them: at run time only its compiled `_cffi_backend` is loaded.
WHOLE_PACKAGES = ("cryptography", "pyasn1", "_cffi_backend")
# Wheel contents that are never needed at run time.
DROP_SUFFIXES = (".pyi", ".typed", ".c", ".h", ".pyx", ".pxd")
LOADER_REAL = "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
EXECUTABLES = ("init", PYTHON)


class RootfsError(Exception):
    """The root filesystem cannot be assembled from the pinned inputs."""


@dataclass
class Tree:
    """The image's files before archiving: path -> entry. Directories are added implicitly."""

    entries: dict[str, cpio.Entry] = field(default_factory=dict)

    def add(self, entry: cpio.Entry) -> None:
        parts = entry.path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent not in self.entries:
                self.entries[parent] = cpio.directory(parent)
        previous = self.entries.get(entry.path)
        if previous is not None and previous != entry:
            raise RootfsError(f"{entry.path} added twice with different contents")
        self.entries[entry.path] = entry

    def add_file(self, path: str, data: bytes) -> None:
        perm = 0o755 if path in EXECUTABLES else 0o644
        self.add(cpio.regular(path, data, perm))

    def archive(self) -> bytes:
        return cpio.serialize(self.entries.values())


def stage_runtime(staging: Path) -> Path:
    """Unpack the pinned runtime packages; returns the staged root."""
    debroot = staging.resolve() / "debroot"
    if debroot.exists():
        shutil.rmtree(debroot)
    pins = debian.read_lock()
    for name in debian.RUNTIME_PACKAGES:
        debian.extract(pins[name], debroot)
    return debroot


def fetch_wheels() -> list[Path]:
    """The wheels of requirements.lock, downloaded once into the cache and checked against their hashes."""
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    pins = read_lock(ROOT / "requirements.lock")
    missing = [p for p in pins if not (WHEEL_CACHE / p.filename).exists()]
    if missing:
        print(f"downloading {len(missing)} wheels ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--require-hashes", "--only-binary=:all:", "-d", str(WHEEL_CACHE), "-r", str(ROOT / "requirements.lock")],
            check=True,
        )
    paths = []
    for pin in pins:
        path = WHEEL_CACHE / pin.filename
        if debian.sha256_file(path) != pin.sha256:
            path.unlink()
            raise RootfsError(f"{pin.filename}: hash differs from requirements.lock")
        paths.append(path)
    return paths


def stage_app(staging: Path, wheels: list[Path]) -> Path:
    """/app: the unpacked wheels (without their metadata) and the project's packages, as sources."""
    app = staging.resolve() / APP
    if app.exists():
        shutil.rmtree(app)
    app.mkdir(parents=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for member in sorted(archive.namelist()):
                top = member.split("/", 1)[0]
                if top.endswith((".dist-info", ".data")) or member.endswith("/") or member.endswith(DROP_SUFFIXES):
                    continue
                target = app / member
                if not target.resolve().is_relative_to(app.resolve()):
                    raise RootfsError(f"{wheel.name}: member {member!r} escapes the target")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
    for source in project_sources():
        target = app / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return app


def project_sources() -> list[Path]:
    """The project's modules that ship in the image, sorted."""
    sources = []
    for package in PROJECT_PACKAGES:
        for source in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(source.relative_to(ROOT).with_suffix("").parts)
            if "__pycache__" not in source.parts and module not in HOST_ONLY_MODULES:
                sources.append(source)
    return sources


# Checked-in files an initramfs is a function of, besides the project's sources and the files it carries.
BUILD_INPUTS = ("requirements.lock", "image/debian-packages.lock", "image/rootfs.py", "image/build.py",
                "image/cpio.py", "image/floor.py", "image/compile_pyc.py", "image/record_methods.py",
                "image/bundle.py")


def inputs_digest(carried: dict[str, bytes]) -> str:
    """sha256 naming everything an initramfs is built from: the shipped project sources, the files it
    carries (`carried`: image path -> bytes), the locks and the builder itself. Same digest, same bytes."""
    digest = hashlib.sha256()
    named = [(str(s.relative_to(ROOT)), s.read_bytes()) for s in project_sources()]
    named += [(name, (ROOT / name).read_bytes()) for name in BUILD_INPUTS]
    named += [(f"carried:{path}", data) for path, data in sorted(carried.items())]
    for name, data in named:
        digest.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def target_env(debroot: Path, app: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONHOME": str(debroot / "usr"),
        "PYTHONPATH": str(app),
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LC_ALL": "C.UTF-8",
    }


def run_target(debroot: Path, app: Path, script: str, *args: str) -> str:
    """Run `script` with the staged interpreter (the host's loader and C library: same Debian release)."""
    return _target(debroot, app, ["-c", script, *args], "target interpreter failed")


def _target(debroot: Path, app: Path, argv: list[str], failure: str, stdin: str | None = None) -> str:
    """The staged interpreter with `argv` (after -S), in the staged tree; its stdout, or RootfsError."""
    result = subprocess.run(
        [str(debroot / PYTHON), "-S", *argv], input=stdin,
        env=target_env(debroot, app), cwd=app, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise RootfsError(f"{failure}:\n{result.stderr[-4000:]}")
    return result.stdout


_TRACE = r"""
import importlib, json, pkgutil, sys
packages, extras = json.loads(sys.argv[1])
failed = []
for name in packages:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
for name in extras:
    importlib.import_module(name)
files = sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)})
print(json.dumps({"files": files, "failed": failed}))
"""


def trace_imports(debroot: Path, app: Path) -> tuple[list[Path], list[str]]:
    """Files of every module the project and EXTRA_MODULES load, and the project modules that failed to import."""
    report = json.loads(run_target(debroot, app, _TRACE, json.dumps([PROJECT_PACKAGES, EXTRA_MODULES])))
    return [Path(f) for f in report["files"]], report["failed"]


COMPILER = Path(__file__).resolve().parent / "compile_pyc.py"
METHOD_RECORDER = Path(__file__).resolve().parent / "record_methods.py"
METHOD_TABLE = str(method_cache.CACHE_FILE).lstrip("/")  # where the boot looks, as a path in the image
BUNDLE = module_bundle.BUNDLE_FILE.lstrip("/")


def compile_sources(debroot: Path, app: Path, jobs: list[tuple[Path, Path, str]]) -> None:
    """Compile with the target interpreter (image.compile_pyc: no docstrings but classes', no column
    tables), in one process and in sorted order (stable marshal output). Each job is (source, .pyc to
    write, the file name tracebacks show: the path in the image)."""
    payload = json.dumps(sorted((str(s), str(t), shown) for s, t, shown in jobs))
    _target(debroot, app, ["-X", "no_debug_ranges", str(COMPILER)], "compiling failed", stdin=payload)


def record_methods(debroot: Path, app: Path, scratch: Path) -> bytes:
    """The compiled dataclass methods of everything the trace imports (image.record_methods), made by the
    target interpreter with the same flags as the .pyc files."""
    _target(debroot, app, ["-X", "no_debug_ranges", str(METHOD_RECORDER), str(scratch), json.dumps(PROJECT_PACKAGES),
                           json.dumps(EXTRA_MODULES)], "recording the dataclass methods failed")
    return scratch.read_bytes()


_BEFORE_BUNDLE = r"""
import sys
from appliance import module_bundle
files = sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)})
import json  # only now: what json imports is not loaded before the bundle at boot
print(json.dumps(files))
"""


def files_before_bundle(debroot: Path, app: Path) -> set[str]:
    """The .pyc files that stay files: what the interpreter and /init import before the bundle is installed
    (appliance.module_bundle and its imports), the whole `encodings` package (the interpreter's start
    picks codecs by locale) and `os` (the prefix landmark)."""
    loaded = json.loads(run_target(debroot, app, _BEFORE_BUNDLE))
    kept = {_image_path(Path(f), debroot, app).removesuffix(".py") + ".pyc" for f in loaded if f.endswith(".py")}
    encodings = debroot / STDLIB / "encodings"
    kept |= {f"{STDLIB}/encodings/{p.stem}.pyc" for p in encodings.glob("*.py")}
    return kept | {f"{STDLIB}/os.pyc"}


def needed_libraries(elf: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", "-W", str(elf)], capture_output=True, text=True, check=True).stdout
    return [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def strip(data: bytes, scratch: Path) -> bytes:
    scratch.write_bytes(data)
    subprocess.run(["strip", "--strip-unneeded", "--remove-section=.comment", str(scratch)], check=True)
    return scratch.read_bytes()


def collect(staging: Path, debroot: Path, app: Path, init_script: bytes, extra_files: dict[str, bytes]) -> Tree:
    """Everything that goes into the image, as a Tree."""
    traced, failed = trace_imports(debroot, app)
    if failed:
        raise RootfsError("project modules fail to import under the target interpreter:\n  " + "\n  ".join(failed))
    tree = Tree()
    sources: list[tuple[Path, Path, str]] = []  # (source, compiled target in staging/pyc, path in the image)
    shared_objects: list[Path] = []
    pyc_root = staging / "pyc"
    if pyc_root.exists():
        shutil.rmtree(pyc_root)

    def ship_python(source: Path, image_path: str) -> None:
        compiled = pyc_root / (image_path[:-3] + ".pyc")
        sources.append((source, compiled, "/" + image_path))

    stdlib_dir = debroot / STDLIB
    for module_file in traced:
        if module_file.name.split(".")[0] in EXCLUDED_MODULES and module_file.parent.name in ("python3.11",
                                                                                              "lib-dynload"):
            continue
        if module_file.is_relative_to(stdlib_dir):
            rel = str(module_file.relative_to(debroot))
            if rel.endswith(".py"):
                ship_python(module_file, rel)
                # a package's parents must be importable too
                parent = module_file.parent
                while parent != stdlib_dir:
                    init = parent / "__init__.py"
                    if init.exists():
                        ship_python(init, str(init.relative_to(debroot)))
                    parent = parent.parent
            elif rel.endswith(".so"):
                shared_objects.append(module_file)
        elif module_file.is_relative_to(app):
            rel = str(module_file.relative_to(app))
            if rel.split("/", 1)[0] in WHOLE_PACKAGES or rel.split("/", 1)[0].split(".")[0] in WHOLE_PACKAGES:
                continue  # shipped whole below
            if rel.endswith(".py"):
                ship_python(module_file, f"{APP}/{rel}")
            elif rel.endswith(".so"):
                shared_objects.append(module_file)
        else:
            raise RootfsError(f"module loaded from outside the staging tree: {module_file}")
    # The stdlib landmark the interpreter looks for to find its prefix.
    ship_python(stdlib_dir / "os.py", f"{STDLIB}/os.py")
    for name in sorted(os.listdir(app)):
        base = name.split(".")[0]
        if base in WHOLE_PACKAGES or base in PROJECT_PACKAGES:
            path = app / name
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            for item in files:
                if item.is_dir():
                    continue
                rel = f"{APP}/{item.relative_to(app)}"
                if item.suffix == ".py":
                    ship_python(item, rel)
                elif ".so" in item.suffixes:
                    shared_objects.append(item)
                else:
                    tree.add_file(rel, item.read_bytes())
    # Deduplicate (a package __init__ can be reached twice) and compile.
    unique = sorted(set(sources))
    compile_sources(debroot, app, unique)
    kept_as_files = files_before_bundle(debroot, app)
    bundled: dict[str, bytes] = {}
    for _source, compiled, _shown in unique:
        image_path = str(compiled.relative_to(pyc_root))
        if image_path in kept_as_files or bundle.module_name(image_path) is None:
            tree.add_file(image_path, compiled.read_bytes())
        else:
            bundled[image_path] = compiled.read_bytes()
    tree.add_file(BUNDLE, bundle.write(bundled))
    tree.add_file(METHOD_TABLE, record_methods(debroot, app, staging / "methods.tmp"))
    # Shared objects: the interpreter, extension modules, and the libraries they need.
    scratch = staging / "strip.tmp"
    queue = [debroot / PYTHON, *shared_objects]
    shipped: set[Path] = set()
    search = [debroot / "lib/x86_64-linux-gnu", debroot / "usr/lib/x86_64-linux-gnu"]
    while queue:
        elf = queue.pop()
        if elf in shipped:
            continue
        shipped.add(elf)
        image_path = _image_path(elf, debroot, app)
        if elf.is_symlink():
            target = os.readlink(elf)
            tree.add(cpio.symlink(image_path, target))
            queue.append(_follow(elf, debroot))
            continue
        data = elf.read_bytes()
        if image_path != LOADER_REAL:
            data = strip(data, scratch)
        tree.add_file(image_path, data)
        for library in needed_libraries(elf):
            if library == Path(LOADER).name:
                queue.append(debroot / LOADER)
                continue
            # wheels keep their private libraries next to the package in "<dist>.libs" (auditwheel)
            candidates = [d / library for d in [elf.parent, *search] if (d / library).exists()]
            candidates += sorted(app.glob(f"*.libs/{library}"))
            if not candidates:
                raise RootfsError(f"{elf.name} needs {library}, which no pinned package provides")
            queue.append(candidates[0])
    if scratch.exists():
        scratch.unlink()
    # The skeleton: the init script, mount points, and the two device nodes needed before devtmpfs.
    tree.add_file("init", init_script)
    for mount_point in ("dev", "proc", "sys"):
        tree.add(cpio.directory(mount_point))
    tree.add(cpio.char_device("dev/console", 5, 1))
    tree.add(cpio.char_device("dev/urandom", 1, 9, 0o644))
    for extra_path, data in sorted(extra_files.items()):
        tree.add_file(extra_path, data)
    _fix_executable_modes(tree)
    return tree


def _image_path(path: Path, debroot: Path, app: Path) -> str:
    if path.is_relative_to(debroot):
        return str(path.relative_to(debroot))
    if path.is_relative_to(app):
        return f"{APP}/{path.relative_to(app)}"
    raise RootfsError(f"{path} is outside the staging tree")


def _follow(link: Path, debroot: Path) -> Path:
    """One step along a symlink, with absolute targets taken inside the staged root (not the host's)."""
    target = os.readlink(link)
    if target.startswith("/"):
        return debroot / target.lstrip("/")
    return link.parent / target


def _fix_executable_modes(tree: Tree) -> None:
    """Only the interpreter, the loader (PT_INTERP: the kernel opens it for execution) and /init may be
    executable."""
    allowed = {*EXECUTABLES, LOADER_REAL}
    for path, entry in list(tree.entries.items()):
        if stat.S_ISREG(entry.mode):
            perm = 0o755 if path in allowed else 0o644
            tree.entries[path] = cpio.regular(path, entry.data, perm)


def init_script(body: str) -> bytes:
    """/init: run by the kernel through BINFMT_SCRIPT. -I: ignore the environment and user site;
    -S: no site module (we set sys.path ourselves); -B: never write bytecode."""
    return ("#!/" + PYTHON + " -ISB\n" + body).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
