from __future__ import annotations

import pytest

from netstack.addresses6 import ip6_from_text
from netstack.config import (
    ConfigError,
    NoIpv6,
    StaticIp,
    StaticIp6,
    UseDhcp,
    UseSlaac,
    parse_cmdline,
    parse_cmdline6,
    parse_ip6,
    parse_kernel_ip,
    parse_static,
)


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
        "10.0.0.50/24,gw=10.0.0.255", "10.0.0.50/24,gw=10.0.0.0",  # gateway is the broadcast or network address
        "10.0.0.5/30,gw=10.0.0.7", "10.0.0.5/30,gw=10.0.0.4",
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


# --- IPv6 ---------------------------------------------------------------------------------------------------


def test_ip6_forms_round_trip_through_their_text() -> None:
    for text in ("auto", "off", "2001:db8::2/64", "2001:db8::2/64,gw=fe80::1", "2001:db8::2/64,gw=2001:db8::1"):
        assert str(parse_ip6(text)) == text
    assert parse_ip6("auto") == UseSlaac()
    assert parse_ip6("off") == NoIpv6()
    assert parse_ip6("2001:DB8::2/64,gw=FE80::1") == StaticIp6(ip6_from_text("2001:db8::2"), 64,
                                                               ip6_from_text("fe80::1"))


@pytest.mark.parametrize("text", [
    "2001:db8::2", "2001:db8::2/", "2001:db8::2/129", "2001:db8::2/0", "2001:db8::2/0064",
    "fe80::2/64",  # link-local: the interface has its own
    "::1/128", "::/0", "ff02::1/64", "::ffff:10.0.0.1/96",
    "2001:db8::2/64,gw=2001:db9::1",  # global gateway outside the prefix
    "2001:db8::2/64,gw=2001:db8::2",  # gateway is us
    "2001:db8::2/64,gw=ff02::2", "2001:db8::2/64,via=fe80::1", "2001:db8::2/64,gw=fe80::1,gw=fe80::2",
    "2001:db8::2%eth0/64", "10.0.0.2/24", "AUTO", "",
])  # fmt: skip
def test_ip6_refusals(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_ip6(text)


def test_the_last_ip6_of_a_kernel_command_line_counts() -> None:
    assert parse_cmdline6("console=ttyS0 ip=dhcp") is None
    assert parse_cmdline6("ip6=off ip=dhcp ip6=2001:db8::5/64") == StaticIp6(ip6_from_text("2001:db8::5"), 64)
    assert parse_cmdline6("ip6=auto") == UseSlaac()
    with pytest.raises(ConfigError):
        parse_cmdline6("ip6=dhcp")


@pytest.mark.parametrize("text", ["10.0.0.2/\u00b2\u2074", "10.0.0.2/2\u2074,gw=10.0.0.1"])
def test_a_prefix_of_digits_that_are_not_ascii_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_static(text)
    with pytest.raises(ConfigError):
        parse_ip6(text.replace("10.0.0.2", "2001:db8::2").replace("10.0.0.1", "fe80::1"))


def test_a_gateway_at_the_edge_of_a_point_to_point_subnet_is_a_host() -> None:
    """A /31 (RFC 3021) has no network or broadcast address: both of its addresses are hosts."""
    assert parse_static("10.0.0.0/31,gw=10.0.0.1").gateway == bytes([10, 0, 0, 1])
    assert parse_static("10.0.0.1/31,gw=10.0.0.0").gateway == bytes([10, 0, 0, 0])
    assert parse_static("10.0.0.50/24,gw=10.0.0.254").gateway == bytes([10, 0, 0, 254])
