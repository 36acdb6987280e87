"""Every bound of the non-TCP part of the stack, in one place.

Why one file: an attacker on the wire chooses what we store, so each cache, queue and table must have a
limit that a reviewer can see at a glance. Exceeding any of them is counted (see reasons.py), never silent.
"""

from __future__ import annotations

# --- faults ---------------------------------------------------------------------------------------------------
FAULT_SITES_LOGGED = 64  # distinct places whose unexpected exception is logged with a traceback (faults.py)

# --- link layer ---------------------------------------------------------------------------------------------
LINK_READ_BATCH = 64  # frames read per readiness callback, so one busy link cannot starve the event loop
LINK_MAX_FRAME = 65536  # read buffer per frame (TAP/AF_PACKET never deliver more than MTU + header)
MEMORY_LINK_QUEUE_FRAMES = 4096  # frames in flight on an in-memory link before it drops (like a full NIC ring)

# --- ARP / neighbours -----------------------------------------------------------------------------------------
ARP_CACHE_ENTRIES = 256  # resolved neighbours kept; the oldest is evicted when full
ARP_ENTRY_TTL = 300.0  # seconds a learned mapping is trusted before it must be learned again
ARP_PENDING_DESTINATIONS = 64  # next hops being resolved at the same time
ARP_PENDING_PACKETS_PER_DESTINATION = 64  # packets held per next hop while it is being resolved
ARP_REQUEST_INTERVAL = 1.0  # seconds between ARP requests for the same next hop
ARP_REQUEST_TRIES = 3  # requests sent before the held packets are dropped
ARP_REFRESH_BEFORE = 15.0  # seconds before expiry that a mapping in use is re-confirmed by unicast request

# --- IPv4 -----------------------------------------------------------------------------------------------------
IPV4_DEFAULT_TTL = 64
IPV4_MAX_DATAGRAM = 65535  # total length field maximum; anything reassembling beyond it is a ping of death
REASSEMBLY_DATAGRAMS = 64  # datagrams being reassembled at once
REASSEMBLY_BYTES = 256 * 1024  # payload bytes held across all datagrams in reassembly
REASSEMBLY_FRAGMENTS_PER_DATAGRAM = 64  # caps the per-fragment work an attacker can make us do
REASSEMBLY_TIMEOUT = 30.0  # seconds (RFC 791 suggests 15; Linux uses 30)
REASSEMBLY_REFUSED_KEYS = 256  # remembered refused datagrams (RFC 5722: later fragments are dropped too)

# --- ICMP -----------------------------------------------------------------------------------------------------
ICMP_ECHO_RATE = 100.0  # echo replies per second
ICMP_ECHO_BURST = 50.0
ICMP_ERROR_RATE = 20.0  # errors we originate (port/protocol unreachable) per second
ICMP_ERROR_BURST = 20.0
ICMP_ERROR_QUOTE_LIMIT = 576  # RFC 1812 4.3.2.3: an error datagram never exceeds 576 bytes

# --- UDP ------------------------------------------------------------------------------------------------------
UDP_BINDINGS = 16  # local ports with a handler (only DHCP in production)

# --- stack output ---------------------------------------------------------------------------------------------
TX_QUEUE_FRAMES = 8192  # frames waiting for take_frames()

# --- DHCP -----------------------------------------------------------------------------------------------------
DHCP_MAX_MESSAGE = 1500  # larger DHCP messages are refused before parsing
DHCP_MIN_LEASE = 60  # seconds; shorter leases are raised to this so a server cannot make us spin
DHCP_INITIAL_RETRANSMIT = 4.0  # RFC 2131 4.1: 4 s, doubling up to 64 s, randomised by +-1 s
DHCP_MAX_RETRANSMIT = 64.0
DHCP_REQUEST_TRIES = 4  # REQUESTs without an answer before falling back to DISCOVER
DHCP_MIN_RENEW_INTERVAL = 60.0  # RFC 2131 4.4.5: do not retransmit renewals more often than this
