"""A userspace Ethernet/ARP/IPv4/ICMP/UDP/DHCP/TCP stack: every byte an attacker sends is parsed here.

Layout (each module has one job; protocol code is sans-I/O: bytes and time in, bytes and events out):
- link/        where frames come from: base.Link (the interface), tap.TapLink (host TAP device),
               packet.PacketLink (AF_PACKET on the VM's NIC), memory (impaired in-memory wire for tests)
- ethernet, arp, ipv4, icmp, udp, dhcp/message   codecs: parse (integrity -> parse -> sanity) and serialize
- neighbour    ARP resolution: RFC 826 merge rule, bounded cache, bounded queues of packets awaiting resolution
- reassembly   IPv4 fragments: bounded memory, timeout, any overlap drops the datagram (RFC 5722 style)
- dhcp/client  DHCP client state machine (RFC 2131); config: static address / kernel `ip=` parsing
- stack        the composition (Stack) and the SegmentLayer protocol the TCP layer implements
- tcp/         TCP (RFC 9293) as a pure layer: segments and time in, segments and events out
- limits, reasons   every bound in one place (the resource limits as the StackLimits tree); every drop
               counted under a named reason (Stack.stats())
The asyncio side (the driver, TCP sockets as Transports, `start_network`) lives in `adapters`.
"""
