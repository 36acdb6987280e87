"""`--ip6` beside `--ip` (appliance.main, appliance.net), the kernel command line's `ip6=` (image.run writes
it, PID 1 refuses `pinata.ip6=`), and the host-kernel mode listening on both families."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from appliance import pid1
from appliance.main import parse_run_args
from appliance.net import (
    DEFAULT_KERNEL_HOSTS,
    KernelNetwork,
    NetworkStartError,
    ipv6_addressing,
    parse_hosts,
    userspace_network,
)
from image import run
from netstack import config
from netstack.addresses6 import ip6_from_text
from tests.appliance.test_main import _run


def test_ip6_option_is_parsed_and_defaults_to_the_command_line() -> None:
    assert parse_run_args(["--disk", "d"]).ip6 is None
    assert parse_run_args(["--disk", "d", "--ip6", "off"]).ip6 == "off"
    assert ipv6_addressing("off") == config.NoIpv6()
    assert ipv6_addressing("auto") == config.UseSlaac()
    assert ipv6_addressing("2001:db8::5/64,gw=fe80::1") == config.StaticIp6(
        ip6_from_text("2001:db8::5"), 64, ip6_from_text("fe80::1"))
    assert ipv6_addressing(None, "console=ttyS0 ip6=2001:db8::5/64") == config.StaticIp6(
        ip6_from_text("2001:db8::5"), 64)
    assert ipv6_addressing(None, "console=ttyS0 ip6=off ip6=auto") == config.UseSlaac()  # the last one counts
    assert ipv6_addressing(None, "console=ttyS0") == config.UseSlaac()  # none given: SLAAC
    assert ipv6_addressing("off", "ip6=auto") == config.NoIpv6()  # the option wins over the command line


@pytest.mark.parametrize("bad", ["2001:db8::5", "2001:db8::5/129", "fe80::5/64", "10.0.0.1/24", "on",
                                 "2001:db8::5/64,gw=2001:db9::1", "2001:db8::5/64,mtu=1"])
def test_a_malformed_ip6_is_refused(bad: str) -> None:
    with pytest.raises(NetworkStartError, match="--ip6"):
        ipv6_addressing(bad)
    with pytest.raises(NetworkStartError, match="ip6="):
        ipv6_addressing(None, f"quiet ip6={bad}")


def test_userspace_network_refuses_a_malformed_ip6_before_the_link_opens() -> None:
    with pytest.raises(NetworkStartError, match="--ip6"):  # no TAP device is opened (this would need root)
        asyncio.run(userspace_network("tap:pinata-t6", "10.0.0.2/24", os.urandom, addressing6="2001:db8::/129"))


def test_run_with_a_malformed_ip6_exits_before_the_disk(tmp_path: object) -> None:
    from pathlib import Path

    disk = Path(str(tmp_path)) / "disk"
    result = _run("--net", "tap:pinata-t7", "--ip6", "nonsense", "--disk", str(disk), "--tls", "stdlib")
    assert result.returncode == 2
    assert '"event":"fatal"' in result.stdout
    assert "--ip6" in result.stdout
    assert not disk.exists()  # refused before the disk was opened (or made)


def test_kernel_hosts_default_to_both_loopbacks() -> None:
    assert parse_hosts(DEFAULT_KERNEL_HOSTS) == ("127.0.0.1", "::1")
    assert parse_run_args(["--disk", "d"]).host == DEFAULT_KERNEL_HOSTS
    assert parse_hosts(" 0.0.0.0 , :: ") == ("0.0.0.0", "::")
    with pytest.raises(ValueError, match="--host"):
        parse_hosts(" , ")
    assert KernelNetwork("127.0.0.1").name == "kernel:127.0.0.1"  # one host: as before


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this host has no IPv6 loopback")
def test_kernel_mode_listens_and_connects_back_over_both_families() -> None:
    async def main() -> None:
        network = KernelNetwork(DEFAULT_KERNEL_HOSTS)
        seen: list[tuple[object, ...]] = []

        class Record(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                seen.append(transport.get_extra_info("peername"))
                transport.close()

        with socket.socket(socket.AF_INET6) as probe:  # a free port on both loopbacks
            probe.bind(("::1", 0))
            port = probe.getsockname()[1]
        await network.start_server(port, Record)
        for host in ("127.0.0.1", "::1"):
            transport, _ = await network.open_connection(host, port, asyncio.Protocol)
            transport.close()
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
        await network.close()
        assert sorted(len(peer) for peer in seen) == [2, 4]  # AF_INET and AF_INET6 peers
        assert {str(peer[0]) for peer in seen} == {"127.0.0.1", "::1"}

    asyncio.run(main())


def test_run_writes_ip6_beside_ip() -> None:
    append = run.kernel_append({"variant": "smoke"}, ip="10.0.0.2::10.0.0.1:255.255.255.0",
                               ip6="2001:db8::2/64,gw=fe80::1")
    assert config.parse_cmdline6(append) == config.StaticIp6(ip6_from_text("2001:db8::2"), 64,
                                                             ip6_from_text("fe80::1"))
    assert config.parse_cmdline(append) is not None
    assert pid1.parse_cmdline(append) == {"variant": "smoke"}
    assert config.parse_cmdline6(run.kernel_append({})) is None  # none: the guest's default, SLAAC
    assert "ip6=off" in run.kernel_append(ip6="off").split()


def test_user_networking_forwards_ipv4_only_and_says_so() -> None:
    """QEMU 7.2's slirp refuses an IPv6 hostfwd address: the forwards stay IPv4 and the operator is told."""
    network = run.parse_network("user")
    assert all(":" not in network.host for _ in network.forwards)
    messages = run.announce({"event": "ready", "address": "bc1q"}, network)
    assert any("IPv6" in m and "tap" in m for m in messages)
    (message,) = run.announce({"event": "ready", "address": "bc1q"}, run.parse_network("tap:tap0"))[1:]
    assert "--ip6" in message


def test_an_ipv6_address_passed_as_a_pinata_parameter_stops_the_boot() -> None:
    with pytest.raises(pid1.BootError, match="ip6="):
        pid1.parse_cmdline(run.kernel_append({"ip6": "2001:db8::2/64"}))
