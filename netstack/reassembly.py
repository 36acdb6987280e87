"""IPv4 and IPv6 fragment reassembly under one memory budget, with an RFC 5722-style refusal of overlaps.

Why refuse every overlap (even an exact duplicate): overlapping fragments are how teardrop crashed stacks and
how IDS evasion makes two observers reassemble different bytes. No legitimate sender overlaps, so when any
two fragments of a datagram overlap the whole datagram is dropped, and its later fragments too.

Why one reassembler for both families: its budget (datagrams, bytes, refused keys) is what bounds the memory
an attacker can make us hold, and two reassemblers would give one who speaks both families twice as much. The
keys never collide: IPv4 keys hold 4-byte addresses and a protocol number, IPv6 keys 16-byte addresses and a
tag no protocol number uses.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass, field

from netstack.icmpv6 import CODE_ERRONEOUS_FIELD, CODE_INCOMPLETE_CHAIN, MAX_QUOTE
from netstack.ipv4 import Ipv4Header
from netstack.ipv6 import (
    FRAGMENT_HEADER_LEN,
    HEADER_LEN,
    MAX_PAYLOAD,
    PROTO_ICMPV6,
    PROTO_NO_NEXT,
    PROTO_TCP,
    PROTO_UDP,
    FragmentHeader,
    HeaderChain,
    Ipv6Header,
    ParameterProblemError,
    serialize_ipv6,
)
from netstack.limits import DEFAULT_STACK_LIMITS, ICMP_ERROR_QUOTE_LIMIT, IPV4_MAX_DATAGRAM, ReassemblyLimits
from netstack.reasons import Counters, Drop

_Key = tuple[bytes, bytes, int, int]  # src, dst, protocol (IPv4, RFC 791) or _IPV6, ident (RFC 8200 §4.5)
_IPV6 = -1
_PAYLOAD_LENGTH_FIELD = 4
# RFC 7112: the first fragment must hold the upper-layer header; how much of it we can insist on.
_UPPER_HEADER_LEN = {PROTO_TCP: 20, PROTO_UDP: 8, PROTO_ICMPV6: 4, PROTO_NO_NEXT: 0}
_UNKNOWN_UPPER_HEADER_LEN = 1  # of a protocol we do not know, at least its first byte
_QUOTE4 = ICMP_ERROR_QUOTE_LIMIT - 20 - 8  # an IPv4 error's quote: 576 less its own IP and ICMP headers


@dataclass(frozen=True, slots=True)
class _First6:
    """What an IPv6 packet's offset-0 fragment contributes: RFC 8200 §4.5 takes the header and the
    unfragmentable headers from it alone, and a Time Exceeded quotes it."""

    header: Ipv6Header
    prefix: bytes  # its payload before the fragment data: the unfragmentable headers, then the fragment header
    fragment_header_offset: int
    fragment_pointer: int  # the next-header field that named the fragment header (from the IPv6 header start)
    next_header: int  # what the fragment header says follows it
    link_multicast: bool  # it came in a link-layer multicast frame: no Time Exceeded (RFC 4443 §2.4(e.4))


@dataclass(frozen=True, slots=True)
class Expired4:
    """An IPv4 datagram whose reassembly timed out after its offset-0 fragment arrived (RFC 1122 §3.3.2 then
    asks for a Time Exceeded, code 1): that fragment's header, the fragment as received cut to what an error
    quotes, and whether it came in a link-layer broadcast frame (then no error: RFC 1122 §3.2.2)."""

    header: Ipv4Header
    quote: bytes
    link_broadcast: bool


@dataclass(slots=True)
class _Datagram:
    """One datagram being reassembled, IPv4 or IPv6: its fragments, the bytes they charge to the shared budget, and
    its deadline. Complete when `received` reaches `total`, since no two fragments may overlap. Mutable: each
    fragment updates it in place."""

    deadline: float
    fragments: list[tuple[int, int, bytes]] = field(default_factory=list)  # (start, end, data)
    stored: int = 0  # bytes held: fragment data, and an IPv6 first fragment's headers
    received: int = 0  # fragment data bytes
    total: int | None = None  # payload length, known once the last fragment arrived
    first: Ipv4Header | None = None  # header of the offset-0 fragment
    first6: _First6 | None = None
    link_multicast: bool = False  # a fragment came in a link-layer multicast/broadcast frame (see add, add6)
    first_quote: bytes = b""  # IPv4: the offset-0 fragment as received, cut to an ICMP error's quote
    first_link_broadcast: bool = False  # IPv4: the offset-0 fragment came in a link-layer broadcast frame


class Reassembler:
    __slots__ = ("_counters", "_datagrams", "_expired4", "_expired6", "_max_bytes", "_max_datagrams", "_max_fragments",
                 "_max_refused", "_refused", "_stored", "_timeout")  # fmt: skip

    def __init__(self, counters: Counters, limits: ReassemblyLimits = DEFAULT_STACK_LIMITS.reassembly) -> None:
        self._counters = counters
        self._max_datagrams = limits.datagrams
        self._max_bytes = limits.stored_bytes
        self._max_fragments = limits.fragments_per_datagram
        self._max_refused = limits.refused_keys
        self._timeout = limits.timeout
        self._datagrams: OrderedDict[_Key, _Datagram] = OrderedDict()  # oldest first = earliest deadline
        self._refused: OrderedDict[_Key, float] = OrderedDict()
        self._expired6: list[tuple[Ipv6Header, bytes, bool]] = []  # at most limits.datagrams, see take_expired6
        self._expired4: list[Expired4] = []  # at most limits.datagrams, see take_expired4
        self._stored = 0

    @property
    def stored_bytes(self) -> int:
        return self._stored

    def __len__(self) -> int:
        return len(self._datagrams)

    def add(
        self, now: float, header: Ipv4Header, payload: memoryview, *, link_broadcast: bool = False,
        packet: bytes | memoryview = b"",
    ) -> tuple[Ipv4Header, bytes, bool] | None:  # fmt: skip
        """Store one IPv4 fragment; return (header of the first fragment, whole payload, whether any fragment came
        in a link-layer broadcast frame) when complete.

        `link_broadcast`: this fragment came in a link-layer broadcast frame. The stack discards a unicast
        datagram any piece of which came so (RFC 1122 §3.3.6), not one the last fragment alone decides (fail
        closed, as add6 does for link multicast). `packet`: the fragment as received, header included; of the
        offset-0 one the first ICMP_ERROR_QUOTE_LIMIT bytes are kept for its Time Exceeded (take_expired4)."""
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
        datagram = self._place(now, key, start, bytes(payload), more=header.more_fragments)
        if datagram is None:
            return None
        if start == 0:
            datagram.first = header
            datagram.first_quote = bytes(packet[:_QUOTE4])
            datagram.first_link_broadcast = link_broadcast
        datagram.link_multicast |= link_broadcast
        first = datagram.first
        if first is None or datagram.received != datagram.total:
            return None
        self._forget(key)
        if first.header_len + datagram.received > IPV4_MAX_DATAGRAM:
            # Each fragment was bounded by its own header (above), but the datagram takes the first one's: a
            # first fragment with 40 bytes of options and a last one ending at 65515 make 65575 bytes, which no
            # Total Length can say (RFC 791). The classic ping of death (CERT CA-1996-26): refused whole.
            self._refuse(now, key, Drop.IPV4_OVERSIZE)
            return None
        return first, _join(datagram), datagram.link_multicast

    def add6(
        self, now: float, header: Ipv6Header, chain: HeaderChain, payload: memoryview, *, link_multicast: bool
    ) -> tuple[Ipv6Header, bytes, bool] | None:
        """Store one IPv6 fragment (`chain` is ipv6.walk's view of it); when the packet is complete, return its
        header and payload as if it had never been fragmented: the first fragment's header and unfragmentable
        headers, the fragment header removed and the next-header field that named it naming what followed it.
        Walk that again with `reassembled=True`.

        `link_multicast`: the fragment came in a link-layer multicast frame. The first fragment's is kept for
        its Time Exceeded (take_expired6: RFC 4443 §2.4(e.4) forbids one for such a packet), and the third item
        returned says whether any fragment came so: the stack answers (echo) and hands to TCP only a packet
        every piece of which came to our own MAC, not one the last fragment alone decides (fail closed).

        Atomic fragments (offset 0 and no more to come, RFC 6946) must not come here: they are whole packets
        for the stack to process at once, and queueing them would let anyone who guesses an identification
        spoil them. Passing one (or a packet with no fragment header) is a caller bug: ValueError.

        The refusals RFC 8200 §4.5 and RFC 7112 answer with a Parameter Problem raise ParameterProblemError
        (not counted here: the stack counts what it catches), after refusing the whole datagram.
        """
        fragment = chain.fragment
        if fragment is None or (fragment.offset == 0 and not fragment.more):
            raise ValueError("only non-atomic IPv6 fragments are reassembled")
        key = (header.src, header.dst, _IPV6, fragment.ident)
        if key in self._refused:
            self._counters.add(Drop.FRAG_REFUSED_DATAGRAM)
            return None
        data_start = chain.fragment_header_offset + FRAGMENT_HEADER_LEN
        data = payload[data_start:]
        if not data:
            self._counters.add(Drop.FRAG_EMPTY)
            return None
        self._check6(now, key, chain, fragment, payload_len=len(payload), size=len(data))
        prefix = bytes(payload[:data_start]) if fragment.offset == 0 else b""
        datagram = self._place(now, key, fragment.offset, bytes(data), more=fragment.more, extra=len(prefix))
        if datagram is None:
            return None
        if fragment.offset == 0:
            datagram.first6 = _First6(header, prefix, chain.fragment_header_offset, chain.fragment_pointer,
                                      fragment.next_header, link_multicast)  # fmt: skip
        datagram.link_multicast |= link_multicast
        first6 = datagram.first6
        if first6 is None or datagram.received != datagram.total:
            return None
        self._forget(key)
        if first6.fragment_header_offset + datagram.received > MAX_PAYLOAD:  # a later first fragment grew
            self._refuse(now, key, Drop.IPV6_OVERSIZE)
            return None
        return (*_rebuild6(first6, _join(datagram)), datagram.link_multicast)

    def take_expired6(self) -> list[tuple[Ipv6Header, bytes, bool]]:
        """The IPv6 packets whose reassembly timed out since the last call and whose offset-0 fragment had
        arrived: its header, its packet (cut to what an ICMPv6 error can quote) and whether it came in a
        link-layer multicast frame, for the Time Exceeded code 1 RFC 8200 §4.5 asks for, which RFC 4443
        §2.4(e.4) then forbids for a link-layer multicast. Without the first fragment there is nothing to say it
        to."""
        expired, self._expired6 = self._expired6, []
        return expired

    def take_expired4(self) -> list[Expired4]:
        """The IPv4 datagrams whose reassembly timed out since the last call and whose offset-0 fragment had
        arrived, for the Time Exceeded code 1 RFC 1122 §3.3.2 asks for. Without fragment zero, none is sent."""
        expired, self._expired4 = self._expired4, []
        return expired

    def expire(self, now: float) -> None:
        while self._datagrams:
            key, datagram = next(iter(self._datagrams.items()))
            if datagram.deadline > now:
                break
            self._forget(key)
            self._counters.add(Drop.FRAG_TIMEOUT)
            if datagram.first6 is not None:
                self._report_expired6(datagram.first6, datagram)
            elif datagram.first is not None:
                self._report_expired4(datagram.first, datagram)
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

    def _check6(
        self, now: float, key: _Key, chain: HeaderChain, fragment: FragmentHeader, *, payload_len: int, size: int
    ) -> None:
        """RFC 8200 §4.5's and RFC 7112's Parameter Problems for one fragment of `size` data bytes."""
        start = fragment.offset
        if fragment.more and size % 8:
            self._bar(now, key)
            raise ParameterProblemError(Drop.FRAG_MISALIGNED, f"{size} bytes", code=CODE_ERRONEOUS_FIELD,
                                        pointer=_PAYLOAD_LENGTH_FIELD)  # fmt: skip
        if chain.fragment_header_offset + start + size > MAX_PAYLOAD:
            self._bar(now, key)
            raise ParameterProblemError(Drop.IPV6_OVERSIZE, f"fragment ends at {start + size}",
                                        code=CODE_ERRONEOUS_FIELD,
                                        pointer=HEADER_LEN + chain.fragment_header_offset + 2)  # fmt: skip
        upper_len = _UPPER_HEADER_LEN.get(chain.upper, _UNKNOWN_UPPER_HEADER_LEN)
        if start == 0 and payload_len - chain.upper_offset < upper_len:
            self._bar(now, key)
            raise ParameterProblemError(Drop.IPV6_INCOMPLETE_CHAIN, f"next header {chain.upper} not in it",
                                        code=CODE_INCOMPLETE_CHAIN, pointer=0)  # fmt: skip

    def _place(self, now: float, key: _Key, start: int, data: bytes, *, more: bool, extra: int = 0) -> _Datagram | None:
        """Add fragment data (and `extra` bytes held beside it) to its datagram, or refuse the datagram."""
        end = start + len(data)
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
        if not more:
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
        need = len(data) + extra
        while self._stored + need > self._max_bytes and self._evict_oldest(keep=key):
            pass
        if self._stored + need > self._max_bytes:
            self._refuse(now, key, Drop.FRAG_EVICTED)
            return None
        datagram.fragments.append((start, end, data))
        datagram.stored += need
        datagram.received += len(data)
        self._stored += need
        # no overlaps, so once received == total the fragments tile [0, total) exactly
        return datagram

    def _report_expired6(self, first6: _First6, datagram: _Datagram) -> None:
        if len(self._expired6) >= self._max_datagrams:
            self._expired6.pop(0)
            self._counters.add(Drop.FRAG6_EXPIRED_UNREPORTED)
        data = next(d for s, _, d in datagram.fragments if s == 0)
        packet = serialize_ipv6(first6.header, first6.prefix + data[:MAX_QUOTE])
        self._expired6.append((first6.header, packet[:MAX_QUOTE], first6.link_multicast))

    def _report_expired4(self, first: Ipv4Header, datagram: _Datagram) -> None:
        if len(self._expired4) >= self._max_datagrams:
            self._expired4.pop(0)
            self._counters.add(Drop.FRAG4_EXPIRED_UNREPORTED)
        self._expired4.append(Expired4(first, datagram.first_quote, datagram.first_link_broadcast))

    def _refuse(self, now: float, key: _Key, reason: Drop) -> None:
        self._counters.add(reason)
        self._bar(now, key)

    def _bar(self, now: float, key: _Key) -> None:
        """Drop the datagram and its later fragments until the timeout (RFC 5722)."""
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


def _join(datagram: _Datagram) -> bytes:
    datagram.fragments.sort()
    return b"".join(data for _, _, data in datagram.fragments)


def _rebuild6(first6: _First6, data: bytes) -> tuple[Ipv6Header, bytes]:
    """The packet as sent before fragmentation: the fragment header cut out of the first fragment's headers."""
    unfragmentable = bytearray(first6.prefix[: first6.fragment_header_offset])
    next_header = first6.header.next_header
    if first6.fragment_header_offset == 0:
        next_header = first6.next_header
    else:
        unfragmentable[first6.fragment_pointer - HEADER_LEN] = first6.next_header
    payload = bytes(unfragmentable) + data
    return dataclasses.replace(first6.header, payload_length=len(payload), next_header=next_header), payload
