from __future__ import annotations

from dataclasses import replace

from appliance.config import Limits
from appliance.service import Gate


def test_gate_limits_per_source_and_overall() -> None:
    gate = Gate(replace(Limits(), max_connections=3, max_connections_per_source=2))
    assert gate.admit("a") is None
    assert gate.admit("a") is None
    assert "one source" in (gate.admit("a") or "")
    assert gate.admit("b") is None
    assert "concurrent connections" in (gate.admit("c") or "")
    gate.release("a")
    assert gate.admit("c") is None
    assert gate.total == 3


def test_gate_forgets_sources_that_left() -> None:
    gate = Gate(Limits())
    for i in range(1000):
        assert gate.admit(f"10.0.{i // 250}.{i % 250}") is None
        gate.release(f"10.0.{i // 250}.{i % 250}")
    assert gate.total == 0
    assert not gate._per_source  # no per-source entry outlives its last connection
