"""Unexpected exceptions inside the stack: always counted, logged with their traceback once per place.

Why: every byte the stack handles comes from an attacker, so a bug reachable from the wire must neither kill
the event loop (one bad frame would stop the appliance) nor pass unnoticed (a swallowed exception hides the
bug). Why once per place: an attacker who finds such a bug could otherwise make us write a traceback per
packet; after the first, the counter still tells how often it happens.
"""

from __future__ import annotations

import logging
import traceback

from netstack.limits import FAULT_SITES_LOGGED


def fault_site(error: BaseException) -> tuple[str, str, int]:
    """Where `error` comes from, as a place to log once: its type, and the file and line of the last frame of
    its traceback (("?", 0) without one)."""
    frames = traceback.extract_tb(error.__traceback__)
    where = (frames[-1].filename, frames[-1].lineno or 0) if frames else ("?", 0)
    return (type(error).__qualname__, *where)


class FaultLog:
    """Remembers which (exception type, file, line) sites have been logged, up to FAULT_SITES_LOGGED."""

    __slots__ = ("_full", "_logger", "_seen")

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._seen: set[tuple[str, str, int]] = set()
        self._full = False

    def report(self, what: str, error: BaseException) -> None:
        """Log `error` with its traceback unless the same failure has been logged before."""
        site = fault_site(error)
        if site in self._seen:
            return
        if len(self._seen) >= FAULT_SITES_LOGGED:
            if not self._full:
                self._full = True
                self._logger.error("%s: %r; from now on new failures are only counted", what, error)
            return
        self._seen.add(site)
        self._logger.error("%s (further failures at this place are only counted)", what, exc_info=error)
