"""TCP counters are enum members whose values are the names /stats.json has always shown."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from netstack.tcp.counters import Count
from netstack.tcp.segment import SYN, SegmentError
from tests.netstack.tcp.raw import RawPeer

TCP_SOURCES = Path(__file__).resolve().parents[3] / "netstack" / "tcp"

# Names the statistics page, the tests and the attack suite look up: a change of value breaks them.
STABLE = {
    "internal-error", "bad-checksum", "syn-cookie-sent", "syn-cookie-accepted", "challenge-ack", "paws",
    "rst-challenge-ack", "syn-challenge-ack", "time-wait-rst-ignored", "out-of-window", "rcv-budget-exhausted",
    "ooo-budget-exhausted", "snd-budget-exhausted", "connection-limit", "per-source-limit", "closed-port",
}


def test_values_are_the_old_counter_names() -> None:
    values = {c.value for c in Count}
    assert values >= STABLE
    assert all(c.value == c.name.lower().replace("_", "-") for c in Count)


def test_every_count_site_names_a_member() -> None:
    """No count(...) in netstack/tcp passes a bare string: a typo there would be a new counter."""
    bare = []
    for path in TCP_SOURCES.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "count" \
                    and node.args and getattr(node.func.value, "id", None) != "itertools":
                arg = node.args[0]
                if isinstance(arg, ast.Constant) or (isinstance(arg, ast.IfExp) and any(
                        isinstance(x, ast.Constant) for x in (arg.body, arg.orelse))):
                    bare.append(f"{path.name}:{node.lineno}")
    assert not bare


def test_stats_serialize_under_their_old_names() -> None:
    peer = RawPeer()
    peer.inject(SYN, 1)  # a closed port: counted and answered with a RST
    exported = json.loads(json.dumps({f"tcp-{k}": v for k, v in peer.layer.stats.items()}))
    assert exported == {"tcp-closed-port": 1, "tcp-rst-sent": 1}
    assert peer.layer.stats["closed-port"] == peer.layer.stats[Count.CLOSED_PORT] == 1


def test_segment_error_carries_a_member() -> None:
    assert SegmentError(Count.TRUNCATED).reason is Count.TRUNCATED
