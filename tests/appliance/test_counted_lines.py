"""CountedLines on its own (its two users' tests, test_library_log and test_service, hold the lines they print):
what `admit` and `take` hand back, and a Schedule that cannot run."""

from __future__ import annotations

from appliance.counted_lines import CountedLines, on_running_loop


def test_admit_hands_the_count_to_the_next_line_allowed_and_take_to_a_line_printed_anyway() -> None:
    said: list[int] = []
    lines = CountedLines(1.0, clock=lambda: 0.0, say=said.append)
    assert lines.admit(0.0) == 0  # the burst's one line
    assert (lines.admit(0.0), lines.admit(0.5)) == (None, None)  # counted
    assert lines.take() == 2  # a line printed whatever the rate carries them
    assert lines.admit(0.6) is None  # the bucket still refills from 0.5 (half a token at most)
    assert lines.admit(1.6) == 1
    lines.close()
    assert said == []  # nothing left to say: every count was carried


def test_without_a_loop_nothing_is_arranged_and_close_says_the_count() -> None:
    said: list[int] = []
    lines = CountedLines(1.0, clock=lambda: 0.0, say=said.append, schedule=on_running_loop)
    lines.admit(0.0)
    assert lines.admit(0.0) is None  # on_running_loop raises RuntimeError here: counted all the same
    lines.close()
    lines.close()
    assert said == [1]
