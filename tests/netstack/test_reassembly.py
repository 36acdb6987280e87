from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.addresses6 import ip6_from_text
from netstack.errors import MalformedError
from netstack.ipv4 import FLAG_MF, Ipv4Header, parse_ipv4
from netstack.ipv6 import (
    PROTO_DEST_OPTS,
    PROTO_FRAGMENT,
    PROTO_TCP,
    PROTO_UDP,
    HeaderChain,
    Ipv6Header,
    ParameterProblemError,
    parse_ipv6,
    walk,
)
from netstack.limits import ReassemblyLimits
from netstack.reasons import Counters, Drop
from netstack.reassembly import Reassembler
from netstack.udp import parse_udp, serialize_udp
from tests.netstack.builders import PEER, US, ipv4
from tests.netstack.test_ipv6 import PEER6, US6, fragment_header, option, options_header, packet6

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
    header, payload, link_broadcast = complete[0]
    assert payload == DATA
    assert header.fragment_offset == 0
    assert not link_broadcast


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


# --- IPv6 (RFC 8200 §4.5) and the budget both families share -------------------------------------------------
UPPER = serialize_udp(PEER6, US6, 1000, 2000, DATA[:3000])  # a whole UDP datagram of 3008 bytes


def frag6(
    upper: bytes, start: int, end: int, *, ident: int = 1, more: bool | None = None, unfragmentable: bool = False,
    next_header: int = PROTO_UDP, src: bytes = PEER6,
) -> tuple[Ipv6Header, HeaderChain, memoryview]:  # fmt: skip
    """One fragment packet, by hand: optionally a destination options header before the fragment header."""
    more = end < len(upper) if more is None else more
    payload = fragment_header(next_header, start, more, ident) + upper[start:end]
    first = PROTO_FRAGMENT
    if unfragmentable:
        payload = options_header(PROTO_FRAGMENT, option(0x1E, b"unfrag")) + payload
        first = PROTO_DEST_OPTS
    header, body = parse_ipv6(packet6(first, payload, src=src))
    return header, walk(header, body), body


def pieces6(upper: bytes = UPPER, size: int = 1232, **kwargs: Any) -> list[tuple[Ipv6Header, HeaderChain, memoryview]]:
    return [frag6(upper, s, min(s + size, len(upper)), **kwargs) for s in range(0, len(upper), size)]


def feed6(r: Reassembler, frags: list[tuple[Ipv6Header, HeaderChain, memoryview]],
          now: float = 0.0) -> list[tuple[Ipv6Header, bytes]]:  # fmt: skip
    """Fragments that all came to our own MAC: the packets completed, without add6's link-multicast flag."""
    done = []
    for header, chain, body in frags:
        result = r.add6(now, header, chain, body, link_multicast=False)
        if result is not None:
            assert result[2] is False
            done.append(result[:2])
    return done


def problem6(r: Reassembler, fragment: tuple[Ipv6Header, HeaderChain, memoryview]) -> ParameterProblemError:
    with pytest.raises(ParameterProblemError) as info:
        r.add6(0.0, *fragment, link_multicast=False)
    return info.value


def test_ipv6_in_order() -> None:
    r = Reassembler(Counters())
    [(header, payload)] = feed6(r, pieces6())
    assert payload == UPPER
    assert (header.next_header, header.payload_length, header.src, header.dst) == (PROTO_UDP, len(UPPER), PEER6, US6)
    assert bytes(parse_udp(payload, PEER6, US6).payload) == DATA[:3000]
    assert walk(header, memoryview(payload), reassembled=True).upper == PROTO_UDP
    assert len(r) == 0
    assert r.stored_bytes == 0


def test_ipv6_out_of_order() -> None:
    r = Reassembler(Counters())
    frags = pieces6(size=256)
    random.Random(5).shuffle(frags)
    [(_, payload)] = feed6(r, frags)
    assert payload == UPPER


def test_ipv6_unfragmentable_headers_come_from_the_first_fragment() -> None:
    r = Reassembler(Counters())
    frags = pieces6(unfragmentable=True)
    frags[1] = frag6(UPPER, 1232, 2464)  # a later fragment without them: only the first one's are kept
    [(header, payload)] = feed6(r, frags)
    expected_unfragmentable = options_header(PROTO_UDP, option(0x1E, b"unfrag"))  # next header rewritten
    assert header.next_header == PROTO_DEST_OPTS
    assert payload == expected_unfragmentable + UPPER
    assert header.payload_length == len(payload)
    chain = walk(header, memoryview(payload), reassembled=True)
    assert (chain.upper, chain.upper_offset, chain.fragment) == (PROTO_UDP, 16, None)
    # the first fragment's headers were held (and counted) while waiting, and are released
    r2 = Reassembler(Counters())
    feed6(r2, pieces6(unfragmentable=True)[:1])
    assert r2.stored_bytes == 1232 + 16 + 8  # data, destination options, fragment header
    assert feed6(r2, pieces6(unfragmentable=True)[1:])[0][1] == payload
    assert r2.stored_bytes == 0


