"""Every limit and port of the appliance, in one place (DESIGN.md rule 4).

Why one module: an attacker's cheapest weapon is a resource we forgot to bound. Having all bounds here
makes the complete list reviewable, and every one of them maps to a counted failure category
(`resource-limit` or `timeout`) rather than to a crash.

`Limits` is the one tree: the appliance's own bounds (connections, HTTP, ledger, statistics, console, vault)
and, as subtrees, the packages' own: `tcp` (netstack.tcp.config.TcpConfig), `stack` (netstack.limits) and
`tls` (tls.limits, holding `tls.x509`: tls.x509.limits, the bounds on a peer's chain). Each bound is
defined once, in its package; the composition root (`appliance.main`) builds the tree once, passes each part
down, prints it whole on boot (`describe`), and `--limit a.b.c=VALUE` (`override`) reaches every leaf.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, replace
from typing import Any, cast

from netstack.limits import DEFAULT_STACK_LIMITS, StackLimits
from netstack.tcp.config import TcpConfig
from tls.limits import DEFAULT_LIMITS as DEFAULT_TLS_LIMITS
from tls.limits import Limits as TlsLimits

TCP_HEADROOM = 4
"""TCP control blocks allowed per connection the appliance admits. TCP holds more than the appliance counts
(TIME-WAIT, half-open, closing, the 10001 connect-backs), and its per-source cap must sit well above the
appliance's own, so an extra connection is refused and counted by the appliance, not silently by TCP."""

DERIVED = {
    "tcp.max_connections": f"{TCP_HEADROOM} x max_connections",
    "tcp.max_per_source": f"{TCP_HEADROOM} x max_connections_per_source",
}
"""Leaves of the tree that follow other leaves: `--limit` refuses them and names what to set instead."""


@dataclass(frozen=True)
class Limits:
    """The one limits tree (module docstring): the appliance's own bounds as fields, each default with its reason
    beside it, and the packages' limits as subtrees. Frozen: built once at boot (`override` answers `--limit`
    with a changed copy) and then shared by every part it bounds."""

    # connections
    max_connections: int = 256  # concurrent, all endpoints together
    max_connections_per_source: int = 16  # concurrent, per source address
    # a full table may displace a connection not yet answered (in its TLS handshake, or waiting for its first
    # request) once it is this old: long enough for any client that means to ask to have asked, so that a
    # newcomer is not itself displaced before it could (appliance.admission)
    displace_unanswered_after: float = 2.0
    # time (seconds)
    handshake_timeout: float = 10.0  # TCP accept to TLS HandshakeComplete
    idle_timeout: float = 30.0  # no bytes from the peer for this long
    send_timeout: float = 10.0  # the peer takes one write (response, TLS flight, close_notify) or the close
    callback_connect_timeout: float = 5.0  # 10001: connecting back to the caller
    # the server roles' RSA leaves, made after ready (appliance.alternates): the CA key waits this long at most
    # for their key (about 0.5 s idle in the VM, 10x that at nice 10 under full load), then is dropped
    rsa_leaves_timeout: float = 60.0
    client_linger: float = 2.0  # as TLS client (10001, 10002): wait this long for the server to close first
    # the lingering close (adapters.tls_channel.PlainChannel.close): after our last bytes (an alert, a close_notify,
    # an HTTP error), shut down writing and read and discard until the peer's end of stream, so that closing
    # with its bytes unread does not RST away what we sent before the peer read it
    linger_seconds: float = 2.0  # the peer has this long to end its stream after our FIN, else it is aborted
    linger_bytes: int = 256 * 1024  # ... and may send at most this much more meanwhile, else it is aborted
    # HTTP
    http_max_request_line: int = 2048
    http_max_header_bytes: int = 8192  # all header lines together
    http_max_headers: int = 64
    http_max_body: int = 0  # we serve GET/HEAD only: a longer body is refused (413), one within it read and discarded
    http_max_requests_per_connection: int = 100
    http_max_challenge: int = 256  # /proof?challenge=... after decoding
    # first byte of a request to the end of its head (slow-header attacks); a connection's first request: from
    # accept (port 80) or the end of the TLS handshake (443), so that a silent connection holds no slot longer
    http_request_timeout: float = 10.0
    # accept to the last response of a connection (slot holding: one request per idle period): the connection
    # closes at the first request boundary after this, with Connection: close on a response then in progress
    http_connection_lifetime: float = 120.0
    # TLS transport
    tls_read_chunk: int = 16384  # bytes read from the transport at a time
    tls_max_buffered: int = 65536  # bytes of TLS input queued before the engine drains them
    # ledger and statistics
    ledger_region_bytes: int = 4 * 1024 * 1024  # per region; the disk holds two (A/B) plus a header
    ledger_max_record: int = 1024  # one encoded record, header included
    ledger_batch_records: int = 64  # fsync after this many appended records ...
    ledger_batch_seconds: float = 0.5  # ... or this long after the first unsynced one, whichever comes first
    ledger_reason_bytes: int = 160  # failure reasons are truncated to this in the ledger
    ledger_sync_slow_seconds: float = 1.0  # a sync (fsync, on the event loop) this slow is logged
    stats_recent_refused: int = 50  # rows on the "recent refused attempts" list
    stats_series_points: int = 256  # time buckets of the cumulative chart (all endpoints share them)
    stats_unique_sources_tracked: int = 2048  # distinct sources counted exactly (checkpointed); a sketch beyond
    stats_ledger_findings: int = 16  # ledger damage findings listed on the statistics page (all are counted)
    # the console (a serial line in the image: ~11 KB/s, and a blocked write stalls the event loop)
    log_connection_lines_per_second: float = 20.0  # beyond this, connection lines are counted, not printed
    log_address_seconds: float = 1.0  # at most one `address` line per this: router advertisements and DHCP come
    # from anyone on the link, and the changes within it are reported together, as the state they leave
    log_library_lines_per_second: float = 2.0  # the libraries' warnings and faults (appliance.library_log): a
    # peer can cause them; beyond this they are counted, not printed
    log_library_text_chars: int = 1000  # a library line's message, and its traceback (the end of it), cut to this
    log_library_traceback_sites: int = 64  # places whose first traceback prints whatever the rate (then no more)
    # the vault
    proof_rate_per_second: float = 10.0  # /proof signs with the wallet key: about 1 ms of CPU on a host, 10-25 ms
    # under TCG (OpenSSL's secp256k1 signing and the recovery id in Python): at most a quarter of the VM's CPU
    proof_rate_per_source: float = 4.0  # ... and per source address, so that one client cannot take all of it
    proof_sources_tracked: int = 1024  # source addresses with a /proof bucket (least recently used forgotten)
    # statistics
    stats_series_bucket_seconds: float = 60.0  # narrowest chart bucket; doubles when history outgrows the buckets
    stats_sources_sketch_registers: int = 1024  # HyperLogLog registers (a power of two): ~3% error beyond the cap
    stats_peer_text_chars: int = 40  # peer-sent text in refusals is cut to this on the page and in stats.json
    # the packages' own limits, each defined in its package
    tcp: TcpConfig = field(default_factory=TcpConfig)  # its admission caps are DERIVED: see effective_tcp
    stack: StackLimits = DEFAULT_STACK_LIMITS
    tls: TlsLimits = DEFAULT_TLS_LIMITS  # with the peers' chains' bounds as tls.x509

    def effective_tcp(self) -> TcpConfig:
        """TCP as the stack runs it: its admission caps follow the appliance's (TCP_HEADROOM)."""
        return replace(self.tcp, max_connections=TCP_HEADROOM * self.max_connections,
                       max_per_source=TCP_HEADROOM * self.max_connections_per_source)


