from __future__ import annotations

import pytest

from netstack.config import ConfigError, StaticIp, UseDhcp, parse_cmdline, parse_kernel_ip, parse_static


def ip(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def test_static_with_gateway() -> None:
    config = parse_static("10.0.0.2/24,gw=10.0.0.1")
    assert config == StaticIp(ip("10.0.0.2"), 24, ip("10.0.0.1"))
    assert str(config) == "10.0.0.2/24,gw=10.0.0.1"
    assert parse_static(str(config)) == config


def test_static_without_gateway() -> None:
    assert parse_static("192.168.1.50/16") == StaticIp(ip("192.168.1.50"), 16, None)


@pytest.mark.parametrize(
    "text",
    [
        "10.0.0.2", "10.0.0.2/", "10.0.0.2/33", "10.0.0.2/0", "10.0.0/24", "10.0.0.256/24", "010.0.0.1x/24",
        "10.0.0.2/24,gw=10.0.1.1",  # gateway off-link
        "10.0.0.2/24,gw=10.0.0.2",  # gateway is us
        "10.0.0.2/24,via=10.0.0.1", "10.0.0.2/24,gw=10.0.0.1,gw=10.0.0.3",
        "10.0.0.0/24", "10.0.0.255/24",  # network and broadcast addresses
        "127.0.0.1/8", "224.0.0.1/24", "0.0.0.0/0",
    ],
)  # fmt: skip
def test_static_refusals(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_static(text)


def test_point_to_point_prefixes_allow_any_address() -> None:
    assert parse_static("10.0.0.0/31").prefix_len == 31
    assert parse_static("10.0.0.7/32").prefix_len == 32


def test_kernel_ip_static() -> None:
    config = parse_kernel_ip("ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off")
    assert config == StaticIp(ip("10.0.2.15"), 24, ip("10.0.2.2"))
    assert parse_kernel_ip("10.0.2.15:::255.255.0.0") == StaticIp(ip("10.0.2.15"), 16, None)
    assert parse_kernel_ip("10.0.2.15::10.0.2.2:255.255.255.0:host:eth0:none:8.8.8.8") == config


def test_kernel_ip_dhcp() -> None:
    assert parse_kernel_ip("ip=dhcp") == UseDhcp()
    assert parse_kernel_ip("ip=:::::eth0:dhcp") == UseDhcp()


@pytest.mark.parametrize(
    "value",
    ["ip=10.0.2.15", "ip=10.0.2.15::10.0.2.2:255.0.255.0::eth0:off", "ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:bootp",
     "ip=::10.0.2.2:255.255.255.0::eth0:off", "ip=10.0.2.15::10.0.9.2:255.255.255.0::eth0:off", "ip=rarp"],
)  # fmt: skip
def test_kernel_ip_refusals(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_kernel_ip(value)


def test_cmdline_takes_the_last_ip_parameter() -> None:
    cmdline = "console=ttyS0 ip=dhcp panic=-1 ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off quiet"
    assert parse_cmdline(cmdline) == StaticIp(ip("10.0.2.15"), 24, ip("10.0.2.2"))
    assert parse_cmdline("console=ttyS0 quiet") is None
