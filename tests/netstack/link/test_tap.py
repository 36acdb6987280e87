from __future__ import annotations

import asyncio
import os

import pytest

from bench import lab
from netstack.link.tap import TapLink
from netstack.reasons import Drop


def test_interface_name_length_is_checked_before_opening() -> None:
    with pytest.raises(ValueError, match="15 bytes"):
        TapLink("a" * 16, bytes(6))


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.exists("/dev/net/tun"), reason="needs /dev/net/tun")
def test_a_refused_device_leaves_no_descriptor_behind() -> None:
    """The kernel refuses the name (or us, without CAP_NET_ADMIN): the TUN fd opened first is closed."""
    before = _open_fds()
    with pytest.raises(OSError):  # noqa: PT011 (EINVAL or EPERM, whichever the kernel says first)
        TapLink("bad/name", bytes.fromhex("020000000001"))
    assert _open_fds() == before


@pytest.mark.netns
@pytest.mark.skipif(not lab.available(), reason="needs root, /dev/net/tun and `ip netns`")
def test_a_tap_device_in_its_own_namespace() -> None:
    """Made inside a namespace of its own (so the host's interfaces are untouched): a device that is down
    refuses frames, which are counted, not raised; closing twice is harmless."""
    mac = bytes.fromhex("020000000001")
    with lab.namespace("ptap") as ns:
        link = lab.run_in(ns, lambda: TapLink("ptap0", mac, mtu=1400))
        try:
            assert (link.name, link.mac, link.mtu) == ("ptap0", mac, 1400)
            assert link.fileno() >= 0
            delivered: list[list[bytes]] = []

            async def main() -> None:
                link.start(delivered.append)
                link.send(bytes(60))  # the interface is down: EIO, counted as a transmit error
                await asyncio.sleep(0)

            asyncio.run(main())
            assert link.stats()[Drop.LINK_TX_ERROR.value] == 1
            assert delivered == []
        finally:
            link.close()
            link.close()
        assert link.fileno() == -1
