"""The import contracts (.importlinter) cover the whole project: a new top-level package has to take its place
in the layers, or `lint-imports` would say nothing about it."""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _contracts() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter")
    return parser


def _names(value: str) -> list[str]:
    return [name for line in value.splitlines() for name in line.replace("|", " ").split() if name]


def test_every_package_is_a_root_and_has_a_layer() -> None:
    shipped = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    contracts = _contracts()
    roots = set(_names(contracts["importlinter"]["root_packages"]))
    layers = set(_names(contracts["importlinter:contract:layers"]["layers"]))
    assert shipped | {"tests"} == roots
    assert roots == layers


def test_the_cores_named_by_the_sans_io_contract_are_the_protocol_packages() -> None:
    sans_io = _contracts()["importlinter:contract:sans-io-cores"]
    assert set(_names(sans_io["source_modules"])) == {"netstack", "tls", "outcomes"}
    assert {"asyncio", "socket", "time", "os"} <= set(_names(sans_io["forbidden_modules"]))
