"""What both engines' state machines share: the dispatch idiom and the states after the handshake.

One idiom for every state machine (server, client, DHCP): a table maps (state class, input type) to the
handler. A pair missing from the table is the refusal, so "which message may come now" is data a test can
enumerate, and no handler re-branches on the state. States are frozen dataclasses carrying exactly the data
valid in them (ocaml-tls's `AwaitClientCertificateVerify13 (session, ...)`), so a handler receives what it
needs as a typed argument instead of reading nullable fields and asserting that they are set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from tls.keyschedule import KeySchedule13
from tls.suites import SuiteInfo

CHANGE_CIPHER_SPEC: Final = 0x100
"""The input key for a TLS 1.2 ChangeCipherSpec record: not a handshake message, but dispatched like one
(it is allowed in exactly one state per role). Outside the 0..255 handshake type range, so it never collides."""

Handler = Callable[[Any, Any, memoryview, bytes], None]
"""(engine, state, message body, whole message): the state argument has the class the table keys it by."""
HandlerTable = Mapping[tuple[type, int], Handler]


@dataclass(frozen=True, slots=True)
class Peer:
    """The peer's certificate chain as sent (leaf first), its leaf key for handshake signatures, and
    whether the chain passed validation against the configured anchors."""

    chain: tuple[bytes, ...]
    key: object
    validated: bool


ANONYMOUS: Final = Peer(chain=(), key=None, validated=False)
"""A peer that sent no certificate (a client where the server allows that)."""


@dataclass(frozen=True, slots=True)
class Connected13:
    """TLS 1.3 after the handshake: the key schedule and suite that KeyUpdate derives the next keys from."""

    suite: SuiteInfo
    ks: KeySchedule13


@dataclass(frozen=True, slots=True)
class Connected12:
    """TLS 1.2 after the handshake: only renegotiation can come, and it is refused."""


CONNECTED_12: Final = Connected12()
