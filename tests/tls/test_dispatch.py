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
from tls.client import ClientConnection
from tls.constants import HandshakeType
from tls.server import ServerConnection
from tls.states import CHANGE_CIPHER_SPEC, Connected12, Connected13

TABLES: list[tuple[str, Mapping[tuple[type, int], Callable[..., None]], Any]] = [
    ("server", ServerConnection._handlers, tls.server.ServerState),
    ("client", ClientConnection._handlers, tls.client.ClientState),
    ("dhcp", dhcp_client._ON_INPUT, dhcp_client.ClientState),
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
    server_after = {m for cls, m in ServerConnection._handlers if cls in (Connected12, Connected13)}
    client_after = {m for cls, m in ClientConnection._handlers if cls in (Connected12, Connected13)}
    renegotiation = {HandshakeType.CLIENT_HELLO, HandshakeType.HELLO_REQUEST}
    assert server_after == {HandshakeType.KEY_UPDATE} | renegotiation
    assert client_after == {HandshakeType.KEY_UPDATE, HandshakeType.NEW_SESSION_TICKET} | renegotiation
