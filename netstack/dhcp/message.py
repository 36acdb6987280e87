"""DHCP/BOOTP messages (RFC 2131 section 2, options RFC 2132, long options RFC 3396).

A server on the LAN (or an attacker pretending to be one) controls every byte here. Options are parsed into a
dict of raw values; interpretation (and validation of each value) happens in the typed accessors below.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from netstack.errors import MalformedError
from netstack.limits import DHCP_MAX_MESSAGE
from netstack.reasons import Drop

BOOTREQUEST = 1
BOOTREPLY = 2
MAGIC_COOKIE = b"\x63\x82\x53\x63"
FLAG_BROADCAST = 0x8000
FIXED_LEN = 236
MIN_MESSAGE_LEN = 300  # RFC 1542 / BOOTP minimum; servers may ignore shorter requests
SERVER_PORT = 67
CLIENT_PORT = 68

# option codes
OPT_PAD = 0
OPT_SUBNET_MASK = 1
OPT_ROUTER = 3
OPT_REQUESTED_IP = 50
OPT_LEASE_TIME = 51
OPT_MESSAGE_TYPE = 53
OPT_SERVER_ID = 54
OPT_PARAMETER_LIST = 55
OPT_RENEWAL_TIME = 58
OPT_REBINDING_TIME = 59
OPT_CLIENT_ID = 61
OPT_END = 255

# message types (option 53)
DISCOVER = 1
OFFER = 2
REQUEST = 3
DECLINE = 4
ACK = 5
NAK = 6
RELEASE = 7
INFORM = 8

_FIXED = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")


@dataclass(frozen=True, slots=True)
class DhcpMessage:
    """A BOOTP/DHCP message (RFC 2131 §2) with the fields the client reads or sets (hops, sname and file are not
    kept). `options` holds raw values, repeated options joined (RFC 3396): the typed accessors interpret and
    check a server's value where it is used."""

    op: int
    xid: int
    chaddr: bytes  # the 6-byte Ethernet address (hlen 6)
    options: dict[int, bytes] = field(default_factory=dict)
    secs: int = 0
    flags: int = 0
    ciaddr: bytes = bytes(4)
    yiaddr: bytes = bytes(4)
    siaddr: bytes = bytes(4)
    giaddr: bytes = bytes(4)

    @property
    def message_type(self) -> int | None:
        value = self.options.get(OPT_MESSAGE_TYPE)
        return value[0] if value is not None and len(value) == 1 else None

    def address_option(self, code: int) -> bytes | None:
        """A single IPv4 address option (the first one for list options such as routers)."""
        value = self.options.get(code)
        if value is None or len(value) < 4 or len(value) % 4:
            return None
        return value[:4]

    def seconds_option(self, code: int) -> int | None:
        value = self.options.get(code)
        if value is None or len(value) != 4:
            return None
        return int.from_bytes(value, "big")


def parse_dhcp(data: bytes | memoryview) -> DhcpMessage:
    view = memoryview(data)
    if len(view) > DHCP_MAX_MESSAGE:
        raise MalformedError(Drop.DHCP_MALFORMED, f"{len(view)} bytes")
    if len(view) < FIXED_LEN + len(MAGIC_COOKIE):
        raise MalformedError(Drop.DHCP_MALFORMED, f"truncated at {len(view)} bytes")
    op, htype, hlen, _hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr, _, _ = _FIXED.unpack_from(view)
    if op not in (BOOTREQUEST, BOOTREPLY) or htype != 1 or hlen != 6:
        raise MalformedError(Drop.DHCP_MALFORMED, f"op {op} htype {htype} hlen {hlen}")
    if view[FIXED_LEN : FIXED_LEN + 4] != MAGIC_COOKIE:
        raise MalformedError(Drop.DHCP_MALFORMED, "no magic cookie")
    options = _parse_options(view[FIXED_LEN + 4 :])
    return DhcpMessage(op, xid, chaddr[:6], options, secs, flags, ciaddr, yiaddr, siaddr, giaddr)


def _parse_options(view: memoryview) -> dict[int, bytes]:
    options: dict[int, bytes] = {}
    i = 0
    n = len(view)
    while i < n:
        code = view[i]
        if code == OPT_PAD:
            i += 1
            continue
        if code == OPT_END:
            if any(view[i + 1 :]):
                raise MalformedError(Drop.DHCP_MALFORMED, "non-zero bytes after the end option")
            return options
        if i + 1 >= n or i + 2 + view[i + 1] > n:
            raise MalformedError(Drop.DHCP_MALFORMED, f"option {code} overruns the message")
        length = view[i + 1]
        value = bytes(view[i + 2 : i + 2 + length])
        options[code] = options.get(code, b"") + value  # RFC 3396: repeated options concatenate
        i += 2 + length
    raise MalformedError(Drop.DHCP_MALFORMED, "no end option")


def serialize_dhcp(message: DhcpMessage) -> bytes:
    if len(message.chaddr) != 6:
        raise ValueError("chaddr must be a 6-byte Ethernet address")
    out = bytearray(
        _FIXED.pack(
            message.op, 1, 6, 0, message.xid, message.secs, message.flags, message.ciaddr, message.yiaddr,
            message.siaddr, message.giaddr, message.chaddr, b"", b"",
        )
    )  # fmt: skip
    out += MAGIC_COOKIE
    for code, value in message.options.items():
        if code in (OPT_PAD, OPT_END):
            raise ValueError("pad and end are not options with values")
        for start in range(0, max(len(value), 1), 255):  # RFC 3396: split long values
            chunk = value[start : start + 255]
            out += bytes((code, len(chunk))) + chunk
    out.append(OPT_END)
    if len(out) < MIN_MESSAGE_LEN:
        out += bytes(MIN_MESSAGE_LEN - len(out))
    return bytes(out)
