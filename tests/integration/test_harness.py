"""The suite's own machinery, without a VM: the test-image overlay, the secret guard and the soak verdict."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from image import cpio
from tests.integration import testimage
from tests.integration.lab import SECRET_FORMS, SecretLeakedError, assert_no_secret
from tests.integration.soak import Sample, verdict


def test_overlay_is_one_executable_init_that_compiles() -> None:
    entries = cpio.parse(testimage.overlay(("idle_timeout=3",)))
    assert [e.path for e in entries] == ["init"]
    init = entries[0]
    assert stat.S_ISREG(init.mode)
    assert init.mode & 0o111
    first, _, body = init.data.partition(b"\n")
    assert first.startswith(b"#!/usr/bin/python3")
    compile(body, "init", "exec")
    assert b"'--limit', 'idle_timeout=3'" in body
    assert b"--test-pki" in body


def test_test_initramfs_keeps_every_production_byte(tmp_path: Path) -> None:
    production = tmp_path / "production.cpio"
    production.write_bytes(cpio.serialize([cpio.regular("init", b"#!/bin/true\n", 0o755)]) + b"\0\0")
    written = testimage.write_test_initramfs(production, tmp_path / "test.cpio", ())
    data = written.read_bytes()
    assert data.startswith(production.read_bytes())
    assert len(production.read_bytes()) % 4 == 2  # the overlay still starts 4-byte aligned
    assert data[len(data) - len(testimage.overlay(())) :] == testimage.overlay(())
    assert (len(data) - len(testimage.overlay(()))) % 4 == 0


@pytest.mark.parametrize("form", SECRET_FORMS)
def test_the_secret_guard_catches_every_form(form: bytes) -> None:
    assert_no_secret(b"nothing to see", "a clean answer")
    with pytest.raises(SecretLeakedError):
        assert_no_secret(b"\x17\x03\x03" + form + b"\n", "a leaky answer")


def _samples(rss: list[int], ledger: list[int], region: int = 1000) -> list[Sample]:
    pairs = enumerate(zip(rss, ledger, strict=True))
    return [Sample(float(i), r, 10 * (i + 1), 0, 0, 1, b, region) for i, (r, b) in pairs]


def test_soak_verdict() -> None:
    assert verdict(_samples([100, 110, 108, 109], [10, 20, 30, 40])) == []
    assert any("memory grew" in p for p in verdict(_samples([100, 100, 150, 200], [10, 20, 30, 40])))
    assert any("over its size" in p for p in verdict(_samples([100, 100, 100, 100], [10, 20, 30, 2000])))
    flat = [Sample(float(i), 100, 5, 0, 0, 1, 10, 1000) for i in range(4)]
    assert verdict(flat) == ["no traffic was recorded"]
