"""IPv4 fragment reassembly with bounded memory and an RFC 5722-style refusal of overlaps.

Why refuse every overlap (even an exact duplicate): overlapping fragments are how teardrop crashed stacks and
how IDS evasion makes two observers reassemble different bytes. No legitimate sender overlaps, so when any
two fragments of a datagram overlap the whole datagram is dropped, and its later fragments too.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from netstack.ipv4 import Ipv4Header
from netstack.limits import DEFAULT_STACK_LIMITS, IPV4_MAX_DATAGRAM, ReassemblyLimits
from netstack.reasons import Counters, Drop

_Key = tuple[bytes, bytes, int, int]  # src, dst, protocol, ident (RFC 791)


@dataclass(slots=True)
class _Datagram:
    deadline: float
    fragments: list[tuple[int, int, bytes]] = field(default_factory=list)  # (start, end, data)
    stored: int = 0
    total: int | None = None  # payload length, known once the last fragment arrived
    first: Ipv4Header | None = None  # header of the offset-0 fragment


class Reassembler:
    __slots__ = ("_counters", "_datagrams", "_max_bytes", "_max_datagrams", "_max_fragments", "_max_refused",
                 "_refused", "_stored", "_timeout")  # fmt: skip

    def __init__(self, counters: Counters, limits: ReassemblyLimits = DEFAULT_STACK_LIMITS.reassembly) -> None:
        self._counters = counters
        self._max_datagrams = limits.datagrams
        self._max_bytes = limits.stored_bytes
        self._max_fragments = limits.fragments_per_datagram
        self._max_refused = limits.refused_keys
        self._timeout = limits.timeout
        self._datagrams: OrderedDict[_Key, _Datagram] = OrderedDict()  # oldest first = earliest deadline
        self._refused: OrderedDict[_Key, float] = OrderedDict()
        self._stored = 0

    @property
    def stored_bytes(self) -> int:
        return self._stored

    def __len__(self) -> int:
        return len(self._datagrams)

    def add(self, now: float, header: Ipv4Header, payload: memoryview) -> tuple[Ipv4Header, bytes] | None:
        """Store one fragment; return (header of the first fragment, whole payload) when complete."""
        key = (header.src, header.dst, header.protocol, header.ident)
        if key in self._refused:
            self._counters.add(Drop.FRAG_REFUSED_DATAGRAM)
            return None
        start = header.fragment_offset
        end = start + len(payload)
        if not payload:
            self._counters.add(Drop.FRAG_EMPTY)
            return None
        if header.more_fragments and len(payload) % 8:
            self._refuse(now, key, Drop.FRAG_MISALIGNED)
            return None
        if end > IPV4_MAX_DATAGRAM - header.header_len:  # also checked by parse_ipv4; kept for direct callers
            self._refuse(now, key, Drop.IPV4_OVERSIZE)
            return None
        datagram = self._datagrams.get(key)
        if datagram is None:
            if len(self._datagrams) >= self._max_datagrams:
                self._counters.add(Drop.FRAG_DATAGRAMS_FULL)
                self._evict_oldest()
            datagram = _Datagram(deadline=now + self._timeout)
            self._datagrams[key] = datagram
        if len(datagram.fragments) >= self._max_fragments:
            self._refuse(now, key, Drop.FRAG_TOO_MANY)
            return None
        if datagram.total is not None and end > datagram.total:
            self._refuse(now, key, Drop.FRAG_BEYOND_END)
            return None
        if not header.more_fragments:
            if datagram.total is not None and datagram.total != end:
                self._refuse(now, key, Drop.FRAG_OVERLAP)  # two different ends: ambiguous like an overlap
                return None
            if any(e > end for _, e, _ in datagram.fragments):
                self._refuse(now, key, Drop.FRAG_BEYOND_END)
                return None
            datagram.total = end
        for s, e, _ in datagram.fragments:
            if start < e and s < end:
                self._refuse(now, key, Drop.FRAG_OVERLAP)
                return None
        while self._stored + len(payload) > self._max_bytes and self._evict_oldest(keep=key):
            pass
        if self._stored + len(payload) > self._max_bytes:
            self._refuse(now, key, Drop.FRAG_EVICTED)
            return None
        datagram.fragments.append((start, end, bytes(payload)))
        datagram.stored += len(payload)
        self._stored += len(payload)
        if start == 0:
            datagram.first = header
        if datagram.total is None or datagram.first is None or datagram.stored != datagram.total:
            return None
        # no overlaps and the lengths add up to the total, so the fragments tile [0, total) exactly
        self._forget(key)
        datagram.fragments.sort()
        return datagram.first, b"".join(data for _, _, data in datagram.fragments)

    def expire(self, now: float) -> None:
        while self._datagrams:
            key, datagram = next(iter(self._datagrams.items()))
            if datagram.deadline > now:
                break
            self._forget(key)
            self._counters.add(Drop.FRAG_TIMEOUT)
        while self._refused:
            key, deadline = next(iter(self._refused.items()))
            if deadline > now:
                break
            del self._refused[key]

    def next_deadline(self) -> float | None:
        best: float | None = None
        for datagram in self._datagrams.values():
            best = datagram.deadline
            break
        for deadline in self._refused.values():
            best = deadline if best is None else min(best, deadline)
            break
        return best

    def _refuse(self, now: float, key: _Key, reason: Drop) -> None:
        self._counters.add(reason)
        self._forget(key)
        if len(self._refused) >= self._max_refused:
            self._refused.popitem(last=False)
        self._refused[key] = now + self._timeout

    def _forget(self, key: _Key) -> None:
        datagram = self._datagrams.pop(key, None)
        if datagram is not None:
            self._stored -= datagram.stored

    def _evict_oldest(self, keep: _Key | None = None) -> bool:
        for key in self._datagrams:
            if key != keep:
                self._forget(key)
                self._counters.add(Drop.FRAG_EVICTED)
                return True
        return False
