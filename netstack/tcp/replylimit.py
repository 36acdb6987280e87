"""Budgets for the replies the layer sends without a connection: RSTs answering segments no connection wants
(RFC 9293 §3.10.7.1) and stateless SYN-ACKs (SYN cookies).

Why not one counter per second: a layer-wide count of replies is an off-path side channel (the CVE-2016-5696
pattern, and FreeBSD's badport_bandlim). A spoofed ACK on a live 4-tuple costs no RST (the connection answers
it), on a dead one it costs one; an attacker who then drains the rest of the second's budget from its own
address and counts the RSTs it gets back learns which 4-tuple is live, about 200 ports a second. SYN cookies
had the same shape: while a listener answers with cookies, a spoofed SYN on a dead 4-tuple costs a cookie and
one on a live 4-tuple goes to the connection (a challenge ACK to its peer) and costs none, so the attacker's
count of its own cookie SYN-ACKs told the two apart, exactly and amplified: k probes of one 4-tuple moved the
count by k.

The fix is of the class, not of the one probe: an attacker's probes of one flow must not move anything it can
observe through its own flows. Two parts:

- Per key, at most a few replies a second. The counts live in a fixed array of slots, not in a table of keys: a
  bounded table must evict or refuse when full, and whether a victim's entry was added is then visible through
  the attacker's own entries (occupancy is a shared counter too). An array has no occupancy, but two keys
  share a slot, and an attacker need not compute a collision to use one: it can observe one (the review of
  s26, finding 1). It fills the victim's slot with spoofed segments, then sends one segment from each of its
  own sources; one that gets no reply shares the slot, and from then on k spoofed guesses and a full share of
  probes from that source read the victim's state exactly (a dead guess costs a reply from the shared slot, a
  live one does not). So the slot is chosen by a keyed hash of the second and the key (the layer's secret):
  each second is a new, unknowable assignment of keys to slots, and a colliding source found in one second
  shares nothing in the next. Finding one and using it must both happen within one second, and every
  candidate tried costs a reply of the layer-wide ceiling below (a candidate gets its reply unless it
  collides): with `slots` slots and a ceiling of at most `limit`, one second finds a given key's slot-mate
  with odds below limit / slots (1 / slots a candidate), and the ceiling is spent before the expected
  `slots` candidates. What a second can still show is one missing reply, which says "every guess of this
  second was dead" and nothing about a live one, at odds below limit / slots a second. A slot is charged only
  for a reply that is sent, so a flood fills slots no faster than it spends the ceiling.
- Layer-wide, a ceiling that bounds what a flood makes us send, as before, but each second's size is drawn
  from [limit / 2, limit] by a keyed hash of the second (Linux's answer for challenge ACKs and for ICMP,
  CVE-2020-25705). Probes naming one victim use at most the per-key rate of it, against an unknown size spread
  over limit / 2: one second's count says next to nothing.

The key differs. RSTs are keyed by source (an IPv4 address or an IPv6 /64, `addresses6.source_key`,
`RstBudget`): probes naming a victim move the count an attacker sees by at most `rst_rate_limit_per_source`
(10) against a ceiling spread over 100, and `rst_source_slots` (4096) is twenty times the ceiling (200), so
a second finds the victim's slot-mate with odds under 5%. Cookies are keyed by the whole 4-tuple
(`CookieBudget`): a per-source cookie limit would bring back audit #4's lockout, since spoofed SYNs naming a
victim would spend the victim's cookies and its real SYNs would go unanswered while the listener is in cookie
mode. Per 4-tuple, spoofed SYNs spend only the cookies of the 4-tuples they name; the victim's next SYN comes
from a port the attacker would have to guess (covering them all is a flood of the whole ceiling, which no
per-key limit can make worse), and a real client retransmits its SYN about once a second, far below
`syn_cookie_rate_limit_per_tuple`. A probe of one 4-tuple moves the count by at most that (3) against a
ceiling whose size is spread over 2500, and `syn_cookie_tuple_slots` (65536) is thirteen times the ceiling
(5000): under 8% a second. The counts are one byte each (a per-key rate above 255 is taken as 255), so the
arrays are 4 and 64 KiB, cleared at most once a second and only after a second in which a reply went.

The challenge ACKs of RFC 5961 §7 do not need this: their budget is per connection (netstack/tcp/send.py), and
they go to the connection's peer, never to the prober. Nothing here reads a clock or a random source: the
time and the secret are passed in.
"""

