"""Frames for the network targets, built with the stack's own encoders so that every checksum is right.

Why: a checksum that fails stops a mutated frame at the first check. The targets let the fuzzer choose the
fields and the payload, and build (or repair) the frame here, so mutations reach what lies behind the
checksums; raw chunks keep the checksum paths covered.
"""

from __future__ import annotations

import struct

from netstack import ethernet
from netstack.checksum import checksum, pseudo_header_sum
from netstack.icmp import serialize_icmp
from netstack.ipv4 import MIN_HEADER_LEN, PROTO_ICMP, PROTO_TCP, PROTO_UDP, build_header
from netstack.tcp.segment import build_segment
from netstack.udp import serialize_udp

US_MAC = bytes.fromhex("020000000001")
THEM_MAC = bytes.fromhex("020000000002")
BROADCAST_MAC = b"\xff" * 6
US = bytes((10, 0, 0, 1))
THEM = bytes((10, 0, 0, 2))
GATEWAY = bytes((10, 0, 0, 254))
PREFIX = 24
FIELDS = 13


def ether(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return ethernet.build_header(dst, src, ethertype) + payload


def transport(protocol: int, src: bytes, dst: bytes, fields: bytes, payload: bytes) -> bytes:
    """An ICMP, UDP or TCP message from the fuzzer's 13 bytes of `fields`, checksummed: ICMP type, code and
    rest of header; UDP ports; TCP ports, sequence and acknowledgment numbers and flags."""
    fields = fields.ljust(FIELDS, b"\x00")
    if protocol == PROTO_ICMP:
        return serialize_icmp(fields[0], fields[1], fields[2:6], payload)
    sport, dport = struct.unpack_from("!HH", fields)
    if protocol == PROTO_UDP:
        return serialize_udp(src, dst, sport, dport or 1, payload[: 0xFFFF - 8 - MIN_HEADER_LEN])
    seq, ack = struct.unpack_from("!II", fields, 4)
    return build_segment(src, dst, sport, dport, seq, ack, fields[12], 65535, b"", payload)


def datagrams(src: bytes, dst: bytes, protocol: int, payload: bytes, *, ident: int = 1, fragment: int = 0,
              reverse: bool = False) -> list[bytes]:
    """One IPv4 datagram, or its fragments of `fragment` * 8 bytes (0: whole), in order or reversed."""
    if not fragment:
        return [bytes(build_header(src, dst, protocol, len(payload), ident, ttl=64)) + payload]
    step = fragment * 8
    pieces = []
    for offset in range(0, len(payload), step):
        chunk = payload[offset : offset + step]
        more = offset + step < len(payload)
        header = build_header(src, dst, protocol, len(chunk), ident, ttl=64, more_fragments=more,
                              fragment_offset=offset)
        pieces.append(bytes(header) + chunk)
    return list(reversed(pieces)) if reverse else pieces


def repair(frame: bytes) -> bytes:
    """`frame` with its IPv4 header checksum, and an unfragmented datagram's ICMP/UDP/TCP checksum, made right."""
    data = bytearray(frame)
    if len(data) < ethernet.HEADER_LEN + MIN_HEADER_LEN or data[12:14] != b"\x08\x00":
        return frame
    ip = ethernet.HEADER_LEN
    header_len = max(MIN_HEADER_LEN, (data[ip] & 0x0F) * 4)
    if ip + header_len > len(data):
        return frame
    data[ip + 10 : ip + 12] = b"\x00\x00"
    data[ip + 10 : ip + 12] = checksum(data[ip : ip + header_len]).to_bytes(2, "big")
    fragmented = int.from_bytes(data[ip + 6 : ip + 8], "big") & 0x3FFF
    total = min(int.from_bytes(data[ip + 2 : ip + 4], "big"), len(data) - ip)
    body_start, protocol = ip + header_len, data[ip + 9]
    where = {PROTO_ICMP: 2, PROTO_UDP: 6, PROTO_TCP: 16}.get(protocol)
    if fragmented or where is None or body_start + where + 2 > ip + total:
        return bytes(data)
    body = data[body_start : ip + total]
    body[where : where + 2] = b"\x00\x00"
    initial = 0 if protocol == PROTO_ICMP else pseudo_header_sum(bytes(data[ip + 12 : ip + 16]),
                                                                   bytes(data[ip + 16 : ip + 20]), protocol, len(body))
    value = checksum(body, initial)
    data[body_start + where : body_start + where + 2] = (value or (0xFFFF if protocol == PROTO_UDP else 0)).to_bytes(
        2, "big")
    return bytes(data)
