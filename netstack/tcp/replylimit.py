"""The budget for RSTs the layer sends in answer to segments no connection wants (RFC 9293 §3.10.7.1).

Why not one counter per second: a layer-wide count of RSTs is an off-path side channel (the CVE-2016-5696
pattern, and FreeBSD's badport_bandlim). A spoofed ACK on a live 4-tuple costs no RST (the connection answers
it), on a dead one it costs one; an attacker who then drains the rest of the second's budget from its own
address and counts the RSTs it gets back learns which 4-tuple is live, about 200 ports a second.

The fix is of the class, not of the one probe: an attacker's probes of one flow must not move anything it can
observe through its own flows. Two parts:

- Per source (an IPv4 address or an IPv6 /64, `addresses6.source_key`), at most `rst_rate_limit_per_source`
  RSTs a second. The counts live in a fixed array of `rst_source_slots` slots indexed by a keyed hash of the
  source (the layer's secret), not in a table of sources: a bounded table must evict or refuse when full, and
  whether a victim's entry was added is then visible through the attacker's own entries (occupancy is a
  shared counter too). An array has no occupancy; two sources share a slot only by a hash collision the
  attacker cannot compute, and a shared slot still caps what it could learn at the per-source rate.
- Layer-wide, a ceiling that bounds what a flood makes us send, as before, but each second's size is drawn
  from [rst_rate_limit / 2, rst_rate_limit] by a keyed hash of the second (Linux's answer for challenge ACKs
  and for ICMP, CVE-2020-25705). Probes naming one victim use at most the per-source rate (10) of it, against
  an unknown size spread over 100: one second's count says next to nothing, and telling one port apart takes
  hundreds of seconds instead of a scan of every port in five minutes.

The challenge ACKs of RFC 5961 §7 do not need this: their budget is per connection (netstack/tcp/send.py), and
they go to the connection's peer, never to the prober. Nothing here reads a clock or a random source: the
time and the secret are passed in.
"""

from __future__ import annotations

import hashlib

from netstack.addresses6 import source_key
from netstack.tcp.config import TcpConfig
from netstack.tcp.counters import Count


class RstBudget:
    """Per-source and layer-wide RST budgets for one second at a time (module docstring)."""

    __slots__ = ("_budget", "_counts", "_keyed", "_limit", "_per_source", "_second", "_sent", "_spread")

    def __init__(self, secret: bytes, config: TcpConfig) -> None:
        self._keyed = hashlib.blake2s(key=secret[:32], digest_size=4, person=b"rstlimit")
        self._limit = config.rst_rate_limit
        self._spread = config.rst_rate_limit // 2 + 1
        self._per_source = config.rst_rate_limit_per_source
        self._counts = [0] * max(1, config.rst_source_slots)
        self._second = -1
        self._budget = 0
        self._sent = 0

    def _hash(self, data: bytes) -> int:
        h = self._keyed.copy()
        h.update(data)
        return int.from_bytes(h.digest(), "big")

    def allow(self, now: float, remote: bytes) -> Count | None:
        """None if a RST to `remote` may go now (and it is charged), else the reason it may not."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._budget = self._limit - self._hash(second.to_bytes(8, "big", signed=True)) % self._spread
            self._sent = 0
            self._counts = [0] * len(self._counts)
        slot = self._hash(source_key(remote)) % len(self._counts)
        if self._counts[slot] >= self._per_source:
            return Count.RST_SOURCE_RATE_LIMITED
        if self._sent >= self._budget:
            return Count.RST_RATE_LIMITED
        self._counts[slot] += 1
        self._sent += 1
        return None


__all__ = ["RstBudget"]
