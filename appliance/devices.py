"""The device manifest (Solo5-style) and the boot-time check that the VM has exactly those devices.

Why declare devices up front: the appliance should run only on the machine it was built for. The host's
runner builds its QEMU command line from this manifest alone, and PID 1 compares what the kernel found
with it; an extra disk, a missing entropy source or a second network card means someone (or some
mistake) changed the machine, and the appliance refuses to run rather than guess.

The manifest is JSON (`image/devices.json`, copied into the image as /etc/pinata/devices.json):

    {"version": 1, "devices": [
        {"name": "memory", "type": "memory", "mib": 128},
        {"name": "service", "type": "net", "mac": "52:54:00:12:34:56"},
        {"name": "data", "type": "block", "mib": 16},
        {"name": "entropy", "type": "rng"}]}

`parse_manifest`/`serialize_manifest` are the codec; `survey` reads what the guest kernel found from
/sys and /proc (any root, so tests can point it at a fake tree); `compare` says what differs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 4096
REQUIRED_COUNTS = {"memory": 1, "net": 1, "block": 1, "rng": 1}
# virtio device IDs (virtio spec 1.2, section 5): what the kernel reports in /sys/bus/virtio/devices/*/device.
VIRTIO_IDS = {1: "net", 2: "block", 4: "rng"}
MIN_MEMORY_MIB = 32
MAX_MEMORY_MIB = 65536
MAX_DISK_MIB = 1 << 20
# The kernel keeps some RAM for itself (its image, reserved regions: 9180 KiB measured at -m 128), so
# MemTotal is below the declared size; more than this shortfall means the VM got less than declared.
MAX_MEMORY_SHORTFALL_KIB = 16 * 1024
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class ManifestError(Exception):
    """The manifest file is malformed or declares an unsupported device set."""


@dataclass(frozen=True)
class Memory:
    """The VM's RAM as declared: the runner gives QEMU this much, and PID 1 checks the kernel's MemTotal against it
    (less the bounded share the kernel keeps)."""

    name: str
    mib: int


@dataclass(frozen=True)
class Net:
    """The one network card: a virtio-net device with this unicast MAC, which PID 1 expects on the only interface."""

    name: str
    mac: str


@dataclass(frozen=True)
class Block:
    """The data disk (wallet key and ledger): the one virtio block device, of exactly this size."""

    name: str
    mib: int


@dataclass(frozen=True)
class Rng:
    """The entropy source: a virtio-rng device, which the kernel must register as its one hardware RNG."""

    name: str


Device = Memory | Net | Block | Rng


@dataclass(frozen=True)
class DeviceManifest:
    """The machine the appliance was built for: exactly one device of each kind (`parse_manifest` refuses any other
    set), so the runner and PID 1 each read a device from its own field instead of searching a list."""

    memory: Memory
    net: Net
    block: Block
    rng: Rng


def _int_field(item: dict[str, object], key: str, low: int, high: int) -> int:
    value = item.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ManifestError(f"device {item.get('name')!r}: {key} must be an integer in [{low}, {high}]")
    return value


def _device(item: object) -> Device:
    if not isinstance(item, dict):
        raise ManifestError("each device must be an object")
    name, kind = item.get("name"), item.get("type")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ManifestError(f"bad device name {name!r}")
    expected_keys = {"memory": {"mib"}, "net": {"mac"}, "block": {"mib"}, "rng": set[str]()}.get(str(kind))
    if expected_keys is None:
        raise ManifestError(f"device {name!r}: unknown type {kind!r}")
    extra = set(item) - {"name", "type"} - expected_keys
    if extra:
        raise ManifestError(f"device {name!r}: unknown fields {sorted(extra)}")
    if kind == "memory":
        return Memory(name, _int_field(item, "mib", MIN_MEMORY_MIB, MAX_MEMORY_MIB))
    if kind == "block":
        return Block(name, _int_field(item, "mib", 1, MAX_DISK_MIB))
    if kind == "net":
        mac = item.get("mac")
        if not isinstance(mac, str) or not _MAC.match(mac) or int(mac[:2], 16) & 1:
            raise ManifestError(f"device {name!r}: mac must be a lower-case unicast address")
        return Net(name, mac)
    return Rng(name)


def parse_manifest(data: bytes) -> DeviceManifest:
    """Integrity (size, JSON) -> parse (typed devices) -> sanity (exactly one of each kind, unique names)."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict) or set(document) != {"version", "devices"}:
        raise ManifestError("manifest must be an object with exactly 'version' and 'devices'")
    if document["version"] != MANIFEST_VERSION:
        raise ManifestError(f"unsupported manifest version {document['version']!r}")
    if not isinstance(document["devices"], list):
        raise ManifestError("'devices' must be a list")
    devices = [_device(item) for item in document["devices"]]
    names = [d.name for d in devices]
    if len(set(names)) != len(names):
        raise ManifestError("device names must be unique")
    by_kind: dict[str, list[Device]] = {kind: [] for kind in REQUIRED_COUNTS}
    for device in devices:
        by_kind[_kind(device)].append(device)
    counts = {kind: len(found) for kind, found in by_kind.items()}
    if counts != REQUIRED_COUNTS:
        raise ManifestError(f"the appliance needs exactly {REQUIRED_COUNTS}, the manifest declares {counts}")
    memory, net, block, rng = (by_kind[k][0] for k in ("memory", "net", "block", "rng"))
    assert isinstance(memory, Memory)
    assert isinstance(net, Net)
    assert isinstance(block, Block)
    assert isinstance(rng, Rng)
    return DeviceManifest(memory, net, block, rng)


