"""appliance.in_thread: a job on a thread of its own, its name and priority, and every way it can end."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from appliance import alternates
from appliance.in_thread import ThreadDiedError, made_in_thread


def test_without_a_nice_the_thread_keeps_the_process_priority_and_its_name() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)

    def observe() -> tuple[str, int]:
        return threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert asyncio.run(made_in_thread(observe, None, name="pinata-boot-pki")) == ("pinata-boot-pki", base)


def test_a_thread_that_ends_without_an_exception_to_hand_over_is_reported_all_the_same() -> None:
    """SystemExit in a thread ends it quietly; the awaiting task must not wait for it forever."""
    def ends() -> int:
        raise SystemExit

    with pytest.raises(ThreadDiedError):
        asyncio.run(made_in_thread(ends, alternates.KEYGEN_NICE, name="test"))


def test_a_failure_in_the_thread_reaches_the_awaiting_task() -> None:
    def broken() -> int:
        raise KeyError("inside the thread")

    with pytest.raises(KeyError, match="inside the thread"):
        asyncio.run(made_in_thread(broken, alternates.KEYGEN_NICE, name="test"))
