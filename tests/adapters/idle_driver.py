"""A stand-in for the stack driver that TcpSockets runs under, for tests that drive the layer by hand."""

from __future__ import annotations

from collections.abc import Callable


class IdleDriver:
    """Never kicks and keeps time at zero: the test delivers segments and runs callbacks itself."""

    def __init__(self) -> None:
        self.after_io: list[Callable[[], None]] = []

    def kick(self) -> None:
        pass

    def now(self) -> float:
        return 0.0
