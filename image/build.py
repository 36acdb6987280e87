"""`make image`: the kernel (from the cache, or built) and the initramfs, in build/image/.

Variants of the initramfs, one kernel:
- `appliance` (default): /init runs PID 1's duties, then the appliance (`python -m appliance`).
- `smoke`: /init runs PID 1's duties, imports every project module, exercises the native extensions and
  the devices, logs what it did and powers off. It proves the image's runtime is complete without
  depending on the service being finished; tests and the bench use it.
- `floor`: /init is a tiny ELF that ends the VM at once: the boot-time floor for the benchmark.

Each variant is written twice: `initramfs-VARIANT.cpio`, the archive (what is reproducible, recorded and
inspected), and `initramfs-VARIANT.cpio.lz4`, the same archive as the kernel takes it (`Image.initramfs`,
what QEMU and the libvirt domain load). Why compressed: the kernel holds the whole initrd and the files it
unpacks from it at once, so a raw 28.5 MB archive needed 57 MB before PID 1 ran (-m 64 panicked), and LZ4
decompresses under TCG about as fast as the raw archive was copied (see image/kernel.config).

Kernels (image.kernel's variants), as `vmlinux-VARIANT`: every variant of the initramfs boots the microvm
kernel; `--pci` also puts the pci kernel there, the one the libvirt domain boots (image.deploy).

`--report` prints the sizes (raw, and compressed with xz and lz4 for shipping) and sha256 of each output;
`--record` writes them, for both kernels, to image/outputs.txt, from which `make manifest` takes the
[image-outputs] section.
"""

from __future__ import annotations

import argparse
import lzma
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from image import debian, floor, kernel, rootfs

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "image"
DEVICE_MANIFEST = ROOT / "image" / "devices.json"
OUTPUTS = ROOT / "image" / "outputs.txt"
VARIANTS = ("appliance", "smoke", "floor")

BOOT_PROLOGUE = """\
import sys
sys.path[:0] = ["/app"]
from appliance import module_bundle
bundle = module_bundle.install()  # the modules below come from one file: see appliance.module_bundle
from appliance import deferred_imports
deferred_imports.install()  # stdlib modules the boot imports and never uses run at first use: see there
from appliance import method_cache
method_cache.install()  # the dataclass methods the image builder compiled: see appliance.method_cache
"""
"""How every /init begins (the appliance's, the smoke image's, the test image's): the project on the path, then
what the builder precomputed for the boot, before any other module is imported."""

APPLIANCE_INIT = """\
import gc
gc.disable()  # until the appliance is ready: see appliance.main.settle_heap
""" + BOOT_PROLOGUE + """\
from appliance import pid1
sys.argv = ["appliance", *pid1.appliance_argv(pid1.boot())]
import runpy
runpy.run_module("appliance", run_name="__main__", alter_sys=True)
"""

