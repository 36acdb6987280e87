"""Build the appliance kernel: Debian's linux-source-6.1, `tinyconfig` plus `image/kernel.config`.

A build takes minutes, so its outputs are cached outside the checkout under a key that is the sha256 of
every input: the pinned source package (name, version, hash), the config fragment, the recipe (the make
steps and the environment below) and the version of every tool of the build (TOOLCHAIN: the compiler,
binutils' linker and assembler, make, the parser generators, bc and the compressor whose output is part of
the bzImage), as each reports it. A changed input is a new key and a new build;
an unchanged one is read from the cache. Editing prose in this file does not invalidate the cache; changing
how the kernel is built must change RECIPE.

Reproducible: the build timestamp, user, host and version that the kernel embeds are fixed, and the
build always runs in the same directory (the key's), so two builds of one key give the same bytes.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from image import debian

ROOT = Path(__file__).resolve().parent.parent
FRAGMENT = ROOT / "image" / "kernel.config"
# Every option of the resolved config, reviewed and checked in: the test compares the built config with it
# line for line, so a Kconfig default that sneaks in (or out) with a new source version is noticed.
ENABLED = ROOT / "image" / "kernel.enabled"
KERNEL_CACHE = debian.CACHE / "kernel"
SOURCE_PACKAGE = "linux-source-6.1"
# Options that must never be on, whatever Kconfig's defaults do: the appliance has its own IP stack and
# loads no code at run time.
FORBIDDEN = ("CONFIG_INET", "CONFIG_IPV6", "CONFIG_MODULES", "CONFIG_ACPI", "CONFIG_BPF_SYSCALL", "CONFIG_KEXEC")
# The programs the kernel build runs whose version can change its output: gcc, binutils (ld, and the
# assembler released with it), make, flex and bison (Kconfig's and dtc's parsers), bc (kernel/time's
# constants) and lz4 (the bzImage's payload compression).
TOOLCHAIN = ("gcc", "ld", "as", "make", "flex", "bison", "bc", "lz4")
BUILD_DEPS = ("build-essential", "flex", "bison", "bc", "libelf-dev", "cpio", "lz4", "xz-utils")
RECIPE = ("ARCH=x86_64", "make tinyconfig", "merge_config.sh -m .config kernel.config", "make olddefconfig",
          "make bzImage", "outputs: bzImage config")
REPRODUCIBLE_ENV = {
    "KBUILD_BUILD_TIMESTAMP": "Thu Jan  1 00:00:00 UTC 1970",
    "KBUILD_BUILD_USER": "pinata",
    "KBUILD_BUILD_HOST": "pinata",
    "KBUILD_BUILD_VERSION": "1",
    "LC_ALL": "C",
    "TZ": "UTC",
}


class KernelError(Exception):
    """The kernel could not be built, or its configuration is not the intended one."""


@dataclass(frozen=True)
class Kernel:
    bzimage: Path
    config: Path
    key: str


def cache_key() -> str:
    pin = debian.read_lock()[SOURCE_PACKAGE]
    digest = hashlib.sha256()
    for part in (pin.name, pin.version, pin.sha256):
        digest.update(part.encode() + b"\0")
    digest.update(FRAGMENT.read_bytes() + b"\0")
    digest.update(repr((RECIPE, sorted(REPRODUCIBLE_ENV.items()))).encode() + b"\0")
    for tool in TOOLCHAIN:
        digest.update(tool_version(tool).encode() + b"\0")
    return digest.hexdigest()[:32]


@functools.cache
def tool_version(tool: str) -> str:
    """The first line of `tool --version` (every tool in TOOLCHAIN prints its release there). Asked once per
    process (a build computes the key several times); `_ensure_build_tools` forgets the answers when it
    installs tools."""
    if shutil.which(tool) is None:
        return f"{tool} missing"  # a fresh machine: the build installs it, then the key is recomputed
    result = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True)
    return (result.stdout or result.stderr).splitlines()[0]


def fragment_lines(fragment: Path = FRAGMENT) -> list[str]:
    """The settings the fragment asks for, as .config lines (`CONFIG_X=y` or `# CONFIG_X is not set`)."""
    return [
        line for line in fragment.read_text().splitlines()
        if line.startswith("CONFIG_") or (line.startswith("# CONFIG_") and line.endswith(" is not set"))
    ]


def config_problems(config_text: str, fragment: Path = FRAGMENT) -> list[str]:
    """Why a resolved .config is not the intended one (empty when it is).

    Kconfig silently drops a requested option whose dependencies are unmet, so each fragment line must
    appear verbatim in the result; and the forbidden options must be off.
    """
    lines = set(config_text.splitlines())
    problems = [f"fragment asks for {want!r} but the built config lacks it" for want in fragment_lines(fragment)
                if want not in lines]
    for name in FORBIDDEN:
        if any(line.startswith(name + "=") for line in lines):
            problems.append(f"{name} is enabled")
    return problems


def enabled_options(config_text: str) -> list[str]:
    """Every option the config sets, sorted (the exact set the test compares with `kernel.enabled`)."""
    return sorted(line for line in config_text.splitlines() if line.startswith("CONFIG_"))


def _ensure_build_tools() -> None:
    missing = [tool for tool in TOOLCHAIN if shutil.which(tool) is None]
    if not missing and Path("/usr/include/libelf.h").exists():
        return
    if os.geteuid() != 0:
        raise KernelError(f"missing build tools {missing}; install: apt-get install {' '.join(BUILD_DEPS)}")
    print(f"installing kernel build tools ({' '.join(BUILD_DEPS)}) ...", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *BUILD_DEPS], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    tool_version.cache_clear()  # "missing" answers are stale now: the cache key must see the installed tools


def _unpack_source(workdir: Path) -> Path:
    """Extract the kernel tree from the pinned source package into `workdir`/linux."""
    pin = debian.read_lock()[SOURCE_PACKAGE]
    staging = workdir / "deb"
    debian.extract(pin, staging)
    tarballs = sorted((staging / "usr" / "src").glob("linux-source-*.tar.xz"))
    if len(tarballs) != 1:
        raise KernelError(f"expected one kernel tarball in {pin.filename}, found {tarballs}")
    print(f"unpacking {tarballs[0].name} ...", flush=True)
    # The tarball comes from the hash-checked package; tar is faster than tarfile on 130 MB of xz.
    subprocess.run(["tar", "-xJf", str(tarballs[0]), "-C", str(workdir)], check=True)
    shutil.rmtree(staging)
    trees = [p for p in workdir.iterdir() if p.is_dir() and p.name.startswith("linux-source-")]
    if len(trees) != 1:
        raise KernelError(f"expected one source tree in {workdir}, found {trees}")
    tree = workdir / "linux"
    trees[0].rename(tree)
    return tree


def _make(tree: Path, *targets: str, jobs: int = 1, quiet: bool = True) -> None:
    """`quiet=False` lets make print one line per file it compiles: the progress of a long build."""
    env = {**os.environ, **REPRODUCIBLE_ENV}
    flags = ["-s"] if quiet else []
    subprocess.run(["make", *flags, f"-j{jobs}", "ARCH=x86_64", *targets], cwd=tree, env=env, check=True)


def build(key: str, jobs: int) -> Path:
    """Build the kernel for `key` into the cache; returns the cache directory."""
    _ensure_build_tools()
    workdir = KERNEL_CACHE / f"build-{key}"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    tree = _unpack_source(workdir)
    _make(tree, "tinyconfig")
    subprocess.run(["scripts/kconfig/merge_config.sh", "-m", ".config", str(FRAGMENT)], cwd=tree, check=True,
                   env={**os.environ, **REPRODUCIBLE_ENV, "ARCH": "x86_64"}, stdout=subprocess.DEVNULL)
    _make(tree, "olddefconfig")
    config_text = (tree / ".config").read_text()
    problems = config_problems(config_text)
    if problems:
        raise KernelError("kernel config is not the intended one:\n  " + "\n  ".join(problems))
    print(f"compiling the kernel with -j{jobs} (several minutes under load) ...", flush=True)
    _make(tree, "bzImage", jobs=jobs, quiet=False)
    final = KERNEL_CACHE / key
    staging = KERNEL_CACHE / f"tmp-{key}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    shutil.copyfile(tree / "arch" / "x86" / "boot" / "bzImage", staging / "bzImage")
    shutil.copyfile(tree / ".config", staging / "config")
    staging.rename(final)  # atomic: a cache entry is complete or absent
    shutil.rmtree(workdir)
    return final


def ensure_kernel(jobs: int | None = None, *, rebuild: bool = False) -> Kernel:
    key = cache_key()
    entry = KERNEL_CACHE / key
    if rebuild or not (entry / "bzImage").exists():
        _ensure_build_tools()
        key = cache_key()  # the compiler may have just been installed
        entry = KERNEL_CACHE / key
        KERNEL_CACHE.mkdir(parents=True, exist_ok=True)
        # One build per key at a time: a second caller waits here, then finds the finished entry.
        with (KERNEL_CACHE / f"{key}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if rebuild and entry.exists():
                shutil.rmtree(entry)
            if not (entry / "bzImage").exists():
                print(f"kernel {key} not cached: building", flush=True)
                build(key, jobs or os.cpu_count() or 1)
    return Kernel(bzimage=entry / "bzImage", config=entry / "config", key=key)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", "-j", type=int, default=None)
    parser.add_argument("--rebuild", action="store_true", help="ignore the cache entry and build again")
    parser.add_argument("--print-key", action="store_true")
    parser.add_argument("--write-enabled", action="store_true", help="record the built config in kernel.enabled")
    args = parser.parse_args()
    if args.print_key:
        print(cache_key())
        return 0
    try:
        kernel = ensure_kernel(args.jobs, rebuild=args.rebuild)
    except (KernelError, debian.DebianError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{kernel.bzimage} ({kernel.bzimage.stat().st_size} bytes)")
    if args.write_enabled:
        header = "# The resolved kernel config (every CONFIG_ line): `python -m image.kernel --write-enabled`.\n"
        ENABLED.write_text(header + "\n".join(enabled_options(kernel.config.read_text())) + "\n")
        print(f"wrote {ENABLED.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
