"""Session fixtures for the image tests: the smoke image is built once and shared by every boot test."""

from __future__ import annotations

import pytest

from image import build


@pytest.fixture(scope="session")
def smoke_image(tmp_path_factory: pytest.TempPathFactory) -> build.Image:
    return build.build("smoke", out=tmp_path_factory.mktemp("image"))