SMOKE_INIT = BOOT_PROLOGUE + """\
from appliance import pid1
info = pid1.boot()
import asyncio, hashlib, importlib, os, time
from appliance.log import JsonLog
log = JsonLog()
started = time.monotonic()
modules, failed = 0, []
for name in bundle.names():  # every project module, as the bundle lists them (no .pyc in the directories)
    if name.split(".")[0] not in ("appliance", "adapters", "netstack", "outcomes", "tls"):
        continue
    try:
        importlib.import_module(name)
        modules += 1
    except Exception as exc:
        failed.append(name + ": " + repr(exc))
for name in sorted(deferred_imports.DEFERRED):  # run what the boot defers: its own imports must be in the image
    try:
        vars(importlib.import_module(name))
    except Exception as exc:
        failed.append(name + ": " + repr(exc))
log.event("smoke.imports", modules=modules, failed=";".join(failed)[:1000],
          seconds=round(time.monotonic() - started, 3), **method_cache.report(), **deferred_imports.report())
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from appliance.wallet_key import public_key
log.event("smoke.step", step="ecdsa")
key = ec.generate_private_key(ec.SECP256R1())
key.public_key().verify(key.sign(b"pinata", ec.ECDSA(hashes.SHA256())), b"pinata", ec.ECDSA(hashes.SHA256()))
wallet = public_key(hashlib.sha256(b"pinata smoke").digest())  # the wallet's curve, secp256k1, in OpenSSL
log.event("smoke.step", step="hwrng")
with open(info.hwrng, "rb", buffering=0) as rng:
    entropy = len(rng.read(16))
with open(info.disk, "rb", buffering=0) as disk:
    disk_bytes = disk.seek(0, os.SEEK_END)
log.event("smoke.step", step="kmsg")
initmem = "unknown"  # what the kernel did with its init sections (kept under TCG: image/run.kernel_append)
kmsg = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
try:
    for _ in range(8192):  # one record per read; the kernel's log buffer holds far fewer
        try:
            record = os.read(kmsg, 8192)
        except BlockingIOError:  # the end of the log
            break
        except BrokenPipeError:  # records were overwritten while we read: go on with the next
            continue
        if b"unused kernel image (initmem)" in record:
            initmem = "kept" if b"Keeping" in record else "freed"
finally:
    os.close(kmsg)
log.event("smoke.step", step="asyncio")
async def tick():
    await asyncio.sleep(0.01)
    return True
log.event("smoke.ok", ecdsa=True, secp256k1=wallet.hex()[:16], hwrng_bytes=entropy,
          disk_bytes=disk_bytes, asyncio=asyncio.run(tick()), interface=info.interface, initmem=initmem,
          parameters=",".join(f"{k}={v}" for k, v in sorted(info.parameters.items())))
"""


BOOT_COMPRESSOR = ("lz4", "-l", "-9", "-c", "-q")
"""The kernel's LZ4 decompressor reads only the legacy frame (`-l`); level 9 is within 0.5 % of the smallest
(-12) and compresses in a second instead of four."""
LZ4_LEGACY_MAGIC = (0x184C2102).to_bytes(4, "little")


@dataclass(frozen=True)
class Image:
    """An initramfs variant and the kernel that boots it under the runner (the microvm kernel's file):
    `initramfs` is what the kernel is given (the archive, compressed), `archive` the cpio itself."""

    variant: str
    kernel: Path
    initramfs: Path
    archive: Path


def boot_form(archive: Path) -> Path:
    """`archive` as the kernel takes it, written beside it (`NAME.cpio.lz4`); returns that path. An archive
    with more appended to it (the test image's overlay) is compressed whole: the kernel reads no further
    archive after an LZ4 stream in the legacy frame, which has no end marker."""
    target = boot_form_path(archive)
    partial = target.with_name(target.name + ".partial")  # a QEMU reading the old one never sees half a file
    with partial.open("wb") as out:
        subprocess.run([*BOOT_COMPRESSOR, str(archive)], stdout=out, check=True)
    partial.replace(target)
    return target


def archive_path(variant: str, out: Path = OUT) -> Path:
    """Where a variant's initramfs archive is built."""
    return out / f"initramfs-{variant}.cpio"


def boot_form_path(archive: Path) -> Path:
    """Where `boot_form` writes an archive's boot form: beside it, `NAME.cpio.lz4`."""
    return archive.with_name(archive.name + ".lz4")


def boot_initramfs_path(variant: str, out: Path = OUT) -> Path:
    """Where `build` leaves the initramfs the kernel of `variant`'s image is given."""
    return boot_form_path(archive_path(variant, out))


def _step(message: str) -> None:
    print(f"[image] {message}", flush=True)


def build_initramfs(variant: str, out: Path, device_manifest: bytes | None = None) -> Path:
    """Build one variant's initramfs into `out`; returns its path. `device_manifest` replaces
    image/devices.json (the benchmark's memory search builds one image per memory size)."""
    target = archive_path(variant, out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"initramfs-{variant}.inputs").unlink(missing_ok=True)  # only build() vouches for a stamp
    if variant == "floor":
        target.write_bytes(floor.archive())
        return target
    staging = out / f"stage-{variant}"
    _step("unpacking the pinned Debian runtime ...")
    debroot = rootfs.stage_runtime(staging)
    _step("unpacking wheels and project packages ...")
    app = rootfs.stage_app(staging, rootfs.fetch_wheels())
    _step("tracing imports, compiling, collecting shared libraries ...")
    body = APPLIANCE_INIT if variant == "appliance" else SMOKE_INIT
    tree = rootfs.collect(staging, debroot, app, rootfs.init_script(body), carried_files(device_manifest))
    target.write_bytes(tree.archive())
    shutil.rmtree(staging)
    return target


