"""The boot profile's /init and its reading of the console (the boot itself is `python -m bench.boot_profile`)."""

from __future__ import annotations

import contextlib
import io

import pytest

from bench import boot_profile
from bench.boot_profile import ImportRow, ProfileError
from image import build

CONSOLE = """\
[    0.000000] Linux version 6.1
import time: self [us] | cumulative | imported package
import time:      2682 |       2682 |   _io
import time:       453 |       3135 | marshal
BOOT-STAMP first-line 0.8460 1796571000.1000
import time:      9199 |       9199 |     tls.constants
import time:       120 |      9319 |   tls.x509
import time:      1000 |      10319 | tls
BOOT-STAMP method-table-installed 1.0980 1796571000.3520
{"t":1796571000.452,"event":"pid1.start","python":"3.11.2"}
{"t":1796571000.5,"event":"pid1.start","python":"again"}
{"t":"not a time","event":"limits"}
{"broken json
{"t":1796571001.100,"event":"ready","http":80}
{"t":1796571000.998,"event":"address","ipv4":"10.0.2.15/24"}
"""


def test_the_profiled_init_stamps_each_prologue_step_and_times_the_imports() -> None:
    init = boot_profile.profiled_init(build.APPLIANCE_INIT).decode()
    shebang, _, body = init.partition("\n")
    assert shebang.endswith(" -ISBXimporttime")  # one argument for the kernel to pass: the options joined
    labels = ["first-line", *(label for _, label in boot_profile.PROLOGUE_STEPS)]
    positions = [body.index(f"BOOT-STAMP {label} ") for label in labels]
    assert positions == sorted(positions)
    for line, label in boot_profile.PROLOGUE_STEPS:  # each stamp comes right before the step it names
        assert body.index(f"BOOT-STAMP {label} ") < body.index(line)
    assert body.endswith(build.APPLIANCE_INIT.rsplit("from appliance import pid1\n", 1)[1])


def test_an_init_without_a_step_to_stamp_is_refused() -> None:
    with pytest.raises(ProfileError, match="no longer has"):
        boot_profile.profiled_init(build.APPLIANCE_INIT.replace("from appliance import method_cache\n", ""))


def test_a_stamp_prints_its_label_and_both_clocks() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(boot_profile.STAMP_CODE.format("here"), {})  # the line /init runs, run here
    stamps = boot_profile.parse_stamps(out.getvalue().splitlines())
    since_boot, wall = stamps["here"]
    assert since_boot > 0
    assert wall > 1_000_000_000


def test_the_console_is_read_into_imports_stamps_and_events() -> None:
    lines = CONSOLE.splitlines()
    assert boot_profile.parse_imports(lines) == [
        ImportRow("_io", 2682, 2682, 1), ImportRow("marshal", 453, 3135, 0), ImportRow("tls.constants", 9199, 9199, 2),
        ImportRow("tls.x509", 120, 9319, 1), ImportRow("tls", 1000, 10319, 0),
    ]
    assert boot_profile.parse_stamps(lines) == {"first-line": (0.846, 1796571000.1),
                                                "method-table-installed": (1.098, 1796571000.352)}
    assert boot_profile.parse_events(lines) == {"pid1.start": 1796571000.452, "ready": 1796571001.1,  # the first
                                                "address": 1796571000.998}


def test_own_time_adds_up_per_package_heaviest_first() -> None:
    rows = boot_profile.parse_imports(CONSOLE.splitlines())
    assert boot_profile.by_package(rows) == {"tls": 10319, "_io": 2682, "marshal": 453}


def test_the_report_puts_the_log_on_the_stamps_axis() -> None:
    text = boot_profile.report(CONSOLE, top=2)
    assert "  pid1.start                   1.198" in text  # 0.846 + (…0.452 - …0.100)
    assert "  ready                        1.846" in text
    timeline = [line.split()[0] for line in text.splitlines()[1:6]]
    assert timeline == ["first-line", "method-table-installed", "pid1.start", "address", "ready"]  # by time
    assert "imports: 5 modules, 0.013 s" in text
    assert [line.split() for line in text.splitlines()[-2:]] == [["9.2", "ms", "9.2", "ms", "tls.constants"],
                                                                  ["2.7", "ms", "2.7", "ms", "_io"]]
