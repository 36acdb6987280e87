"""The kernel command line has two readers in the guest, and what the host side writes and tells the operator
must match them: the address is the kernel's `ip=` (read by netstack.config), our own switches are `pinata.*`
(read by appliance.pid1), and an address given as `pinata.ip=` is refused rather than ignored."""

from __future__ import annotations

import re

import pytest

from appliance import pid1
from image import run
from netstack import config
from netstack.addresses import ip_from_text


def test_the_address_run_writes_is_the_one_the_netstack_reads() -> None:
    append = run.kernel_append({"variant": "smoke"}, ip="10.0.0.2::10.0.0.1:255.255.255.0")
    assert config.parse_cmdline(append) == config.StaticIp(ip_from_text("10.0.0.2"), 24, ip_from_text("10.0.0.1"))
    assert pid1.parse_cmdline(append) == {"variant": "smoke"}
    assert config.parse_cmdline(run.kernel_append({"variant": "smoke"})) is None  # no ip=: DHCP


def test_an_address_passed_as_a_pinata_parameter_stops_the_boot() -> None:
    append = run.kernel_append({"ip": "10.0.0.2/24"})
    assert config.parse_cmdline(append) is None  # the netstack would never see it ...
    with pytest.raises(pid1.BootError, match="ip="):  # ... so PID 1 refuses it
        pid1.parse_cmdline(append)


def test_the_tap_announcement_names_the_parameter_the_netstack_reads() -> None:
    (message,) = run.announce({"event": "ready", "address": "bc1q"}, run.parse_network("tap:tap0"))[1:]
    assert "pinata.ip" not in message
    assert re.search(r"(?<![\w.])ip=", message)
    assert "--ip" in message
