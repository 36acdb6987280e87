"""The libraries' logging records as JSON lines (appliance.library_log)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Callable, Iterator

import pytest

from appliance.counted_lines import FLUSH_TRIES, Schedule, on_loop
from appliance.library_log import LibraryLog, route_library_logs
from appliance.log import JsonLog
from netstack.faults import FaultLog
from tests import virtual_time


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger of its own, outside logging's registry: the test runner's handlers stay out of it, and it out of
    theirs."""
    logger = logging.Logger("pinata-test-library-log", logging.DEBUG)
    logger.propagate = False
    yield logger
    logger.handlers.clear()


class Timers:
    """A Schedule that keeps what it was asked to run, and when (on `clock`), until `run_due`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.pending: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay: float, function: Callable[[], None]) -> None:
        self.pending.append((self.clock.now + delay, function))

    def run_due(self) -> None:
        due = [function for at, function in self.pending if at <= self.clock.now]
        self.pending = [(at, function) for at, function in self.pending if at > self.clock.now]
        for function in due:
            function()


def _routed(logger: logging.Logger, rate: float = 5.0, chars: int = 2000, sites: int = 64,
            *, schedule: Schedule | None = None, clock: Clock | None = None) -> tuple[io.StringIO, Clock, LibraryLog]:
    stream, clock = io.StringIO(), clock or Clock()
    handler = LibraryLog(JsonLog(stream, clock=clock), lines_per_second=rate, text_chars=chars,
                         traceback_sites=sites, monotonic=clock, schedule=schedule)
    route_library_logs(handler, logger)
    return stream, clock, handler


def _timed(logger: logging.Logger, rate: float) -> tuple[io.StringIO, Clock, LibraryLog, Timers]:
    """As `_routed`, with the flushes it arranges kept in Timers on the same clock."""
    clock = Clock()
    timers = Timers(clock)
    stream, _, handler = _routed(logger, rate, schedule=timers, clock=clock)
    return stream, clock, handler, timers


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _raise_in_parser() -> None:
    raise ValueError("bad option length")


def _raise_elsewhere() -> None:
    raise ValueError("bad checksum")


def _fault(logger: logging.Logger, raiser: Callable[[], None]) -> None:
    try:
        raiser()
    except ValueError:
        logger.exception("frame handling failed")


def test_a_fault_with_its_traceback_is_one_json_line(logger: logging.Logger) -> None:
    stream, _, _ = _routed(logger)
    try:
        _raise_in_parser()
    except ValueError as exc:
        FaultLog(logger).report("frame handling failed", exc)
    [line] = _lines(stream)
    assert line["event"] == "library"
    assert line["level"] == "error"
    assert line["logger"] == "pinata-test-library-log"
    assert line["message"] == "frame handling failed (further failures at this place are only counted)"
    assert line["error"] == "ValueError"
    assert isinstance(line["traceback"], str)
    assert "_raise_in_parser" in line["traceback"]
    assert line["traceback"].rstrip().endswith("ValueError: bad option length")
    assert line["suppressed"] == 0


def test_a_warning_is_a_line_without_a_traceback(logger: logging.Logger) -> None:
    stream, _, _ = _routed(logger)
    logger.warning("IPv6 address %s is in use by another node", "fe80::1")
    [line] = _lines(stream)
    assert (line["level"], line["message"]) == ("warning", "IPv6 address fe80::1 is in use by another node")
    assert "traceback" not in line
    assert "error" not in line


def test_below_warning_nothing_is_printed(logger: logging.Logger) -> None:
    stream, _, _ = _routed(logger)
    logger.info("routine")
    logger.debug("detail")
    assert stream.getvalue() == ""


def test_beyond_the_rate_records_are_counted_and_the_next_line_says_how_many(logger: logging.Logger) -> None:
    stream, clock, handler = _routed(logger, rate=2.0)
    for n in range(7):
        logger.warning("duplicate address %d", n)
    assert [line["message"] for line in _lines(stream)] == ["duplicate address 0", "duplicate address 1"]
    assert handler.suppressed == 5
    clock.now += 1.0  # a second later: two more tokens
    logger.warning("after the pause")
    last = _lines(stream)[-1]
    assert (last["message"], last["suppressed"]) == ("after the pause", 5)
    assert handler.suppressed == 0


def test_message_and_traceback_are_cut_the_traceback_keeping_its_end(logger: logging.Logger) -> None:
    stream, _, _ = _routed(logger, chars=120)
    try:
        raise RuntimeError("x" * 500)
    except RuntimeError:
        logger.exception("m" * 500)
    [line] = _lines(stream)
    assert line["message"] == "m" * 120
    assert isinstance(line["traceback"], str)
    assert len(line["traceback"]) == 120
    assert line["traceback"].endswith("x" * 100 + "\n")


def test_a_record_whose_arguments_do_not_fit_its_message_still_makes_a_line(logger: logging.Logger) -> None:
    stream, _, _ = _routed(logger)
    # A library's bug: the format and its argument disagree (made by hand: the linter refuses the call).
    logger.handle(logging.LogRecord(logger.name, logging.WARNING, __file__, 1, "%d addresses from %s",
                                    ("not a number",), None))
    [line] = _lines(stream)
    assert line["message"] == "%d addresses from %s"


def test_unrouting_stops_the_lines(logger: logging.Logger) -> None:
    stream, clock = io.StringIO(), Clock()
    unroute = route_library_logs(LibraryLog(JsonLog(stream, clock=clock), lines_per_second=5.0, text_chars=100,
                                            traceback_sites=4, monotonic=clock), logger)
    unroute()
    logger.warning("after")
    assert stream.getvalue() == ""
    assert logger.handlers == []


def test_the_root_logger_is_the_default() -> None:
    handler = LibraryLog(JsonLog(io.StringIO()), lines_per_second=1.0, text_chars=10, traceback_sites=1,
                         monotonic=Clock())
    unroute = route_library_logs(handler)
    try:
        assert handler in logging.getLogger().handlers
    finally:
        unroute()
    assert handler not in logging.getLogger().handlers


def test_a_places_first_traceback_prints_whatever_the_rate_and_its_repeats_do_not(logger: logging.Logger) -> None:
    """The evidence of a bug reachable from the wire is not lost to a burst of warnings; and a fault that
    repeats (once per connection, say) prints its traceback once, its repeats rate-limited without it."""
    stream, clock, handler = _routed(logger, rate=1.0)
    logger.warning("the burst's first")  # takes the one token
    for _ in range(5):
        logger.warning("burst")
    _fault(logger, _raise_in_parser)  # the bucket is empty: printed all the same, with its traceback
    _fault(logger, _raise_in_parser)  # the same place again: rate-limited (and dropped now)
    _fault(logger, _raise_elsewhere)  # another place: its own first traceback
    lines = _lines(stream)
    assert [line["message"] for line in lines] == ["the burst's first", "frame handling failed",
                                                   "frame handling failed"]
    assert ["_raise_in_parser" in str(lines[1]["traceback"]), "_raise_elsewhere" in str(lines[2]["traceback"])] == [
        True, True]
    assert [lines[1]["suppressed"], lines[2]["suppressed"]] == [5, 1]  # the repeat, counted
    assert handler.suppressed == 0
    clock.now += 1.0
    _fault(logger, _raise_in_parser)
    repeat = _lines(stream)[-1]
    assert (repeat["message"], repeat["error"]) == ("frame handling failed", "ValueError")
    assert "traceback" not in repeat


def test_places_beyond_the_kept_ones_are_rate_limited_without_their_traceback(logger: logging.Logger) -> None:
    stream, _, _ = _routed(logger, rate=1.0, sites=1)
    _fault(logger, _raise_in_parser)  # the one place kept: printed outside the rate, the token unspent
    _fault(logger, _raise_elsewhere)  # a second place: no room to keep it, so it takes the token
    _fault(logger, _raise_elsewhere)  # and this one finds none
    lines = _lines(stream)
    assert len(lines) == 2
    assert "traceback" in lines[0]
    assert "traceback" not in lines[1]
    assert lines[1]["error"] == "ValueError"


def test_no_characters_means_none(logger: logging.Logger) -> None:
    stream, _, _ = _routed(logger, chars=0)
    _fault(logger, _raise_in_parser)
    [line] = _lines(stream)
    assert (line["message"], line["traceback"]) == ("", "")


def test_an_argument_that_cannot_be_printed_costs_the_formatting_not_the_line(logger: logging.Logger) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    stream, _, _ = _routed(logger)
    logger.warning("peer %s", Unprintable())
    [line] = _lines(stream)
    assert line["message"] == "peer %s"


def test_a_count_no_later_record_carries_gets_a_line_of_its_own_once_the_rate_allows(logger: logging.Logger) -> None:
    stream, clock, handler, timers = _timed(logger, rate=2.0)
    for n in range(7):
        logger.warning("duplicate address %d", n)
    assert len(timers.pending) == 1  # one flush arranged for the five counted, not one each
    assert timers.pending[0][0] == clock.now + 0.5  # when the bucket has a token again
    clock.now += 0.5
    timers.run_due()
    last = _lines(stream)[-1]
    assert (last["logger"], last["suppressed"]) == ("appliance.library_log", 5)
    assert "error" not in last
    assert handler.suppressed == 0
    assert timers.pending == []  # nothing left to say: nothing arranged


def test_a_flush_that_finds_no_token_tries_again_and_a_record_first_takes_the_count(logger: logging.Logger) -> None:
    stream, clock, handler, timers = _timed(logger, rate=1.0)
    logger.warning("first")
    logger.warning("counted")
    timers.pending.clear()
    handler.flush()  # no token yet: no line, and a flush arranged again
    assert len(_lines(stream)) == 1
    assert handler.suppressed == 1
    assert [at for at, _ in timers.pending] == [clock.now + 1.0]
    clock.now += 1.0
    logger.warning("later")  # the record's own line carries the count
    assert (_lines(stream)[-1]["message"], _lines(stream)[-1]["suppressed"]) == ("later", 1)
    timers.run_due()  # the arranged flushes find nothing to say, and arrange nothing more
    assert len(_lines(stream)) == 2
    assert timers.pending == []
    clock.now += 1.0
    logger.warning("second burst, printed")
    logger.warning("second burst, counted")  # a new burst arranges its own flush
    assert len(timers.pending) == 1
    clock.now += 1.0
    timers.run_due()
    assert _lines(stream)[-1]["suppressed"] == 1
    assert _lines(stream)[-1]["logger"] == "appliance.library_log"


def test_flushes_that_never_find_a_token_stop_after_flush_tries(logger: logging.Logger) -> None:
    """A Schedule on another clock than the rate's (here the rate's stands still): the flushes give up after
    FLUSH_TRIES, instead of arranging one another for ever; close still says the count."""
    stream, _, handler, timers = _timed(logger, rate=1.0)
    logger.warning("printed")
    logger.warning("counted")
    runs = 0
    while timers.pending:
        timers.pending = [(0.0, function) for _, function in timers.pending]  # due at once on its own clock
        timers.run_due()
        runs += 1
    assert runs == 1 + FLUSH_TRIES
    assert len(_lines(stream)) == 1
    handler.close()
    assert _lines(stream)[-1]["suppressed"] == 1


def test_a_schedule_that_runs_the_flush_inline_does_not_recurse(logger: logging.Logger) -> None:
    calls: list[float] = []

    def inline(delay: float, function: Callable[[], None]) -> None:
        calls.append(delay)
        function()

    _, _, handler = _routed(logger, rate=1.0, schedule=inline)
    logger.warning("printed")
    logger.warning("counted")
    assert len(calls) <= 1 + FLUSH_TRIES
    assert handler.suppressed == 1


def test_closing_prints_what_is_still_counted_whatever_the_rate(logger: logging.Logger) -> None:
    stream, _, handler = _routed(logger, rate=1.0)
    logger.warning("printed")
    logger.warning("counted")
    logger.warning("counted too")
    handler.close()
    last = _lines(stream)[-1]
    assert (last["logger"], last["suppressed"]) == ("appliance.library_log", 2)
    handler.close()  # a second close has nothing more to say
    assert len(_lines(stream)) == 2


def test_undoing_the_route_closes_the_handler_and_says_the_count(logger: logging.Logger) -> None:
    stream, clock = io.StringIO(), Clock()
    handler = LibraryLog(JsonLog(stream, clock=clock), lines_per_second=1.0, text_chars=100, traceback_sites=1,
                         monotonic=clock)
    undo = route_library_logs(handler, logger)
    logger.warning("printed")
    logger.warning("counted")
    undo()
    assert handler not in logger.handlers
    assert _lines(stream)[-1]["suppressed"] == 1


def test_a_flush_arranged_on_a_closed_loop_leaves_the_count_to_close(logger: logging.Logger,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    stream, _, handler = _routed(logger, rate=1.0, schedule=on_loop(loop))
    logger.warning("printed")
    logger.warning("counted")  # the loop refuses the timer: the record is still counted, nothing raised
    assert handler.suppressed == 1
    handler.close()
    assert _lines(stream)[-1]["suppressed"] == 1
    assert capsys.readouterr().err == ""  # no "--- Logging error ---" from the refused timer


def test_on_loop_flushes_on_the_loop_a_line_s_time_after_records_from_another_thread(logger: logging.Logger) -> None:
    """As in the appliance: the rate, the log's times and the timer all on the loop's clock (virtual here),
    the records logged from a worker thread."""
    async def main() -> tuple[float, list[dict[str, object]]]:
        loop = asyncio.get_running_loop()
        loop.set_debug(True)  # so that a timer set from the worker thread, not through the loop, would raise
        stream = io.StringIO()
        handler = LibraryLog(JsonLog(stream, clock=loop.time), lines_per_second=2.0, text_chars=100,
                             traceback_sites=1, monotonic=loop.time, schedule=on_loop(loop))
        route_library_logs(handler, logger)
        burst_at = loop.time()

        def burst() -> None:
            for n in range(5):  # two printed (the bucket's burst), three counted
                logger.warning("burst %d", n)

        worker = threading.Thread(target=burst)
        worker.start()
        worker.join()  # the loop is held meanwhile: what the thread hands it waits, and the clock stands still
        await asyncio.sleep(10)  # virtual: the flush fires at its own deadline on the way
        return burst_at, _lines(stream)

    burst_at, lines = virtual_time.run(main())
    assert [line["suppressed"] for line in lines] == [0, 0, 3]
    assert lines[-1]["logger"] == "appliance.library_log"
    assert lines[-1]["t"] == round(burst_at + 0.5, 3)  # one line's time at 2 per second, not at once