DEFAULT_LIMITS = Limits()


class LimitError(ValueError):
    """An override that names no leaf of the tree, a derived leaf, or a value of the wrong type."""


def describe(limits: Limits) -> dict[str, Any]:
    """The whole tree as the appliance runs it (derived leaves at their effective values), nested by part:
    what the boot log prints, so an operator reads the bounds of this very run."""
    return _as_tree(replace(limits, tcp=limits.effective_tcp()))


def _as_tree(node: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in dataclasses.fields(node):  # type: ignore[arg-type]
        value = getattr(node, item.name)
        out[item.name] = _as_tree(value) if dataclasses.is_dataclass(value) else value
    return out


def override(limits: Limits, path: str, text: str) -> Limits:
    """`limits` with the leaf at dotted `path` (e.g. `idle_timeout`, `tls.x509.max_candidates`) set from
    `text`, parsed as the leaf's own type. Raises LimitError."""
    if path in DERIVED:
        raise LimitError(f"{path} is derived ({DERIVED[path]}): set that instead")
    return cast(Limits, _replaced(limits, path.split("."), text, path))


def _replaced(node: Any, names: list[str], text: str, path: str) -> Any:
    name = names[0]
    fields = {f.name for f in dataclasses.fields(node)} if dataclasses.is_dataclass(node) else set()
    if name not in fields:
        raise LimitError(f"{path}: no such limit")
    current = getattr(node, name)
    if len(names) > 1:
        return replace(node, **{name: _replaced(current, names[1:], text, path)})
    if dataclasses.is_dataclass(current):
        raise LimitError(f"{path}: a part of the tree, not a limit (name one of its leaves)")
    return replace(node, **{name: _parse_leaf(current, text, path)})


def _parse_leaf(current: object, text: str, path: str) -> object:
    if isinstance(current, bool):  # before int: bool("0") would be True
        if text.lower() in {"1", "true", "yes", "on"}:
            return True
        if text.lower() in {"0", "false", "no", "off"}:
            return False
        raise LimitError(f"{path}: {text!r} is not a boolean")
    if isinstance(current, int | float):
        try:
            value = type(current)(text)
        except ValueError as exc:
            raise LimitError(f"{path}: {exc}") from exc
        if not math.isfinite(value) or value < 0:  # a bound of nan, inf or below zero bounds nothing
            raise LimitError(f"{path}: {text!r} is not a finite, non-negative number")
        return value
    raise LimitError(f"{path}: not a number or a boolean")


@dataclass(frozen=True)
class Ports:
    """The endpoint table of DESIGN.md. `offset` shifts every port, the connect-back target included,
    so that an unprivileged test run on the kernel's sockets cannot collide with a real service."""

    http: int = 80
    https: int = 443
    mutual: int = 10000
    callback: int = 10001
    reverse: int = 10002
    callback_target: int = 40001

    def shifted(self, offset: int) -> Ports:
        return replace(
            self,
            http=self.http + offset,
            https=self.https + offset,
            mutual=self.mutual + offset,
            callback=self.callback + offset,
            reverse=self.reverse + offset,
            callback_target=self.callback_target + offset,
        )

    def names(self) -> dict[int, str]:
        """Port number -> endpoint name as it appears in the ledger and statistics."""
        return {
            self.http: "http",
            self.https: "https",
            self.mutual: "mutual",
            self.callback: "callback",
            self.reverse: "reverse",
        }


ENDPOINTS = ("http", "https", "mutual", "callback", "reverse")
"""Stable endpoint names (ledger and statistics use these, not port numbers, so an offset run is comparable)."""

DISK_HEADER_BYTES = 4096
"""The first block of the disk holds the vault key; the ledger's two regions follow."""
