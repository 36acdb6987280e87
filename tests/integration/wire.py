"""Raw Ethernet frames on the namespace's side of the tap: what scapy builds goes straight to the target,
and every frame the target sends comes back here (an AF_PACKET socket sees both directions)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests import netns
from tests.integration.lab import KERNEL_IP, KERNEL_IP6, TARGET_IP, TARGET_IP6, Lab

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # sll_pkttype of frames this side sent (we want the target's)
MAX_FRAMES_READ = 100_000  # a bound on any one wait


@dataclass
class Wire:
    raw: socket.socket
    own_mac: str
    target_mac: str

    def send(self, packet: object) -> None:
        from scapy.layers.l2 import Ether

        self.raw.send(bytes(Ether(src=self.own_mac, dst=self.target_mac) / packet))

    def send_ether(self, frame: object) -> None:
        """A whole frame as built (its own Ethernet addresses: a spoofed sender MAC, a multicast group)."""
        self.raw.send(bytes(frame))  # type: ignore[call-overload]

    def drain(self) -> None:
        self.raw.setblocking(False)
        try:
            for _ in range(MAX_FRAMES_READ):
                self.raw.recv(65536)
        except BlockingIOError:
            pass
        finally:
            self.raw.setblocking(True)

    def wait_for(self, match: Callable[[object], bool], timeout: float) -> object | None:
        """The first frame from the target that `match`es (a scapy Ether), or None after `timeout`."""
        from scapy.layers.l2 import Ether

        deadline = time.monotonic() + timeout
        for _ in range(MAX_FRAMES_READ):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.raw.settimeout(left)
            try:
                data, address = self.raw.recvfrom(65536)
            except TimeoutError:
                return None
            if address[2] == PACKET_OUTGOING:
                continue
            frame = Ether(data)
            if match(frame):
                return frame
        return None

    def close(self) -> None:
        self.raw.close()


def open_wire(lab: Lab) -> Wire:
    status, _ = lab.http_get("/")  # the kernel now has the target's MAC in its neighbour table
    assert status == 200
    neigh = netns.ip(lab.ns, "neigh", "show", TARGET_IP)
    target_mac = re.search(r"lladdr ([0-9a-f:]{17})", neigh)
    assert target_mac, neigh
    own = re.search(r"link/ether ([0-9a-f:]{17})", netns.ip(lab.ns, "-o", "link", "show", lab.tap))
    assert own

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind((lab.tap, 0))
        return sock

    return Wire(netns.run_in(lab.ns, make), own.group(1), target_mac.group(1))


def tcp_from_target(dport: int, flags: str | None = None, *, ipv6: bool = False) -> Callable[[object], bool]:
    """A matcher for a segment from the target (TARGET_IP, or TARGET_IP6) to the namespace's kernel address on
    port `dport`, with exactly `flags` when given. The lab is dual-stack: a frame of the other family never
    matches."""
    src, dst = (TARGET_IP6, KERNEL_IP6) if ipv6 else (TARGET_IP, KERNEL_IP)

    def match(frame: object) -> bool:
        from scapy.layers.inet import IP, TCP
        from scapy.layers.inet6 import IPv6

        layer = IPv6 if ipv6 else IP
        if not frame.haslayer(layer) or not frame.haslayer(TCP):  # type: ignore[attr-defined]
            return False
        ip, tcp = frame[layer], frame[TCP]  # type: ignore[index]
        if ip.src != src or ip.dst != dst or tcp.dport != dport:
            return False
        return flags is None or str(tcp.flags) == flags

    return match


def tcp6_from_target(dport: int, flags: str | None = None) -> Callable[[object], bool]:
    """tcp_from_target over IPv6: a segment from TARGET_IP6 to KERNEL_IP6's port `dport`."""
    return tcp_from_target(dport, flags, ipv6=True)


def handshake_seen(target: Lab, wire: Wire, port: int, *, ipv6: bool = False) -> tuple[socket.socket, int, int, int]:
    """A kernel connection from KERNEL_IP (or KERNEL_IP6) to the target's `port`, with the sequence numbers its
    handshake showed on the wire: (socket, our port, our next sequence number, the target's next one)."""
    from scapy.layers.inet import TCP

    sock = target.open_socket(KERNEL_IP6 if ipv6 else KERNEL_IP)
    sport = sock.getsockname()[1]
    sock.settimeout(30)
    wire.drain()
    sock.connect((TARGET_IP6 if ipv6 else TARGET_IP, port))
    synack = wire.wait_for(tcp_from_target(sport, "SA", ipv6=ipv6), 10)
    assert synack is not None
    tcp = synack[TCP]  # type: ignore[index]
    return sock, sport, int(tcp.ack), (int(tcp.seq) + 1) % 2**32
