"""The locks, the manifest and the installed venv must tell the same story (DESIGN.md, rule 7)."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

from image import manifest, venv
from image.manifest import read_lock

ROOT = Path(__file__).resolve().parents[2]


def manifest_section(title_prefix: str) -> list[str]:
    lines = (ROOT / "manifest.txt").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"[{title_prefix}"))
    section = []
    for line in lines[start + 1 :]:
        if not line or line.startswith("["):
            break
        section.append(line)
    return section


def test_manifest_is_up_to_date() -> None:
    assert (ROOT / "manifest.txt").read_text() == manifest.render()


def test_manifest_lists_every_runtime_pin_with_its_hash() -> None:
    pins = read_lock(ROOT / "requirements.lock")
    assert {p.name for p in pins} >= {"cryptography", "pyasn1", "pyasn1-modules"}
    assert "coincurve" not in {p.name for p in pins}  # a test-only reference since the vault signs with OpenSSL
    listed = {tuple(line.split()[:3]) for line in manifest_section("python-packages")}
    assert listed == {(p.name, p.version, f"sha256:{p.sha256}") for p in pins}


def test_manifest_lists_every_test_pin_and_the_image_does_not_serve_them() -> None:
    runtime = {p.name for p in read_lock(ROOT / "requirements.lock")}
    dev = read_lock(ROOT / "requirements-dev.lock")
    listed = {tuple(line.split()[:3]) for line in manifest_section("test-packages")}
    assert listed == {(p.name, p.version, f"sha256:{p.sha256}") for p in dev if p.name not in runtime}
    assert {"pytest", "btclib", "coincurve"} <= {name for name, _, _ in listed}
    from image import build

    served = build.served_manifest().decode()
    assert "[test-packages" not in served
    assert "pytest " not in served
    assert "[python-packages" in served


def test_dev_lock_pins_the_runtime_versions() -> None:
    runtime = {p.name: p for p in read_lock(ROOT / "requirements.lock")}
    dev = {p.name: p for p in read_lock(ROOT / "requirements-dev.lock")}
    for name, pin in runtime.items():
        assert dev[name] == pin, f"{name} differs between the runtime and development locks"
    assert {"pytest", "hypothesis", "scapy", "ruff", "mypy"} <= dev.keys()


def test_installed_versions_match_the_lock() -> None:
    for pin in read_lock(ROOT / "requirements-dev.lock"):
        assert metadata.version(pin.name) == pin.version, pin.name


def test_a_hand_edited_lock_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "requirements.lock").read_text()
    edited = tmp_path / "edited.lock"
    edited.write_text(text + "evilpackage==1.0\n")
    with pytest.raises(ValueError, match="well-formed pins"):
        read_lock(edited)


def test_unreachable_registry_gives_one_clear_line(tmp_path: Path) -> None:
    lock = tmp_path / "one.lock"
    lock.write_text("# six-1.17.0-py2.py3-none-any.whl\nsix==1.17.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    unreachable = {
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",  # discard port on loopback: refused at once
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_FIND_LINKS": "",
        "PIP_CONFIG_FILE": "/dev/null",
        "PIP_RETRIES": "0",
        "PIP_NO_CACHE_DIR": "1",
    }
    message = venv.pip_install(Path(sys.executable), lock, ["--target", str(tmp_path / "t")], unreachable)
    assert message == venv.UNREACHABLE
    assert "\n" not in message
