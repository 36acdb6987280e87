"""The libraries' `logging` records as JSON lines on the console, rate-limited.

Why: the netstack and asyncio are libraries, and report through the standard `logging` module: the
netstack's unexpected exceptions (netstack/faults.py: a traceback once per place), an IPv6 address another
node holds (duplicate address detection), asyncio's exceptions that no task retrieved. With no handler,
Python's last-resort handler wrote them to stderr as plain text: the only lines on the console that were not
JSON, which the test harness and an operator's tools, reading JSON lines, passed over. Here each record of
WARNING or above becomes one `library` line: its level, its logger, its message, and the exception's type
and traceback when it carries one.

Why a rate: a peer can cause these records (a node on the link that claims every address we try, a bug
reachable from the wire), and the console is a slow serial line whose blocked write stalls the event loop.
At most `log_library_lines_per_second` are printed; the rest are counted, and the next line printed says
how many (`suppressed`), as the connection lines do. A message and a traceback are each cut to
`log_library_text_chars` (a traceback keeps its end, where the exception was raised).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from appliance.log import JsonLog, Value
from netstack.ratelimit import per_second


class LibraryLog(logging.Handler):
    """A `logging` handler that writes each record as a `library` line of the appliance's log."""

    def __init__(self, log: JsonLog, *, lines_per_second: float, text_chars: int,
                 monotonic: Callable[[], float]) -> None:
        super().__init__(logging.WARNING)
        self._log = log
        self._bucket = per_second(lines_per_second)
        self._text_chars = text_chars
        self._monotonic = monotonic
        self.suppressed = 0  # records not printed since the last line; guarded by the handler's own lock

    def emit(self, record: logging.LogRecord) -> None:  # called by `handle`, under the handler's lock
        if not self._bucket.allow(self._monotonic()):
            self.suppressed += 1
            return
        try:
            self._print(record)
        except Exception:  # noqa: BLE001 - a library's logging call must not raise into the library
            self.handleError(record)

    def _print(self, record: logging.LogRecord) -> None:
        fields: dict[str, Value] = {
            "level": record.levelname.lower(), "logger": record.name,
            "message": _message(record)[: self._text_chars], "suppressed": self.suppressed,
        }
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            fields["error"] = type(error).__qualname__
            fields["traceback"] = "".join(traceback.format_exception(error))[-self._text_chars :]
        self.suppressed = 0
        self._log.event("library", **fields)


def _message(record: logging.LogRecord) -> str:
    """The record's message; its unformatted text when its arguments do not fit it (a library's bug must not
    cost the line, nor raise inside the logging call that reported something else)."""
    try:
        return record.getMessage()
    except (TypeError, ValueError, KeyError):
        return str(record.msg)


def route_library_logs(handler: LibraryLog, logger: logging.Logger | None = None) -> Callable[[], None]:
    """Send the records of `logger` (the root: every library's) to `handler`; returns what undoes it, for a
    process that runs the appliance more than once (the tests)."""
    target = logger if logger is not None else logging.getLogger()
    target.addHandler(handler)
    return lambda: target.removeHandler(handler)
