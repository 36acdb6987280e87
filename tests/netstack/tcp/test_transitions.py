"""The transition table is RFC 9293's diagram, and no state change goes around it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from netstack.tcp import state as state_module
from netstack.tcp.connection import Connection
from netstack.tcp.segment import ACK, FIN
from netstack.tcp.state import TRANSITIONS, Cause, IllegalTransitionError, State, check_transition, describe
from tests.netstack.tcp.raw import RawPeer
from tests.netstack.tcp.sim import A_ADDR, B_ADDR, Pair, establish

S = State
TCP_SOURCES = Path(__file__).resolve().parents[3] / "netstack" / "tcp"

# RFC 9293 §3.3.2 figure 5, edge by edge: (from, event label, to), written from the RFC, not from the table.
RFC_FIGURE_5 = {
    (S.CLOSED, "passive OPEN", S.LISTEN),
    (S.CLOSED, "active OPEN", S.SYN_SENT),
    (S.LISTEN, "CLOSE", S.CLOSED),
    (S.LISTEN, "rcv SYN", S.SYN_RECEIVED),
    (S.LISTEN, "SEND", S.SYN_SENT),
    (S.SYN_SENT, "rcv SYN", S.SYN_RECEIVED),
    (S.SYN_SENT, "CLOSE", S.CLOSED),
    (S.SYN_SENT, "rcv SYN,ACK", S.ESTABLISHED),
    (S.SYN_RECEIVED, "rcv ACK of SYN", S.ESTABLISHED),
    (S.SYN_RECEIVED, "CLOSE", S.FIN_WAIT_1),
    (S.ESTABLISHED, "CLOSE", S.FIN_WAIT_1),
    (S.ESTABLISHED, "rcv FIN", S.CLOSE_WAIT),
    (S.FIN_WAIT_1, "rcv ACK of FIN", S.FIN_WAIT_2),
    (S.FIN_WAIT_1, "rcv FIN", S.CLOSING),
    (S.FIN_WAIT_2, "rcv FIN", S.TIME_WAIT),
    (S.CLOSE_WAIT, "CLOSE", S.LAST_ACK),
    (S.CLOSING, "rcv ACK of FIN", S.TIME_WAIT),
    (S.LAST_ACK, "rcv ACK of FIN", S.CLOSED),
    (S.TIME_WAIT, "Timeout=2MSL", S.CLOSED),
}
# Note 1: SYN-RECEIVED -> LISTEN on a RST after a passive open. LISTEN is the listener's, which never left it:
# the connection forked from it closes instead, and so does every other state on a RST (note 3).
# Note 2: "a transition from FIN-WAIT-1 to TIME-WAIT if a FIN is received and the local FIN is also acknowledged".
RFC_NOTE_2 = {(S.FIN_WAIT_1, "rcv FIN, ACK of FIN", S.TIME_WAIT)}
# Note 3, §3.10.4 (ABORT: "enter CLOSED state") and §3.10.8 (USER TIMEOUT: "enter the CLOSED state"):
# from every state a connection can be in.
CONNECTION_STATES = set(S) - {S.CLOSED, S.LISTEN}
RFC_TERMINAL = {(s, label, S.CLOSED) for s in CONNECTION_STATES for label in ("rcv RST", "ABORT", "USER TIMEOUT")}


def edges() -> set[tuple[State, str, State]]:
    return {(state, str(cause), target) for state, out in TRANSITIONS.items() for cause, target in out.items()}


def test_table_is_rfc_9293_figure_5_and_its_notes() -> None:
    print(describe())  # the table a reader can see with -s
    table = edges()
    assert table >= RFC_FIGURE_5, f"RFC edges missing: {sorted(RFC_FIGURE_5 - table)}"
    assert table == RFC_FIGURE_5 | RFC_NOTE_2 | RFC_TERMINAL, f"edges not in the RFC: {table - RFC_FIGURE_5}"
    assert describe().count("\n") + 1 == len(table)


def test_every_state_has_its_row_and_a_cause_leads_to_one_state() -> None:
    assert set(TRANSITIONS) == set(State)
    assert all(len(set(out.values())) <= len(out) for out in TRANSITIONS.values())
    assert TRANSITIONS[S.CLOSED].get(Cause.RCV_RST) is None  # nothing leaves CLOSED but an open


def test_the_table_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[S.CLOSED][Cause.RCV_FIN] = S.ESTABLISHED  # type: ignore[index]


def test_check_transition() -> None:
    check_transition(S.ESTABLISHED, Cause.RCV_FIN, S.CLOSE_WAIT)
    with pytest.raises(IllegalTransitionError) as raised:
        check_transition(S.ESTABLISHED, Cause.RCV_FIN, S.TIME_WAIT)
    assert (raised.value.state, raised.value.cause, raised.value.target) == (S.ESTABLISHED, Cause.RCV_FIN,
                                                                              S.TIME_WAIT)
    assert "ESTABLISHED --rcv FIN--> TIME_WAIT" in str(raised.value)


# ---------------------------------------------------------------- nothing goes around _enter


def assignments_to_state() -> Iterator[tuple[str, str, int]]:
    """(file, enclosing function, line) of every assignment to an attribute named `state` or `_state`."""
    for path in sorted(TCP_SOURCES.glob("*.py")):
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            for node in ast.walk(func):
                targets: list[ast.expr] = []
                if isinstance(node, ast.Assign):
                    targets = list(node.targets)
                elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                    targets = [node.target]
                for target in targets:
                    if isinstance(target, ast.Attribute) and target.attr in ("state", "_state"):
                        yield path.name, func.name, target.lineno


def test_only_enter_writes_the_state() -> None:
    writers = {(name, func) for name, func, _line in assignments_to_state()}
    # __init__ sets the initial state; IllegalTransitionError keeps the offending state for the report.
    assert writers == {("tcb.py", "__init__"), ("tcb.py", "_enter"), ("state.py", "__init__")}


def test_state_is_read_only_from_outside() -> None:
    peer = RawPeer()
    conn_id, _iss = peer.accept()
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    with pytest.raises(AttributeError):
        conn.state = S.CLOSED  # type: ignore[misc]
    assert conn.state is S.ESTABLISHED


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Connection, State, Cause, State]]:
    """Every transition `_enter` makes, as (connection, from, cause, to)."""
    log: list[tuple[Connection, State, Cause, State]] = []
    real = Connection._enter

    def spy(self: Connection, state: State, cause: Cause) -> None:
        before = self.state
        real(self, state, cause)
        log.append((self, before, cause, state))

    monkeypatch.setattr(Connection, "_enter", spy)
    return log


def test_a_whole_lifetime_goes_through_enter(taken: list[tuple[Connection, State, Cause, State]]) -> None:
    pair = Pair()
    client, server = establish(pair)
    client_conn, server_conn = pair.a.connection(client), pair.b.connection(server)
    pair.a.close(pair.now, client)
    pair.run_until(pair.now + 1)
    pair.b.close(pair.now, server)
    pair.run_until(pair.now + 2 * pair.a.config.msl + 5)
    client_path = [(c, s) for conn, _f, c, s in taken if conn is client_conn]
    assert client_path == [(Cause.ACTIVE_OPEN, S.SYN_SENT), (Cause.RCV_SYN_ACK, S.ESTABLISHED),
                           (Cause.CLOSE, S.FIN_WAIT_1), (Cause.RCV_ACK_OF_FIN, S.FIN_WAIT_2),
                           (Cause.RCV_FIN, S.TIME_WAIT), (Cause.TIMEOUT_2MSL, S.CLOSED)]
    server_log = [entry for entry in taken if entry[0] is server_conn]
    assert [(f, c, s) for _conn, f, c, s in server_log] == [
        (S.LISTEN, Cause.RCV_SYN, S.SYN_RECEIVED), (S.SYN_RECEIVED, Cause.RCV_ACK_OF_SYN, S.ESTABLISHED),
        (S.ESTABLISHED, Cause.RCV_FIN, S.CLOSE_WAIT), (S.CLOSE_WAIT, Cause.CLOSE, S.LAST_ACK),
        (S.LAST_ACK, Cause.RCV_ACK_OF_FIN, S.CLOSED)]
    assert pair.a.state_of(client) == pair.b.state_of(server) == S.CLOSED


def test_states_seen_from_outside_are_the_ones_enter_made(taken: list[tuple[Connection, State, Cause, State]]) -> None:
    """After every segment, each connection is in the state its last `_enter` put it in: a write around
    `_enter` would show up as a mismatch."""
    pair = Pair()
    client, server = establish(pair)
    pair.b.send(pair.now, server, b"x" * 5000)
    pair.a.shutdown(pair.now, client)
    while pair.step(pair.now + 100):
        for layer in (pair.a, pair.b):
            for conn in layer.by_id.values():
                last = [s for c, _f, _c, s in taken if c is conn]
                assert conn.state is last[-1]


# ---------------------------------------------------------------- an illegal transition is contained


def without(state: State, cause: Cause) -> dict[State, dict[Cause, State]]:
    table = {s: dict(out) for s, out in TRANSITIONS.items()}
    del table[state][cause]
    return table


def test_an_illegal_transition_on_input_is_counted_and_the_connection_keeps_its_state(
        monkeypatch: pytest.MonkeyPatch) -> None:
    peer = RawPeer()
    conn, iss = peer.accept()
    monkeypatch.setattr(state_module, "TRANSITIONS", without(S.ESTABLISHED, Cause.RCV_FIN))
    peer.inject(ACK | FIN, 1001, iss + 1)
    assert peer.layer.stats["internal-error"] == 1
    assert peer.layer.state_of(conn) == S.ESTABLISHED
    monkeypatch.undo()
    peer.out()
    peer.inject(ACK, 1002, iss + 1, b"more")  # the stack carries on; the FIN's octet was consumed
    assert peer.layer.receive(peer.now, conn) == b"more"


def test_an_illegal_transition_on_close_is_counted_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    peer = RawPeer()
    conn, _iss = peer.accept()
    monkeypatch.setattr(state_module, "TRANSITIONS", without(S.ESTABLISHED, Cause.CLOSE))
    peer.layer.close(peer.now, conn)
    peer.layer.shutdown(peer.now, conn)
    assert peer.layer.stats["internal-error"] == 2
    assert peer.layer.state_of(conn) == S.ESTABLISHED


def test_an_illegal_transition_in_a_timer_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    peer = RawPeer()
    conn, iss = peer.accept()
    peer.layer.close(peer.now, conn)
    (fin,) = peer.out()
    peer.inject(ACK | FIN, 1001, fin.seq + 1)
    assert peer.layer.state_of(conn) == S.TIME_WAIT
    monkeypatch.setattr(state_module, "TRANSITIONS", without(S.TIME_WAIT, Cause.TIMEOUT_2MSL))
    peer.advance(2 * peer.layer.config.msl + 1)
    assert peer.layer.stats["internal-error"] >= 1
    assert peer.layer.state_of(conn) == S.TIME_WAIT
    assert iss


def test_a_fin_that_acknowledges_ours_goes_through_fin_wait_2(taken: list[tuple[Connection, State, Cause,
                                                                                 State]]) -> None:
    peer = RawPeer()
    conn_id, _iss = peer.accept()
    peer.layer.close(peer.now, conn_id)
    (fin,) = peer.out()
    peer.inject(ACK | FIN, 1001, fin.seq + 1)
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    assert "TIME_WAIT" in repr(conn)
    assert [(c, s) for who, _f, c, s in taken if who is conn][-3:] == [
        (Cause.CLOSE, S.FIN_WAIT_1), (Cause.RCV_ACK_OF_FIN, S.FIN_WAIT_2), (Cause.RCV_FIN, S.TIME_WAIT)]


# RFC edges this stack never takes, and why (state.py's docstring): listeners are not connections; a CLOSE in
# SYN-RECEIVED waits for the handshake (BSD's TF_NEEDFIN), so it goes through ESTABLISHED; note 2's edge is
# taken as two, the ACK being processed before the FIN.
NEVER_TAKEN = {
    (S.CLOSED, "passive OPEN", S.LISTEN), (S.LISTEN, "CLOSE", S.CLOSED), (S.LISTEN, "SEND", S.SYN_SENT),
    (S.SYN_RECEIVED, "CLOSE", S.FIN_WAIT_1), (S.FIN_WAIT_1, "rcv FIN, ACK of FIN", S.TIME_WAIT),
}


def test_every_other_edge_of_the_diagram_is_taken(taken: list[tuple[Connection, State, Cause, State]]) -> None:
    """An ordinary open and close from each side, a simultaneous open and a simultaneous close together take
    every edge of figure 5 but the ones listed as never taken, with a connect abandoned before its answer: a
    path that stopped using its edge (or took one it should not) fails here."""
    pair = Pair()
    pair.a.close(pair.now, pair.a.connect(pair.now, A_ADDR, B_ADDR, 7))
    client, server = establish(pair)
    pair.a.close(pair.now, client)
    pair.run_until(pair.now + 1)
    pair.b.close(pair.now, server)
    a = pair.a.connect(pair.now, A_ADDR, B_ADDR, 5000, local_port=6000)
    b = pair.b.connect(pair.now, B_ADDR, A_ADDR, 6000, local_port=5000)
    pair.run_until(pair.now + 5)
    assert pair.a.state_of(a) == pair.b.state_of(b) == S.ESTABLISHED
    pair.a.close(pair.now, a)
    pair.b.close(pair.now, b)
    pair.run_until(pair.now + 2 * pair.a.config.msl + 5)
    used = {(before, str(cause), after) for _conn, before, cause, after in taken}
    assert used == RFC_FIGURE_5 - NEVER_TAKEN
