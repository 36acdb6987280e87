"""The send buffer: every byte the user wrote that the peer has not acknowledged, and the FIN after them.

Why a buffer from SND.UNA on (unacknowledged bytes, then unsent ones) rather than a queue of segments: a
retransmission is then a slice at any offset and of any size (after a path MTU drop, or a peer that shrank its
window), and an acknowledgement deletes from the front, which a bytearray does in O(1). Its bytes are charged
to the layer's shared send budget (`TcpConfig.snd_budget`), and given back when acknowledged or discarded.
"""

from __future__ import annotations

from netstack.tcp.config import TcpConfig
from netstack.tcp.host import Budgets


class SendBuffer:
    """`data` starts at SND.UNA. `fin_queued`: the user closed (our FIN follows `data`); `fin_acked`: the peer
    acknowledged it. `notify_writable`: a write did not fit, so the user waits for a `Writable` event."""

    __slots__ = ("_budgets", "_config", "data", "fin_acked", "fin_queued", "notify_writable")

    def __init__(self, config: TcpConfig, budgets: Budgets) -> None:
        self._config = config
        self._budgets = budgets
        self.data = bytearray()
        self.fin_queued = False
        self.fin_acked = False
        self.notify_writable = False

    def __len__(self) -> int:
        return len(self.data)

    def room(self) -> int:
        """What a write may still take: free space within the layer's shared budget, with a per-connection
        guarantee (`snd_guaranteed`) so that peers stalling other connections cannot stop this one."""
        cfg = self._config
        held = len(self.data)
        allowed = max(cfg.snd_budget - self._budgets.snd_held, cfg.snd_guaranteed - held)
        return max(0, min(cfg.snd_buffer - held, allowed))

    def budget_limited(self, space: int, wanted: int) -> bool:
        """Whether a write of `wanted` bytes is cut short by the shared budget rather than by this buffer."""
        return space < wanted and space < self._config.snd_buffer - len(self.data)

    def write(self, data: bytes | bytearray | memoryview, space: int) -> int:
        """Append as much of `data` as `space` allows; how much that was."""
        if space <= 0:
            self.notify_writable = True
            return 0
        take = min(space, len(data))
        self.data += data[:take] if take < len(data) else data
        self._budgets.snd_held += take
        if take < len(data):
            self.notify_writable = True
        return take

    def acknowledge(self, acked: int) -> None:
        """The peer acknowledged `acked` sequence numbers from SND.UNA on: one beyond the data is our FIN."""
        held = len(self.data)
        if acked > held:
            self.fin_acked = True
            del self.data[:]
        else:
            del self.data[:acked]
        self._budgets.snd_held -= min(acked, held)

    def discard(self) -> None:
        """Drop everything (the connection ended) and give its share of the budget back."""
        self._budgets.snd_held -= len(self.data)
        self.data = bytearray()


__all__ = ["SendBuffer"]
