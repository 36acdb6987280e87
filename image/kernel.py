"""Build the appliance kernel: Debian's linux-source-6.1, `tinyconfig` plus the config fragments of a variant.

Two variants come from one recipe. `microvm` (image/kernel.config) is what `make run`, the tests, the
benchmarks and the shipped image boot: QEMU's microvm machine has no PCI bus, so this kernel has none either
(a PCI kernel there only prints "PCI: Fatal: No config space access function found" and carries the code).
`pci` adds image/kernel-pci.config (PCI and virtio-PCI) for the libvirt domain, whose q35 machine puts its
virtio devices on PCI (libvirt has no microvm machine type). A later fragment overrides an earlier one, as
merge_config.sh merges them.

Both are built from the same source with the same patches (PATCHES, each a file in image/ that says why):
today one, `keep_initmem`, a boot parameter that image/run.py gives only under TCG, where freeing the kernel's
init sections costs a tenth of a second. A patch is applied with `patch -p1 --fuzz=0`: every context line
must match as written (patch may still find it a few lines away), so a source whose context changed fails
the build instead of being patched by a guess.

The output is the kernel's own ELF image, `vmlinux`, stripped the way the bzImage's payload is made
(`objcopy -R .comment -S`), not a bzImage: QEMU's `-kernel` boots an ELF that carries the PVH entry note
directly in 32-bit protected mode, so the guest skips the bzImage's real-mode setup and decompression
(measured under TCG with the floor initramfs: QEMU start to exit 0.56-0.64 s against 0.72-0.80 s), and
xz ships it smaller than the LZ4 bzImage. The note is checked after each build, because without it QEMU
cannot boot the file at all. (The resolved configs still name a kernel compression, tinyconfig's
KERNEL_XZ: it only chooses the bzImage's payload compressor, which this build never makes.)

A build takes minutes, so its outputs are cached outside the checkout under a key that is the sha256 of
every input: the pinned source package (name, version, hash), the variant's name and fragments, the patches,
the recipe (the make steps and the environment below) and the version of every tool of the build (TOOLCHAIN:
the compiler, binutils' linker, assembler and objcopy, make, the parser generators, bc and patch), as each
reports it.
A changed input is a new key and a new build; an unchanged one is read from the cache. Editing prose in this
file does not invalidate the cache; changing how the kernel is built must change RECIPE.

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
import struct
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from image import debian

ROOT = Path(__file__).resolve().parent.parent
IMAGE_DIR = ROOT / "image"
KERNEL_CACHE = debian.CACHE / "kernel"
SOURCE_PACKAGE = "linux-source-6.1"
MICROVM = "microvm"
PCI = "pci"


@dataclass(frozen=True)
class Variant:
    """One kernel of the recipe: its fragments, merged over tinyconfig in this order, and the reviewed file
    that records every option of its resolved config (the test compares the built config with it line for
    line, so a Kconfig default that sneaks in or out with a new source version is noticed)."""

    name: str
    fragments: tuple[Path, ...]
    enabled: Path


FRAGMENT = IMAGE_DIR / "kernel.config"  # the microvm kernel: everything the appliance needs, no PCI
PCI_FRAGMENT = IMAGE_DIR / "kernel-pci.config"  # over it, for the libvirt domain's q35: PCI and virtio-PCI
VARIANTS = {
    MICROVM: Variant(MICROVM, (FRAGMENT,), IMAGE_DIR / "kernel-microvm.enabled"),
    PCI: Variant(PCI, (FRAGMENT, PCI_FRAGMENT), IMAGE_DIR / "kernel-pci.enabled"),
}
# Options that must never be on, whatever Kconfig's defaults do: the appliance has its own IP stack and
# loads no code at run time.
FORBIDDEN = ("CONFIG_INET", "CONFIG_IPV6", "CONFIG_MODULES", "CONFIG_ACPI", "CONFIG_BPF_SYSCALL", "CONFIG_KEXEC")
# The programs the kernel build runs whose version can change its output: gcc, binutils (ld, the assembler
# released with it, and objcopy, which strips the vmlinux), make, flex and bison (Kconfig's and dtc's
# parsers), bc (kernel/time's constants) and patch (which applies PATCHES).
TOOLCHAIN = ("gcc", "ld", "as", "objcopy", "make", "flex", "bison", "bc", "patch")
BUILD_DEPS = ("build-essential", "flex", "bison", "bc", "libelf-dev", "cpio", "xz-utils", "patch")
PATCHES = (IMAGE_DIR / "kernel-keep-initmem.patch",)
"""Applied in this order to the unpacked source of every variant, before its config is made."""
PATCH_COMMAND = ("patch", "-p1", "--forward", "--batch", "--fuzz=0", "--no-backup-if-mismatch", "-i")
RECIPE = ("ARCH=x86_64", " ".join(PATCH_COMMAND) + " <each of PATCHES>", "make tinyconfig",
          "merge_config.sh -m .config <variant fragments>", "make olddefconfig",
          "make vmlinux", "objcopy -R .comment -S vmlinux", "outputs: vmlinux config")
REPRODUCIBLE_ENV = {
    "KBUILD_BUILD_TIMESTAMP": "Thu Jan  1 00:00:00 UTC 1970",
    "KBUILD_BUILD_USER": "pinata",
    "KBUILD_BUILD_HOST": "pinata",
    "KBUILD_BUILD_VERSION": "1",
    "LC_ALL": "C",
    "TZ": "UTC",
}
# The ELF note that makes a vmlinux bootable by QEMU's -kernel: owner "Xen", type XEN_ELFNOTE_PHYS32_ENTRY
# (18), the 32-bit PVH entry point (arch/x86/platform/pvh/head.S).
PVH_NOTE = (b"Xen", 18)


class KernelError(Exception):
    """The kernel could not be built, or its configuration is not the intended one."""


@dataclass(frozen=True)
class Kernel:
    variant: str
    vmlinux: Path
    config: Path
    key: str


def variant_of(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise KernelError(f"unknown kernel variant {name!r} (known: {', '.join(VARIANTS)})") from None


def cache_key(variant: str) -> str:
    spec = variant_of(variant)
    pin = debian.read_lock()[SOURCE_PACKAGE]
    digest = hashlib.sha256()
    for part in (pin.name, pin.version, pin.sha256, spec.name):
        digest.update(part.encode() + b"\0")
    for fragment in spec.fragments:
        digest.update(fragment.name.encode() + b"\0" + fragment.read_bytes() + b"\0")
    for patch in PATCHES:
        digest.update(patch.name.encode() + b"\0" + patch.read_bytes() + b"\0")
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


def _option(line: str) -> str | None:
    """The option a .config line sets (`CONFIG_X=...` or `# CONFIG_X is not set`), or None for prose."""
    if line.startswith("CONFIG_") and "=" in line:
        return line.split("=", 1)[0]
    if line.startswith("# CONFIG_") and line.endswith(" is not set"):
        return line[2:-len(" is not set")]
    return None


def fragment_lines(fragments: Sequence[Path]) -> list[str]:
    """The settings the fragments ask for, as .config lines, a later fragment's line replacing an earlier
    one's for the same option (merge_config.sh's rule)."""
    wanted: dict[str, str] = {}
    for fragment in fragments:
        for line in fragment.read_text().splitlines():
            option = _option(line)
            if option is not None:
                wanted[option] = line
    return list(wanted.values())


def config_problems(config_text: str, fragments: Sequence[Path]) -> list[str]:
    """Why a resolved .config is not the intended one (empty when it is).

    Kconfig silently drops a requested option whose dependencies are unmet, so each fragment line must
    appear verbatim in the result; and the forbidden options must be off.
    """
    lines = set(config_text.splitlines())
    problems = [f"fragment asks for {want!r} but the built config lacks it" for want in fragment_lines(fragments)
                if want not in lines]
    for name in FORBIDDEN:
        if any(line.startswith(name + "=") for line in lines):
            problems.append(f"{name} is enabled")
    return problems


def enabled_options(config_text: str) -> list[str]:
    """Every option the config sets, sorted (the exact set the test compares with the variant's `*.enabled`)."""
    return sorted(line for line in config_text.splitlines() if line.startswith("CONFIG_"))


def elf_notes(image: bytes) -> list[tuple[bytes, int]]:
    """The (owner, type) of every note in an ELF64 little-endian file's PT_NOTE segments.

    Read from the program headers, as QEMU's loader does: a note that a strip moved out of a loaded segment
    would not count.
    """
    if image[:6] != b"\x7fELF\x02\x01":
        raise KernelError("not a little-endian ELF64 file")
    try:
        phoff, = struct.unpack_from("<Q", image, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", image, 0x36)
        notes = []
        for index in range(phnum):
            p_type, _flags, offset, _vaddr, _paddr, size = struct.unpack_from("<IIQQQQ", image,
                                                                             phoff + index * phentsize)
            if p_type != 4:  # PT_NOTE
                continue
            position, end = offset, offset + size
            while position + 12 <= end:  # each note: namesz, descsz, type, then name and desc padded to 4 bytes
                namesz, descsz, note_type = struct.unpack_from("<III", image, position)
                notes.append((image[position + 12:position + 12 + namesz].rstrip(b"\0"), note_type))
                position += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    except struct.error as exc:
        raise KernelError(f"truncated ELF file: {exc}") from None
    return notes


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


def apply_patches(tree: Path, patches: Sequence[Path] = PATCHES) -> None:
    """Apply `patches` to the source `tree`, in order; KernelError naming the patch that does not apply as
    written (`--fuzz=0`: every context line must match, and `--forward`: one already applied is refused)."""
    for patch in patches:
        result = subprocess.run([*PATCH_COMMAND, str(patch)], cwd=tree, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise KernelError(f"{patch.name} does not apply to {tree}:\n{result.stdout}{result.stderr}")


def _make(tree: Path, *targets: str, jobs: int = 1, quiet: bool = True) -> None:
    """`quiet=False` lets make print one line per file it compiles: the progress of a long build."""
    env = {**os.environ, **REPRODUCIBLE_ENV}
    flags = ["-s"] if quiet else []
    subprocess.run(["make", *flags, f"-j{jobs}", "ARCH=x86_64", *targets], cwd=tree, env=env, check=True)


def build(variant: str, key: str, jobs: int) -> Path:
    """Build the kernel of `variant` for `key` into the cache; returns the cache directory."""
    spec = variant_of(variant)
    _ensure_build_tools()
    workdir = KERNEL_CACHE / f"build-{key}"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    tree = _unpack_source(workdir)
    apply_patches(tree)
    _make(tree, "tinyconfig")
    subprocess.run(["scripts/kconfig/merge_config.sh", "-m", ".config", *map(str, spec.fragments)], cwd=tree,
                   check=True, env={**os.environ, **REPRODUCIBLE_ENV, "ARCH": "x86_64"}, stdout=subprocess.DEVNULL)
    _make(tree, "olddefconfig")
    config_text = (tree / ".config").read_text()
    problems = config_problems(config_text, spec.fragments)
    if problems:
        raise KernelError(f"{variant} kernel config is not the intended one:\n  " + "\n  ".join(problems))
    print(f"compiling the {variant} kernel with -j{jobs} (several minutes under load) ...", flush=True)
    _make(tree, "vmlinux", jobs=jobs, quiet=False)
    final = KERNEL_CACHE / key
    staging = KERNEL_CACHE / f"tmp-{key}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    subprocess.run(["objcopy", "-R", ".comment", "-S", str(tree / "vmlinux"), str(staging / "vmlinux")], check=True)
    if PVH_NOTE not in elf_notes((staging / "vmlinux").read_bytes()):
        raise KernelError("the stripped vmlinux lacks the PVH entry note (is CONFIG_PVH on?): QEMU cannot boot it")
    shutil.copyfile(tree / ".config", staging / "config")
    staging.rename(final)  # atomic: a cache entry is complete or absent
    shutil.rmtree(workdir)
    return final


def is_cached(variant: str) -> bool:
    return (KERNEL_CACHE / cache_key(variant) / "vmlinux").exists()


def ensure_kernel(variant: str, jobs: int | None = None, *, rebuild: bool = False) -> Kernel:
    """The kernel of `variant`, from the cache or built into it."""
    key = cache_key(variant)
    entry = KERNEL_CACHE / key
    if rebuild or not (entry / "vmlinux").exists():
        _ensure_build_tools()
        key = cache_key(variant)  # the compiler may have just been installed
        entry = KERNEL_CACHE / key
        KERNEL_CACHE.mkdir(parents=True, exist_ok=True)
        # One build per key at a time: a second caller waits here, then finds the finished entry.
        with (KERNEL_CACHE / f"{key}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if rebuild and entry.exists():
                shutil.rmtree(entry)
            if not (entry / "vmlinux").exists():
                print(f"{variant} kernel {key} not cached: building", flush=True)
                build(variant, key, jobs or os.cpu_count() or 1)
    return Kernel(variant=variant, vmlinux=entry / "vmlinux", config=entry / "config", key=key)


def write_enabled(variant: str, config_text: str) -> Path:
    """Record the resolved config of `variant` in its reviewed `*.enabled` file (look at the diff first)."""
    spec = variant_of(variant)
    header = (f"# The resolved config of the {variant} kernel (every CONFIG_ line): "
              f"`python -m image.kernel --variant {variant} --write-enabled`.\n")
    spec.enabled.write_text(header + "\n".join(enabled_options(config_text)) + "\n")
    return spec.enabled


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=[*VARIANTS, "all"], default=MICROVM,
                        help=f"which kernel (default {MICROVM}; all: each in turn)")
    parser.add_argument("--jobs", "-j", type=int, default=None)
    parser.add_argument("--rebuild", action="store_true", help="ignore the cache entry and build again")
    parser.add_argument("--print-key", action="store_true")
    parser.add_argument("--write-enabled", action="store_true",
                        help="record the built config in the variant's *.enabled file")
    args = parser.parse_args()
    variants = list(VARIANTS) if args.variant == "all" else [args.variant]
    for variant in variants:
        if args.print_key:
            print(f"{variant} {cache_key(variant)}")
            continue
        try:
            kernel = ensure_kernel(variant, args.jobs, rebuild=args.rebuild)
        except (KernelError, debian.DebianError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{variant}: {kernel.vmlinux} ({kernel.vmlinux.stat().st_size} bytes)")
        if args.write_enabled:
            print(f"wrote {write_enabled(variant, kernel.config.read_text()).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
