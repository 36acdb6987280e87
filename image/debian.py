"""Debian packages the image is built from, pinned by exact version and sha256 in `image/debian-packages.lock`.

apt verifies what it downloads against the archive's signed Release file, but the archive moves on (security
updates replace versions); the lock says which bytes we built from, so a rebuild either uses those bytes or
fails loudly. `python -m image.debian --lock` re-pins to the versions apt offers today (review the diff).

Packages are never installed: `apt-get download` fetches the .deb, we check its hash, and `dpkg-deb -x`
unpacks it into a staging directory.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "image" / "debian-packages.lock"
CACHE = Path(os.environ.get("PINATA_CACHE", Path.home() / ".cache" / "pinata"))
DEB_CACHE = CACHE / "debs"

# What the image needs, by role. The kernel source is an input of the kernel build; the rest is the
# runtime: the interpreter, its stdlib, and the shared libraries the interpreter and the imported
# extension modules link against (image.rootfs adds their DT_NEEDED closure; the boot test in
# tests/image/test_boot.py, which loads every module and extension inside the VM, shows nothing is missing).
KERNEL_PACKAGES = ("linux-source-6.1",)
RUNTIME_PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "zlib1g",
    "libexpat1",
    "libffi8",
    "libgcc-s1",
)
ALL_PACKAGES = KERNEL_PACKAGES + RUNTIME_PACKAGES

_LINE = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9.+\-]*) (?P<version>\S+) (?P<arch>amd64|all) sha256:(?P<sha>[0-9a-f]{64})$"
)


class DebianError(Exception):
    """A pinned package could not be fetched or did not match its recorded hash."""


@dataclass(frozen=True)
class DebPin:
    name: str
    version: str
    arch: str
    sha256: str

    @property
    def filename(self) -> str:
        # apt-get download escapes ':' in epochs as %3a.
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


def read_lock(path: Path = LOCK) -> dict[str, DebPin]:
    pins: dict[str, DebPin] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise DebianError(f"{path.name}:{number}: malformed line {line!r}")
        pin = DebPin(match["name"], match["version"], match["arch"], match["sha"])
        if pin.name in pins:
            raise DebianError(f"{path.name}:{number}: {pin.name} pinned twice")
        pins[pin.name] = pin
    missing = set(ALL_PACKAGES) - set(pins)
    extra = set(pins) - set(ALL_PACKAGES)
    if missing or extra:
        raise DebianError(f"{path.name}: missing {sorted(missing)}, unexpected {sorted(extra)}")
    return pins


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _download(pin: DebPin) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", "download", "-q", f"{pin.name}={pin.version}"],
        cwd=DEB_CACHE, capture_output=True, text=True, check=False,
    )


@functools.cache
def _refresh_package_lists() -> bool:
    """Run `apt-get update` (once per process, as root only): a machine whose package lists predate the lock
    does not know the pinned (security-updated) versions yet. True when the lists are now fresh."""
    if os.geteuid() != 0:
        return False
    print("apt-get download failed: refreshing the package lists (apt-get update) to try again ...", flush=True)
    return subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False).returncode == 0


def fetch(pin: DebPin) -> Path:
    """The verified .deb for `pin`, downloaded into the cache on first use."""
    DEB_CACHE.mkdir(parents=True, exist_ok=True)
    target = DEB_CACHE / pin.filename
    if not target.exists():
        print(f"downloading {pin.name} {pin.version} ...", flush=True)
        result = _download(pin)
        if result.returncode != 0 and _refresh_package_lists():
            result = _download(pin)  # the lists were older than the lock (a fresh machine's image)
        if result.returncode != 0 or not target.exists():
            raise DebianError(
                f"apt-get download {pin.name}={pin.version} failed (is the version still in the archive? "
                f"run `apt-get update`; if it was superseded, re-pin with `python -m image.debian --lock`):\n"
                + result.stderr.strip()
            )
    actual = sha256_file(target)
    if actual != pin.sha256:
        target.unlink()
        raise DebianError(f"{pin.filename}: sha256 {actual} but the lock says {pin.sha256}")
    return target


def extract(pin: DebPin, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(fetch(pin)), str(destination)], check=True)


def candidate(name: str) -> tuple[str, str]:
    """(version, arch) that apt would download today."""
    out = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", name], capture_output=True, text=True, check=True
    ).stdout
    fields = dict(
        line.split(": ", 1) for line in out.splitlines() if ": " in line and not line.startswith(" ")
    )
    return fields["Version"], fields["Architecture"]


def relock() -> str:
    lines = [
        "# Generated by `python -m image.debian --lock`: Debian bookworm packages the image is built from.",
        "# Each line: name version arch sha256 (of the .deb as apt-get download fetches it).",
    ]
    for name in sorted(ALL_PACKAGES):
        version, arch = candidate(name)
        pin = DebPin(name, version, arch, "0" * 64)
        DEB_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "-q", f"{name}={version}"], cwd=DEB_CACHE, check=True)
        lines.append(f"{name} {version} {arch} sha256:{sha256_file(DEB_CACHE / pin.filename)}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lock", action="store_true", help="re-pin to the versions apt offers now")
    parser.add_argument("--fetch", action="store_true", help="download and verify every pinned package")
    args = parser.parse_args()
    if args.lock:
        LOCK.write_text(relock())
        print(f"wrote {LOCK.relative_to(ROOT)}")
    if args.fetch:
        for pin in read_lock().values():
            fetch(pin)
            print(f"ok {pin.filename}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
