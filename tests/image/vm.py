"""Helpers for the tests that boot the image: build once per session, run QEMU to the end, read its console."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from image import build, run

BOOT_TIMEOUT_SECONDS = 180.0  # TCG on a shared 2-core machine; a normal boot takes a few seconds


@dataclass(frozen=True)
class Boot:
    returncode: int
    lines: list[str]
    events: list[dict[str, object]]

    def names(self) -> list[str]:
        return [str(e.get("event")) for e in self.events]

    def first(self, name: str) -> dict[str, object]:
        return next(e for e in self.events if e.get("event") == name)


def boot(command: list[str], timeout: float = BOOT_TIMEOUT_SECONDS) -> Boot:
    """Run QEMU until the guest ends it (PID 1 powers off); kill it and fail if it doesn't in time."""
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode("utf-8", "replace")
        raise AssertionError(f"the VM did not power off within {timeout} s; console:\n{output[-3000:]}") from exc
    lines = (result.stdout + result.stderr).decode("utf-8", "replace").splitlines()
    events = [e for e in (run.parse_event(line) for line in lines) if e is not None]
    return Boot(result.returncode, lines, events)


def command(image: build.Image, disk: Path, **kwargs: object) -> list[str]:
    manifest = run.load_manifest()
    run.ensure_disk(disk, manifest)
    return run.qemu_command(manifest, image.kernel, image.initramfs, disk, run.parse_network("none"),
                            **kwargs)  # type: ignore[arg-type]


def remove_device(cmd: list[str], prefix: str) -> list[str]:
    """The command without the option pairs whose value starts with `prefix` (e.g. the rng's)."""
    out: list[str] = []
    skip = False
    for index, word in enumerate(cmd):
        if skip:
            skip = False
            continue
        if word.startswith("-") and index + 1 < len(cmd) and cmd[index + 1].startswith(prefix):
            skip = True
            continue
        out.append(word)
    return out
