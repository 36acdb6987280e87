"""The Debian package lock: strict parsing, and a downloaded package is used only if its hash matches."""

from __future__ import annotations

from pathlib import Path

import pytest

from image import debian


def test_checked_in_lock_pins_every_package() -> None:
    pins = debian.read_lock()
    assert set(pins) == set(debian.ALL_PACKAGES)
    assert pins["python3.11-minimal"].version.startswith("3.11.")
    assert pins["linux-source-6.1"].arch == "all"
    assert pins["zlib1g"].filename.startswith("zlib1g_1%3a")  # epochs are escaped as apt-get download does


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("libc6 2.36 amd64 sha256:abc", "malformed"),
        ("libc6 2.36 i386 sha256:" + "0" * 64, "malformed"),
        ("libc6 2.36 amd64 " + "0" * 64, "malformed"),
    ],
)
def test_malformed_lines_are_refused(tmp_path: Path, line: str, message: str) -> None:
    lock = tmp_path / "lock"
    lock.write_text(line + "\n")
    with pytest.raises(debian.DebianError, match=message):
        debian.read_lock(lock)


def test_incomplete_or_duplicated_lock_is_refused(tmp_path: Path) -> None:
    lines = debian.LOCK.read_text().splitlines()
    lock = tmp_path / "lock"
    lock.write_text("\n".join(line for line in lines if not line.startswith("libffi8")) + "\n")
    with pytest.raises(debian.DebianError, match="missing"):
        debian.read_lock(lock)
    duplicate = next(line for line in lines if line.startswith("libffi8"))
    lock.write_text("\n".join([*lines, duplicate]) + "\n")
    with pytest.raises(debian.DebianError, match="pinned twice"):
        debian.read_lock(lock)


def test_a_package_with_the_wrong_hash_is_refused_and_removed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(debian, "DEB_CACHE", tmp_path)
    pin = debian.DebPin("libffi8", "3.4.4-1", "amd64", "0" * 64)
    (tmp_path / pin.filename).write_bytes(b"not the package")
    with pytest.raises(debian.DebianError, match="the lock says"):
        debian.fetch(pin)
    assert not (tmp_path / pin.filename).exists()


def test_a_package_with_the_right_hash_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(debian, "DEB_CACHE", tmp_path)
    data = b"pretend deb"
    import hashlib

    pin = debian.DebPin("libffi8", "3.4.4-1", "amd64", hashlib.sha256(data).hexdigest())
    (tmp_path / pin.filename).write_bytes(data)
    assert debian.fetch(pin) == tmp_path / pin.filename
