"""The libraries' `logging` records as JSON lines on the console, rate-limited.

Why: the netstack and asyncio are libraries, and report through the standard `logging` module: the
netstack's unexpected exceptions (netstack/faults.py: a traceback once per place), an IPv6 address another
node holds (duplicate address detection), asyncio's exceptions that no task retrieved. With no handler,
Python's last-resort handler wrote them to stderr as plain text, lines that the test harness and an
operator's tools, reading JSON lines, passed over. While the appliance runs, each record of WARNING or above
becomes one `library` line: its level, its logger, its message, and the exception's type and traceback when
it carries one.

Why a rate: a peer can cause these records (a node on the link that claims every address we try, a bug
reachable from the wire), and the console is a slow serial line (about 11 KB/s) whose blocked write stalls
the event loop. At most `log_library_lines_per_second` lines are printed; the rest are counted, and the next
line printed says how many (`suppressed`), as the connection lines do (appliance.counted_lines). When no
record follows a burst, the count is not left unsaid: once the rate allows a line again, a line of its own
carries it (`flush`, which the handler arranges on the event loop when it first counts a record), and
closing the handler prints what is still counted. A message and a traceback are each cut to
`log_library_text_chars` (a traceback keeps its end, where the exception was raised).

Why a fault's first traceback is never dropped: it is the evidence of a bug reachable from the wire, and the
netstack logs each place's once (FaultLog). The first record from each place an exception was raised (its
type, file and line: `netstack.faults.fault_site`, the place FaultLog counts) prints its traceback whatever
the rate, for `log_library_traceback_sites` places; a repeat, or a place beyond those, is rate-limited like
any record and printed without its traceback (the `error` field still names the exception).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from appliance.counted_lines import CountedLines, Schedule
from appliance.log import JsonLog, Value
from netstack.faults import fault_site


class LibraryLog(logging.Handler):
    """A `logging` handler that writes each record as a `library` line of the appliance's log.

    `schedule`, if given, runs `flush` once the rate allows a line after records were counted and not
    printed; without it, the count waits for the next line or for `close`."""

    def __init__(self, log: JsonLog, *, lines_per_second: float, text_chars: int, traceback_sites: int,
                 monotonic: Callable[[], float], schedule: Schedule | None = None) -> None:
        super().__init__(logging.WARNING)
        self._log = log
        self._text_chars = text_chars
        self._traceback_sites = traceback_sites
        self._monotonic = monotonic
        self._sites: set[tuple[str, str, int]] = set()  # the places whose traceback has been printed
        # `handle` calls `emit` under the handler's own lock; the flush, which may come from the loop's thread,
        # and the close take the same lock.
        self._lines = CountedLines(lines_per_second, clock=monotonic, say=self._print_count, schedule=schedule,
                                   lock=self.lock)

    @property
    def suppressed(self) -> int:
        """Records not printed since the last line."""
        return self._lines.suppressed

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._print(record)
        except Exception:  # noqa: BLE001 - a library's logging call must not raise into the library
            self.handleError(record)

    def _print(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        first = error is not None and self._first_from_its_place(error)
        suppressed = self._lines.take() if first else self._lines.admit(self._monotonic())
        if suppressed is None:
            return
        fields: dict[str, Value] = {
            "level": record.levelname.lower(), "logger": record.name,
            "message": _message(record)[: self._text_chars], "suppressed": suppressed,
        }
        if error is not None:
            fields["error"] = type(error).__qualname__
            if first:
                fields["traceback"] = _tail("".join(traceback.format_exception(error)), self._text_chars)
        self._log.event("library", **fields)

    def flush(self) -> None:
        """Print the count of records not printed, in a line of its own, if the rate allows one now (see
        CountedLines.flush, which a Schedule runs)."""
        self._lines.flush()

    def close(self) -> None:
        """Print what is still counted, whatever the rate, then close. A handler still routed goes on
        printing (logging's `Handler.close` does not detach it): `route_library_logs`' undo detaches first."""
        self._lines.close()
        super().close()

    def _print_count(self, count: int) -> None:
        self._log.event("library", level="warning", logger=__name__,
                        message="records not printed (log_library_lines_per_second)", suppressed=count)

    def _first_from_its_place(self, error: BaseException) -> bool:
        """Whether `error` is the first from its place to be printed, while places are still being kept."""
        site = fault_site(error)
        if site in self._sites or len(self._sites) >= self._traceback_sites:
            return False
        self._sites.add(site)
        return True


def _message(record: logging.LogRecord) -> str:
    """The record's message; its unformatted text when its arguments do not fit it or cannot be printed (a
    library's bug must not cost the line, nor raise inside the logging call that reported something else)."""
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - whatever an argument's __str__ raises
        return record.msg if isinstance(record.msg, str) else f"<a message of type {type(record.msg).__name__}>"


def _tail(text: str, chars: int) -> str:
    """The last `chars` characters of `text` (none for 0: `text[-0:]` would be all of it)."""
    return text[max(0, len(text) - chars) :]


def route_library_logs(handler: LibraryLog, logger: logging.Logger | None = None) -> Callable[[], None]:
    """Send the records of `logger` (the root: every library's) to `handler`; returns what undoes it (and
    closes the handler, which prints any count still unsaid), for the end of a run and for a process that
    runs the appliance more than once (the tests)."""
    target = logger if logger is not None else logging.getLogger()
    target.addHandler(handler)

    def undo() -> None:
        target.removeHandler(handler)
        handler.close()

    return undo
