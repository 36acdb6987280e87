"""The RST budget (netstack/tcp/replylimit.py): an attacker's probes of one flow must not show it, through the
RSTs its own probes get back, whether another flow is live (audit #5, the CVE-2016-5696 pattern)."""

from __future__ import annotations

from netstack.tcp.config import TcpConfig
from netstack.tcp.segment import ACK, SYN, build_segment
from tests.netstack.tcp.raw import THEM, THEM6, US, US6, RawPeer

ATTACKER = bytes([10, 0, 0, 66])


def closed_port_acks(peer: RawPeer, src: bytes, count: int, *, dst: bytes = US, first_port: int = 30000) -> int:
    """`count` ACKs from `src` to a closed port, now; how many RSTs came back to `src`."""
    for i in range(count):
        seg = build_segment(src, dst, first_port + i, 81, 1, 1, ACK, 1000)
        peer.layer.segment_received(peer.now, src, dst, memoryview(seg))
    return sum(1 for _local, remote, _seg in peer.layer.take_outgoing() if remote == src)


def attackers(count: int) -> list[bytes]:
    return [bytes([10, 1, n // 256, n % 256]) for n in range(count)]


def probe(peer: RawPeer, guess_port: int, sources: list[bytes]) -> int:
    """The audit's probe: in a fresh second, one spoofed ACK claiming to be the client on `guess_port`, then
    the attacker drains what is left of the RST budget from its own addresses and counts the RSTs."""
    peer.now = float(int(peer.now) + 1)
    peer.inject(ACK, 5, 5, src=THEM, src_port=guess_port)
    return sum(closed_port_acks(peer, source, 50) for source in sources)


def test_one_address_cannot_tell_a_live_port_from_a_dead_one() -> None:
    """Before: 199 RSTs for a dead guess, 200 for the live port. Now one address gets its own share either
    way, whatever the guess did to the victim's."""
    peer = RawPeer(peer_port=40000)
    peer.accept(1000)
    peer.out()
    seen = {port: probe(peer, port, [ATTACKER]) for port in (39999, 40000, 40001)}
    assert set(seen.values()) == {peer.layer.config.rst_rate_limit_per_source}
    assert peer.layer.stats["rst-source-rate-limited"] > 0


def test_the_layer_wide_budget_changes_size_every_second() -> None:
    """Many addresses together still meet a layer-wide ceiling, but its size is drawn each second from
    [limit / 2, limit] (a keyed hash): a second's count does not say what anyone else used."""
    peer = RawPeer()
    limit = peer.layer.config.rst_rate_limit
    sources = attackers(2 * limit // peer.layer.config.rst_rate_limit_per_source)
    sizes = []
    for second in range(40):
        peer.now = float(second)
        sizes.append(sum(closed_port_acks(peer, source, 20) for source in sources))
    assert all(limit // 2 <= size <= limit for size in sizes), sizes
    assert len(set(sizes)) >= 20, sizes
    assert peer.layer.stats["rst-rate-limited"] > 0


def test_probes_naming_one_source_take_only_its_share() -> None:
    """A flood of segments claiming to come from one victim gets it at most its share of RSTs a second, and
    leaves the layer's budget to everyone else; the share comes back the next second."""
    peer = RawPeer()
    share = peer.layer.config.rst_rate_limit_per_source
    assert closed_port_acks(peer, THEM, 1000) == share
    assert peer.layer.stats["rst-source-rate-limited"] == 1000 - share
    assert peer.layer.stats["rst-rate-limited"] == 0
    assert closed_port_acks(peer, ATTACKER, 1) == 1
    peer.now = 1.0
    assert closed_port_acks(peer, THEM, 1000) == share


def test_a_slash_64_is_one_source_for_rsts() -> None:
    peer = RawPeer(TcpConfig(rst_rate_limit_per_source=3), us=US6)
    other_host = THEM6[:8] + bytes(7) + b"\x09"
    assert closed_port_acks(peer, THEM6, 2, dst=US6) == 2
    assert closed_port_acks(peer, other_host, 5, dst=US6) == 1
    other_64 = THEM6[:7] + b"\x99" + THEM6[8:]
    assert closed_port_acks(peer, other_64, 5, dst=US6) == 3


def find_slot_mate(peer: RawPeer, victim: bytes, per_second: int = 80, seconds: int = 300) -> bytes | None:
    """The review's search (review-s26, finding 1): each second, fill the victim's slot with spoofed segments
    to a closed port, then send one from each of `per_second` own sources (within the layer's ceiling); a source
    that gets no RST shares the victim's slot this second."""
    share = peer.layer.config.rst_rate_limit_per_source
    candidates = iter(attackers(per_second * seconds))
    for _ in range(seconds):
        peer.now = float(int(peer.now) + 1)
        assert closed_port_acks(peer, victim, share) == share
        for _ in range(per_second):
            candidate = next(candidates)
            if closed_port_acks(peer, candidate, 1) == 0:
                return candidate
    return None


def test_a_source_found_to_share_the_victims_slot_tells_nothing_the_next_second() -> None:
    """Before: the slot was a keyed hash of the source alone, the same every second, so the source the search
    found shared the victim's slot for good; then k spoofed guesses and a full share from it read the victim's
    ports exactly: 9 RSTs for a dead guess, 10 for the live port. Now the slots are re-keyed each second: the
    search still finds a source sharing the victim's slot in some second, and in the seconds after it gets its
    whole share whatever the guess was."""
    peer = RawPeer(peer_port=40000)
    peer.accept(1000)
    peer.out()
    share = peer.layer.config.rst_rate_limit_per_source
    mate = find_slot_mate(peer, THEM)
    assert mate is not None

    def guess(port: int) -> int:
        peer.now = float(int(peer.now) + 1)
        peer.inject(ACK, 5, 5, src=THEM, src_port=port)
        peer.layer.take_outgoing()
        return closed_port_acks(peer, mate, share)

    seen = [(port, guess(port)) for _ in range(3) for port in (39998, 39999, 40000, 40001)]
    assert {count for _port, count in seen} == {share}, seen


def test_a_second_rarely_finds_the_victims_slot_mate_within_its_ceiling() -> None:
    """Finding a slot-mate and using it must happen in the same second, and each candidate tried costs a RST of
    the layer's ceiling: spending all of it on candidates, a second finds the victim's slot-mate with odds
    below rst_rate_limit / rst_source_slots (under 5%; the 1024 slots before gave 18%)."""
    peer = RawPeer()
    config = peer.layer.config
    seconds = 200
    candidates = attackers(seconds * config.rst_rate_limit)
    found = 0
    for second in range(seconds):
        peer.now = float(second)
        closed_port_acks(peer, THEM, config.rst_rate_limit_per_source)
        refused = peer.layer.stats["rst-rate-limited"]
        tried = candidates[second * config.rst_rate_limit:(second + 1) * config.rst_rate_limit]
        for candidate in tried:
            if closed_port_acks(peer, candidate, 1) == 0 and peer.layer.stats["rst-rate-limited"] == refused:
                found += 1
                break
    assert 0 < found <= seconds // 10, found    # 4 of 200 here; 30 with the 1024 slots of before


# -- SYN cookies: the same shape, keyed by 4-tuple ----------------------------------------------------------

FILLER = bytes([10, 9, 9, 9])


def cookie_mode(config: TcpConfig | None = None) -> RawPeer:
    """A listener with a live connection from THEM:40000 and a full backlog, so new SYNs get cookies."""
    peer = RawPeer(config, peer_port=40000)
    peer.accept(1000)
    peer.layer.listeners[80].backlog = 1
    peer.inject(SYN, 5, src=FILLER, src_port=1)
    peer.out()
    return peer


def own_syns(peer: RawPeer, src: bytes, count: int, first_port: int = 1024) -> int:
    """`count` SYNs from `src`, each from its own port, now; how many SYN-ACKs came back to `src`."""
    for i in range(count):
        seg = build_segment(src, US, first_port + i, 80, i, 0, SYN, 1000)
        peer.layer.segment_received(peer.now, src, US, memoryview(seg))
    return sum(1 for _local, remote, _seg in peer.layer.take_outgoing() if remote == src)


def cookie_probe(guess_port: int, probes: int) -> int:
    """The probe on cookies: in a fresh second, `probes` spoofed SYNs claiming to be the client on `guess_port`
    (a dead 4-tuple gets cookies, the live one a challenge ACK), then the attacker takes what is left of the
    cookie budget from its own ports and counts its cookie SYN-ACKs."""
    peer = cookie_mode()
    peer.now = 10.0
    for _ in range(probes):
        peer.inject(SYN, 777, src=THEM, src_port=guess_port)
    peer.out()
    return own_syns(peer, ATTACKER, 2 * peer.layer.config.syn_cookie_rate_limit)


def test_cookies_counted_by_an_attacker_do_not_tell_a_live_port_from_a_dead_one() -> None:
    """Before: a token bucket shared by everyone, so 100 probes of a dead 4-tuple took 100 cookies from the
    attacker's count and the live one none (5000 against 4900, exactly, every time). Now a 4-tuple gets at
    most its few cookies a second, and the second's ceiling is unknown."""
    share = TcpConfig().syn_cookie_rate_limit_per_tuple
    live, dead = cookie_probe(40000, 100), cookie_probe(40001, 100)
    assert 0 <= live - dead <= share


def test_probes_naming_one_4_tuple_take_only_its_share_of_cookies() -> None:
    peer = cookie_mode()
    share = peer.layer.config.syn_cookie_rate_limit_per_tuple
    for _ in range(100):
        peer.inject(SYN, 777, src=THEM, src_port=40001)
    assert len(peer.out()) == share
    assert peer.layer.stats["syn-cookie-tuple-rate-limited"] == 100 - share
    peer.now = 1.0
    peer.inject(SYN, 777, src=THEM, src_port=40001)    # the share comes back the next second
    assert len(peer.out()) == 1


def test_spoofed_syns_naming_a_victim_leave_it_its_cookies() -> None:
    """Audit #4 stays fixed: a flood of SYNs claiming the victim's address (8000, more than any second's
    ceiling; the shared bucket gave them all of it) takes only the share of each 4-tuple it names, so the
    victim's own SYN from another port still gets a cookie in the same second."""
    peer = cookie_mode()
    for port in range(1024, 1824):
        for _ in range(10):
            peer.inject(SYN, 777, src=THEM, src_port=port)
    peer.out()
    peer.inject(SYN, 4242, src=THEM, src_port=50000)
    (syn_ack,) = peer.out()
    assert (syn_ack.flags, syn_ack.ack, syn_ack.dst_port) == (SYN | ACK, 4243, 50000)
    assert peer.layer.stats["syn-cookie-rate-limited"] == 0


def test_the_layer_wide_cookie_budget_changes_size_every_second() -> None:
    """A flood from many 4-tuples still meets a layer-wide ceiling, but its size is drawn each second from
    [limit / 2, limit] (a keyed hash)."""
    limit = 100
    peer = cookie_mode(TcpConfig(syn_cookie_rate_limit=limit))
    sizes = []
    for second in range(40):
        peer.now = float(second)
        sizes.append(own_syns(peer, ATTACKER, 2 * limit))
    assert all(limit // 2 <= size <= limit for size in sizes), sizes
    assert len(set(sizes)) >= 20, sizes
    assert peer.layer.stats["syn-cookie-rate-limited"] > 0
