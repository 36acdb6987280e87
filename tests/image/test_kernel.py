"""The kernels' configurations are exactly the intended ones, the cache key follows every input, and what
is built is a vmlinux that QEMU can boot.

Two variants come from one recipe: `microvm` (the image's, no PCI) and `pci` (the libvirt domain's, the
same plus PCI). `test_built_config_is_exactly_the_recorded_one` builds a variant when it is not cached
(minutes: the cache-miss path, which is what a fresh CI machine runs once) and compares every CONFIG_ line
with the reviewed, checked-in image/kernel-VARIANT.enabled.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from image import kernel

ROOT = Path(__file__).resolve().parents[2]


def _recorded(variant: str) -> set[str]:
    return {line for line in kernel.VARIANTS[variant].enabled.read_text().splitlines() if line.startswith("CONFIG_")}


def test_fragments_demand_the_design() -> None:
    microvm = set(kernel.fragment_lines(kernel.VARIANTS[kernel.MICROVM].fragments))
    for option in ("SERIAL_8250_CONSOLE", "BLK_DEV_INITRD", "DEVTMPFS", "PROC_FS", "SYSFS", "PACKET", "UNIX",
                   "VIRTIO_MMIO", "VIRTIO_NET", "VIRTIO_BLK", "HW_RANDOM_VIRTIO", "FUTEX", "EPOLL",
                   "EVENTFD", "TIMERFD", "BINFMT_SCRIPT", "PVH", "X86_MPPARSE"):
        assert f"CONFIG_{option}=y" in microvm, option
    for option in ("INET", "MODULES", "PCI"):
        assert f"# CONFIG_{option} is not set" in microvm, option
    pci = set(kernel.fragment_lines(kernel.VARIANTS[kernel.PCI].fragments))
    assert {"CONFIG_PCI=y", "CONFIG_VIRTIO_PCI=y", "CONFIG_VIRTIO_MMIO=y", "# CONFIG_INET is not set"} <= pci
    assert "# CONFIG_PCI is not set" not in pci  # the pci fragment, merged later, overrides the microvm one's line


def test_a_later_fragment_overrides_an_earlier_one(tmp_path: Path) -> None:
    base, extra = tmp_path / "base", tmp_path / "extra"
    base.write_text("CONFIG_A=y\n# CONFIG_B is not set\n# a comment\nCONFIG_C=y\n")
    extra.write_text("CONFIG_B=y\n# CONFIG_C is not set\nCONFIG_D=y\n")
    assert kernel.fragment_lines([base]) == ["CONFIG_A=y", "# CONFIG_B is not set", "CONFIG_C=y"]
    assert kernel.fragment_lines([base, extra]) == ["CONFIG_A=y", "CONFIG_B=y", "# CONFIG_C is not set", "CONFIG_D=y"]


def test_config_problems_finds_dropped_and_forbidden_options(tmp_path: Path) -> None:
    fragment = tmp_path / "fragment"
    fragment.write_text("CONFIG_A=y\n# CONFIG_B is not set\n# a comment\n")
    assert kernel.config_problems("CONFIG_A=y\n# CONFIG_B is not set\n", [fragment]) == []
    assert kernel.config_problems("# CONFIG_B is not set\n", [fragment]) == [
        "fragment asks for 'CONFIG_A=y' but the built config lacks it"]
    problems = kernel.config_problems("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_INET=y\nCONFIG_MODULES=y\n",
                                      [fragment])
    assert problems == ["CONFIG_INET is enabled", "CONFIG_MODULES is enabled"]
    extra = tmp_path / "extra"
    extra.write_text("CONFIG_B=y\n")
    assert kernel.config_problems("CONFIG_A=y\n# CONFIG_B is not set\n", [fragment, extra]) == [
        "fragment asks for 'CONFIG_B=y' but the built config lacks it"]


def test_each_variant_has_its_own_key() -> None:
    assert kernel.cache_key(kernel.MICROVM) != kernel.cache_key(kernel.PCI)
    with pytest.raises(kernel.KernelError, match="unknown kernel variant"):
        kernel.cache_key("bzimage")


@pytest.mark.parametrize("variant", sorted(kernel.VARIANTS))
def test_cache_key_covers_fragments_and_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variant: str) -> None:
    key = kernel.cache_key(variant)
    assert key == kernel.cache_key(variant)
    spec = kernel.VARIANTS[variant]
    for index, fragment in enumerate(spec.fragments):  # every fragment of the variant counts
        changed = tmp_path / fragment.name
        changed.write_text(fragment.read_text() + "CONFIG_PRINTK_TIME=y\n")
        fragments = (*spec.fragments[:index], changed, *spec.fragments[index + 1:])
        monkeypatch.setitem(kernel.VARIANTS, variant, kernel.Variant(variant, fragments, spec.enabled))
        assert kernel.cache_key(variant) != key, fragment.name
    monkeypatch.setitem(kernel.VARIANTS, variant, spec)
    monkeypatch.setattr(kernel, "REPRODUCIBLE_ENV", {**kernel.REPRODUCIBLE_ENV, "KBUILD_BUILD_HOST": "elsewhere"})
    assert kernel.cache_key(variant) != key
    monkeypatch.undo()
    monkeypatch.setattr(kernel, "RECIPE", (*kernel.RECIPE, "one more step"))
    assert kernel.cache_key(variant) != key


@pytest.mark.parametrize("variant", sorted(kernel.VARIANTS))
def test_cache_key_covers_each_patch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variant: str) -> None:
    key = kernel.cache_key(variant)
    for index, patch in enumerate(kernel.PATCHES):
        changed = tmp_path / patch.name
        changed.write_bytes(patch.read_bytes() + b"\n")
        monkeypatch.setattr(kernel, "PATCHES", (*kernel.PATCHES[:index], changed, *kernel.PATCHES[index + 1:]))
        assert kernel.cache_key(variant) != key, patch.name
        monkeypatch.undo()
    monkeypatch.setattr(kernel, "PATCHES", ())
    assert kernel.cache_key(variant) != key  # so does their presence


def _tree_and_patch(tmp_path: Path, old: str, new: str) -> tuple[Path, Path]:
    """A source tree with one file, and a unified diff (as `diff -u` writes it) from `old` to `new`."""
    tree = tmp_path / "linux"
    (tree / "mm").mkdir(parents=True)
    (tree / "mm" / "init.c").write_text(old)
    (tmp_path / "b" / "mm").mkdir(parents=True)
    (tmp_path / "b" / "mm" / "init.c").write_text(new)
    (tmp_path / "a" / "mm").mkdir(parents=True)
    (tmp_path / "a" / "mm" / "init.c").write_text(old)
    diff = subprocess.run(["diff", "-u", "a/mm/init.c", "b/mm/init.c"], cwd=tmp_path, capture_output=True,
                          text=True, check=False).stdout
    patch = tmp_path / "change.patch"
    patch.write_text("Why this change: prose before the diff, as our patches carry.\n\n" + diff)
    return tree, patch


SOURCE = "".join(f"line {n}\n" for n in range(1, 20))


def test_a_patch_applies_to_the_source_it_was_written_for(tmp_path: Path) -> None:
    tree, patch = _tree_and_patch(tmp_path, SOURCE, SOURCE.replace("line 10\n", "line ten\n"))
    kernel.apply_patches(tree, (patch,))
    assert (tree / "mm" / "init.c").read_text() == SOURCE.replace("line 10\n", "line ten\n")
    assert sorted(path.name for path in (tree / "mm").iterdir()) == ["init.c"]  # no .orig or .rej left


def test_a_patch_whose_context_changed_fails_the_build(tmp_path: Path) -> None:
    tree, patch = _tree_and_patch(tmp_path, SOURCE, SOURCE.replace("line 10\n", "line ten\n"))
    (tree / "mm" / "init.c").write_text(SOURCE.replace("line 8\n", "line eight\n"))  # another release's file
    with pytest.raises(kernel.KernelError, match=r"change\.patch does not apply"):
        kernel.apply_patches(tree, (patch,))  # patch's default fuzz of 2 would have applied it


def test_a_patch_is_not_applied_twice(tmp_path: Path) -> None:
    tree, patch = _tree_and_patch(tmp_path, SOURCE, SOURCE.replace("line 10\n", "line ten\n"))
    kernel.apply_patches(tree, (patch,))
    with pytest.raises(kernel.KernelError, match=r"change\.patch does not apply"):
        kernel.apply_patches(tree, (patch,))
    assert (tree / "mm" / "init.c").read_text() == SOURCE.replace("line 10\n", "line ten\n")


def test_the_patches_are_in_the_image_directory_and_explain_themselves() -> None:
    for patch in kernel.PATCHES:
        assert patch.parent == kernel.IMAGE_DIR
        assert patch.suffix == ".patch"
        prose = patch.read_text().split("\n--- a/", 1)[0]
        assert "Why" in prose, patch.name  # a reader learns why before the diff
        assert len(prose) > 200, patch.name


def test_the_pci_fragment_does_not_change_the_microvm_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    microvm, pci = kernel.cache_key(kernel.MICROVM), kernel.cache_key(kernel.PCI)
    spec = kernel.VARIANTS[kernel.PCI]
    changed = tmp_path / "kernel-pci.config"
    changed.write_text(spec.fragments[-1].read_text() + "CONFIG_PCI_MSI=y\n")
    monkeypatch.setitem(kernel.VARIANTS, kernel.PCI, kernel.Variant(kernel.PCI, (*spec.fragments[:-1], changed),
                                                                      spec.enabled))
    assert kernel.cache_key(kernel.PCI) != pci
    assert kernel.cache_key(kernel.MICROVM) == microvm


@pytest.mark.parametrize("tool", kernel.TOOLCHAIN)
def test_cache_key_covers_each_build_tool_version(monkeypatch: pytest.MonkeyPatch, tool: str) -> None:
    key = kernel.cache_key(kernel.MICROVM)
    real = kernel.tool_version
    monkeypatch.setattr(kernel, "tool_version", lambda name: real(name) + (" (patched)" if name == tool else ""))
    assert kernel.cache_key(kernel.MICROVM) != key


def test_the_toolchain_is_what_makes_and_strips_a_vmlinux() -> None:
    assert "objcopy" in kernel.TOOLCHAIN  # it writes the shipped file
    assert "lz4" not in kernel.TOOLCHAIN  # no bzImage, so no payload compressor in the build


def test_tool_version_is_the_first_line_or_says_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert kernel.tool_version("make").startswith("GNU Make ")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert kernel.tool_version("make").startswith("GNU Make ")  # asked once per process
    kernel.tool_version.cache_clear()  # as _ensure_build_tools does after installing
    try:
        assert kernel.tool_version("make") == "make missing"
    finally:
        kernel.tool_version.cache_clear()  # later tests must not see the answer from the emptied PATH


@pytest.mark.parametrize("variant", sorted(kernel.VARIANTS))
def test_recorded_config_has_no_forbidden_option(variant: str) -> None:
    recorded = _recorded(variant)
    wanted = kernel.fragment_lines(kernel.VARIANTS[variant].fragments)
    assert [line for line in wanted if line.endswith("=y") and line not in recorded] == []
    enabled = {line.split("=")[0] for line in recorded}
    for name in ("CONFIG_INET", "CONFIG_IPV6", "CONFIG_MODULES", "CONFIG_ACPI", "CONFIG_VT", "CONFIG_INPUT",
                 "CONFIG_NETFILTER", "CONFIG_EXT4_FS", "CONFIG_SWAP"):
        assert name not in enabled, name


def test_the_variants_differ_only_by_pci() -> None:
    """The pci kernel is the microvm kernel plus PCI: nothing the microvm kernel has is missing from it, and
    everything it adds is PCI or comes with it (the PCI network-card vendor menus, whose drivers are all off,
    and the AMD northbridge glue, which Kconfig turns on for any x86 kernel with PCI)."""
    microvm, pci = _recorded(kernel.MICROVM), _recorded(kernel.PCI)
    assert microvm < pci
    assert not any(line.startswith(("CONFIG_PCI=", "CONFIG_VIRTIO_PCI")) for line in microvm)
    added = sorted(pci - microvm)
    assert {"CONFIG_PCI=y", "CONFIG_VIRTIO_PCI=y"} <= set(added)
    assert [line for line in added if "PCI" not in line and not line.startswith("CONFIG_NET_VENDOR_")] == [
        "CONFIG_AMD_NB=y"]


def _elf_with_notes(*notes: tuple[bytes, int]) -> bytes:
    """A minimal ELF64 little-endian file: the header, one PT_NOTE program header, the notes."""
    body = b"".join(struct.pack("<III", len(name) + 1, 4, kind) + (name + b"\0").ljust((len(name) + 4) // 4 * 4, b"\0")
                    + b"\1\0\0\0" for name, kind in notes)
    # e_type EXEC, e_machine x86-64, version, entry, phoff 64, shoff, flags, ehsize 64, phentsize 56, phnum 1
    header = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 64, 0, 0, 64, 56, 1,
                                                               0, 0, 0)
    program = struct.pack("<IIQQQQQQ", 4, 4, 120, 0, 0, len(body), len(body), 4)  # PT_NOTE at offset 64 + 56
    return header + program + body


def test_elf_notes_reads_the_note_segments() -> None:
    image = _elf_with_notes((b"GNU", 3), (b"Xen", 18))
    assert kernel.elf_notes(image) == [(b"GNU", 3), (b"Xen", 18)]
    assert kernel.PVH_NOTE in kernel.elf_notes(image)
    assert kernel.PVH_NOTE not in kernel.elf_notes(_elf_with_notes((b"Xen", 5)))
    with pytest.raises(kernel.KernelError, match="ELF64"):
        kernel.elf_notes(b"MZ" + bytes(100))  # e.g. a bzImage: QEMU would not boot it as PVH
    with pytest.raises(kernel.KernelError, match="truncated"):
        kernel.elf_notes(image[:130])


@pytest.mark.qemu
@pytest.mark.parametrize("variant", sorted(kernel.VARIANTS))
def test_built_config_is_exactly_the_recorded_one(variant: str) -> None:
    built = kernel.ensure_kernel(variant)
    config = built.config.read_text()
    assert kernel.config_problems(config, kernel.VARIANTS[variant].fragments) == []
    recorded = [line for line in kernel.VARIANTS[variant].enabled.read_text().splitlines()
                if line.startswith("CONFIG_")]
    assert kernel.enabled_options(config) == recorded


@pytest.mark.qemu
@pytest.mark.parametrize("variant", sorted(kernel.VARIANTS))
def test_built_kernel_is_a_stripped_vmlinux_with_the_pvh_entry(variant: str) -> None:
    """Checked with binutils' readelf too, independently of kernel.elf_notes."""
    vmlinux = kernel.ensure_kernel(variant).vmlinux
    assert kernel.PVH_NOTE in kernel.elf_notes(vmlinux.read_bytes())
    notes = subprocess.run(["readelf", "--notes", "--wide", str(vmlinux)], capture_output=True, text=True, check=True)
    assert any(line.split()[:1] == ["Xen"] and "0x00000012" in line for line in notes.stdout.splitlines()), notes.stdout
    sections = subprocess.run(["readelf", "--section-headers", "--wide", str(vmlinux)], capture_output=True, text=True,
                              check=True).stdout
    assert ".notes" in sections
    for removed in (".symtab", ".strtab", ".comment", ".debug_info"):  # objcopy -R .comment -S
        assert f" {removed} " not in sections, removed
