"""Interface configuration: a static address from a command-line string or the kernel `ip=` parameter, or DHCP.

Why parse strictly: the appliance refuses to run with a configuration it does not understand rather than guess
(an off-link gateway or a network address as our own would fail later in confusing ways).
"""

from __future__ import annotations

from dataclasses import dataclass

from netstack.addresses import (
    ip_from_text,
    ip_to_text,
    is_unicast_host,
    mask_to_prefix,
    same_subnet,
    subnet_broadcast,
)


class ConfigError(ValueError):
    """A configuration string that does not describe a usable interface."""


@dataclass(frozen=True, slots=True)
class StaticIp:
    address: bytes
    prefix_len: int
    gateway: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.address) != 4 or not is_unicast_host(self.address):
            raise ConfigError(f"not a host address: {self.address!r}")
        if not 1 <= self.prefix_len <= 32:
            raise ConfigError(f"prefix length {self.prefix_len} out of range 1..32")
        if self.prefix_len <= 30:
            host_bits = int.from_bytes(self.address, "big") & ((1 << (32 - self.prefix_len)) - 1)
            if host_bits == 0 or self.address == subnet_broadcast(self.address, self.prefix_len):
                raise ConfigError(f"{ip_to_text(self.address)}/{self.prefix_len} is a network or broadcast address")
        if self.gateway is not None:
            if len(self.gateway) != 4 or not is_unicast_host(self.gateway) or self.gateway == self.address:
                raise ConfigError("gateway is not a usable host address")
            if not same_subnet(self.gateway, self.address, self.prefix_len):
                raise ConfigError(f"gateway {ip_to_text(self.gateway)} is not on-link")

    def __str__(self) -> str:
        gateway = f",gw={ip_to_text(self.gateway)}" if self.gateway else ""
        return f"{ip_to_text(self.address)}/{self.prefix_len}{gateway}"


@dataclass(frozen=True, slots=True)
class UseDhcp:
    """Configure the interface with the DHCP client."""


InterfaceAddressing = StaticIp | UseDhcp


def parse_static(text: str) -> StaticIp:
    """`10.0.0.2/24` or `10.0.0.2/24,gw=10.0.0.1` (the form `str(StaticIp)` prints)."""
    head, *options = text.strip().split(",")
    address_text, slash, prefix_text = head.partition("/")
    if not slash or not prefix_text.isdigit():
        raise ConfigError(f"expected ADDRESS/PREFIX[,gw=GATEWAY], got {text!r}")
    gateway = None
    for option in options:
        name, eq, value = option.partition("=")
        if name != "gw" or not eq or gateway is not None:
            raise ConfigError(f"unknown or repeated option {option!r} in {text!r}")
        gateway = _ip(value)
    return StaticIp(_ip(address_text), int(prefix_text), gateway)


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
