"""Same inputs, same bytes. The initramfs is built twice here, in different directories (so no build
path can leak into it); each kernel variant is compared with the hash recorded in image/outputs.txt by an
earlier build, which on a fresh machine (empty cache) means a full rebuild compared with the published hash."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from image import build, kernel


@pytest.mark.qemu
def test_initramfs_is_byte_identical_across_builds(tmp_path: Path) -> None:
    first = build.build_initramfs("smoke", tmp_path / "one")
    second = build.build_initramfs("smoke", tmp_path / "elsewhere" / "two")
    assert first.read_bytes() == second.read_bytes()


def test_build_skips_an_up_to_date_initramfs_and_rebuilds_a_stale_one(tmp_path: Path) -> None:
    first = build.build("floor", out=tmp_path)
    stamp = tmp_path / "initramfs-floor.inputs"
    assert stamp.read_text().splitlines() == [build.initramfs_inputs("floor"), build.boot_form_key()]
    first.initramfs.write_bytes(b"stale")
    assert build.build("floor", out=tmp_path).initramfs.read_bytes() == b"stale"  # up to date by its stamp
    stamp.write_text("0" * 64 + "\n")
    assert build.build("floor", out=tmp_path).initramfs.read_bytes() != b"stale"  # inputs changed: rebuilt
    assert stamp.read_text().splitlines()[0] == build.initramfs_inputs("floor")


def test_another_compressor_makes_the_boot_form_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = build.build("floor", out=tmp_path)
    first.initramfs.write_bytes(b"made by another lz4")
    monkeypatch.setattr(build, "lz4_version", lambda: "v9.9.9")
    again = build.build("floor", out=tmp_path)
    assert again.initramfs.read_bytes()[:4] == build.LZ4_LEGACY_MAGIC
    assert (tmp_path / "initramfs-floor.inputs").read_text().splitlines()[1].endswith("v9.9.9")


def test_floor_initramfs_is_byte_identical(tmp_path: Path) -> None:
    assert build.build_initramfs("floor", tmp_path / "a").read_bytes() == build.build_initramfs(
        "floor", tmp_path / "b").read_bytes()


def _recorded() -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in build.OUTPUTS.read_text().splitlines()
            if line and not line.startswith("#")}


@pytest.mark.qemu
def test_initramfs_matches_the_recorded_build_when_the_sources_do(tmp_path: Path) -> None:
    _name, variant, digest, inputs = _recorded()["initramfs.cpio"]
    if inputs != f"inputs-sha256:{build.initramfs_inputs(variant)}":
        pytest.skip("the initramfs's inputs (e.g. the project's sources) changed since outputs.txt was recorded")
    built = build.build_initramfs(variant, tmp_path)
    assert f"sha256:{hashlib.sha256(built.read_bytes()).hexdigest()}" == digest
    _name, _variant, boot_digest, compressor = _recorded()["initramfs.cpio.lz4"]
    if compressor != f"compressor:{build.lz4_version()}":
        pytest.skip(f"the recorded boot form was made by lz4 {compressor}, this machine has {build.lz4_version()}")
    assert f"sha256:{hashlib.sha256(build.boot_form(built).read_bytes()).hexdigest()}" == boot_digest


def test_every_kernel_variant_is_recorded() -> None:
    assert [name for name in _recorded() if name.startswith("vmlinux")] == [
        build.kernel_file(variant) for variant in kernel.VARIANTS]


@pytest.mark.qemu
@pytest.mark.parametrize("variant", sorted(kernel.VARIANTS))
def test_kernel_matches_the_recorded_build(variant: str) -> None:
    _name, _version, digest, key = _recorded()[build.kernel_file(variant)]
    if key != f"kernel-key:{kernel.cache_key(variant)}":
        pytest.skip(f"the recorded {variant} kernel was built from other inputs (or another toolchain); run --record")
    built = kernel.ensure_kernel(variant)
    assert f"sha256:{hashlib.sha256(built.vmlinux.read_bytes()).hexdigest()}" == digest


def test_the_boot_form_is_the_archive_in_the_lz4_legacy_frame_the_kernel_reads(tmp_path: Path) -> None:
    archive = tmp_path / "initramfs.cpio"
    archive.write_bytes(bytes(range(256)) * 4096 + b"tail")
    booted = build.boot_form(archive)
    assert booted == tmp_path / "initramfs.cpio.lz4"
    assert booted.read_bytes()[:4] == build.LZ4_LEGACY_MAGIC  # the kernel's unlz4 takes no other frame
    assert len(booted.read_bytes()) < len(archive.read_bytes()) // 10
    restored = subprocess.run(["lz4", "-d", "-c", str(booted)], capture_output=True, check=True).stdout
    assert restored == archive.read_bytes()
    first = booted.read_bytes()
    assert build.boot_form(archive).read_bytes() == first  # same archive, same bytes


def test_build_writes_the_boot_form_and_remakes_it_when_it_is_missing(tmp_path: Path) -> None:
    image = build.build("floor", out=tmp_path)
    assert image.initramfs == tmp_path / "initramfs-floor.cpio.lz4" == build.boot_initramfs_path("floor", tmp_path)
    assert image.archive == tmp_path / "initramfs-floor.cpio"
    restored = subprocess.run(["lz4", "-d", "-c", str(image.initramfs)], capture_output=True, check=True).stdout
    assert restored == image.archive.read_bytes()
    image.initramfs.unlink()
    again = build.build("floor", out=tmp_path)
    assert again.initramfs.exists()  # the stamp vouches for both files: one missing is a rebuild
