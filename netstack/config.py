"""Interface configuration: a static address from a command-line string or the kernel `ip=` parameter, or DHCP;
and for IPv6 a static address (`--ip6`, the `ip6=` parameter), stateless autoconfiguration, or no IPv6.

Why parse strictly: the appliance refuses to run with a configuration it does not understand rather than guess
(an off-link gateway or a network address as our own would fail later in confusing ways).
"""

from __future__ import annotations

from dataclasses import dataclass

from netstack.addresses import (
    ip_from_text,
    ip_to_text,
    is_subnet_network_or_broadcast,
    is_unicast_host,
    mask_to_prefix,
    same_subnet,
)
from netstack.addresses6 import ip6_from_text, ip6_to_text, is_link_local, prefix_matches
from netstack.addresses6 import is_unicast_host as is_unicast_host6


class ConfigError(ValueError):
    """A configuration string that does not describe a usable interface."""


@dataclass(frozen=True, slots=True)
class StaticIp:
    """An IPv4 interface address with its prefix and optional gateway, from the command line, the kernel `ip=`
    parameter or a DHCP lease; `__post_init__` refuses one that could not work (a network or broadcast address,
    an off-link gateway) where it is made, rather than let it fail later in confusing ways."""

    address: bytes
    prefix_len: int
    gateway: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.address) != 4 or not is_unicast_host(self.address):
            raise ConfigError(f"not a host address: {self.address!r}")
        if not 1 <= self.prefix_len <= 32:
            raise ConfigError(f"prefix length {self.prefix_len} out of range 1..32")
        if is_subnet_network_or_broadcast(self.address, self.prefix_len):
            raise ConfigError(f"{ip_to_text(self.address)}/{self.prefix_len} is a network or broadcast address")
        if self.gateway is not None:
            if len(self.gateway) != 4 or not is_unicast_host(self.gateway) or self.gateway == self.address:
                raise ConfigError("gateway is not a usable host address")
            if not same_subnet(self.gateway, self.address, self.prefix_len):
                raise ConfigError(f"gateway {ip_to_text(self.gateway)} is not on-link")
            # RFC 1122 3.3.1.1: a gateway is a host on a connected network, and {net, 0} / {net, -1} are never
            # a host's address (3.2.1.3). Off-link traffic sent "to" the broadcast address would go to whoever
            # answers an ARP request for it.
            if is_subnet_network_or_broadcast(self.gateway, self.prefix_len):
                raise ConfigError(f"gateway {ip_to_text(self.gateway)} is the subnet's network or broadcast address")

    def __str__(self) -> str:
        gateway = f",gw={ip_to_text(self.gateway)}" if self.gateway else ""
        return f"{ip_to_text(self.address)}/{self.prefix_len}{gateway}"


@dataclass(frozen=True, slots=True)
class UseDhcp:
    """Configure the interface with the DHCP client."""


InterfaceAddressing = StaticIp | UseDhcp


@dataclass(frozen=True, slots=True)
class StaticIp6:
    """A global IPv6 address configured by hand, beside the link-local address the interface always has.
    The gateway is usually the router's link-local address (what router advertisements announce); a global
    gateway must be inside the prefix."""

    address: bytes
    prefix_len: int
    gateway: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.address) != 16 or not is_unicast_host6(self.address) or is_link_local(self.address):
            raise ConfigError(f"not a global unicast IPv6 address: {self.address!r}")
        if not 1 <= self.prefix_len <= 128:
            raise ConfigError(f"prefix length {self.prefix_len} out of range 1..128")
        if self.gateway is not None:
            if len(self.gateway) != 16 or not is_unicast_host6(self.gateway) or self.gateway == self.address:
                raise ConfigError("gateway is not a usable IPv6 host address")
            if not is_link_local(self.gateway) and not prefix_matches(self.gateway, self.address, self.prefix_len):
                raise ConfigError(f"gateway {ip6_to_text(self.gateway)} is neither link-local nor on-link")

    def __str__(self) -> str:
        gateway = f",gw={ip6_to_text(self.gateway)}" if self.gateway else ""
        return f"{ip6_to_text(self.address)}/{self.prefix_len}{gateway}"


@dataclass(frozen=True, slots=True)
class UseSlaac:
    """Global IPv6 addresses from router advertisements (RFC 4862) with stable identifiers (RFC 7217)."""

    def __str__(self) -> str:
        return "auto"


