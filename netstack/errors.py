"""The one exception type codecs raise: it carries the named reason the stack counts when it drops input."""

from __future__ import annotations

from netstack.reasons import Drop


class MalformedError(Exception):
    """Input that fails an integrity, parse or sanity check. Never escapes Stack.frame_received."""

    def __init__(self, reason: Drop, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
