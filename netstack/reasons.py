"""Named reasons for every packet the stack drops or refuses, and the counters that record them.

Why names instead of ad-hoc strings: the statistics page and tests both refer to them, so a typo must be a
NameError, not a silently new counter.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum


class Drop(StrEnum):
    """Why a frame, packet or resource was refused."""

    # bugs: an unexpected exception while handling a frame or a timer (netstack/faults.py)
    INTERNAL_ERROR = "internal-error"
    # link
    LINK_RX_ERROR = "link-rx-error"
    LINK_TX_FULL = "link-tx-full"
    LINK_TX_ERROR = "link-tx-error"
    LINK_QUEUE_FULL = "link-queue-full"
    LINK_LOST = "link-lost"  # in-memory test links only: the impairment dropped the frame
    TX_QUEUE_FULL = "tx-queue-full"
    # ethernet
    ETH_TRUNCATED = "eth-truncated"
    ETH_NOT_ETHERNET_II = "eth-not-ethernet-ii"
    ETH_NOT_FOR_US = "eth-not-for-us"
    ETH_BAD_SOURCE = "eth-bad-source"
    ETH_UNKNOWN_TYPE = "eth-unknown-type"
    # arp
    ARP_MALFORMED = "arp-malformed"
    ARP_UNSUPPORTED = "arp-unsupported"
    ARP_MAC_MISMATCH = "arp-mac-mismatch"
    ARP_BAD_SENDER = "arp-bad-sender"
    ARP_OWN_SENDER = "arp-own-sender"  # our own MAC as the sender: a loop or a forgery, never learned
    ARP_ADDRESS_CONFLICT = "arp-address-conflict"
    ARP_NOT_FOR_US = "arp-not-for-us"
    ARP_CACHE_EVICTED = "arp-cache-evicted"
    ARP_PENDING_FULL = "arp-pending-full"
    ARP_PENDING_DESTINATIONS_FULL = "arp-pending-destinations-full"
    ARP_UNRESOLVED = "arp-unresolved"
    # ipv4
    IPV4_TRUNCATED = "ipv4-truncated"
    IPV4_BAD_VERSION = "ipv4-bad-version"
    IPV4_BAD_HEADER_LENGTH = "ipv4-bad-header-length"
    IPV4_BAD_TOTAL_LENGTH = "ipv4-bad-total-length"
    IPV4_BAD_CHECKSUM = "ipv4-bad-checksum"
    IPV4_RESERVED_FLAG = "ipv4-reserved-flag"
    IPV4_BAD_OPTIONS = "ipv4-bad-options"
    IPV4_SOURCE_ROUTE = "ipv4-source-route"
    IPV4_OVERSIZE = "ipv4-oversize"
    IPV4_MARTIAN_SOURCE = "ipv4-martian-source"
    IPV4_LAND = "ipv4-land"
    IPV4_NOT_FOR_US = "ipv4-not-for-us"
    IPV4_UNICAST_LINK_BROADCAST = "ipv4-unicast-link-broadcast"  # RFC 1122 §3.3.6: to us, in a broadcast frame
    IPV4_UNKNOWN_PROTOCOL = "ipv4-unknown-protocol"
    IPV4_NO_ROUTE = "ipv4-no-route"
    IPV4_TX_BAD_SOURCE = "ipv4-tx-bad-source"
    IPV4_TX_TOO_BIG = "ipv4-tx-too-big"
    # fragments
    FRAG_OVERLAP = "frag-overlap"
    FRAG_MISALIGNED = "frag-misaligned"
    FRAG_EMPTY = "frag-empty"
    FRAG_BEYOND_END = "frag-beyond-end"
    FRAG_REFUSED_DATAGRAM = "frag-refused-datagram"
    FRAG_TOO_MANY = "frag-too-many"
    FRAG_DATAGRAMS_FULL = "frag-datagrams-full"
    FRAG_EVICTED = "frag-evicted"
    FRAG_TIMEOUT = "frag-timeout"
    FRAG4_EXPIRED_UNREPORTED = "frag4-expired-unreported"  # a Time Exceeded never sent: the backlog was full
    # ipv6
    IPV6_TRUNCATED = "ipv6-truncated"
    IPV6_BAD_VERSION = "ipv6-bad-version"
    IPV6_BAD_PAYLOAD_LENGTH = "ipv6-bad-payload-length"
    IPV6_JUMBOGRAM = "ipv6-jumbogram"  # RFC 2675 payloads are never accepted
    IPV6_OVERSIZE = "ipv6-oversize"  # fragments reassembling beyond 65535 bytes of payload
    IPV6_EXTENSION_TRUNCATED = "ipv6-extension-truncated"
    IPV6_INCOMPLETE_CHAIN = "ipv6-incomplete-chain"  # RFC 7112: a first fragment without the whole header chain
    IPV6_HOP_BY_HOP_NOT_FIRST = "ipv6-hop-by-hop-not-first"
    IPV6_REPEATED_EXTENSION = "ipv6-repeated-extension"
    IPV6_NESTED_FRAGMENT = "ipv6-nested-fragment"  # a fragment header inside a reassembled packet
    IPV6_TOO_MANY_EXTENSIONS = "ipv6-too-many-extensions"
    IPV6_EXTENSIONS_TOO_LONG = "ipv6-extensions-too-long"
    IPV6_BAD_OPTION = "ipv6-bad-option"  # an option running past its header
    IPV6_TOO_MANY_OPTIONS = "ipv6-too-many-options"
    IPV6_EXCESS_PADDING = "ipv6-excess-padding"
    IPV6_UNKNOWN_OPTION = "ipv6-unknown-option"
    IPV6_ROUTING_HEADER = "ipv6-routing-header"  # segments left: we are not a router
    IPV6_OFF = "ipv6-off"  # an IPv6 frame reached an interface configured without IPv6
    IPV6_MARTIAN_SOURCE = "ipv6-martian-source"
    IPV6_LAND = "ipv6-land"
    IPV6_NOT_FOR_US = "ipv6-not-for-us"
    IPV6_TENTATIVE_DESTINATION = "ipv6-tentative-destination"  # RFC 4862 §5.4: only ND reaches such an address
    IPV6_NO_NEXT_HEADER = "ipv6-no-next-header"
    IPV6_UNKNOWN_NEXT_HEADER = "ipv6-unknown-next-header"
    IPV6_NO_ROUTE = "ipv6-no-route"
    IPV6_TX_BAD_SOURCE = "ipv6-tx-bad-source"
    IPV6_TX_TOO_BIG = "ipv6-tx-too-big"
    # ipv6 fragments (the FRAG_* reasons above count what both families share)
    FRAG6_EXPIRED_UNREPORTED = "frag6-expired-unreported"  # a Time Exceeded never sent: the backlog was full
    # icmpv6
    ICMPV6_TRUNCATED = "icmpv6-truncated"
    ICMPV6_BAD_CHECKSUM = "icmpv6-bad-checksum"
    ICMPV6_ECHO_MULTICAST = "icmpv6-echo-multicast"
    ICMPV6_ECHO_RATE_LIMITED = "icmpv6-echo-rate-limited"
    ICMPV6_ERROR_RATE_LIMITED = "icmpv6-error-rate-limited"
    # RFC 4443 §2.4(e.6): no error to a source that names no single node, here the Subnet-Router anycast address
    # of a prefix of ours (RFC 4291 §2.6.1)
    ICMPV6_ERROR_TO_ANYCAST = "icmpv6-error-to-anycast"
    ICMPV6_BAD_QUOTE = "icmpv6-bad-quote"
    ICMPV6_ERROR_NOT_OURS = "icmpv6-error-not-ours"
    ICMPV6_ERROR_UNHANDLED = "icmpv6-error-unhandled"
    ICMPV6_UNHANDLED_TYPE = "icmpv6-unhandled-type"
    # icmp
    ICMP_TRUNCATED = "icmp-truncated"
    ICMP_BAD_CHECKSUM = "icmp-bad-checksum"
    ICMP_ECHO_RATE_LIMITED = "icmp-echo-rate-limited"
    ICMP_ECHO_BROADCAST = "icmp-echo-broadcast"
    ICMP_ERROR_RATE_LIMITED = "icmp-error-rate-limited"
    ICMP_BAD_QUOTE = "icmp-bad-quote"
    ICMP_ERROR_NOT_OURS = "icmp-error-not-ours"
    ICMP_ERROR_UNHANDLED = "icmp-error-unhandled"
    ICMP_UNHANDLED_TYPE = "icmp-unhandled-type"
    # udp
    UDP_TRUNCATED = "udp-truncated"
    UDP_BAD_LENGTH = "udp-bad-length"
    UDP_BAD_CHECKSUM = "udp-bad-checksum"
    UDP_BAD_PORT = "udp-bad-port"
    UDP_PORT_CLOSED = "udp-port-closed"
    # tcp (what the IP layer sees)
    TCP_NO_LAYER = "tcp-no-layer"
    TCP_NOT_UNICAST = "tcp-not-unicast"
    TCP_NO_ROUTE_BACK = "tcp-no-route-back"
    # dhcp
    DHCP_MALFORMED = "dhcp-malformed"
    DHCP_NOT_OURS = "dhcp-not-ours"
    DHCP_UNEXPECTED = "dhcp-unexpected"
    DHCP_BAD_LEASE = "dhcp-bad-lease"
    DHCP_SHORT_TIMERS = "dhcp-short-timers"  # T1 below min_lease / 2: replaced by the RFC 2131 defaults
    DHCP_ROUTER_UNUSABLE = "dhcp-router-unusable"  # the lease is kept, without its router (off-link, ours, ...)
    # neighbour discovery (ipv6): the codec (RFC 4861 validity checks)
    ND_FRAGMENTED = "nd-fragmented"  # RFC 6980: neighbour discovery never comes in fragments
    ND_ROUTER_SOLICIT_IGNORED = "nd-router-solicit-ignored"  # we are a host: solicitations are for routers
    ND_UNKNOWN_TYPE = "nd-unknown-type"
    ND_REDIRECT_IGNORED = "nd-redirect-ignored"
    ND_BAD_HOP_LIMIT = "nd-bad-hop-limit"
    ND_BAD_CODE = "nd-bad-code"
    ND_TRUNCATED = "nd-truncated"
    ND_BAD_OPTION = "nd-bad-option"
    ND_TOO_MANY_OPTIONS = "nd-too-many-options"
    ND_DUPLICATE_OPTION = "nd-duplicate-option"
    ND_BAD_LINK_ADDRESS = "nd-bad-link-address"
    ND_BAD_PREFIX_OPTION = "nd-bad-prefix-option"
    ND_BAD_MTU_OPTION = "nd-bad-mtu-option"
    ND_MULTICAST_TARGET = "nd-multicast-target"
    ND_UNSPECIFIED_SOURCE_OPTION = "nd-unspecified-source-option"
    ND_DAD_NOT_SOLICITED_NODE = "nd-dad-not-solicited-node"
    ND_SOLICITED_TO_MULTICAST = "nd-solicited-to-multicast"
    ND_RA_NOT_LINK_LOCAL = "nd-ra-not-link-local"
    # neighbour discovery (ipv6): the neighbour cache (RFC 4861 section 7)
    ND_BAD_SENDER = "nd-bad-sender"
    ND_NOT_FOR_US = "nd-not-for-us"
    ND_REPLY_UNRESOLVED = "nd-reply-unresolved"
    ND_UNSOLICITED_NA = "nd-unsolicited-na"
    ND_NA_WITHOUT_LINK_ADDRESS = "nd-na-without-link-address"
    ND_CACHE_EVICTED = "nd-cache-evicted"
    ND_PENDING_FULL = "nd-pending-full"  # IPv6: the oldest held packet dropped for the new one (RFC 4861 §7.2.2)
    ND_PENDING_DESTINATIONS_FULL = "nd-pending-destinations-full"
    ND_UNRESOLVED = "nd-unresolved"
    ND_PROBE_FAILED = "nd-probe-failed"
    # RFC 4861 §7.2.2: a solicitation (resolution retry or unicast probe) not sent, as no address of ours can be
    # its source (the one it was started from is gone and source selection found none); the try still counts
    ND_SOLICIT_NO_SOURCE = "nd-solicit-no-source"
    # RFC 4861 §6.3.6: a default router whose resolution or probes failed goes behind the others (not a drop: a
    # count of failovers, so a router that keeps failing shows)
    ND_ROUTER_UNREACHABLE = "nd-router-unreachable"
    ND_ROUTER_WITHDRAWN = "nd-router-withdrawn"  # RFC 4861 §7.2.5: an NA's IsRouter flag went FALSE: removed
    # neighbour discovery (ipv6): address autoconfiguration (RFC 4862, RFC 7217)
    ND_DAD_DUPLICATE = "nd-dad-duplicate"
    ND_DAD_FAILED = "nd-dad-failed"
    ND_ADDRESS_CONFLICT = "nd-address-conflict"
    ND_RA_BAD_PARAMETER = "nd-ra-bad-parameter"
    ND_RA_BAD_MTU = "nd-ra-bad-mtu"
    ND_RA_PREFIX_IGNORED = "nd-ra-prefix-ignored"
    ND_RA_LIFETIME_LIMITED = "nd-ra-lifetime-limited"
    ND_ROUTERS_FULL = "nd-routers-full"
    ND_PREFIXES_FULL = "nd-prefixes-full"
    ND_ADDRESSES_FULL = "nd-addresses-full"
    ND_OUTGOING_FULL = "nd-outgoing-full"
    # mld: multicast listener discovery, host side (RFC 3810)
    MLD_TRUNCATED = "mld-truncated"
    MLD_TRAILING_BYTES = "mld-trailing-bytes"  # reports only: a query's are Additional Data (RFC 3810 §5.1.12)
    MLD_BAD_HOP_LIMIT = "mld-bad-hop-limit"  # not 1: the query came from off the link
    MLD_NOT_LINK_LOCAL = "mld-not-link-local"  # §5.1.14: a query from a non-link-local source is ignored
    MLD_BAD_GROUP = "mld-bad-group"
    MLD_BAD_RECORD = "mld-bad-record"
    MLD_TOO_MANY_SOURCES = "mld-too-many-sources"  # in a report record (a query's are left unread, below)
    MLD_TOO_MANY_RECORDS = "mld-too-many-records"
    MLD_FRAGMENTED = "mld-fragmented"  # a query fits any link: fragments are only ever an evasion
    MLD_NO_ROUTER_ALERT = "mld-no-router-alert"  # counted, the query is still answered (as Linux does)
    MLD_REPORT_IGNORED = "mld-report-ignored"  # others' reports and dones: hosts do not listen to them
    MLD_QUERY_NOT_OUR_GROUP = "mld-query-not-our-group"
    MLD_QUERY_COALESCED = "mld-query-coalesced"  # merged with an answer already pending
    MLD_RESPONSE_RATE_LIMITED = "mld-response-rate-limited"  # answer put off to min_response_interval
    # a query naming more than MldLimits.sources_per_message sources: not a drop, its sources are not read and it
    # is answered as address-specific, with the group's whole state, as every source-specific query is (mld.py);
    # refusing it (RFC 3810 §5.1.10 bounds N by the link MTU alone) would drop us from the group. Counted so such
    # a querier shows
    MLD_QUERY_SOURCES_UNREAD = "mld-query-sources-unread"


class Counters:
    """A count per named reason; `as_dict` is what /stats.json shows."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def add(self, reason: Drop, n: int = 1) -> None:
        self._counts[reason.value] += n

    def __getitem__(self, reason: Drop) -> int:
        return self._counts[reason.value]

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))