@dataclass(frozen=True, slots=True)
class NoIpv6:
    """The interface does not speak IPv6 at all: every IPv6 frame is dropped and counted."""

    def __str__(self) -> str:
        return "off"


Ipv6Addressing = StaticIp6 | UseSlaac | NoIpv6


def parse_ip6(text: str) -> Ipv6Addressing:
    """`auto` (the default), `off`, or `ADDRESS/PREFIX[,gw=GATEWAY]` (the forms `str()` of each prints)."""
    text = text.strip()
    if text == "auto":
        return UseSlaac()
    if text == "off":
        return NoIpv6()
    address_text, prefix_text, gateway = _static_parts(text, "auto, off or ADDRESS/PREFIX[,gw=GATEWAY]")
    if len(prefix_text) > 3:
        raise ConfigError(f"prefix length {prefix_text!r} in {text!r}")
    return StaticIp6(_ip6(address_text), int(prefix_text), _ip6(gateway) if gateway is not None else None)


def parse_cmdline6(cmdline: str) -> Ipv6Addressing | None:
    """The last `ip6=` of a kernel command line (our own parameter: the kernel has no IPv6 to configure)."""
    found = None
    for word in cmdline.split():
        if word.startswith("ip6="):
            found = word[4:]
    return parse_ip6(found) if found is not None else None


def _ip6(text: str) -> bytes:
    try:
        return ip6_from_text(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def parse_static(text: str) -> StaticIp:
    """`10.0.0.2/24` or `10.0.0.2/24,gw=10.0.0.1` (the form `str(StaticIp)` prints)."""
    address_text, prefix_text, gateway = _static_parts(text, "ADDRESS/PREFIX[,gw=GATEWAY]")
    return StaticIp(_ip(address_text), int(prefix_text), _ip(gateway) if gateway is not None else None)


def _static_parts(text: str, expected: str) -> tuple[str, str, str | None]:
    """`ADDRESS/PREFIX[,gw=GATEWAY]` of either family cut into its texts: the address, the prefix length (ASCII
    digits: str.isdigit alone takes '²', which int() refuses with a ValueError of its own) and the gateway."""
    head, *options = text.strip().split(",")
    address_text, slash, prefix_text = head.partition("/")
    if not slash or not (prefix_text.isascii() and prefix_text.isdigit()):
        raise ConfigError(f"expected {expected}, got {text!r}")
    gateway = None
    for option in options:
        name, eq, value = option.partition("=")
        if name != "gw" or not eq or gateway is not None:
            raise ConfigError(f"unknown or repeated option {option!r} in {text!r}")
        gateway = value
    return address_text, prefix_text, gateway


def parse_kernel_ip(value: str) -> InterfaceAddressing:
    """The kernel's `ip=` parameter (Documentation/admin-guide/nfs/nfsroot.rst):
    `<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>` with autoconf off/none, or `dhcp`.
    """
    if value.startswith("ip="):
        value = value[3:]
    if value in ("dhcp", "on", "any"):
        return UseDhcp()
    fields = value.split(":")
    if len(fields) < 4 or len(fields) > 9:
        raise ConfigError(f"ip= needs <client>::<gw>:<netmask>[:...], got {value!r}")
    client, _server, gateway_text, netmask = fields[:4]
    autoconf = fields[6] if len(fields) > 6 else "off"
    if autoconf == "dhcp" and not client:
        return UseDhcp()
    if autoconf not in ("off", "none", ""):
        raise ConfigError(f"only static ip= (autoconf off) or dhcp is supported, got {autoconf!r}")
    if not client or not netmask:
        raise ConfigError(f"static ip= needs a client address and a netmask: {value!r}")
    try:
        prefix_len = mask_to_prefix(_ip(netmask))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return StaticIp(_ip(client), prefix_len, _ip(gateway_text) if gateway_text else None)


def parse_cmdline(cmdline: str) -> InterfaceAddressing | None:
    """Find the last `ip=` in a kernel command line (later parameters override earlier ones)."""
    found = None
    for word in cmdline.split():
        if word.startswith("ip="):
            found = word
    return parse_kernel_ip(found) if found is not None else None


def _ip(text: str) -> bytes:
    try:
        return ip_from_text(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
