from __future__ import annotations

import random

from netstack.errors import MalformedError
from netstack.ipv4 import FLAG_MF, Ipv4Header, parse_ipv4
from netstack.limits import ReassemblyLimits
from netstack.reasons import Counters, Drop
from netstack.reassembly import Reassembler
from tests.netstack.builders import PEER, US, ipv4

DATA = bytes(range(256)) * 12  # 3072 bytes


def fragment(
    payload: bytes, start: int, end: int, *, ident: int = 1, last: bool | None = None
) -> tuple[Ipv4Header, memoryview]:
    more = end < len(payload) if last is None else not last
    return parse_ipv4(ipv4(PEER, US, 17, payload[start:end], ident=ident, flags=FLAG_MF if more else 0, offset=start))


def pieces(payload: bytes, size: int = 1024, ident: int = 1) -> list[tuple[Ipv4Header, memoryview]]:
    return [fragment(payload, s, min(s + size, len(payload)), ident=ident) for s in range(0, len(payload), size)]


def feed(r: Reassembler, frags: list[tuple[Ipv4Header, memoryview]], now: float = 0.0) -> list[bytes]:
    done = []
    for header, body in frags:
        result = r.add(now, header, body)
        if result is not None:
            done.append(result[1])
    return done


def test_in_order() -> None:
    r = Reassembler(Counters())
    assert feed(r, pieces(DATA)) == [DATA]
    assert len(r) == 0
    assert r.stored_bytes == 0


def test_out_of_order_and_first_header_kept() -> None:
    r = Reassembler(Counters())
    frags = pieces(DATA, 512)
    random.Random(3).shuffle(frags)
    results = [r.add(0.0, h, b) for h, b in frags]
    complete = [x for x in results if x is not None]
    assert len(complete) == 1
    header, payload = complete[0]
    assert payload == DATA
    assert header.fragment_offset == 0


def test_interleaved_datagrams() -> None:
    r = Reassembler(Counters())
    other = bytes(reversed(DATA))
    a, b = pieces(DATA, ident=1), pieces(other, ident=2)
    mixed = [x for pair in zip(a, b, strict=True) for x in pair]
    assert feed(r, mixed) == [DATA, other]


def test_overlap_drops_the_whole_datagram_and_its_later_fragments() -> None:
    counters = Counters()
    r = Reassembler(counters)
    frags = pieces(DATA)
    assert feed(r, [frags[0], fragment(DATA, 1016, 2048)]) == []
    assert counters[Drop.FRAG_OVERLAP] == 1
    assert len(r) == 0
    assert r.stored_bytes == 0
    assert feed(r, frags) == []  # even the clean fragments are refused now (RFC 5722)
    assert counters[Drop.FRAG_REFUSED_DATAGRAM] == 3


def test_exact_duplicate_counts_as_overlap() -> None:
    counters = Counters()
    r = Reassembler(counters)
    frags = pieces(DATA)
    assert feed(r, [frags[0], frags[0], frags[1], frags[2]]) == []
    assert counters[Drop.FRAG_OVERLAP] == 1


def test_teardrop() -> None:
    # the teardrop pattern: a second fragment starting inside the first and ending before its end
    counters = Counters()
    r = Reassembler(counters)
    payload = bytes(64)
    assert feed(r, [fragment(payload, 0, 48), fragment(payload, 24, 27, last=True)]) == []
    assert counters[Drop.FRAG_OVERLAP] + counters[Drop.FRAG_BEYOND_END] == 1
    assert len(r) == 0


def test_refused_datagram_is_forgotten_after_the_timeout() -> None:
    r = Reassembler(Counters(), ReassemblyLimits(timeout=30.0))
    frags = pieces(DATA)
    feed(r, [frags[0], frags[0]])
    r.expire(31.0)
    assert feed(r, frags, now=31.0) == [DATA]


def test_timeout_frees_memory() -> None:
    counters = Counters()
    r = Reassembler(counters, ReassemblyLimits(timeout=30.0))
    feed(r, pieces(DATA)[:2], now=0.0)
    assert r.next_deadline() == 30.0
    r.expire(29.9)
    assert len(r) == 1
    r.expire(30.0)
    assert len(r) == 0
    assert r.stored_bytes == 0
    assert counters[Drop.FRAG_TIMEOUT] == 1
    assert r.next_deadline() is None


def test_memory_cap_evicts_oldest() -> None:
    counters = Counters()
    r = Reassembler(counters, ReassemblyLimits(stored_bytes=4096))
    for ident in range(10):
        feed(r, pieces(DATA, ident=ident)[:2])  # 2048 bytes each, never complete
        assert r.stored_bytes <= 4096
    assert counters[Drop.FRAG_EVICTED] >= 8
    assert feed(r, pieces(DATA, ident=99)) == [DATA]  # a complete datagram still gets through


def test_datagram_count_cap() -> None:
    counters = Counters()
    r = Reassembler(counters, ReassemblyLimits(datagrams=4))
    for ident in range(20):
        feed(r, pieces(DATA, ident=ident)[:1])
    assert len(r) == 4
    assert counters[Drop.FRAG_DATAGRAMS_FULL] == 16


def test_too_many_fragments() -> None:
    counters = Counters()
    r = Reassembler(counters, ReassemblyLimits(fragments_per_datagram=8))
    assert feed(r, pieces(DATA, size=8)) == []
    assert counters[Drop.FRAG_TOO_MANY] == 1


def test_misaligned_and_empty_fragments() -> None:
    counters = Counters()
    r = Reassembler(counters)
    assert feed(r, [fragment(DATA, 0, 100)]) == []
    assert counters[Drop.FRAG_MISALIGNED] == 1
    assert feed(r, [fragment(DATA, 8, 8, ident=2, last=False)]) == []
    assert counters[Drop.FRAG_EMPTY] == 1


def test_data_beyond_the_last_fragment() -> None:
    counters = Counters()
    r = Reassembler(counters)
    assert feed(r, [fragment(DATA, 1024, 2048, last=True), fragment(DATA, 2048, 3072)]) == []
    assert counters[Drop.FRAG_BEYOND_END] == 1
    r2 = Reassembler(counters)
    assert feed(r2, [fragment(DATA, 2048, 3072, last=False), fragment(DATA, 0, 1024, last=True)]) == []
    assert counters[Drop.FRAG_BEYOND_END] == 2


def test_two_different_ends_refused() -> None:
    counters = Counters()
    r = Reassembler(counters)
    assert feed(r, [fragment(DATA, 1024, 2048, last=True), fragment(DATA, 2048, 3072, last=True)]) == []
    assert counters[Drop.FRAG_OVERLAP] + counters[Drop.FRAG_BEYOND_END] == 1


def test_ping_of_death_never_reassembles() -> None:
    # 64 fragments of 1024 bytes = 65536 bytes of ICMP: parse_ipv4 refuses the last one; nothing completes
    counters = Counters()
    r = Reassembler(counters)
    payload = bytes(65536)
    done = 0
    for start in range(0, 65536, 1024):
        packet = ipv4(PEER, US, 1, payload[start : start + 1024], flags=0 if start + 1024 >= 65536 else FLAG_MF,
                      offset=start)  # fmt: skip
        try:
            header, body = parse_ipv4(packet)
        except MalformedError as exc:
            counters.add(exc.reason)
            continue
        done += r.add(0.0, header, body) is not None
    assert done == 0
    assert counters[Drop.IPV4_OVERSIZE] == 1
