"""The kernel's configuration is exactly the intended one, and the cache key follows every input.

`test_built_config_is_exactly_the_recorded_one` builds the kernel when it is not cached (minutes: the
cache-miss path, which is what a fresh CI machine runs once) and compares every CONFIG_ line with the
reviewed, checked-in image/kernel.enabled.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from image import kernel

ROOT = Path(__file__).resolve().parents[2]


def test_fragment_demands_the_design() -> None:
    lines = set(kernel.fragment_lines())
    for option in ("SERIAL_8250_CONSOLE", "BLK_DEV_INITRD", "DEVTMPFS", "PROC_FS", "SYSFS", "PACKET", "UNIX",
                   "VIRTIO_MMIO", "VIRTIO_PCI", "VIRTIO_NET", "VIRTIO_BLK", "HW_RANDOM_VIRTIO", "FUTEX", "EPOLL",
                   "EVENTFD", "TIMERFD", "BINFMT_SCRIPT", "PVH", "X86_MPPARSE", "KERNEL_LZ4"):
        assert f"CONFIG_{option}=y" in lines, option
    for option in ("INET", "MODULES"):
        assert f"# CONFIG_{option} is not set" in lines, option


def test_config_problems_finds_dropped_and_forbidden_options(tmp_path: Path) -> None:
    fragment = tmp_path / "fragment"
    fragment.write_text("CONFIG_A=y\n# CONFIG_B is not set\n# a comment\n")
    assert kernel.config_problems("CONFIG_A=y\n# CONFIG_B is not set\n", fragment) == []
    assert kernel.config_problems("# CONFIG_B is not set\n", fragment) == [
        "fragment asks for 'CONFIG_A=y' but the built config lacks it"]
    problems = kernel.config_problems("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_INET=y\nCONFIG_MODULES=y\n", fragment)
    assert problems == ["CONFIG_INET is enabled", "CONFIG_MODULES is enabled"]


def test_cache_key_covers_fragment_and_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = kernel.cache_key()
    assert key == kernel.cache_key()
    changed = tmp_path / "kernel.config"
    changed.write_text(kernel.FRAGMENT.read_text() + "CONFIG_PRINTK_TIME=y\n")
    monkeypatch.setattr(kernel, "FRAGMENT", changed)
    assert kernel.cache_key() != key
    monkeypatch.setattr(kernel, "FRAGMENT", ROOT / "image" / "kernel.config")
    monkeypatch.setattr(kernel, "REPRODUCIBLE_ENV", {**kernel.REPRODUCIBLE_ENV, "KBUILD_BUILD_HOST": "elsewhere"})
    assert kernel.cache_key() != key


@pytest.mark.parametrize("tool", ["gcc", "ld", "as", "make", "flex", "bison", "bc", "lz4"])
def test_cache_key_covers_each_build_tool_version(monkeypatch: pytest.MonkeyPatch, tool: str) -> None:
    key = kernel.cache_key()
    real = kernel.tool_version
    monkeypatch.setattr(kernel, "tool_version", lambda name: real(name) + (" (patched)" if name == tool else ""))
    assert kernel.cache_key() != key


def test_tool_version_is_the_first_line_or_says_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert kernel.tool_version("make").startswith("GNU Make ")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert kernel.tool_version("make").startswith("GNU Make ")  # asked once per process
    kernel.tool_version.cache_clear()  # as _ensure_build_tools does after installing
    try:
        assert kernel.tool_version("make") == "make missing"
    finally:
        kernel.tool_version.cache_clear()  # later tests must not see the answer from the emptied PATH


def test_recorded_config_has_no_forbidden_option() -> None:
    recorded = kernel.ENABLED.read_text()
    assert [line for line in kernel.fragment_lines() if line.endswith("=y") and line not in recorded.splitlines()] == []
    enabled = {line.split("=")[0] for line in recorded.splitlines() if line.startswith("CONFIG_")}
    for name in ("CONFIG_INET", "CONFIG_IPV6", "CONFIG_MODULES", "CONFIG_ACPI", "CONFIG_VT", "CONFIG_INPUT",
                 "CONFIG_NETFILTER", "CONFIG_EXT4_FS", "CONFIG_SWAP"):
        assert name not in enabled, name


@pytest.mark.qemu
def test_built_config_is_exactly_the_recorded_one() -> None:
    built = kernel.ensure_kernel()
    config = built.config.read_text()
    assert kernel.config_problems(config) == []
    recorded = [line for line in kernel.ENABLED.read_text().splitlines() if line.startswith("CONFIG_")]
    assert kernel.enabled_options(config) == recorded
