"""Every TCP counter name: what `TcpLayer.stats` counts and /stats.json shows (prefixed with `tcp-`).

Why an enum: the statistics page, the tests and the attack suite all look these names up, so a typo at a
count site must be an AttributeError that mypy catches, not a silently new counter. The values are the names
the counters have always had; a renamed member must keep its value.
"""

from __future__ import annotations

from enum import StrEnum, unique


@unique
class Count(StrEnum):
    """A TCP counter. Most count a segment we refused and why; some count events worth watching."""

    # faults: an unexpected exception in the layer (netstack/faults.py)
    INTERNAL_ERROR = "internal-error"
    # segment codec (netstack/tcp/segment.py): integrity and option syntax
    TRUNCATED = "truncated"
    BAD_DATA_OFFSET = "bad-data-offset"
    BAD_CHECKSUM = "bad-checksum"
    OPTION_TRUNCATED = "option-truncated"
    OPTION_LENGTH = "option-length"
    # demultiplexing: segments no state could want
    ADDRESS_FAMILY_MISMATCH = "address-family-mismatch"  # source and destination not both IPv4 or both IPv6
    BAD_ADDRESS6 = "bad-address6"                        # an IPv6 end no host has (multicast, mapped, ::, ::1)
    PORT_ZERO = "port-zero"
    LAND = "land"
    SYN_RST = "syn-rst"
    NULL_FLAGS = "null-flags"
    XMAS = "xmas"
    SYN_FIN = "syn-fin"
    CLOSED_PORT = "closed-port"
    RST_SENT = "rst-sent"
    RST_RATE_LIMITED = "rst-rate-limited"                # this second's layer-wide RST budget was spent
    RST_SOURCE_RATE_LIMITED = "rst-source-rate-limited"  # ...or the budget of RSTs to this source
    # listeners, admission and SYN cookies
    LISTEN_RST = "listen-rst"
    LISTEN_SYN_ACK = "listen-syn-ack"
    LISTEN_ACK = "listen-ack"
    LISTEN_NO_SYN = "listen-no-syn"
    BACKLOG_FULL = "backlog-full"
    CONNECTION_LIMIT = "connection-limit"
    PER_SOURCE_LIMIT = "per-source-limit"            # a SYN dropped (cookies off): its source holds its share
    PER_SOURCE_LIMIT_RESET = "per-source-limit-reset"  # a completed handshake over its source's share: RST
    SYN_RECEIVED = "syn-received"
    HALF_OPEN_UNREACHABLE = "half-open-unreachable"  # the stack could not resolve the SYN's source
    SYN_COOKIE_SENT = "syn-cookie-sent"
    SYN_COOKIE_RATE_LIMITED = "syn-cookie-rate-limited"              # this second's layer-wide cookie budget
    SYN_COOKIE_TUPLE_RATE_LIMITED = "syn-cookie-tuple-rate-limited"  # ...or this 4-tuple's (replylimit.py)
    SYN_COOKIE_ACCEPTED = "syn-cookie-accepted"
    SYN_COOKIE_REUSED = "syn-cookie-reused"          # a cookie that already made a connection (refused)
    SYN_COOKIE_FORGOTTEN = "syn-cookie-forgotten"    # the memory of used cookies was full
    TIME_WAIT = "time-wait"
    TIME_WAIT_RECYCLED = "time-wait-recycled"
    TIME_WAIT_REOPENED = "time-wait-reopened"
    # opening handshake
    SYN_SENT_BAD_ACK = "syn-sent-bad-ack"
    SYN_SENT_NO_SYN = "syn-sent-no-syn"
    RST_WITHOUT_ACK_IN_SYN_SENT = "rst-without-ack-in-syn-sent"
    SYN_RECEIVED_BAD_ACK = "syn-received-bad-ack"
    SYN_RETRANSMITTED = "syn-retransmitted"
    # segment arrival checks (RFC 9293 §3.10.7.4, RFC 7323 PAWS, RFC 5961, RFC 1337)
    PAWS = "paws"
    NO_ACK = "no-ack"
    OUT_OF_WINDOW = "out-of-window"
    # an unacceptable segment ending more than a receive buffer behind RCV.NXT: no retransmission of the peer's
    # can be that old, so its ACK is not processed (a blind attacker's SEQ guess; audit-tcp #2, #3), only answered;
    # counted here instead of out-of-window
    OLD_SEGMENT = "old-segment"
    # the ACK answering an unacceptable or PAWS-failed segment, or the SYN-ACK repeated for a duplicate SYN,
    # was left unsent: over `TcpConfig.oow_reply_limit` (anyone who knows the 4-tuple elicits them 1:1)
    OOW_REPLY_RATE_LIMITED = "oow-reply-rate-limited"
    ZERO_WINDOW_PROBE_RECEIVED = "zero-window-probe-received"
    RST_OUT_OF_WINDOW = "rst-out-of-window"
    RST_CHALLENGE_ACK = "rst-challenge-ack"
    RST_ACCEPTED = "rst-accepted"
    TIME_WAIT_RST_IGNORED = "time-wait-rst-ignored"
    SYN_CHALLENGE_ACK = "syn-challenge-ack"
    SYN_IN_WINDOW_RESET = "syn-in-window-reset"
    ACK_UNSENT_DATA = "ack-unsent-data"
    ACK_TOO_OLD = "ack-too-old"
    CHALLENGE_ACK = "challenge-ack"
    CHALLENGE_ACK_RATE_LIMITED = "challenge-ack-rate-limited"
    # receiving data
    DUPLICATE_SEGMENT = "duplicate-segment"
    OUT_OF_ORDER = "out-of-order"
    OOO_QUEUE_FULL = "ooo-queue-full"
    OOO_BUDGET_EXHAUSTED = "ooo-budget-exhausted"
    DATA_BEYOND_WINDOW = "data-beyond-window"
    RCV_BUDGET_EXHAUSTED = "rcv-budget-exhausted"
    DATA_AFTER_CLOSE = "data-after-close"              # answered with a RST (RFC 9293 SHLD-2)
    CLOSE_WITH_UNREAD_DATA = "close-with-unread-data"  # the close sent a RST (RFC 9293 SHLD-2)
    DATA_AFTER_FIN = "data-after-fin"
    # text at or beyond the sequence number of a FIN already queued: past the end of the stream, never delivered
    DATA_BEYOND_FIN = "data-beyond-fin"
    # a FIN before text already queued, or at another number than a FIN already queued: the stream would end
    # in two places, so the segment is refused (the first word on where the stream ends stands)
    FIN_CONFLICT = "fin-conflict"
    # sending, loss recovery and timers
    SND_BUDGET_EXHAUSTED = "snd-budget-exhausted"
    FAST_RETRANSMIT = "fast-retransmit"
    PARTIAL_ACK_RETRANSMIT = "partial-ack-retransmit"
    WINDOW_PROBE = "window-probe"
    SYN_RETRIES_EXCEEDED = "syn-retries-exceeded"
    RETRANSMIT_TIMEOUT = "retransmit-timeout"
    PERSIST_TIMEOUT = "persist-timeout"
    KEEPALIVE_TIMEOUT = "keepalive-timeout"
    IDLE_TIMEOUT = "idle-timeout"
    FIN_WAIT_2_TIMEOUT = "fin-wait-2-timeout"
    ORPHAN_TIMEOUT = "orphan-timeout"                # an app-closed FIN-WAIT-1/CLOSING/LAST-ACK outlived its bound
    ABORTED = "aborted"
    # ICMP errors about our connections (RFC 5927)
    ICMP_SHORT_QUOTE = "icmp-short-quote"
    ICMP_BAD_QUOTE = "icmp-bad-quote"
    ICMP6_QUOTE_NOT_TCP = "icmp6-quote-not-tcp"      # an IPv6 quote whose next header is not TCP: not ours
    ICMP_NO_CONNECTION = "icmp-no-connection"
    ICMP_SEQ_OUT_OF_WINDOW = "icmp-seq-out-of-window"
    ICMP_FRAG_NEEDED_NO_MTU = "icmp-frag-needed-no-mtu"
    PMTU_REDUCED = "pmtu-reduced"
    PMTU_FLOOR = "pmtu-floor"                        # below min_path_mtu: the floor, and DF cleared
    ICMP6_PTB_BELOW_MINIMUM = "icmp6-ptb-below-minimum"  # packet too big under 1280: discarded (RFC 8201 §4)
    ICMP_HARD_ERROR = "icmp-hard-error"
    ICMP_SOFT_ERROR = "icmp-soft-error"
    ICMP_IGNORED = "icmp-ignored"
    # the layer's own queues
    TX_QUEUE_FULL = "tx-queue-full"
    EVENT_QUEUE_FULL = "event-queue-full"
    TIMER_HEAP_COMPACTED = "timer-heap-compacted"


__all__ = ["Count"]