OUTPUTS_SECTION = "[image-outputs"
TEST_SECTION = "[test-packages"


def served_manifest() -> bytes:
    """manifest.txt as the image carries and serves it: without the section that records the image's own
    hash (which cannot be inside the image it describes; publishing it is what outputs.txt is for), and
    without the test venv's packages, which are not part of the image."""
    kept, skipping = [], False
    for line in (ROOT / "manifest.txt").read_text().splitlines():
        if line.startswith("["):
            skipping = line.startswith((OUTPUTS_SECTION, TEST_SECTION))
        if not skipping:
            kept.append(line)
    while kept and not kept[-1]:
        kept.pop()
    return ("\n".join(kept) + "\n").encode()


def carried_files(device_manifest: bytes | None = None) -> dict[str, bytes]:
    """The files the initramfs carries besides the runtime and the code."""
    return {
        "etc/pinata/devices.json": device_manifest or DEVICE_MANIFEST.read_bytes(),
        "app/manifest.txt": served_manifest(),
        # appliance.main: a production boot refuses test material and the comparison engines.
        "app/appliance/PRODUCTION": b"built by image.build\n",
    }


def initramfs_inputs(variant: str) -> str:
    return rootfs.inputs_digest({**carried_files(), "init": (APPLIANCE_INIT if variant == "appliance" else SMOKE_INIT)
                                 .encode()})


def kernel_file(variant: str) -> str:
    """The name of a kernel variant's file in build/image/ (and in a deployment's directory)."""
    return f"vmlinux-{variant}"


def install_kernel(variant: str, out: Path = OUT) -> Path:
    """The kernel of `variant` (from the cache, or built) copied to `out`; returns the copy."""
    _step(f"{variant} kernel: " + ("cached" if kernel.is_cached(variant) else "building"))
    built = kernel.ensure_kernel(variant)
    out.mkdir(parents=True, exist_ok=True)
    target = out / kernel_file(variant)
    if not target.exists() or target.read_bytes() != built.vmlinux.read_bytes():
        shutil.copyfile(built.vmlinux, target)
    return target


def build(variant: str = "appliance", out: Path = OUT, *, force: bool = False) -> Image:
    """The microvm kernel (cache) and the variant's initramfs in `out`, the initramfs rebuilt only when its
    inputs changed: a stamp next to it holds the inputs digest it was built from (builds are reproducible,
    so an unchanged digest means unchanged bytes)."""
    started = time.monotonic()
    vmlinux = install_kernel(kernel.MICROVM, out)
    target, stamp = archive_path(variant, out), out / f"initramfs-{variant}.inputs"
    booted = boot_form_path(target)
    digest = f"{initramfs_inputs(variant)}\n{boot_form_key()}"
    if not force and target.exists() and booted.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        _step(f"{variant}: {target} is up to date")
        return Image(variant, vmlinux, booted, target)
    stamp.unlink(missing_ok=True)  # vouches for both files, so only once both are written
    archive = build_initramfs(variant, out)
    booted = boot_form(archive)
    stamp.write_text(digest + "\n")
    _step(f"{variant}: {archive} ({archive.stat().st_size} bytes; {booted.stat().st_size} as booted) "
          f"in {time.monotonic() - started:.1f} s")
    return Image(variant, vmlinux, booted, archive)


def boot_form_key() -> str:
    """What the boot form is made with besides the archive (the stamp's second line): another compressor or
    release makes other bytes, so a build with it makes the boot form again."""
    return f"{' '.join(BOOT_COMPRESSOR)} {lz4_version()}"


