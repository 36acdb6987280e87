"""A DHCP server's messages into a whole `Stack` configured for DHCP (netstack/dhcp), as the appliance boots
when it has no static address: offers, acknowledgments and refusals, through renewals and expiry.

Chunks: MESSAGE, a DHCP message (the body from its first byte on) sent by the server as UDP 67 -> 68, with its
transaction id and client address set to what our client last asked with (so that it is considered);
FOREIGN, the same without that (another client's exchange); RAW, a frame as it is; TIME, the clock moved on
by up to 18 hours (retransmissions, T1, T2, expiry).

What must hold: nothing escapes and nothing is counted as an internal error; every DHCP message our client
sends parses and survives being written again; a lease, when bound, gives a usable host address; every frame
we send is well formed (fuzz/net_checks.py).
"""

from __future__ import annotations

import random

from fuzz import chunks, net_checks
from fuzz.clock import run_due_timers
from fuzz.errors import require
from fuzz.frames import BROADCAST_MAC, GATEWAY, THEM_MAC, US_MAC, datagrams, ether
from netstack import ethernet
from netstack.addresses import is_unicast_host
from netstack.config import UseDhcp
from netstack.dhcp import message as dhcp
from netstack.ipv4 import PROTO_UDP, parse_ipv4
from netstack.reasons import Drop
from netstack.stack import Stack, StackConfig
from netstack.udp import parse_udp, serialize_udp

MESSAGE, FOREIGN, RAW, TIME = range(4)
UDP_ROOM = 65000
"""Most DHCP bytes the harness puts in one datagram (more than the client takes: its limit is tested too)."""
XID = slice(4, 8)
CHADDR = slice(28, 34)


class _Harness:
    def __init__(self) -> None:
        self.stack = Stack(StackConfig(US_MAC, UseDhcp()), None, rng=random.Random(18))
        self.now = 0.0
        self.xid = b"\x00" * 4
        self.stack.start(self.now)
        self.check()

    def message(self, body: bytes, ours: bool) -> None:
        payload = bytearray(body[:UDP_ROOM])
        if ours and len(payload) >= CHADDR.stop:
            payload[XID] = self.xid
            payload[CHADDR] = US_MAC
        dst = b"\xff" * 4
        datagram = serialize_udp(GATEWAY, dst, dhcp.SERVER_PORT, dhcp.CLIENT_PORT, bytes(payload))
        for packet in datagrams(GATEWAY, dst, PROTO_UDP, datagram):
            self.frame(ether(BROADCAST_MAC, THEM_MAC, ethernet.ETHERTYPE_IPV4, packet))

    def frame(self, frame: bytes) -> None:
        net_checks.incoming(frame)
        self.stack.frame_received(self.now, frame)

    def advance(self, body: bytes) -> None:
        self.now += int.from_bytes(body[:2].ljust(2, b"\x00"), "big") & 0x0FFF  # at most 68 minutes a step
        run_due_timers(self.stack, self.now)
        self.stack.timers_expired(self.now)

    def check(self) -> None:
        stack = self.stack
        for frame in stack.take_frames(self.now):
            net_checks.outgoing(frame, stack.mtu)
            self._sent(frame)
        require(stack.counters[Drop.INTERNAL_ERROR] == 0, "the stack counted an internal error")
        if stack.address is not None:
            require(is_unicast_host(stack.address), "bound to an address that is not a host's")

    def _sent(self, frame: bytes) -> None:
        eth = ethernet.parse_frame(frame)
        if eth.ethertype != ethernet.ETHERTYPE_IPV4:
            return
        header, body = parse_ipv4(eth.payload)
        if header.protocol != PROTO_UDP or header.is_fragment:
            return
        datagram = parse_udp(body, header.src, header.dst)
        if datagram.dst_port != dhcp.SERVER_PORT:
            return
        sent = dhcp.parse_dhcp(datagram.payload)
        require(dhcp.parse_dhcp(dhcp.serialize_dhcp(sent)) == sent, "our DHCP message does not round-trip")
        require(sent.op == dhcp.BOOTREQUEST and sent.chaddr == US_MAC, "we sent a DHCP message not from us")
        self.xid = sent.xid.to_bytes(4, "big")


def fuzz_one(data: bytes) -> None:
    harness = _Harness()
    for kind, body in chunks.split(data, 4):
        if kind in (MESSAGE, FOREIGN):
            harness.message(body, kind == MESSAGE)
        elif kind == RAW:
            harness.frame(body)
        else:
            harness.advance(body)
        harness.check()


def seeds() -> dict[str, bytes]:
    server = GATEWAY
    lease = {dhcp.OPT_SERVER_ID: server, dhcp.OPT_LEASE_TIME: (3600).to_bytes(4, "big"),
             dhcp.OPT_SUBNET_MASK: bytes((255, 255, 255, 0)), dhcp.OPT_ROUTER: server}

    def reply(kind: int, options: dict[int, bytes] | None = None) -> tuple[int, bytes]:
        message = dhcp.DhcpMessage(dhcp.BOOTREPLY, 0, US_MAC, {dhcp.OPT_MESSAGE_TYPE: bytes((kind,)),
                                                                 **(options or lease)},
                                   yiaddr=bytes((10, 0, 0, 50)), siaddr=server)
        return MESSAGE, dhcp.serialize_dhcp(message)

    bound = [reply(dhcp.OFFER), reply(dhcp.ACK)]
    return {
        "bind": chunks.join(bound),
        "renew": chunks.join([*bound, (TIME, (1900).to_bytes(2, "big")), reply(dhcp.ACK)]),
        "rebind-expire": chunks.join([*bound, (TIME, (3200).to_bytes(2, "big")), (TIME, (600).to_bytes(2, "big"))]),
        "nak": chunks.join([reply(dhcp.OFFER), reply(dhcp.NAK, {dhcp.OPT_SERVER_ID: server})]),
        "retransmit": chunks.join([(TIME, b"\x00\x10"), (TIME, b"\x00\x20"), reply(dhcp.OFFER)]),
        "foreign": chunks.join([(FOREIGN, reply(dhcp.OFFER)[1])]),
        "long-options": chunks.join([reply(dhcp.OFFER, {**lease, 43: bytes(300)}), reply(dhcp.ACK)]),
    }
