"""Unexpected exceptions inside the stack: always counted, logged with their traceback once per place.

Why: every byte the stack handles comes from an attacker, so a bug reachable from the wire must neither kill
the event loop (one bad frame would stop the appliance) nor pass unnoticed (a swallowed exception hides the
bug). Why once per place: an attacker who finds such a bug could otherwise make us write a traceback per
packet; after the first, the counter still tells how often it happens.
"""

from __future__ import annotations

import logging

from netstack.limits import FAULT_SITES_LOGGED


def fault_site(error: BaseException) -> tuple[str, str, int]:
    """Where `error` comes from, as a place to log once: its type, and the file and line of the last frame of
    its traceback (("?", 0) without one). Read from the traceback's last link, not `traceback.extract_tb`,
    which also looks up every frame's source line (a stat per frame through linecache, for each failure a
    peer can repeat, and only to be thrown away here)."""
    tb = error.__traceback__
    if tb is None:
        return (type(error).__qualname__, "?", 0)
    while tb.tb_next is not None:
        tb = tb.tb_next
    return (type(error).__qualname__, tb.tb_frame.f_code.co_filename, tb.tb_lineno or 0)


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
