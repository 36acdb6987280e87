"""The one exception protocol code raises: it carries the alert to send and the failure category to record.

Every refusal in the engine is a `ProtocolError`; anything else escaping the engine is a bug.
"""

from __future__ import annotations

from outcomes.category import Category
from tls.alerts import AlertDescription


class ProtocolError(Exception):
    """The peer broke the protocol or our policy: send `alert`, record `category`, close."""

    def __init__(self, alert: AlertDescription, category: Category, reason: str) -> None:
        super().__init__(f"{alert.name.lower()} ({category}): {reason}")
        self.alert = alert
        self.category = category
        self.reason = reason


def decode_error(reason: str) -> ProtocolError:
    return ProtocolError(AlertDescription.DECODE_ERROR, Category.DECODE_ERROR, reason)


def unexpected(reason: str) -> ProtocolError:
    return ProtocolError(AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE, reason)


def illegal(reason: str, category: Category = Category.ILLEGAL_PARAMETER) -> ProtocolError:
    return ProtocolError(AlertDescription.ILLEGAL_PARAMETER, category, reason)


class StateError(Exception):
    """The local application called the engine at the wrong time (e.g. sending data before the handshake)."""
