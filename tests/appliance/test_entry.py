"""`python -m appliance` as PID 1: the init duties run first, and an init that cannot be loaded stops the
machine (logged, then powered off) instead of letting the service run on an unchecked one."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from appliance import devices, pid1
from tests.appliance.test_devices import GOOD

entry = importlib.import_module("appliance.__main__")


class Reboots:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls = 0
        self.error = error

    def __call__(self) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error


def _unloadable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "appliance.pid1", None)  # the import system's "cannot be imported"


def test_not_pid_1_runs_no_init_duties(monkeypatch: pytest.MonkeyPatch) -> None:
    _unloadable(monkeypatch)
    reboot = Reboots()
    assert entry._init_if_pid1(["--net", "kernel"], pid=4242, reboot=reboot) == ["--net", "kernel"]
    assert reboot.calls == 0


@pytest.mark.parametrize("reboot_error", [None, OSError("reboot: Operation not permitted")])
def test_pid_1_without_its_init_module_logs_and_powers_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], reboot_error: Exception | None
) -> None:
    _unloadable(monkeypatch)
    reboot = Reboots(reboot_error)
    with pytest.raises(SystemExit, match="cannot be loaded"):
        entry._init_if_pid1([], pid=1, reboot=reboot)
    assert reboot.calls == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["event"], line["error"]) for line in lines] == [("pid1.fatal", "ModuleNotFoundError")]


def test_any_failure_while_loading_init_is_fatal(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def broken(name: str) -> object:
        raise OSError(f"{name}: input/output error")

    monkeypatch.setattr(entry.importlib, "import_module", broken)
    reboot = Reboots()
    with pytest.raises(SystemExit):
        entry._init_if_pid1(["--net", "kernel"], pid=1, reboot=reboot)  # given arguments change nothing
    assert reboot.calls == 1
    assert json.loads(capsys.readouterr().out)["detail"] == "appliance.pid1: input/output error"


def test_pid_1_boots_and_derives_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = devices.parse_manifest(json.dumps(GOOD).encode())
    info = pid1.BootInfo(manifest, "eth0", Path("/dev/vda"), Path("/dev/hwrng"), {})
    booted: list[int] = []

    def boot() -> pid1.BootInfo:
        booted.append(1)
        return info

    monkeypatch.setattr(pid1, "boot", boot)
    reboot = Reboots()
    assert entry._init_if_pid1([], pid=1, reboot=reboot) == ["--net", "packet:eth0", "--disk", "/dev/vda"]
    assert entry._init_if_pid1(["--net", "kernel"], pid=1, reboot=reboot) == ["--net", "kernel"]
    assert booted == [1, 1]
    assert reboot.calls == 0