def test_ipv6_overlap_and_duplicate_drop_the_datagram() -> None:
    counters = Counters()
    r = Reassembler(counters)
    frags = pieces6()
    assert feed6(r, [frags[0], frag6(UPPER, 1224, 2464)]) == []
    assert counters[Drop.FRAG_OVERLAP] == 1
    assert (len(r), r.stored_bytes) == (0, 0)
    assert feed6(r, frags) == []  # RFC 5722: the later fragments are refused too
    assert counters[Drop.FRAG_REFUSED_DATAGRAM] == 3
    dup = pieces6(ident=2)
    assert feed6(r, [dup[1], dup[1], dup[0], dup[2]]) == []
    assert counters[Drop.FRAG_OVERLAP] == 2


def test_ipv6_atomic_fragment_is_a_caller_bug() -> None:
    r = Reassembler(Counters())
    header, chain, body = frag6(UPPER, 0, len(UPPER), more=False)
    assert chain.fragment is not None
    with pytest.raises(ValueError, match="atomic"):
        r.add6(0.0, header, chain, body, link_multicast=False)
    header, body = parse_ipv6(packet6(PROTO_UDP, UPPER))
    with pytest.raises(ValueError, match="atomic"):
        r.add6(0.0, header, walk(header, body), body, link_multicast=False)
    assert len(r) == 0


def test_ipv6_atomic_fragment_with_the_same_ident_leaves_a_reassembly_alone() -> None:
    # RFC 6946: an atomic fragment is processed on its own; the stack never hands it to add6, so a real
    # fragment train with the same identification still completes
    r = Reassembler(Counters())
    frags = pieces6(ident=9)
    atomic = frag6(UPPER, 0, 16, ident=9, more=False)
    assert atomic[1].fragment is not None
    assert not atomic[1].fragment.more
    assert feed6(r, frags)[0][1] == UPPER


def test_ipv6_tiny_first_fragment_refused() -> None:
    counters = Counters()
    r = Reassembler(counters)
    tcp = bytes(40)
    problem = problem6(r, frag6(tcp, 0, 16, next_header=PROTO_TCP))  # 16 of TCP's 20 header bytes
    assert (problem.reason, problem.code, problem.pointer) == (Drop.IPV6_INCOMPLETE_CHAIN, 3, 0)
    assert feed6(r, [frag6(tcp, 16, 40, next_header=PROTO_TCP)]) == []  # the datagram is refused
    assert counters[Drop.FRAG_REFUSED_DATAGRAM] == 1
    assert len(r) == 0
    assert feed6(r, [frag6(tcp, 0, 24, ident=2, next_header=PROTO_TCP)]) == []  # 24 bytes: enough
    assert len(r) == 1
    # UDP needs its 8 bytes; an unknown upper layer at least its first byte; "no next header" nothing
    assert feed6(r, [frag6(bytes(16), 0, 8, ident=3, next_header=PROTO_UDP)]) == []
    assert len(r) == 2
    unknown = options_header(253) + bytes(8)  # a destination options header fills the first fragment's data
    problem = problem6(r, frag6(unknown, 0, 8, ident=4, next_header=PROTO_DEST_OPTS))
    assert (problem.reason, problem.code) == (Drop.IPV6_INCOMPLETE_CHAIN, 3)
    assert feed6(r, [frag6(options_header(59) + bytes(8), 0, 8, ident=5, next_header=PROTO_DEST_OPTS)]) == []
    assert len(r) == 3


def test_ipv6_misaligned_fragment_refused() -> None:
    counters = Counters()
    r = Reassembler(counters)
    problem = problem6(r, frag6(UPPER, 0, 100))
    assert (problem.reason, problem.code, problem.pointer) == (Drop.FRAG_MISALIGNED, 0, 4)
    assert counters[Drop.FRAG_MISALIGNED] == 0  # the stack counts what it catches
    assert feed6(r, pieces6()) == []
    assert counters[Drop.FRAG_REFUSED_DATAGRAM] == 3
    # a last fragment need not be a multiple of 8
    [(_, payload)] = feed6(r, [frag6(UPPER, 0, 1232, ident=2), frag6(UPPER, 1232, 1332, ident=2, more=False)])
    assert payload == UPPER[:1332]


