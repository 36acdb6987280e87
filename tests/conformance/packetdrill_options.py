"""TCP option lists as packetdrill scripts write them (`<mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>`).

Why a literal encoding: packetdrill compares an expected segment's options byte for byte, NOPs, EOLs and order
included, so the script's list is turned into exactly the bytes it names (padded with EOL to a 4-byte multiple,
which is what packetdrill's own encoder requires of a header).

Why `without_sack`: our TCP does not implement SACK (RFC 2018; the issue does not ask for it), so it never offers
sackOK and never sends SACK blocks, while the FreeBSD scripts were written with `net.inet.tcp.sack.enable=1`. The
runner therefore compares our segments with what FreeBSD sends with `sack.enable=0`: the same options minus the
SACK ones, laid out by FreeBSD's own rules (tcp_addoptions: MSS; NOPs until the length is odd, then window scale;
NOPs until the length is 2 mod 4, then timestamps; EOL and zero padding to a 4-byte boundary). That layout is
confirmed by the suite's own sack-disabled script (snd-syn-without-sack: `<mss 1460,nop,wscale 6,nop,nop,TS ...>`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from netstack.tcp.segment import (
    OPT_EOL,
    OPT_MSS,
    OPT_NOP,
    OPT_SACK,
    OPT_SACK_PERMITTED,
    OPT_TIMESTAMP,
    OPT_WSCALE,
)
from netstack.tcp.seq import MASK

TS_LEN = 10


class OptionSyntaxError(ValueError):
    """An option this runner cannot encode."""


@dataclass(frozen=True)
class Option:
    kind: str                 # "mss", "nop", "eol", "wscale", "sackOK", "sack", "TS"
    values: tuple[int, ...]   # mss/wscale: (value,); TS: (val, ecr); sack: (left, right, ...) relative


def parse_options(text: str) -> tuple[Option, ...]:
    out = []
    for item in (part.strip() for part in text.split(",")):
        words = item.split()
        if not words:
            raise OptionSyntaxError(f"empty option in {text!r}")
        name = words[0]
        if name in ("nop", "eol", "sackOK") and len(words) == 1:
            out.append(Option(name, ()))
        elif name in ("mss", "wscale") and len(words) == 2:
            out.append(Option(name, (int(words[1]),)))
        elif name == "TS" and len(words) == 5 and words[1] == "val" and words[3] == "ecr":
            out.append(Option(name, (int(words[2]), int(words[4]))))
        elif name == "sack" and len(words) > 1:
            values: list[int] = []
            for block in words[1:]:
                left, _, right = block.partition(":")
                values += (int(left), int(right))
            out.append(Option(name, tuple(values)))
        else:
            raise OptionSyntaxError(f"option {item!r}")
    return tuple(out)


def encode(options: tuple[Option, ...], sack_base: int) -> bytes:
    """The bytes the list names; SACK block edges are relative to `sack_base` (the acknowledged side's ISN)."""
    out = bytearray()
    for option in options:
        if option.kind == "nop":
            out.append(OPT_NOP)
        elif option.kind == "eol":
            out.append(OPT_EOL)
        elif option.kind == "mss":
            out += struct.pack("!BBH", OPT_MSS, 4, option.values[0])
        elif option.kind == "wscale":
            out += bytes((OPT_WSCALE, 3, option.values[0]))
        elif option.kind == "sackOK":
            out += bytes((OPT_SACK_PERMITTED, 2))
        elif option.kind == "TS":
            out += struct.pack("!BBII", OPT_TIMESTAMP, TS_LEN, option.values[0], option.values[1])
        else:
            out += bytes((OPT_SACK, 2 + 4 * len(option.values)))
            for edge in option.values:
                out += struct.pack("!I", (sack_base + edge) & MASK)
    while len(out) % 4:
        out.append(OPT_EOL)
    return bytes(out)


def has_sack(options: tuple[Option, ...]) -> bool:
    return any(option.kind in ("sackOK", "sack") for option in options)


def without_sack(options: tuple[Option, ...]) -> tuple[Option, ...]:
    """The list FreeBSD sends for the same segment with SACK disabled (see the module docstring)."""
    by_kind = {option.kind: option for option in options}
    out: list[Option] = []
    length = 0
    if "mss" in by_kind:
        out.append(by_kind["mss"])
        length += 4
    # Each option NOP-padded to where FreeBSD places it: wscale at an odd offset, TS at 2 mod 4.
    for kind, size, modulus, residue in (("wscale", 3, 2, 1), ("TS", TS_LEN, 4, 2)):
        if kind in by_kind:
            while length % modulus != residue:
                out.append(Option("nop", ()))
                length += 1
            out.append(by_kind[kind])
            length += size
    if length % 4:
        out.append(Option("eol", ()))  # encode() adds the zero padding after it
    return tuple(out)


def describe(raw: bytes) -> str:
    """packetdrill's notation for an option list we received, for error messages."""
    parts = []
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind in (OPT_EOL, OPT_NOP):
            parts.append("eol" if kind == OPT_EOL else "nop")
            i += 1
            continue
        length = raw[i + 1] if i + 1 < len(raw) else 0
        body = raw[i + 2 : i + max(length, 2)]
        if kind == OPT_MSS and length == 4:
            parts.append(f"mss {int.from_bytes(body, 'big')}")
        elif kind == OPT_WSCALE and length == 3:
            parts.append(f"wscale {body[0]}")
        elif kind == OPT_SACK_PERMITTED and length == 2:
            parts.append("sackOK")
        elif kind == OPT_TIMESTAMP and length == TS_LEN:
            val, ecr = struct.unpack("!II", body)
            parts.append(f"TS val {val} ecr {ecr}")
        else:
            parts.append(f"kind {kind} len {length}")
        if length < 2:
            break
        i += length
    return "<" + ",".join(parts) + ">" if parts else ""