from __future__ import annotations

import hashlib

from netstack.addresses6 import source_key
from netstack.tcp.config import TcpConfig
from netstack.tcp.counters import Count


class ReplyBudget:
    """Per-key and layer-wide budgets for one second at a time (module docstring)."""

    __slots__ = ("_budget", "_counts", "_key_refused", "_keyed", "_limit", "_per_key", "_refused", "_second",
                 "_sent", "_slots", "_spread")

    def __init__(self, secret: bytes, person: bytes, limit: int, per_key: int, slots: int, *,
                 key_refused: Count, refused: Count) -> None:
        self._keyed = hashlib.blake2s(key=secret[:32], digest_size=4, person=person)
        self._limit = limit
        self._spread = limit // 2 + 1
        self._per_key = min(per_key, 255)
        self._counts = bytearray(max(1, slots))
        self._slots = self._keyed.copy()
        self._key_refused = key_refused
        self._refused = refused
        self._second = -1
        self._budget = 0
        self._sent = 0

    def _hash(self, data: bytes) -> int:
        h = self._keyed.copy()
        h.update(data)
        return int.from_bytes(h.digest(), "big")

    def _slot(self, key: bytes) -> int:
        """`key`'s slot this second: a keyed hash of the second and the key (module docstring)."""
        h = self._slots.copy()
        h.update(key)
        return int.from_bytes(h.digest(), "big") % len(self._counts)

    def allow_key(self, now: float, key: bytes) -> Count | None:
        """None if a reply for `key` may go now (and it is charged), else the reason it may not."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._budget = self._limit - self._hash(second.to_bytes(8, "big", signed=True)) % self._spread
            if self._sent:
                self._counts = bytearray(len(self._counts))
            self._sent = 0
            self._slots = self._keyed.copy()
            self._slots.update(b"slot%b" % second.to_bytes(8, "big", signed=True))
        slot = self._slot(key)
        if self._counts[slot] >= self._per_key:
            return self._key_refused
        if self._sent >= self._budget:
            return self._refused
        self._counts[slot] += 1
        self._sent += 1
        return None


class RstBudget(ReplyBudget):
    """RSTs: per source (an IPv4 address, an IPv6 /64) and layer-wide."""

    __slots__ = ()

    def __init__(self, secret: bytes, config: TcpConfig) -> None:
        super().__init__(secret, b"rstlimit", config.rst_rate_limit, config.rst_rate_limit_per_source,
                         config.rst_source_slots, key_refused=Count.RST_SOURCE_RATE_LIMITED,
                         refused=Count.RST_RATE_LIMITED)

    def allow(self, now: float, remote: bytes) -> Count | None:
        """None if a RST to `remote` may go now (and it is charged), else the reason it may not."""
        return self.allow_key(now, source_key(remote))


class CookieBudget(ReplyBudget):
    """Cookie SYN-ACKs: per 4-tuple and layer-wide (why per 4-tuple, not per source: module docstring)."""

    __slots__ = ()

    def __init__(self, secret: bytes, config: TcpConfig) -> None:
        super().__init__(secret, b"cookielm", config.syn_cookie_rate_limit, config.syn_cookie_rate_limit_per_tuple,
                         config.syn_cookie_tuple_slots, key_refused=Count.SYN_COOKIE_TUPLE_RATE_LIMITED,
                         refused=Count.SYN_COOKIE_RATE_LIMITED)

    def allow(self, now: float, local: bytes, local_port: int, remote: bytes, remote_port: int) -> Count | None:
        """None if a cookie SYN-ACK to `remote` may go now (and it is charged), else the reason it may not."""
        key = b"%b%b%b%b" % (local, local_port.to_bytes(2, "big"), remote, remote_port.to_bytes(2, "big"))
        return self.allow_key(now, key)


__all__ = ["CookieBudget", "ReplyBudget", "RstBudget"]