def test_ipv6_beyond_65535_refused() -> None:
    r = Reassembler(Counters())
    problem = problem6(r, frag6(bytes(65536), 65528, 65536, more=False))  # would end at 65536
    assert (problem.reason, problem.code, problem.pointer) == (Drop.IPV6_OVERSIZE, 0, 42)
    problem = problem6(r, frag6(bytes(65536), 65512, 65528, ident=2, unfragmentable=True))  # 16 + 65528
    assert (problem.reason, problem.code, problem.pointer) == (Drop.IPV6_OVERSIZE, 0, 40 + 16 + 2)
    # exactly 65535 bytes of payload is fine
    assert feed6(r, [frag6(bytes(65535), 65528, 65535, ident=3, more=False)]) == []
    assert len(r) == 1


def test_ipv6_first_fragment_that_grows_the_packet_beyond_65535() -> None:
    # every fragment is acceptable on its own, but the first one's headers push the whole past 65535
    counters = Counters()
    r = Reassembler(counters, ReassemblyLimits(stored_bytes=1 << 20))
    upper = bytes(65528)
    frags = pieces6(upper, size=8192)
    frags[0] = frag6(upper, 0, 8192, unfragmentable=True)
    assert feed6(r, frags) == []
    assert counters[Drop.IPV6_OVERSIZE] == 1
    assert (len(r), r.stored_bytes) == (0, 0)


def test_ipv6_keys_are_per_source_destination_and_ident() -> None:
    r = Reassembler(Counters())
    a, b = pieces6(ident=1), pieces6(ident=1, src=ip6_from_text("2001:db8::99"))
    mixed = [x for pair in zip(a, b, strict=True) for x in pair]
    assert [payload for _, payload in feed6(r, mixed)] == [UPPER, UPPER]


def test_budget_is_shared_by_both_families() -> None:
    counters = Counters()
    r = Reassembler(counters, ReassemblyLimits(datagrams=4))
    for ident in range(4):
        feed(r, pieces(DATA, ident=ident)[:1])  # IPv4 fills every slot
    feed6(r, pieces6(ident=1)[:1])  # an IPv6 packet takes the oldest IPv4 one's
    assert len(r) == 4
    assert counters[Drop.FRAG_DATAGRAMS_FULL] == 1
    assert feed(r, pieces(DATA, ident=0)[1:]) == []  # that one is gone
    for ident in range(10, 14):
        feed6(r, pieces6(ident=ident)[:1])  # and the other way round
    assert len(r) == 4
    assert feed(r, pieces(DATA, ident=1)[1:]) == []
    assert [p for _, p in feed6(r, pieces6(ident=13)[1:])] == [UPPER]


def test_byte_budget_is_shared_by_both_families() -> None:
    counters = Counters()
    r = Reassembler(counters, ReassemblyLimits(stored_bytes=4096))
    feed(r, pieces(DATA, ident=1)[:2])  # 2048 bytes of IPv4
    feed6(r, pieces6(size=1024, ident=1)[:2])  # 2048 of IPv6 + 8 of its fragment header: evicts the IPv4 one
    assert counters[Drop.FRAG_EVICTED] == 1
    assert r.stored_bytes <= 4096
    feed(r, pieces(DATA, ident=2)[:2])  # and back
    assert counters[Drop.FRAG_EVICTED] == 2
    assert r.stored_bytes == 2048


def test_ipv6_timeout_reports_datagrams_with_a_first_fragment() -> None:
    counters = Counters()
    r = Reassembler(counters, ReassemblyLimits(timeout=60.0))
    with_first = pieces6(ident=1, unfragmentable=True)[:2]
    without_first = pieces6(ident=2)[1:]
    feed6(r, with_first + without_first, now=0.0)
    r.expire(59.0)
    assert r.take_expired6() == []
    r.expire(60.0)
    assert counters[Drop.FRAG_TIMEOUT] == 2
    assert (len(r), r.stored_bytes) == (0, 0)
    [(header, quoted, link_multicast)] = r.take_expired6()
    assert link_multicast is False
    first_header, _, first_body = with_first[0]
    assert header == first_header
    assert quoted == packet6(PROTO_DEST_OPTS, bytes(first_body))[:1232]
    assert r.take_expired6() == []


def test_ipv6_expired_datagram_says_how_its_first_fragment_arrived() -> None:
    """RFC 4443 §2.4(e.4): no Time Exceeded for a first fragment in a link-layer multicast frame (audit F4),
    so the flag travels with the expired datagram; a later fragment's frame does not change it."""
    r = Reassembler(Counters(), ReassemblyLimits(timeout=1.0))
    first, second, _ = pieces6(ident=1)
    r.add6(0.0, *first, link_multicast=True)
    r.add6(0.0, *second, link_multicast=False)
    first, second, _ = pieces6(ident=2)
    r.add6(0.0, *first, link_multicast=False)
    r.add6(0.0, *second, link_multicast=True)
    r.expire(1.0)
    assert [flag for _, _, flag in r.take_expired6()] == [True, False]


