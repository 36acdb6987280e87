"""Every bound of the non-TCP part of the stack, in one place.

Why one file: an attacker on the wire chooses what we store, so each cache, queue and table must have a
limit that a reviewer can see at a glance. Exceeding any of them is counted (see reasons.py), never silent.

Two kinds. Resource limits (how much an attacker may make us hold or send) are the frozen `StackLimits`
tree, which the composition root builds as part of the appliance's one `Limits` and passes down through
`StackConfig`, so `--limit stack.reassembly.datagrams=8` reaches it. Bounds that are facts of a format or
protect a parser or the event loop (a datagram's largest size, a read buffer) stay module constants.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- faults ---------------------------------------------------------------------------------------------------
FAULT_SITES_LOGGED = 64  # distinct places whose unexpected exception is logged with a traceback (faults.py)

# --- link layer ---------------------------------------------------------------------------------------------
LINK_READ_BATCH = 64  # frames read per readiness callback, so one busy link cannot starve the event loop
LINK_MAX_FRAME = 65536  # read buffer per frame (TAP/AF_PACKET never deliver more than MTU + header)
MEMORY_LINK_QUEUE_FRAMES = 4096  # frames in flight on an in-memory link before it drops (like a full NIC ring)

# --- protocol bounds: facts of the formats, not tunable ------------------------------------------------------
IPV4_DEFAULT_TTL = 64
IPV4_MAX_DATAGRAM = 65535  # total length field maximum; anything reassembling beyond it is a ping of death
ICMP_ERROR_QUOTE_LIMIT = 576  # RFC 1812 4.3.2.3: an error datagram never exceeds 576 bytes

# --- IPv4 identification (RFC 7739 §5.3's double hash, applied to IPv4) ---------------------------------------
# Counters the destinations share by keyed hash: fixed memory (2 bytes each) however many destinations we send
# to. More buckets, fewer destinations whose traffic moves the IDs another one sees; 2048 is Linux's default.
IPV4_IDENT_BUCKETS = 2048


# --- resource limits: one frozen tree, passed down from the composition root (StackConfig.limits) -------------
@dataclass(frozen=True, slots=True)
class NeighbourLimits:
    """The ARP cache and the packets held while a next hop is resolved."""

    cache_entries: int = 256  # resolved neighbours kept; the oldest is evicted when full
    entry_ttl: float = 300.0  # seconds a learned mapping is trusted before it must be learned again
    pending_destinations: int = 64  # next hops being resolved at the same time
    pending_packets_per_destination: int = 64  # packets held per next hop while it is being resolved
    request_interval: float = 1.0  # seconds between ARP requests for the same next hop
    request_tries: int = 3  # requests sent before the held packets are dropped
    refresh_before: float = 15.0  # seconds before expiry that a mapping in use is re-confirmed by unicast request


@dataclass(frozen=True, slots=True)
class ReassemblyLimits:
    """IPv4 and IPv6 fragments held for reassembly, across every datagram an attacker may open (one budget
    for both families, so using both does not double what an attacker can make us hold)."""

    datagrams: int = 64  # datagrams being reassembled at once
    stored_bytes: int = 256 * 1024  # payload bytes held across all datagrams in reassembly
    fragments_per_datagram: int = 64  # caps the per-fragment work an attacker can make us do
    timeout: float = 30.0  # seconds (RFC 791 suggests 15; Linux uses 30)
    refused_keys: int = 256  # remembered refused datagrams (RFC 5722: later fragments are dropped too)


@dataclass(frozen=True, slots=True)
class Ipv6Limits:
    """How much extension-header work one IPv6 packet may ask of us (RFC 8504 §5.3). A chain of tiny headers
    or a header of nothing but padding costs us a loop per byte and carries nothing a host needs; past these
    bounds the packet is dropped and counted, without an ICMPv6 error (we would only be amplifying a probe)."""

    extension_headers: int = 8  # extension headers in one packet (a fragment header included)
    extension_bytes: int = 512  # bytes of extension headers in one packet, in total
    options_per_header: int = 16  # options in one hop-by-hop or destination options header, padding included
    padding_bytes: int = 7  # consecutive bytes of Pad1/PadN: alignment never needs more (RFC 8504 §5.3)


@dataclass(frozen=True, slots=True)
class IcmpLimits:
    """Token buckets for what we send: echo replies and the errors we originate (port/protocol unreachable)."""

    echo_rate: float = 100.0  # echo replies per second
    echo_burst: float = 50.0
    error_rate: float = 20.0  # errors per second
    error_burst: float = 20.0


@dataclass(frozen=True, slots=True)
class DhcpLimits:
    """The DHCP client's timing: how hard it tries, and how little a server may make it do (RFC 2131)."""

    min_lease: float = 60.0  # seconds; shorter leases are raised to this, and a T1 below half of it is
    # replaced by the defaults, so a server cannot make us spin
    initial_retransmit: float = 4.0  # RFC 2131 4.1: 4 s, doubling up to max_retransmit, randomised by +-1 s
    max_retransmit: float = 64.0
    request_tries: int = 4  # REQUESTs without an answer before falling back to DISCOVER
    min_renew_interval: float = 60.0  # RFC 2131 4.4.5: do not retransmit renewals more often than this


