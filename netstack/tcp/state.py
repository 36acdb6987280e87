"""The TCP connection states and the transitions between them, as data (RFC 9293 §3.3.2, figure 5).

Why a table: a reader can print it and a test can compare it with the RFC's diagram edge by edge, and a
state change that is not in it is a bug that shows up as a typed error (`IllegalTransitionError`) at the place it
happens, not as a connection quietly wandering into a state no code expects. Every state change of a
connection goes through `Connection._enter`, which checks it here.

The table is keyed like h11's: state -> {cause -> next state}. A cause is the RFC diagram's event label
("rcv SYN", "CLOSE", ...). Two notes of the RFC's figure add edges the picture omits: FIN-WAIT-1 goes straight
to TIME-WAIT when a FIN arrives with the ACK of ours (note 2), and every state reaches CLOSED by a RST, an
ABORT or a timeout (note 3, §3.10.7.4, §3.10.4, §3.10.8). LISTEN belongs to listeners, which are not
connections here: a passive open forks a connection out of LISTEN (BSD's syncache does the same), and the
RFC's SYN-RECEIVED -> LISTEN on a RST (note 1) is, for the forked connection, SYN-RECEIVED -> CLOSED.

Some edges are in the table because the RFC has them, but this stack never takes them (a test lists them):
LISTEN's own (listeners are not connections); SYN-RECEIVED -> FIN-WAIT-1 on CLOSE, because the FIN waits
for the handshake to complete (as BSD's TF_NEEDFIN), so the connection goes through ESTABLISHED; and note 2's,
because a segment's ACK is processed before its FIN (§3.10.7.4's fifth step before its eighth), so a FIN that
acknowledges ours goes FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class State(enum.IntEnum):
    SYN_SENT = 1
    SYN_RECEIVED = 2
    ESTABLISHED = 3
    FIN_WAIT_1 = 4
    FIN_WAIT_2 = 5
    CLOSE_WAIT = 6
    CLOSING = 7
    LAST_ACK = 8
    TIME_WAIT = 9
    CLOSED = 10
    LISTEN = 11


class Cause(enum.StrEnum):
    """What moves a connection from one state to another: the labels of RFC 9293's figure 5."""

    PASSIVE_OPEN = "passive OPEN"
    ACTIVE_OPEN = "active OPEN"
    SEND = "SEND"
    CLOSE = "CLOSE"
    RCV_SYN = "rcv SYN"
    RCV_SYN_ACK = "rcv SYN,ACK"
    RCV_ACK_OF_SYN = "rcv ACK of SYN"
    RCV_FIN = "rcv FIN"
    RCV_ACK_OF_FIN = "rcv ACK of FIN"
    RCV_FIN_ACK_OF_FIN = "rcv FIN, ACK of FIN"   # figure 5, note 2 (taken here as two: see below)
    TIMEOUT_2MSL = "Timeout=2MSL"
    RCV_RST = "rcv RST"                          # note 1 and note 3
    ABORT = "ABORT"                              # §3.10.4; also the stack deleting a TCB (TIME-WAIT recycling)
    TIMEOUT = "USER TIMEOUT"                     # §3.10.8; connect, retransmission, keepalive, idle timeouts


# Causes that end a connection from any state but CLOSED and LISTEN.
TERMINAL_CAUSES = (Cause.RCV_RST, Cause.ABORT, Cause.TIMEOUT)

_DIAGRAM: dict[State, dict[Cause, State]] = {
    State.CLOSED: {Cause.PASSIVE_OPEN: State.LISTEN, Cause.ACTIVE_OPEN: State.SYN_SENT},
    State.LISTEN: {Cause.RCV_SYN: State.SYN_RECEIVED, Cause.SEND: State.SYN_SENT, Cause.CLOSE: State.CLOSED},
    State.SYN_SENT: {Cause.RCV_SYN: State.SYN_RECEIVED, Cause.RCV_SYN_ACK: State.ESTABLISHED,
                     Cause.CLOSE: State.CLOSED},
    State.SYN_RECEIVED: {Cause.RCV_ACK_OF_SYN: State.ESTABLISHED, Cause.CLOSE: State.FIN_WAIT_1},
    State.ESTABLISHED: {Cause.CLOSE: State.FIN_WAIT_1, Cause.RCV_FIN: State.CLOSE_WAIT},
    State.FIN_WAIT_1: {Cause.RCV_ACK_OF_FIN: State.FIN_WAIT_2, Cause.RCV_FIN: State.CLOSING,
                       Cause.RCV_FIN_ACK_OF_FIN: State.TIME_WAIT},
    State.FIN_WAIT_2: {Cause.RCV_FIN: State.TIME_WAIT},
    State.CLOSE_WAIT: {Cause.CLOSE: State.LAST_ACK},
    State.CLOSING: {Cause.RCV_ACK_OF_FIN: State.TIME_WAIT},
    State.LAST_ACK: {Cause.RCV_ACK_OF_FIN: State.CLOSED},
    State.TIME_WAIT: {Cause.TIMEOUT_2MSL: State.CLOSED},
}


def _with_terminal_edges(diagram: dict[State, dict[Cause, State]]) -> Mapping[State, Mapping[Cause, State]]:
    table: dict[State, Mapping[Cause, State]] = {}
    for state, edges in diagram.items():
        full = dict(edges)
        if state not in (State.CLOSED, State.LISTEN):
            full.update(dict.fromkeys(TERMINAL_CAUSES, State.CLOSED))
        table[state] = MappingProxyType(full)
    return MappingProxyType(table)


TRANSITIONS: Mapping[State, Mapping[Cause, State]] = _with_terminal_edges(_DIAGRAM)

SYNCHRONIZED = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSE_WAIT, State.CLOSING,
                          State.LAST_ACK, State.TIME_WAIT})
RECEIVES_DATA = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2})
CAN_SEND = frozenset({State.ESTABLISHED, State.CLOSE_WAIT})
# States in which our FIN has been queued: the user can write no more.
FIN_QUEUED_STATES = frozenset({State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSING, State.LAST_ACK, State.TIME_WAIT})
# States in which an orphan (the application closed) still has something to send, its FIN at least; its whole
# stay in them is bounded by `TcpConfig.orphan_timeout` (`Connection._phase_ended`).
ORPHAN_STATES = frozenset({State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK})


class IllegalTransitionError(RuntimeError):
    """A state change the table does not allow: a bug in this package, never a peer's doing. It propagates to
    the layer's fault containment (`TcpLayer.internal_error`), which counts it and logs it once per place;
    the connection keeps the state it was in."""

    def __init__(self, state: State, cause: Cause, target: State) -> None:
        super().__init__(f"{state.name} --{cause}--> {target.name} is not in TRANSITIONS")
        self.state = state
        self.cause = cause
        self.target = target


def check_transition(state: State, cause: Cause, target: State) -> None:
    """Raise `IllegalTransitionError` unless `cause` takes `state` to `target`."""
    if TRANSITIONS[state].get(cause) is not target:
        raise IllegalTransitionError(state, cause, target)


def describe() -> str:
    """The table as text, one edge a line: what a reader (or a failing test) prints."""
    return "\n".join(f"{state.name:>12} --{cause}--> {target.name}"
                     for state, edges in TRANSITIONS.items() for cause, target in edges.items())


__all__ = ["CAN_SEND", "FIN_QUEUED_STATES", "ORPHAN_STATES", "RECEIVES_DATA", "SYNCHRONIZED", "TRANSITIONS", "Cause",
           "IllegalTransitionError", "State", "check_transition", "describe"]