@pytest.mark.parametrize("multicast_piece", [None, 0, 1, 2])
def test_ipv6_reassembled_packet_is_link_multicast_if_any_fragment_was(multicast_piece: int | None) -> None:
    r = Reassembler(Counters())
    results = [r.add6(0.0, *piece, link_multicast=i == multicast_piece) for i, piece in enumerate(pieces6())]
    assert results[:-1] == [None, None]
    done = results[-1]
    assert done is not None
    assert done[1] == UPPER
    assert done[2] is (multicast_piece is not None)


def test_ipv6_time_exceeded_quote_is_cut_to_the_minimum_mtu() -> None:
    r = Reassembler(Counters(), ReassemblyLimits(timeout=1.0))
    upper = bytes(8000)
    feed6(r, [frag6(upper, 0, 4000)])
    r.expire(1.0)
    [(_, quoted, _)] = r.take_expired6()
    assert len(quoted) == 1232
    assert quoted[:4] == b"\x60\x00\x00\x00"


def test_ipv6_expired_backlog_is_bounded() -> None:
    counters = Counters()
    r = Reassembler(counters, ReassemblyLimits(datagrams=2, timeout=1.0))
    for ident in range(3):
        feed6(r, pieces6(ident=ident)[:1], now=float(ident))
        r.expire(float(ident) + 1.0)
    expired = r.take_expired6()
    assert len(expired) == 2
    assert counters[Drop.FRAG6_EXPIRED_UNREPORTED] == 1


def test_ipv6_empty_fragment() -> None:
    counters = Counters()
    r = Reassembler(counters)
    assert feed6(r, [frag6(UPPER, 8, 8, more=True)]) == []
    assert counters[Drop.FRAG_EMPTY] == 1


@settings(max_examples=100)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_ipv6_any_split_in_any_order_reassembles(sizes: list[int], rng: random.Random) -> None:
    upper = serialize_udp(PEER6, US6, 1, 2, DATA[:400])
    cuts = sorted({min(8 * s * (i + 1), len(upper)) for i, s in enumerate(sizes)} | {len(upper)})
    bounds = list(zip([0, *cuts[:-1]], cuts, strict=True))
    frags = [frag6(upper, s, e, ident=7, more=e < len(upper)) for s, e in bounds]
    if len(frags) == 1:
        frags = [frag6(upper, 0, 8, ident=7), frag6(upper, 8, len(upper), ident=7, more=False)]
    rng.shuffle(frags)
    r = Reassembler(Counters())
    [(header, payload)] = feed6(r, frags)
    assert payload == upper
    assert header.payload_length == len(upper)
    assert (len(r), r.stored_bytes) == (0, 0)


def fragments_with_options_first(payload_len: int, *, step: int = 1480) -> list[tuple[Ipv4Header, memoryview]]:
    """A datagram whose first fragment carries 40 bytes of NOP options (a 60-byte header), the rest 20-byte ones."""
    payload = bytes(payload_len)
    frags = []
    for start in range(0, payload_len, step):
        chunk = payload[start : start + step]
        more = FLAG_MF if start + step < payload_len else 0
        options = b"\x01" * 40 if start == 0 else b""
        frags.append(parse_ipv4(ipv4(PEER, US, 17, chunk, ident=77, flags=more, offset=start, options=options)))
    return frags


def test_a_reassembled_datagram_longer_than_65535_bytes_with_its_first_header_is_refused() -> None:
    """Each fragment fits 65535 bytes with its own 20-byte header; with the first one's 60 bytes the datagram
    would be 60 + 65515 = 65575 (a ping of death, RFC 791's 16-bit Total Length)."""
    counters = Counters()
    r = Reassembler(counters)
    frags = fragments_with_options_first(65515)
    assert feed(r, frags) == []
    assert counters[Drop.IPV4_OVERSIZE] == 1
    assert len(r) == 0
    assert r.stored_bytes == 0
    header, body = frags[-1]
    assert r.add(1.0, header, body) is None  # later copies of its fragments are barred (RFC 5722 style)
    assert counters[Drop.FRAG_REFUSED_DATAGRAM] == 1


def test_a_reassembled_datagram_of_exactly_65535_bytes_with_its_first_header_is_accepted() -> None:
    counters = Counters()
    r = Reassembler(counters)
    assert [len(d) for d in feed(r, fragments_with_options_first(65535 - 60))] == [65475]
    assert counters[Drop.IPV4_OVERSIZE] == 0
