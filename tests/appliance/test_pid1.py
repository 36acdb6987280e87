"""PID 1's duties with the system calls faked: mounts, the device check, the kernel parameters, and that
every failure ends in a logged power-off (never a return into a half-checked machine)."""

from __future__ import annotations

import atexit
import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from appliance import pid1
from appliance.log import JsonLog
from tests.appliance.test_devices import GOOD, fake_machine


class FakeSyscalls:
    def __init__(self, fail_mount: str | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail_mount = fail_mount

    def mount(self, source: str, target: str, fstype: str, flags: int) -> None:
        if fstype == self.fail_mount:
            raise pid1.BootError(f"mount {fstype} on {target}: No such device")
        self.calls.append(("mount", source, target, fstype, str(flags)))

    def sync(self) -> None:
        self.calls.append(("sync",))

    def reboot(self) -> None:
        self.calls.append(("reboot",))


def events(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def machine(tmp_path: Path, **change: object) -> Path:
    root = fake_machine(tmp_path / "root", **change)  # type: ignore[arg-type]
    (root / "etc" / "pinata").mkdir(parents=True)
    (root / "etc" / "pinata" / "devices.json").write_text(json.dumps(GOOD))
    return root


def test_mounts_checks_and_reports(tmp_path: Path) -> None:
    stream = io.StringIO()
    fake = FakeSyscalls()
    init = pid1.Init(fake, JsonLog(stream), machine(tmp_path))
    init.mount_all()
    info = init.check_devices(pid1.DEVICE_MANIFEST)
    assert [call[3] for call in fake.calls] == ["devtmpfs", "proc", "sysfs"]
    assert all(int(call[4]) & pid1.MS_NOEXEC and int(call[4]) & pid1.MS_NOSUID for call in fake.calls)
    assert info.interface == "eth0"
    assert info.disk == Path("/dev/vda")
    assert info.parameters == {"variant": "smoke"}
    assert pid1.appliance_argv(info) == ["--net", "packet:eth0", "--disk", "/dev/vda"]
    logged = events(stream)
    assert [e["event"] for e in logged] == ["pid1.mounted", "pid1.devices", "pid1.parameters"]
    assert logged[1]["ok"] is True
    assert logged[2]["parameters"] == "pinata.variant=smoke"


@pytest.mark.parametrize("word", ["pinata.ip=10.0.0.2/24", "pinata.gw=10.0.0.1"])
def test_address_in_pinata_parameters_is_a_boot_error(tmp_path: Path, word: str) -> None:
    """The address is the kernel's ip=; a pinata.ip= (as an old run.py message advised) would otherwise be
    ignored and the VM would quietly take an address by DHCP."""
    root = machine(tmp_path)
    (root / "proc" / "cmdline").write_text(f"console=ttyS0 {word} quiet\n")
    init = pid1.Init(FakeSyscalls(), JsonLog(io.StringIO()), root)
    with pytest.raises(pid1.BootError, match="kernel's ip= parameter"):
        init.check_devices(pid1.DEVICE_MANIFEST)


def test_wrong_device_set_is_a_boot_error(tmp_path: Path) -> None:
    init = pid1.Init(FakeSyscalls(), JsonLog(io.StringIO()), machine(tmp_path, rngs=None, virtio=(1, 2)))
    with pytest.raises(pid1.BootError, match="differs from the manifest"):
        init.check_devices(pid1.DEVICE_MANIFEST)


def test_missing_manifest_is_a_boot_error(tmp_path: Path) -> None:
    root = machine(tmp_path)
    shutil.rmtree(root / "etc")
    init = pid1.Init(FakeSyscalls(), JsonLog(io.StringIO()), root)
    with pytest.raises(pid1.BootError, match="device manifest"):
        init.check_devices(pid1.DEVICE_MANIFEST)


def test_power_off_logs_syncs_reboots_and_never_returns(tmp_path: Path) -> None:
    stream = io.StringIO()
    fake = FakeSyscalls()
    init = pid1.Init(fake, JsonLog(stream), machine(tmp_path))
    with pytest.raises(SystemExit):
        init.power_off("because")
    assert fake.calls == [("sync",), ("reboot",)]
    assert events(stream)[-1] == {"t": events(stream)[-1]["t"], "event": "pid1.poweroff", "reason": "because"}


def test_boot_refuses_and_powers_off_when_a_mount_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeSyscalls(fail_mount="sysfs")
    monkeypatch.setattr(pid1, "_booted", [])
    monkeypatch.setattr(pid1, "_install_last_words", lambda init: None)
    monkeypatch.setattr(pid1.Init, "__init__", _init_at(tmp_path / "root"))
    stdout = io.StringIO()
    monkeypatch.setattr("sys.stdout", stdout)
    with pytest.raises(SystemExit):
        pid1.boot(lambda: fake, pid1.DEVICE_MANIFEST)
    names = [e["event"] for e in events(stdout)]
    assert names[0] == "pid1.start"
    assert "pid1.refused" in names
    assert names[-1] == "pid1.poweroff"
    assert fake.calls[-1] == ("reboot",)
    assert pid1._booted == []


def _init_at(root: Path):  # type: ignore[no-untyped-def]
    original = pid1.Init.__init__

    def init(self: pid1.Init, syscalls: pid1.Syscalls, log: JsonLog, _root: Path = Path("/")) -> None:
        root.mkdir(parents=True, exist_ok=True)
        original(self, syscalls, log, root)

    return init


def test_boot_runs_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = machine(tmp_path)
    fake = FakeSyscalls()
    monkeypatch.setattr(pid1, "_booted", [])
    monkeypatch.setattr(pid1, "_install_last_words", lambda init: None)
    monkeypatch.setattr(pid1.Init, "__init__", _init_at(root))
    monkeypatch.setattr("sys.stdout", io.StringIO())
    first = pid1.boot(lambda: fake, pid1.DEVICE_MANIFEST)
    second = pid1.boot(lambda: fake, pid1.DEVICE_MANIFEST)
    assert first is second
    assert len([c for c in fake.calls if c[0] == "mount"]) == 3


def test_last_words_log_the_fatal_error_and_power_off_at_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    fake = FakeSyscalls()
    registered: list[object] = []
    monkeypatch.setattr(atexit, "register", registered.append)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(sys, "__excepthook__", lambda *args: None)
    init = pid1.Init(fake, JsonLog(stream), Path("/nonexistent"))
    pid1._install_last_words(init)
    sys.excepthook(ValueError, ValueError("broken service"), None)
    assert events(stream)[-1]["event"] == "pid1.fatal"
    assert events(stream)[-1]["detail"] == "broken service"
    assert len(registered) == 1
    with pytest.raises(SystemExit):
        registered[0]()  # type: ignore[operator]
    assert events(stream)[-1]["event"] == "pid1.poweroff"
    assert fake.calls == [("sync",), ("reboot",)]


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        ("console=ttyS0 quiet", {}),
        ("ip=10.0.0.2::10.0.0.1:255.255.255.0 pinata.variant=smoke pinata.flag pinata.a=b=c",
         {"variant": "smoke", "a": "b=c"}),
        ("pinata.name=x pinata.t=1 pinata.event=e", {"name": "x", "t": "1", "event": "e"}),
    ],
)
def test_parse_cmdline(cmdline: str, expected: dict[str, str]) -> None:
    assert pid1.parse_cmdline(cmdline) == expected


def test_overlong_cmdline_is_refused() -> None:
    with pytest.raises(pid1.BootError):
        pid1.parse_cmdline("x" * (pid1.MAX_CMDLINE_BYTES + 1))
