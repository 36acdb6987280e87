"""Issue 15: the handshake's last ACK and a RST in one batch reached the socket layer as an Accepted for a
connection already gone (a TcpError traceback and tcp-internal-error, 9 tries in 20)."""

from __future__ import annotations

import asyncio

from adapters.tcp_sockets import TcpSockets
from netstack.tcp.segment import ACK, RST, SYN, build_options
from tests.adapters.idle_driver import IdleDriver
from tests.netstack.tcp.raw import RawPeer


def test_an_accepted_connection_reset_in_the_same_batch_is_never_started() -> None:
    loop = asyncio.new_event_loop()
    try:
        peer = RawPeer()
        sockets = TcpSockets(peer.layer, IdleDriver(), loop)
        made: list[asyncio.BaseProtocol] = []

        def factory() -> asyncio.Protocol:
            protocol = asyncio.Protocol()
            made.append(protocol)
            return protocol

        sockets.listen(80, factory)
        peer.inject(SYN, 1000, options=build_options(mss=1460))
        (syn_ack,) = peer.out()
        peer.inject(ACK, 1001, syn_ack.seq + 1)          # one batch: the last ACK of the handshake...
        peer.inject(RST | ACK, 1001, syn_ack.seq + 1)    # ...and a RST, before the events are dispatched
        sockets.dispatch()
        assert made == []
        assert peer.layer.stats["internal-error"] == 0
    finally:
        loop.close()
