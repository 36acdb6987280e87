"""appliance.net's address reports: a line when the addresses change, at most one per interval, on a virtual
clock, over a stand-in for the stack (the stack's own count of changes is tested in tests/netstack)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from appliance.net import Addresses, UserspaceNetwork
from netstack.config import StaticIp
from tests.virtual_time import run

LEASE = StaticIp(bytes([10, 0, 2, 15]), 24, bytes([10, 0, 2, 2]))
LINK_LOCAL = "fe80::1/64"
GLOBAL = "2001:db8::5/64"


class _Stack:
    def __init__(self) -> None:
        self.interface: StaticIp | None = None


class _StackNetwork:
    """What UserspaceNetwork reads of adapters.network.Network: the stack's IPv4 configuration, the usable
    IPv6 addresses (as adapters.network.Network.ipv6_texts writes them), and the hook the driver calls after
    a batch in which they changed."""

    def __init__(self) -> None:
        self.stack = _Stack()
        self.ipv6: tuple[str, ...] = ()
        self.hook: Callable[[], None] = lambda: None

    def ipv6_texts(self) -> tuple[str, ...]:
        return self.ipv6

    def on_address_change(self, callback: Callable[[], None]) -> None:
        self.hook = callback
        callback()


async def _scenario() -> list[tuple[float, Addresses]]:
    loop = asyncio.get_running_loop()
    stack = _StackNetwork()
    reports: list[tuple[float, Addresses]] = []
    network = UserspaceNetwork(stack, "fake")  # type: ignore[arg-type]
    network.watch_addresses(lambda addresses: reports.append((loop.time(), addresses)), min_interval=1.0)
    assert reports == []  # no address yet: nothing to say

    stack.stack.interface = LEASE  # the DHCP lease binds: reported at once
    stack.hook()
    stack.hook()  # a batch with no change
    await asyncio.sleep(0.25)
    stack.ipv6 = (LINK_LOCAL,)  # DAD passes, then a router's prefix, within the interval: one line, at its end
    stack.hook()
    await asyncio.sleep(0.25)
    stack.ipv6 = (LINK_LOCAL, GLOBAL)
    stack.hook()
    await asyncio.sleep(2.0)

    stack.stack.interface = None  # the lease is lost, long after the last line: reported at once
    stack.hook()
    await asyncio.sleep(0.5)
    stack.ipv6 = (LINK_LOCAL,)  # a change undone within the interval: nothing to report at its end
    stack.hook()
    stack.ipv6 = (LINK_LOCAL, GLOBAL)
    stack.hook()
    await asyncio.sleep(2.0)
    return reports


def test_addresses_are_reported_when_they_change_at_most_once_per_interval() -> None:
    reports = run(_scenario())
    assert [(round(t, 3), a.fields()) for t, a in reports] == [
        (0.0, {"ipv4": "10.0.2.15/24", "gateway": "10.0.2.2", "ipv6": ""}),
        (1.0, {"ipv4": "10.0.2.15/24", "gateway": "10.0.2.2", "ipv6": "fe80::1/64 2001:db8::5/64"}),
        (2.5, {"ipv4": None, "gateway": None, "ipv6": "fe80::1/64 2001:db8::5/64"}),
    ]


class _Closable(_StackNetwork):
    def close(self) -> None:
        self.closed = True


async def _closed_with_a_report_held_back() -> list[Addresses]:
    stack = _Closable()
    reports: list[Addresses] = []
    network = UserspaceNetwork(stack, "fake")  # type: ignore[arg-type]
    network.watch_addresses(reports.append, min_interval=1.0)
    stack.stack.interface = LEASE  # reported at once
    stack.hook()
    stack.ipv6 = (LINK_LOCAL,)  # within the interval: held back for its end
    stack.hook()
    await network.close()  # the appliance stops (or a failed boot closes the network) before the end
    await asyncio.sleep(2.0)
    return reports


def test_a_report_held_back_is_not_made_after_the_network_closed() -> None:
    reports = run(_closed_with_a_report_held_back())
    assert [a.fields()["ipv6"] for a in reports] == [""]  # the first line only: nothing after close
