"""The deadline arithmetic of `Timers` on its own."""

from __future__ import annotations

from netstack.tcp.config import TcpConfig
from netstack.tcp.timers import INF, Timers

CONFIG = TcpConfig(idle_timeout=900.0, keepalive_idle=120.0, keepalive_interval=15.0)


def test_nothing_armed_means_no_deadline_unless_idle_limits_apply() -> None:
    timers = Timers(CONFIG, now=10.0)
    assert timers.deadline(idle=False, keepalive=True) == INF
    assert timers.deadline(idle=True, keepalive=False) == 910.0
    assert timers.deadline(idle=True, keepalive=True) == 130.0


def test_keepalive_probes_space_out_and_the_earliest_timer_wins() -> None:
    timers = Timers(CONFIG, now=0.0)
    timers.keepalive_sent = 2
    assert timers.keepalive_deadline() == 150.0
    timers.delack = 0.2
    timers.rtx = 1.0
    assert timers.deadline(idle=True, keepalive=True) == 0.2
    timers.stop()
    assert (timers.rtx, timers.delack, timers.persist, timers.phase) == (INF, INF, INF, INF)


def test_keepalive_switched_off_in_the_configuration() -> None:
    timers = Timers(TcpConfig(keepalive=False, idle_timeout=50.0), now=0.0)
    assert timers.deadline(idle=True, keepalive=True) == 50.0