def lz4_version() -> str:
    """The compressor's release ("v1.9.4"): the boot form's bytes are reproducible for one release."""
    banner = kernel.tool_version(BOOT_COMPRESSOR[0])
    return next((word.rstrip(",") for word in banner.split() if word.startswith("v")), banner.replace(" ", "_"))


SHIPPING_XZ_FILTERS = ({"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME})
"""`xz --x86 -9e`: the x86 branch filter first (as the kernel's own xz images use), because most of what ships
is x86-64 machine code (the interpreter, libcrypto inside cryptography's extension, the kernel), whose relative
call and jump targets it turns into absolute ones that repeat: 3.5 % smaller for the initramfs, 4.8 % for the
kernel (measured: 7.60 -> 7.34 MB and 1.006 -> 0.958 MB). `xz -d` reads it like any other .xz."""


def compressed_sizes(data: bytes, *, xz: bool = True) -> dict[str, int]:
    """Shipping sizes: xz (smallest, slow: ~10 s for the initramfs) and lz4 (the initramfs's boot form)."""
    sizes = {"lz4": len(subprocess.run(BOOT_COMPRESSOR, input=data, capture_output=True, check=True).stdout)}
    if xz:
        sizes["xz"] = len(lzma.compress(data, format=lzma.FORMAT_XZ, filters=SHIPPING_XZ_FILTERS))
    return sizes


def report_lines(paths: list[Path], *, compressed: list[Path]) -> list[str]:
    """Each output's raw size, its shipping sizes and its sha256 (the kernel ships compressed like the
    initramfs: the vmlinux is an uncompressed ELF, so its raw size says little about what ships); for the
    `compressed` ones (the boot form, already LZ4) the size and sha256 alone: compressing them again says
    nothing and took the longest."""
    lines = []
    for path in [*paths, *compressed]:
        data = path.read_bytes()
        sizes = {} if path in compressed else compressed_sizes(data)
        extra = "".join(f" {name}={size}" for name, size in sizes.items())
        lines.append(f"{path.name} raw={len(data)}{extra} sha256:{rootfs.sha256(data)}")
    return lines


def record(image: Image, kernels: dict[str, Path]) -> None:
    """Write image/outputs.txt: one line per kernel variant in `kernels` (variant -> its file) and the image's
    initramfs."""
    pin = debian.read_lock()[kernel.SOURCE_PACKAGE]
    text = [
        "# Written by `python -m image.build --record` after a build: what it produced (name version sha256",
        "# inputs). Each kernel is named by its cache key (image.kernel.cache_key), the initramfs by the digest",
        "# of everything it is built from (image.build.initramfs_inputs). Rebuild and compare: --report.",
        *(f"{kernel_file(variant)} {pin.version} sha256:{rootfs.sha256(path.read_bytes())} "
          f"kernel-key:{kernel.cache_key(variant)}" for variant, path in kernels.items()),
        f"initramfs.cpio {image.variant} sha256:{rootfs.sha256(image.archive.read_bytes())} "
        f"inputs-sha256:{initramfs_inputs(image.variant)}",
        f"initramfs.cpio.lz4 {image.variant} sha256:{rootfs.sha256(image.initramfs.read_bytes())} "
        f"compressor:{lz4_version()}",
    ]
    OUTPUTS.write_text("\n".join(text) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", choices=VARIANTS, default="appliance")
    parser.add_argument("--report", action="store_true", help="print sizes and hashes")
    parser.add_argument("--record", action="store_true", help="write image/outputs.txt for the manifest")
    parser.add_argument("--force", action="store_true", help="rebuild the initramfs even if it is up to date")
    parser.add_argument("--pci", action="store_true",
                        help="also the pci kernel, for the libvirt domain (implied by --record)")
    args = parser.parse_args()
    try:
        image = build(args.variant, force=args.force)
        kernels = {kernel.MICROVM: image.kernel}
        if args.pci or args.record:
            kernels[kernel.PCI] = install_kernel(kernel.PCI)
    except (kernel.KernelError, debian.DebianError, rootfs.RootfsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.report or args.record:
        print("\n".join(report_lines([*kernels.values(), image.archive], compressed=[image.initramfs])))
    if args.record:
        record(image, kernels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
