"""The dispatch tables are the state machines: each entry must hand a handler the state class it is written
for (a miswired entry would fail only when that message arrives, as an internal_error), and each engine's
table must cover exactly its own states."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import pytest

import tls.client
import tls.server
from netstack.dhcp import client as dhcp_client
from netstack.dhcp import states as dhcp_states
from tests.tls.pki import server_config
from tls.client import ClientConnection
from tls.client_states import AwaitServerHello
from tls.constants import HandshakeType
from tls.errors import InvariantError
from tls.server import ServerConnection
from tls.server_states import Start
from tls.states import CHANGE_CIPHER_SPEC, CONNECTED_12, Connected12, Connected13

TABLES: list[tuple[str, Mapping[tuple[type, int], Callable[..., None]], Any]] = [
    ("server", ServerConnection._handlers, tls.server.ServerState),
    ("client", ClientConnection._handlers, tls.client.ClientState),
    ("dhcp", dhcp_client._ON_INPUT, dhcp_states.ClientState),
]


def _members(annotation: Any) -> set[type]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return set(typing.get_args(annotation))
    return {annotation}


@pytest.mark.parametrize(("name", "table", "states"), TABLES, ids=[t[0] for t in TABLES])
def test_every_handler_gets_the_state_class_it_is_written_for(name: str, table: Any, states: Any) -> None:
    for (state_class, message), handler in table.items():
        hints = typing.get_type_hints(handler)
        assert state_class in _members(hints["state"]), (name, state_class.__name__, message, handler.__name__)


@pytest.mark.parametrize(("name", "table", "states"), TABLES, ids=[t[0] for t in TABLES])
def test_the_table_covers_exactly_the_engines_states(name: str, table: Any, states: Any) -> None:
    keyed = {state_class for state_class, _ in table}
    terminal = {Connected12, Connected13} if name != "dhcp" else set()
    assert keyed | terminal == _members(states) | terminal
    assert keyed <= _members(states)


def test_change_cipher_spec_is_accepted_in_exactly_one_state_per_role() -> None:
    for table in (ServerConnection._handlers, ClientConnection._handlers):
        assert len([1 for _, message in table if message == CHANGE_CIPHER_SPEC]) == 1


def test_after_the_handshake_only_key_update_tickets_and_renegotiation_are_dispatched() -> None:
    """Renegotiation is asked for by the peer's role only (RFC 5246 §7.4.1.1 / §7.4.1.2): the server takes a
    ClientHello after TLS 1.2, the client a HelloRequest; TLS 1.3 takes KeyUpdate (and the client tickets)."""
    def after(table: Any, state: type) -> set[int]:
        return {m for cls, m in table if cls is state}
    server, client = ServerConnection._handlers, ClientConnection._handlers
    assert after(server, Connected12) == {HandshakeType.CLIENT_HELLO}
    assert after(client, Connected12) == {HandshakeType.HELLO_REQUEST}
    assert after(server, Connected13) == {HandshakeType.KEY_UPDATE}
    assert after(client, Connected13) == {HandshakeType.KEY_UPDATE, HandshakeType.NEW_SESSION_TICKET}


ENGINES = [("server", ServerConnection, Start), ("client", ClientConnection, AwaitServerHello)]


@pytest.mark.parametrize(("name", "engine", "initial"), ENGINES, ids=[e[0] for e in ENGINES])
def test_every_state_is_reachable_and_every_reachable_state_accepts_something(name: str, engine: Any,
                                                                             initial: type) -> None:
    states = _members(tls.server.ServerState if engine is ServerConnection else tls.client.ClientState)
    sources = {a for a, _ in engine._transitions}
    targets = {b for _, b in engine._transitions}
    assert sources | targets <= states
    assert states - targets == {initial}, "a state nothing leads to"
    accepting = {state_class for state_class, _ in engine._handlers}
    assert targets <= accepting | {Connected12, Connected13}
    assert sources <= accepting, "a state that can be left but accepts no input"


def test_a_state_change_outside_the_table_is_an_invariant_failure() -> None:
    s = ServerConnection(server_config())
    with pytest.raises(InvariantError, match="Start -> Connected12"):
        s._to(CONNECTED_12)
    assert isinstance(s.state, Start)
