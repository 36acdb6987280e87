"""Every TCP limit and tunable in one place (DESIGN.md rule 4): a connection or the layer never invents a number.

Defaults follow the RFCs where they give one (RFC 6298 RTO bounds, RFC 9293 MSL, RFC 5961 challenge-ACK
throttling, RFC 1122 delayed-ACK ceiling) and the appliance's threat model elsewhere.

Memory. The per-connection limits alone would let peers make us hold
`max_connections * (rcv_buffer + ooo_max_bytes + snd_buffer)` = 1024 * 768 KiB = 768 MiB, in an image of
128 MiB. So buffered bytes are also charged to three budgets shared by every connection of a TcpLayer:
- `ooo_budget` (4 MiB): out-of-order queues, each entry charged its payload plus `ooo_entry_overhead` for the
  Python objects holding it (so 64 tiny segments per connection cannot cost more than they are charged).
  Beyond it out-of-order segments are dropped (`ooo-budget-exhausted`); the sender repeats them once the
  hole is filled, so a flood of them costs other connections throughput under loss, never data. Once the
  application has closed, no data is held at all: new data ends the connection with a RST (`data-after-close`).
- `rcv_budget` (8 MiB): unread in-order bytes, which pile up only while the application has paused reading.
  Beyond it data is dropped unacknowledged (`rcv-budget-exhausted`) and the peer sends it again later.
- `snd_budget` (8 MiB): bytes the application wrote that the peer has not acknowledged; a peer that keeps
  its window closed holds them. Beyond it `send` takes less (`snd-budget-exhausted`) and the transport
  keeps the rest, pausing the protocol's writing.
Each connection may always hold `rcv_guaranteed` and `snd_guaranteed` bytes (two full segments) whatever the
budgets say, so connections stalled by one peer slow everyone else down without stopping them.

Worst case (`TcpConfig.worst_case_bytes`): the budgets, plus per connection its guarantees and at most
`CONNECTION_OBJECT_BYTES` of objects, plus a full transmit queue between two drains:
4 + 8 + 8 MiB + 1024 * (2920 + 2920 + 10240) bytes + 8192 * (1500 + 160) bytes = 20 + 15.7 + 13 = 48.7 MiB,
and IPv4 reassembly's 256 KiB (netstack/limits.py): under 40% of the 128 MiB, the rest left to the
interpreter and the appliance. `max_connections` is what this sum is most sensitive to: at the former 4096
the connections alone took 63 MiB. 1024 still holds issue 3's thousand concurrent connections and four times
the appliance's own 256 (appliance.config.Limits.max_connections), leaving room for TIME-WAIT, half-open and
closing entries beside them. It must stay well above `max_half_open`, so that a spoofed SYN flood, which can
fill only the half-open part (SYN cookies answer beyond it), never fills the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from netstack.tcp import family

# A ceiling for one connection's own Python objects, buffers apart: issue 3's target for an idle connection
# (bench/tcp.py idle_connection_memory measures about 1.6 KB; tests/netstack/tcp/test_budget.py holds the line).
CONNECTION_OBJECT_BYTES = 10 * 1024
# What one queued outgoing segment costs beyond its bytes: the (local, remote, segment) tuple and its objects.
OUTGOING_ENTRY_OVERHEAD = 160


@dataclass(frozen=True)
class TcpConfig:
    """Every TCP limit and tunable, each default beside the RFC or threat it comes from (the module docstring works
    out the memory budgets). Frozen, one per TcpLayer: no connection invents a number of its own."""

    # Segment sizes
    mtu: int = 1500                      # link MTU; our advertised MSS is mtu - 40 (IPv4), mtu - 60 (IPv6)
    default_peer_mss: int = 536          # RFC 9293 §3.7.1 when an IPv4 peer sends no MSS option
    default_peer_mss6: int = 1220        # ...and an IPv6 one (RFC 8200 §8.3: 1280 - 60)
    min_mss: int = 64                    # floor for the peer's MSS option (tiny-MSS amplification)
    min_path_mtu: int = 552              # path MTU floor (RFC 1191 §4 practice, Linux's min_pmtu): an ICMP
                                         # fragmentation-needed below it sets the path to it and clears DF.
                                         # IPv4 only: IPv6's floor is 1280 (family.IPV6_MIN_MTU), no knob

    # Buffers (bytes). The receive buffer is rounded up to a multiple of the MSS, as BSD does.
    rcv_buffer: int = 262144
    snd_buffer: int = 262144
    ooo_max_bytes: int = 262144          # out-of-order queue bytes per connection
    ooo_max_segments: int = 64           # out-of-order queue entries per connection
    ooo_budget: int = 4 << 20            # out-of-order bytes, all connections together (module docstring)
    ooo_entry_overhead: int = 160        # charged per queued segment: tuple, bytes header, list slot
    rcv_budget: int = 8 << 20            # unread received bytes, all connections together
    rcv_guaranteed: int = 2920           # unread bytes any one connection may hold beyond rcv_budget
    snd_budget: int = 8 << 20            # unacknowledged or unsent bytes, all connections together
    snd_guaranteed: int = 2920           # send-buffer bytes any one connection may hold beyond snd_budget

    # Options offered
    window_scaling: bool = True
    timestamps: bool = True

    # Retransmission (RFC 6298)
    rto_initial: float = 1.0
    rto_min: float = 1.0
    rto_max: float = 60.0
    clock_granularity: float = 0.001     # G in RFC 6298 §2
    syn_retries: int = 6                 # SYN / SYN-ACK retransmissions before giving up
    data_retries: int = 12               # RTO expiries in a row before the connection is dropped
    user_timeout: float = 300.0          # RFC 9293 §3.8.3: unacknowledged data older than this aborts
    connect_timeout: float = 75.0        # whole SYN-SENT phase (BSD keepinit)
    dupack_threshold: int = 3            # RFC 5681 fast retransmit
    initial_window_segments: int = 10    # RFC 6928 IW10

    # Acknowledgements
    delayed_ack: float = 0.1             # RFC 1122: less than 0.5 s
    delayed_ack_segments: int = 2        # ACK at least every second full-sized segment (RFC 5681 §4.2)

    # Persist / keepalive / idle
    persist_min: float = 0.5
    persist_max: float = 60.0
    keepalive: bool = True
    keepalive_idle: float = 120.0
    keepalive_interval: float = 15.0
    keepalive_probes: int = 5
    idle_timeout: float = 900.0          # no segment in either direction for this long: abort
    msl: float = 30.0                    # TIME_WAIT lasts 2 * msl
    fin_wait_2_timeout: float = 60.0     # orphaned FIN-WAIT-2 (we closed, peer never does)
    persist_timeout: float = 300.0       # the peer's window may stay shut this long while we have data for it,
                                         # counted from our first probe and restarted only when the window
                                         # opens: acknowledging probe bytes one at a time is not progress
                                         # (RFC 6429). Stricter than Linux's default (which probes while
                                         # answered), like Linux with TCP_USER_TIMEOUT (icsk_probes_tstamp):
                                         # a reader paused longer than this is aborted (`persist-timeout`)
    orphan_timeout: float = 300.0        # whole stay of an application-closed connection in FIN-WAIT-1,
                                         # CLOSING or LAST-ACK (Linux tcp_orphan_retries, FreeBSD's shorter
                                         # persist for closed sockets): a peer that takes a byte at a time
                                         # through a 1-byte window cannot keep its slot (`orphan-timeout`)

    # RFC 5961
    challenge_rst: bool = True           # §3: a RST not exactly at RCV.NXT gets a challenge ACK
    challenge_syn: bool = True           # §4: a SYN in a synchronized state gets a challenge ACK
    ack_check: bool = True               # §5: an ACK below SND.UNA - MAX.SND.WND gets a challenge ACK
    challenge_ack_limit: int = 10        # challenge ACKs per second per connection (RFC 5961 §7)
    oow_reply_limit: int = 10            # per connection and second, the other replies anyone who knows the
                                         # 4-tuple can elicit 1:1 (RFC 5961 §7's reasoning; Linux's
                                         # tcp_oow_rate_limited): ACKs to out-of-window, too old and PAWS-failed
                                         # segments, SYN-ACKs repeated for duplicate SYNs. Per connection, not
                                         # layer-wide, so the budget reveals nothing about other connections

    # ICMP (RFC 5927 checks always apply first)
    icmp_hard_errors: bool = True        # while connecting, "prohibited"/port/protocol unreachable and TTL
                                         # exceeded abort the attempt (BSD icmp_may_rst); later they stay soft

    # Admission control
    max_connections: int = 1024          # all TCBs, any state; sized for the 128 MiB image (module docstring)
    max_per_source: int = 64             # verified TCBs per source: an IPv4 address, an IPv6 /64
                                         # (addresses6.source_key). Half-open entries don't count (a SYN
                                         # proves no source: spoofed ones would lock a victim out); a SYN
                                         # from a source at its share gets a cookie, and a handshake that
                                         # completes over the share is reset (per-source-limit-reset)
    max_half_open: int = 256             # SYN-RECEIVED TCBs, whole layer; beyond it SYN cookies answer
    max_backlog: int = 128               # cap on a listener's backlog (half-open plus unaccepted)
    syn_cookies: bool = True
    drop_syn_fin: bool = True            # SYN+FIN is a scanner's probe: drop it (BSD drop_synfin)
    max_listeners: int = 64
    rst_rate_limit: int = 200            # RSTs per second answering segments to closed ports, at most: each
                                         # second's budget is drawn from [limit/2, limit] by a keyed hash, so
                                         # counting one's own RSTs says nothing of others' (replylimit.py)
    rst_rate_limit_per_source: int = 10  # ...and to any one source (an IPv4 address, an IPv6 /64) a second:
                                         # probes naming a victim use at most this much of the layer's
    rst_source_slots: int = 4096         # per-source RST counts: a fixed array indexed by a keyed hash of the
                                         # second and the source (no table whose fullness an attacker could
                                         # watch; re-keyed each second, and far above rst_rate_limit, so a
                                         # colliding source is rarely found and never kept: replylimit.py)
    syn_cookie_rate_limit: int = 5000    # SYN cookies (SYN-ACKs without state) per second, at most: bounds
                                         # the backscatter a spoofed flood makes us send, while a client's
                                         # SYN still wins a cookie with odds rate/flood per try; each second's
                                         # budget is drawn from [limit/2, limit] by a keyed hash, so counting
                                         # one's own cookies says nothing of others' (replylimit.py)
    syn_cookie_rate_limit_per_tuple: int = 3  # ...and to any one 4-tuple a second: a probe naming a victim's
                                         # 4-tuple moves the count by at most this. Per 4-tuple, not per
                                         # source: spoofed SYNs naming a victim must not spend its cookies
    syn_cookie_tuple_slots: int = 65536  # per-4-tuple cookie counts: a fixed array indexed by a keyed hash
                                         # of the second and the 4-tuple, far above syn_cookie_rate_limit
    max_cookies_remembered: int = 4096   # cookies that made a connection, kept until they expire (128 s) so
                                         # that none makes a second one; about 250 bytes each
    max_outgoing: int = 8192             # segments waiting for take_outgoing (as netstack.limits.TX_QUEUE_FRAMES)
    max_events: int = 32768              # events waiting for take_events: about 6 per connection between two
                                         # drains; only a caller that never drains reaches it
    timer_heap_slack: int = 4            # timer heap entries per live connection before it is compacted
    timer_heap_floor: int = 1024         # ...plus this many

    @property
    def local_mss(self) -> int:
        """The MSS we advertise over IPv4 (`local_mss_for` for either family)."""
        return self.mtu - family.IPV4_OVERHEAD

    def local_mss_for(self, address: bytes) -> int:
        """The MSS we advertise, and the most we send, on a connection whose addresses are like `address`."""
        return self.mtu - family.overhead(address)

    def default_peer_mss_for(self, address: bytes) -> int:
        """What a peer that sends no MSS option can receive (RFC 9293 §3.7.1: 536 for IPv4, 1220 for IPv6)."""
        return self.default_peer_mss6 if family.is_ipv6(address) else self.default_peer_mss

    def worst_case_bytes(self) -> int:
        """The most all peers together can make this layer hold at once (module docstring), so a change to any
        limit can be checked against the image's memory rather than argued about."""
        per_connection = self.rcv_guaranteed + self.snd_guaranteed + CONNECTION_OBJECT_BYTES
        return (self.ooo_budget + self.rcv_budget + self.snd_budget + self.max_connections * per_connection
                + self.max_outgoing * (self.mtu + OUTGOING_ENTRY_OVERHEAD))
