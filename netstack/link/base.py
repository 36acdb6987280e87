"""The interface every link backend implements, and the batched non-blocking reader they share.

Why batches: one readiness callback drains up to LINK_READ_BATCH frames and hands them over together, so the
stack's per-callback costs (timer rescheduling, flushing output) are paid once per batch, not once per frame.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

from netstack.faults import FaultLog
from netstack.limits import LINK_MAX_FRAME, LINK_READ_BATCH
from netstack.reasons import Counters, Drop

FrameHandler = Callable[[list[bytes]], None]


class Link(Protocol):
    @property
    def mac(self) -> bytes:
        """The MAC address the stack should use on this link."""
        ...

    @property
    def mtu(self) -> int: ...

    def start(self, on_frames: FrameHandler) -> None:
        """Register a reader with the running asyncio loop; on_frames gets each batch of received frames."""

    def send(self, frame: bytes) -> None:
        """Transmit one frame now, or drop and count it if the device is full (never block, never queue)."""

    def close(self) -> None: ...

    def stats(self) -> dict[str, int]: ...


def read_batch(fd: int, counters: Counters, faults: FaultLog) -> list[bytes]:
    """Read whatever is ready on a non-blocking frame fd, at most LINK_READ_BATCH frames."""
    frames = []
    for _ in range(LINK_READ_BATCH):
        try:
            frame = os.read(fd, LINK_MAX_FRAME)
        except (BlockingIOError, InterruptedError):
            break
        except OSError as error:
            read_failed(error, counters, faults)
            break
        if not frame:
            break
        frames.append(frame)
    return frames


def read_failed(error: OSError, counters: Counters, faults: FaultLog) -> None:
    """A read error the device should not give (EIO, EBADFD, ENETDOWN while it goes away): counted and logged,
    not raised, because it would escape from the loop's reader callback and the frames read before it are good."""
    counters.add(Drop.LINK_RX_ERROR)
    faults.report("link read failed", error)


def write_frame(fd: int, frame: bytes, counters: Counters) -> None:
    try:
        os.write(fd, frame)
    except (BlockingIOError, InterruptedError):
        counters.add(Drop.LINK_TX_FULL)
    except OSError:  # e.g. EIO while the device is down: the frame is lost like on a wire with no carrier
        counters.add(Drop.LINK_TX_ERROR)
