"""JSON-line logging to stdout (the serial console in the image).

One object per line so that the console can be machine-read by the test harness. Callers pass only
plain values; nothing in the appliance ever passes key material here (tests grep the output for the
secret to hold us to that).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

Value = str | int | float | bool | None


class JsonLog:
    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.time) -> None:
        """`clock`: the service passes the root's wall clock (appliance.sources); the default serves the
        processes that have no composition root of their own (PID 1's init duties, the image builder)."""
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()  # whole lines: the boot's PKI thread logs beside the event loop

    def event(self, name: str, **fields: Value) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        with self._lock:  # the time read inside too: the lines' times are in the order the lines are
            record: dict[str, Value] = {"t": round(self._clock(), 3), "event": name}
            record.update(fields)
            line = json.dumps(record, separators=(",", ":")) + "\n"
            try:
                stream.write(line)
                stream.flush()
            except (OSError, ValueError):
                # A closed or full console must not take the service down with it.
                return
