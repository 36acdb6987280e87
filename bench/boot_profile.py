"""`python -m bench.boot_profile`: where the appliance's boot spends its time inside the VM.

Why: the boot is measured from the host (`python -m bench image`), but what it is made of can only be seen
inside the VM, where Python runs 3-15 times slower than on the host and the shares differ from a host profile
(issue 17). This boots the appliance image once (TCG, QEMU's user network, to its first HTTP 200) with two
changes to /init and none to the appliance:
- the interpreter runs with `-X importtime`, so every module's import time is on the console;
- /init prints the guest's CLOCK_BOOTTIME at its first line and after each step of its prologue (the module
  bundle, the deferring finder, the dataclass method table, PID 1's duties imported), before the appliance's own
  marks.

It prints the guest timeline (seconds since the kernel started) and the heaviest imports, by module and by
package. `-X importtime` itself costs a little per module, so the totals run above an ordinary boot's; the
shares are what to read. Not a benchmark: it has no reference to be a ratio of (and `python -m bench` skips it).
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench import image as bench_image
from image import build, cpio, rootfs
from image import run as runner

STAMP = "BOOT-STAMP"
STAMP_CODE = ("(lambda t: print('" + STAMP + " {0} %.4f %.4f' % (t.clock_gettime(7), t.time()), flush=True))"
              "(__import__('time'))\n")
"""One line of /init: a label, the guest's CLOCK_BOOTTIME (7 in linux/time.h) and its wall clock, which the
appliance's log lines carry (so they can be put on the same axis); `time` is a built-in module, so stamping
imports nothing a boot would not."""
PROLOGUE_STEPS = (
    ("from appliance import module_bundle\n", "interpreter-started"),
    ("from appliance import deferred_imports\n", "module-bundle-installed"),
    ("from appliance import method_cache\n", "deferred-imports-installed"),
    ("from appliance import pid1\n", "method-table-installed"),
)
"""(the line of /init a stamp goes before, its label): the prologue's steps as build.APPLIANCE_INIT has them."""
IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


@dataclass(frozen=True)
class ImportRow:
    """One line of `-X importtime`: a module's own import time and its import's whole time, in microseconds,
    and its depth in the tree of first imports (who imported it first)."""

    module: str
    self_us: int
    cumulative_us: int
    depth: int


class ProfileError(Exception):
    """The profiled boot could not be made or did not serve."""


def profiled_init(body: str) -> bytes:
    """/init for `body` (build.APPLIANCE_INIT) with the stamps and `-X importtime`. The kernel passes a
    script's interpreter one argument, so the option joins the others (`-ISBXimporttime`)."""
    stamped = STAMP_CODE.format("first-line") + body
    for line, label in PROLOGUE_STEPS:
        if line not in stamped:
            raise ProfileError(f"/init no longer has {line.strip()!r}: update bench.boot_profile.PROLOGUE_STEPS")
        stamped = stamped.replace(line, STAMP_CODE.format(label) + line, 1)
    script = rootfs.init_script(stamped)
    shebang, newline, rest = script.partition(b"\n")
    if not shebang.endswith(b" -ISB"):
        raise ProfileError(f"/init's interpreter line changed: {shebang!r}")
    return shebang + b"Ximporttime" + newline + rest


def parse_imports(lines: Iterable[str]) -> list[ImportRow]:
    """The `-X importtime` rows among console lines (the header line and everything else are skipped)."""
    rows = []
    for line in lines:
        found = IMPORTTIME.search(line)
        if found is not None:
            depth = (len(found.group(3)) - 1) // 2  # one space after the bar, then two per level
            rows.append(ImportRow(found.group(4), int(found.group(1)), int(found.group(2)), depth))
    return rows


def by_package(rows: Iterable[ImportRow]) -> dict[str, int]:
    """Own import time per top-level package (microseconds), heaviest first."""
    totals: dict[str, int] = {}
    for row in rows:
        top = row.module.split(".")[0]
        totals[top] = totals.get(top, 0) + row.self_us
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def parse_stamps(lines: Iterable[str]) -> dict[str, tuple[float, float]]:
    """(guest seconds since boot, guest wall clock) at each stamp of /init."""
    stamps = {}
    for line in lines:
        if line.startswith(STAMP + " "):
            _, label, since_boot, wall = line.split()
            stamps[label] = (float(since_boot), float(wall))
    return stamps


def parse_events(lines: Iterable[str]) -> dict[str, float]:
    """The appliance's log events (JSON lines) by name, with the guest's wall clock at the first of each."""
    events: dict[str, float] = {}
    for line in lines:
        event = runner.parse_event(line)
        if event is None:
            continue
        name, t = event.get("event"), event.get("t")
        if isinstance(name, str) and isinstance(t, float):
            events.setdefault(name, t)
    return events


def report(console: str, top: int) -> str:
    lines = console.splitlines()
    stamps, events, rows = parse_stamps(lines), parse_events(lines), parse_imports(lines)
    timeline = {label: since_boot for label, (since_boot, _) in stamps.items()}
    if "first-line" in stamps:
        since_boot, wall = stamps["first-line"]
        for name in (*bench_image.CONSOLE_MARKS, "address", "connection"):
            if name in events:  # the log's wall clock, moved onto the stamps' axis (to the millisecond it has)
                timeline[name] = events[name] - wall + since_boot
    out = ["guest timeline (s since the kernel started):"]
    out += [f"  {label:26s} {at:7.3f}" for label, at in sorted(timeline.items(), key=lambda item: item[1])]
    total = sum(row.self_us for row in rows)
    out.append(f"imports: {len(rows)} modules, {total / 1e6:.3f} s of own import time (importtime included)")
    out.append("by package (own time):")
    out += [f"  {us / 1e3:8.1f} ms  {name}" for name, us in list(by_package(rows).items())[:top]]
    out.append("heaviest modules (own time; cumulative):")
    for row in sorted(rows, key=lambda row: -row.self_us)[:top]:
        out.append(f"  {row.self_us / 1e3:8.1f} ms  {row.cumulative_us / 1e3:8.1f} ms  {row.module}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.boot_profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=25, help="rows of each list (default 25)")
    parser.add_argument("--console", type=Path, help="also keep the whole console here")
    args = parser.parse_args()
    image = build.build("appliance")
    with tempfile.TemporaryDirectory(prefix="pinata-boot-profile-") as scratch:
        tmp = Path(scratch)
        archive = tmp / "profiled.cpio"
        init = cpio.regular("init", profiled_init(build.APPLIANCE_INIT), 0o755)
        archive.write_bytes(image.archive.read_bytes() + cpio.serialize([init]))  # the later /init wins
        profiled = build.Image("appliance", image.kernel, build.boot_form(archive), archive)
        boot = bench_image._boot_to_http_200(profiled, tmp / "disk.img")
        console = (tmp / "disk.console").read_text("utf-8", "replace")
    if args.console is not None:
        args.console.write_text(console)
    if boot.failure is not None:
        raise ProfileError(f"the profiled boot did not serve: {boot.failure}")
    print(f"host timeline (s from QEMU start): {boot.timeline()}")
    print(report(console, args.top))


if __name__ == "__main__":
    main()
