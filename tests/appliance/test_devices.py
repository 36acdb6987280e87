"""The device manifest codec and the comparison of declared and found devices (on a fake /sys + /proc)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance import devices

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "version": 1,
    "devices": [
        {"name": "memory", "type": "memory", "mib": 128},
        {"name": "service", "type": "net", "mac": "52:54:00:12:34:56"},
        {"name": "data", "type": "block", "mib": 16},
        {"name": "entropy", "type": "rng"},
    ],
}


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def test_checked_in_manifest_round_trips_byte_for_byte() -> None:
    data = (ROOT / "image" / "devices.json").read_bytes()
    assert devices.serialize_manifest(devices.parse_manifest(data)) == data


def test_parse_good_manifest() -> None:
    manifest = devices.parse_manifest(encode(GOOD))
    assert manifest.memory == devices.Memory("memory", 128)
    assert manifest.net.mac == "52:54:00:12:34:56"
    assert manifest.block.mib == 16
    assert manifest.rng.name == "entropy"


def _with(devices_list: list[object]) -> bytes:
    return encode({"version": 1, "devices": devices_list})


BASE = GOOD["devices"]
assert isinstance(BASE, list)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "not JSON"),
        (b"\xff", "not JSON"),
        (b" " * (devices.MAX_MANIFEST_BYTES + 1), "larger than"),
        (encode([]), "exactly 'version' and 'devices'"),
        (encode({"version": 2, "devices": BASE}), "unsupported manifest version"),
        (encode({"version": 1, "devices": {}}), "must be a list"),
        (_with([*BASE, {"name": "disk2", "type": "block", "mib": 1}]), "exactly"),
        (_with(BASE[:3]), "exactly"),  # no rng
        (_with([*BASE, {"name": "net2", "type": "net", "mac": "52:54:00:00:00:01"}]), "exactly"),
        (_with([*BASE[:3], {"name": "data", "type": "rng"}]), "unique"),
        (_with([*BASE[:3], {"name": "entropy", "type": "gpu"}]), "unknown type"),
        (_with([*BASE[:3], {"name": "entropy", "type": "rng", "extra": 1}]), "unknown fields"),
        (_with([{"name": "memory", "type": "memory", "mib": 8}, *BASE[1:]]), "mib must be"),
        (_with([{"name": "memory", "type": "memory", "mib": True}, *BASE[1:]]), "mib must be"),
        (_with([BASE[0], {"name": "service", "type": "net", "mac": "53:54:00:12:34:56"}, *BASE[2:]]), "unicast"),
        (_with([BASE[0], {"name": "service", "type": "net", "mac": "52-54-00-12-34-56"}, *BASE[2:]]), "mac"),
        (_with([{"name": "Bad Name", "type": "rng"}, *BASE[:3]]), "bad device name"),
        (_with(["rng", *BASE]), "must be an object"),
    ],
)
def test_parse_refuses(data: bytes, message: str) -> None:
    with pytest.raises(devices.ManifestError, match=message):
        devices.parse_manifest(data)


def fake_machine(
    root: Path,
    *,
    memory_kib: int = 121892,
    virtio: tuple[int, ...] = (1, 2, 4),
    interfaces: tuple[tuple[str, str], ...] = (("eth0", "52:54:00:12:34:56"),),
    disks: tuple[tuple[str, int], ...] = (("vda", 32768),),
    rngs: str | None = "virtio_rng.0",
) -> Path:
    """A /sys and /proc with just the files `survey` reads, shaped as the guest kernel shapes them."""
    (root / "proc").mkdir(parents=True)
    (root / "proc" / "meminfo").write_text(f"MemTotal:       {memory_kib} kB\nMemFree:        1000 kB\n")
    cmdline = "console=ttyS0 ip=10.0.0.2::10.0.0.1:255.255.255.0 quiet pinata.variant=smoke\n"
    (root / "proc" / "cmdline").write_text(cmdline)
    for index, number in enumerate(virtio):
        device = root / "sys" / "bus" / "virtio" / "devices" / f"virtio{index}"
        device.mkdir(parents=True)
        (device / "device").write_text(f"0x{number:04x}\n")
    net = root / "sys" / "class" / "net"
    (net / "lo").mkdir(parents=True)
    (net / "lo" / "address").write_text("00:00:00:00:00:00\n")
    for name, mac in interfaces:
        (net / name).mkdir()
        (net / name / "address").write_text(mac + "\n")
    (root / "sys" / "block").mkdir(parents=True)
    for name, sectors in disks:
        (root / "sys" / "block" / name).mkdir()
        (root / "sys" / "block" / name / "size").write_text(f"{sectors}\n")
    hw_random = root / "sys" / "class" / "misc" / "hw_random"
    hw_random.mkdir(parents=True)
    if rngs is not None:
        (hw_random / "rng_available").write_text(rngs + "\n")
    return root


def manifest() -> devices.DeviceManifest:
    return devices.parse_manifest(encode(GOOD))


def test_the_declared_machine_passes(tmp_path: Path) -> None:
    found = devices.survey(fake_machine(tmp_path))
    assert found.virtio == ("net", "block", "rng")
    assert found.interfaces == (("eth0", "52:54:00:12:34:56"),)
    assert devices.compare(manifest(), found) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"memory_kib": 110000}, "memory"),
        ({"memory_kib": 200000}, "memory"),
        ({"virtio": (1, 2)}, "virtio devices"),
        ({"virtio": (1, 2, 4, 2), "disks": (("vda", 32768), ("vdb", 32768))}, "block: declared 1 disk"),
        ({"virtio": (1, 2, 4, 5)}, "virtio devices"),  # a balloon
        ({"interfaces": ()}, "network: declared 1 interface"),
        ({"interfaces": (("eth0", "52:54:00:12:34:57"),)}, "declared mac"),
        ({"disks": (("vda", 1024),)}, "declared 16 MiB"),
        ({"rngs": None}, "rng"),
        ({"rngs": "virtio_rng.0 intel-rng"}, "rng"),
    ],
)
def test_a_different_machine_is_refused(tmp_path: Path, change: dict[str, object], message: str) -> None:
    found = devices.survey(fake_machine(tmp_path, **change))  # type: ignore[arg-type]
    problems = devices.compare(manifest(), found)
    assert any(message in problem for problem in problems), problems
