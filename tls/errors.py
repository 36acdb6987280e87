"""The one exception protocol code raises: it names the failure category to record; the alert to send
follows from the category (`tls.alerts.ALERT_OF`), never from the raise site.

Every refusal in the engine is a `ProtocolError`; anything else escaping a handler is a bug, which the
engine still turns into an internal_error refusal rather than an exception in its caller.
"""

from __future__ import annotations

from outcomes.category import Category
from tls.alerts import ALERT_OF


class ProtocolError(Exception):
    """The peer broke the protocol or our policy: record `category`, send its alert, close."""

    def __init__(self, category: Category, reason: str) -> None:
        alert = ALERT_OF[category]
        super().__init__(f"{alert.name.lower()} ({category}): {reason}")
        self.alert = alert
        self.category = category
        self.reason = reason


def decode_error(reason: str) -> ProtocolError:
    return ProtocolError(Category.DECODE_ERROR, reason)


def unexpected(reason: str) -> ProtocolError:
    return ProtocolError(Category.UNEXPECTED_MESSAGE, reason)


def illegal(reason: str) -> ProtocolError:
    return ProtocolError(Category.ILLEGAL_PARAMETER, reason)


class StateError(Exception):
    """The local application called the engine at the wrong time (e.g. sending data before the handshake)."""


class InvariantError(Exception):
    """An invariant of the engine itself failed (a bug, never the peer's doing); `receive_data` turns it
    into an internal_error refusal like any other exception from a handler."""
