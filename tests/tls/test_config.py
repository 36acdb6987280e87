"""Configuration that fails closed: a client validates the server's chain unless told not to by name."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest

from tests.tls.pki import NOW, ca, client_config
from tls.config import NO_VALIDATION_FOR_TESTS, ClientConfig


def test_client_config_refuses_none_anchors() -> None:
    with pytest.raises(TypeError, match="NO_VALIDATION_FOR_TESTS"):
        ClientConfig(random=os.urandom, time=lambda: NOW, anchors=None)  # type: ignore[arg-type]


def test_client_config_has_no_default_anchors() -> None:
    kwargs: dict[str, Any] = {"random": os.urandom, "time": lambda: NOW}
    with pytest.raises(TypeError):
        ClientConfig(**kwargs)


def test_replace_cannot_switch_validation_off_with_none() -> None:
    with pytest.raises(TypeError):
        replace(client_config(), anchors=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("anchors", [(ca().der,), (), NO_VALIDATION_FOR_TESTS])
def test_anchors_or_the_named_opt_out_are_accepted(anchors: Any) -> None:
    assert ClientConfig(random=os.urandom, time=lambda: NOW, anchors=anchors).anchors is anchors