def serialize_manifest(manifest: DeviceManifest) -> bytes:
    devices = [
        {"name": manifest.memory.name, "type": "memory", "mib": manifest.memory.mib},
        {"name": manifest.net.name, "type": "net", "mac": manifest.net.mac},
        {"name": manifest.block.name, "type": "block", "mib": manifest.block.mib},
        {"name": manifest.rng.name, "type": "rng"},
    ]
    return (json.dumps({"version": MANIFEST_VERSION, "devices": devices}, indent=2) + "\n").encode()


def _kind(device: Device) -> str:
    return {Memory: "memory", Net: "net", Block: "block", Rng: "rng"}[type(device)]


@dataclass(frozen=True)
class Found:
    """What the guest kernel found. Interfaces and disks are listed by kernel name."""

    memory_kib: int
    virtio: tuple[str, ...]  # one kind per virtio device ("net", "block", "rng", or "id-N" for others)
    interfaces: tuple[tuple[str, str], ...]  # (name, mac) for every non-loopback interface
    disks: tuple[tuple[str, int], ...]  # (name, bytes) for every block device
    rngs: tuple[str, ...]  # hardware RNGs the kernel registered


def _read(path: Path) -> str:
    return path.read_text().strip()


def survey(root: Path = Path("/")) -> Found:
    """Read the devices from sysfs and procfs under `root` (mounted by PID 1)."""
    sys_root, proc = root / "sys", root / "proc"
    memory_kib = 0
    for line in _read(proc / "meminfo").splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    virtio: list[str] = []
    bus = sys_root / "bus" / "virtio" / "devices"
    for device in sorted(bus.iterdir()) if bus.is_dir() else []:
        number = int(_read(device / "device"), 16)
        virtio.append(VIRTIO_IDS.get(number, f"id-{number}"))
    interfaces = []
    for interface in sorted((sys_root / "class" / "net").iterdir()):
        if interface.name != "lo":
            interfaces.append((interface.name, _read(interface / "address")))
    disks = []
    for disk in sorted((sys_root / "block").iterdir()):
        disks.append((disk.name, int(_read(disk / "size")) * 512))
    rng_available = sys_root / "class" / "misc" / "hw_random" / "rng_available"
    rngs = tuple(_read(rng_available).split()) if rng_available.exists() else ()
    return Found(memory_kib, tuple(virtio), tuple(interfaces), tuple(disks), rngs)


def compare(manifest: DeviceManifest, found: Found) -> list[str]:
    """Every difference between the declared and the found device set (empty: the machine is the one declared)."""
    problems = []
    declared_kib = manifest.memory.mib * 1024
    if not declared_kib - MAX_MEMORY_SHORTFALL_KIB <= found.memory_kib <= declared_kib:
        problems.append(f"memory: declared {manifest.memory.mib} MiB, kernel reports {found.memory_kib} KiB")
    wanted = sorted(["net", "block", "rng"])
    if sorted(found.virtio) != wanted:
        problems.append(f"virtio devices: declared {wanted}, found {sorted(found.virtio)}")
    if len(found.interfaces) != 1:
        problems.append(f"network: declared 1 interface, found {[name for name, _ in found.interfaces]}")
    elif found.interfaces[0][1] != manifest.net.mac:
        problems.append(f"network: declared mac {manifest.net.mac}, found {found.interfaces[0][1]}")
    if len(found.disks) != 1:
        problems.append(f"block: declared 1 disk, found {[name for name, _ in found.disks]}")
    elif found.disks[0][1] != manifest.block.mib * 1024 * 1024:
        problems.append(f"block: declared {manifest.block.mib} MiB, found {found.disks[0][1]} bytes")
    if len(found.rngs) != 1:
        problems.append(f"rng: declared 1 hardware rng, found {list(found.rngs)}")
    return problems
