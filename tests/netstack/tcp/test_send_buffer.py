"""The send buffer on its own: room within the shared budget, partial writes, acknowledgement of the FIN."""

from __future__ import annotations

from netstack.tcp.config import TcpConfig
from netstack.tcp.host import Budgets
from netstack.tcp.send_buffer import SendBuffer

CONFIG = TcpConfig(snd_buffer=1000, snd_budget=1500, snd_guaranteed=100)


def test_writes_fill_the_buffer_and_ask_to_be_told_when_there_is_room() -> None:
    budgets = Budgets()
    buffer = SendBuffer(CONFIG, budgets)
    assert buffer.room() == 1000
    assert buffer.write(b"a" * 600, buffer.room()) == 600
    waiting = buffer.notify_writable
    assert buffer.write(memoryview(b"b" * 600), buffer.room()) == 400
    assert (waiting, buffer.notify_writable) == (False, True)
    assert (len(buffer), budgets.snd_held, buffer.room()) == (1000, 1000, 0)
    assert not buffer.budget_limited(0, 10)  # this buffer is full: not the budget's doing
    assert buffer.write(b"c", 0) == 0
    assert bytes(buffer.data) == b"a" * 600 + b"b" * 400


def test_the_shared_budget_limits_with_a_guarantee() -> None:
    budgets = Budgets()
    budgets.snd_held = 1450  # others hold nearly all of it
    buffer = SendBuffer(CONFIG, budgets)
    assert buffer.room() == 100  # the guarantee
    assert buffer.budget_limited(buffer.room(), 500)
    buffer.write(b"x" * 100, buffer.room())
    assert buffer.room() == 0


def test_acknowledgement_and_the_fin() -> None:
    budgets = Budgets()
    buffer = SendBuffer(CONFIG, budgets)
    buffer.write(b"0123456789", buffer.room())
    buffer.acknowledge(4)
    assert (bytes(buffer.data), budgets.snd_held, buffer.fin_acked) == (b"456789", 6, False)
    buffer.fin_queued = True
    buffer.acknowledge(7)  # six bytes and the FIN
    assert (len(buffer), budgets.snd_held, buffer.fin_acked) == (0, 0, True)


def test_discard_gives_the_budget_back() -> None:
    budgets = Budgets()
    buffer = SendBuffer(CONFIG, budgets)
    buffer.write(b"z" * 300, buffer.room())
    buffer.discard()
    assert (len(buffer), budgets.snd_held) == (0, 0)