@dataclass(frozen=True, slots=True)
class NdLimits:
    """IPv6 neighbour discovery (RFC 4861): the neighbour cache, the packets held while a next hop is resolved,
    and how much work one message may cause."""

    options_per_message: int = 64  # ND options walked in one message (a 1500-byte RA holds at most 186)
    cache_entries: int = 256  # resolved neighbours; the least recently confirmed STALE entry goes first
    pending_destinations: int = 64  # next hops being resolved (INCOMPLETE) at the same time
    pending_packets_per_destination: int = 64  # packets held per next hop while it is being resolved


@dataclass(frozen=True, slots=True)
class SlaacLimits:
    """Our IPv6 addresses and what routers may tell us (RFC 4862 SLAAC, RFC 4861 section 6.3.4). Routers and
    prefixes come from any host on the link that sends an RA, so every list is bounded; the bounds on timer
    values keep a forged RA from making us probe or solicit in a tight loop or send with a tiny hop limit."""

    routers: int = 8  # default routers remembered
    prefixes: int = 16  # on-link prefixes remembered
    addresses: int = 8  # autoconfigured global addresses (including ones that failed DAD, until they expire)
    outgoing_messages: int = 64  # messages waiting for take_outgoing()
    min_hop_limit: int = 32  # an RA's Cur Hop Limit below this is ignored (Linux: accept_ra_min_hop_limit)
    min_reachable_time: float = 5.0  # seconds; RFC 4861 MAX_REACHABLE_TIME (3600 s) is the upper bound
    min_retrans_timer: float = 1.0  # seconds; a shorter advertised RetransTimer is ignored
    max_retrans_timer: float = 60.0
    # An on-link prefix shorter than this is ignored (RFC 4861 §6.3.4 sets no bound; hardening): ::/0 on link
    # sends every off-link destination to multicast resolution instead of the router, and lets TCP's route-back
    # check pass for any source. No real link is /15 or wider (RFC 6177 assigns /48 to /64 per site).
    min_on_link_prefix_len: int = 16


@dataclass(frozen=True, slots=True)
class MldLimits:
    """Multicast listener discovery (RFC 3810, host side). Anyone on the link can send queries (a link-local
    source and hop limit 1 prove only that), so what they cost us is bounded: the sources parsed per message,
    the records per report we send, and how often one kind of query gets an answer, whatever Max Response
    Delay it asks for."""

    # source addresses read from one query or report record (1024 bytes of them); a query naming more is
    # answered without reading them as address-specific (mld.parse_query; RFC 3810 §5.1.10 bounds their number by
    # the link MTU alone: 89 on a 1500-byte link), a report record naming more is refused
    sources_per_message: int = 64
    records_per_report: int = 32  # records in one report we send (644 bytes of ICMPv6); more go in another
    min_response_interval: float = 1.0  # seconds between two answers to general (or to specific) queries


@dataclass(frozen=True, slots=True)
class StackLimits:
    """Every resource limit of the stack below TCP (TCP's are `netstack.tcp.config.TcpConfig`)."""

    neighbours: NeighbourLimits = NeighbourLimits()
    reassembly: ReassemblyLimits = ReassemblyLimits()  # one budget for both families' fragments
    icmp: IcmpLimits = IcmpLimits()  # each family has its own buckets with these rates
    dhcp: DhcpLimits = DhcpLimits()
    ipv6: Ipv6Limits = Ipv6Limits()
    nd: NdLimits = NdLimits()
    slaac: SlaacLimits = SlaacLimits()
    mld: MldLimits = MldLimits()
    udp_bindings: int = 16  # local ports with a handler (only DHCP in production)
    tx_queue_frames: int = 8192  # frames waiting for take_frames()


DEFAULT_STACK_LIMITS = StackLimits()

# --- DHCP -----------------------------------------------------------------------------------------------------
DHCP_MAX_MESSAGE = 1500  # larger DHCP messages are refused before parsing
