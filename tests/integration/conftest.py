"""One target per session: the image under QEMU by default, the host process with PINATA_TARGET=host."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests import netns
from tests.integration.lab import ROOT, Lab, assert_no_secret, lab

ARTEFACTS = ROOT / "build" / "integration"


def target_kind() -> str:
    return os.environ.get("PINATA_TARGET", "image")


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if not netns.available():
        pytest.skip("needs root, network namespaces and /dev/net/tun")
    with lab(target_kind(), tmp_path_factory.mktemp("integration"), ARTEFACTS) as running:
        yield running
        assert running.alive(), "the target died during the session:\n" + running.console.text()[-3000:]
        assert_no_secret(running.console.text().encode(), "the target's console")
