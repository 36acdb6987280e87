"""A packetdrill-subset interpreter for the FreeBSD tcp-testsuite (../shared/conformance/tcp-testsuite).

The stack under test is the whole netstack `Stack` with our `TcpLayer`, behind the in-memory link with virtual
time (packetdrill_wire.py): inbound script segments (`<`) arrive as Ethernet/IPv4 frames, outbound ones (`>`)
are parsed back out of the frames the stack sends. Syscall lines drive the TcpLayer user API, which is the
stack's socket API.

An expected segment is checked as packetdrill's run_packet.c checks it: every flag (ECE and CWR included), the
reserved bits, sequence number (unless `...`), the acknowledgement field (0 when the script gives none), the
window when the script gives `win`, the urgent pointer, the data offset, the payload bytes, and the option list
byte for byte (NOPs, EOLs and order included) unless it is `<...>`. Like packetdrill without
`--tcp_ts_tick_usecs`, the TS value we send is not compared (it is remembered, so that an inbound TS ecr naming a
script TS val is sent with the value we really used); the TS ecr is compared. Like packetdrill, segments still
queued when the script ends are not looked at, and the IPv4 ECN bits are not compared (the scripts never ask for
them). Beyond packetdrill, the TCP checksum and the DF bit the stack promises (stack.py) are checked, and the IPv4
header checksum and lengths by netstack's own parser. Two FreeBSD choices our stack does not share are adapted,
and each script records the adaptation (`Runner.adapted`): SACK expectations are compared in FreeBSD's
sack-disabled layout (packetdrill_options.without_sack), and a SYN window scale that is FreeBSD's derivation from
kern.ipc.maxsockbuf is expected as our derivation from the receive buffer (Runner._our_window_scale).

Backtick lines: `sysctl -w` settings whose intent maps onto TcpConfig are honoured (those after the first event
from their line on); settings that describe what our stack does anyway are accepted; the rest are recorded in
`Runner.unchecked`. `sockstat ... | grep -c STATE |
grep N` assertions are evaluated against our connection states, `tcpdrop -s TIME_WAIT` drops our TIME_WAIT
connections, and `%{ assert tcpi_state == TCPI_X }%` compares the state of the socket under test. Any other
command is recorded in `Runner.unchecked`, never passed silently. `#ifdef STANDARD` branches are kept and
`#ifdef FreeBSD` ones dropped.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from netstack import ipv6
from netstack.errors import MalformedError
from netstack.ipv4 import PROTO_TCP, build_header
from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.connection import Connection
from netstack.tcp.layer import TcpError, TcpLayer
from netstack.tcp.segment import (
    ACK,
    CWR,
    ECE,
    FIN,
    PSH,
    RST,
    SYN,
    URG,
    SegmentError,
    build_segment,
    parse_segment,
)
from netstack.tcp.seq import MASK
from netstack.tcp.state import State
from netstack.tcp.window import window_shift
from tests.conformance import packetdrill_options as opts
from tests.conformance.packetdrill_wire import Outbound, Wire, WireError

LOCAL_PORT = 8080
REMOTE_PORT = 40000
REMOTE_ISN = 0x10000000
DEFAULT_MTU = 1500
DEFAULT_TOLERANCE_USECS = 4000  # packetdrill's default --tolerance_usecs
EXPECT_HORIZON = 600.0          # how long a `*` expected segment may take to appear
FLAG_LETTERS = {"S": SYN, "F": FIN, "R": RST, "P": PSH, ".": ACK, "U": URG, "E": ECE, "W": CWR}
ERRNO_TO_ERROR = {"0": None, "ECONNRESET": "reset", "ECONNREFUSED": "refused", "ETIMEDOUT": "timeout",
                  "EHOSTUNREACH": "unreachable"}
ICMP_TYPES = {"unreachable": 3, "source_quench": 4, "redirect": 5, "time_exceeded": 11, "parameter_problem": 12}
ICMP_CODES = {
    "net_unreachable": 0, "host_unreachable": 1, "protocol_unreachable": 2, "port_unreachable": 3,
    "frag_needed": 4, "source_route_failed": 5, "net_unknown": 6, "host_unknown": 7, "source_host_isolated": 8,
    "net_prohibited": 9, "host_prohibited": 10, "net_unreachable_for_tos": 11, "host_unreachable_for_tos": 12,
    "packet_filtered": 13, "precedence_violation": 14, "precedence_cutoff": 15,
    "ttl_exceeded_in_transit": 0, "frag_reass_exceeded": 1,
}
ICMP6_TYPES = {"unreachable": 1, "packet_too_big": 2, "time_exceeded": 3, "parameter_problem": 4}
ICMP6_CODES = {  # packetdrill's names for the RFC 4443 codes
    "no_route": 0, "admin_prohibited": 1, "not_neighbour": 2, "address_unreachable": 3, "port_unreachable": 4,
    "exceeded_hop_limit": 0, "exceeded_frag_time": 1,
    "header_field": 0, "unknown_next_header": 1, "unknown_option": 2,
}
BSD_STATE = {  # sockstat's names
    State.SYN_SENT: "SYN_SENT", State.SYN_RECEIVED: "SYN_RCVD", State.ESTABLISHED: "ESTABLISHED",
    State.FIN_WAIT_1: "FIN_WAIT_1", State.FIN_WAIT_2: "FIN_WAIT_2", State.CLOSE_WAIT: "CLOSE_WAIT",
    State.CLOSING: "CLOSING", State.LAST_ACK: "LAST_ACK", State.TIME_WAIT: "TIME_WAIT", State.CLOSED: "CLOSED",
}
_ICMP = re.compile(r"^<\s*icmp\s+(?P<type>\w+)(?:\s+(?P<code>\w+))?(?:\s+mtu\s+(?P<mtu>\d+))?\s*"
                   r"\[(?P<seq>\d+):\d+\(\d+\)\]\s*$")
_PACKET = re.compile(
    r"^(?P<dir>[<>])\s*(?P<flags>[SFRP.UEW]+)\s+(?P<seq>\.\.\.|\d+)(?::(?P<end>\d+))?\((?P<len>\d+)\)"
    r"(?:\s+ack\s+(?P<ack>\d+))?(?:\s+win\s+(?P<win>\d+))?\s*(?:<(?P<opts>[^>]*)>)?\s*$"
)
_SYSCTL = re.compile(r"^sysctl -w (?P<name>[\w.]+)=(?P<value>\d+)$")
_SOCKSTAT_PORT = re.compile(r"^sockstat -[46] -P tcp (?:-p (?P<p1>\d+) -s|-s -p (?P<p2>\d+)) \| grep -c (?P<state>\w+)"
                            r" \| grep (?P<count>\d+)$")
_SOCKSTAT_OWN = re.compile(r"^sockstat -[46] -P tcp -s \| grep packetdril \| grep -c (?P<state>\w+)"
                           r" \| grep (?P<count>\d+)$")
_TCPI_STATE = re.compile(r"^%\{\s*assert tcpi_state == TCPI_(?P<state>\w+)\s*\}%$")


class ScriptError(AssertionError):
    """The stack did not do what the script says (or the script uses something this runner lacks)."""


class UnsupportedError(ScriptError):
    """The script needs a feature this runner does not model."""


class SkipScript(Exception):  # noqa: N818 (a verdict, not an error)
    """The script needs an environment our stack cannot be configured into; the reason says which."""


@dataclass
class Line:
    number: int
    start: float | None    # None for "*"
    end: float | None      # for "a...b" blocking calls
    relative: bool
    text: str


@dataclass
class Script:
    path: Path
    options: dict[str, str] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)


_TIME = re.compile(r"^\s*(\*|\+?\s*[0-9.]+(?:\s*\.\.\.\s*[0-9.]+)?)\s+(.*)$")


def parse_script(path: Path) -> Script:
    script = Script(path)
    keep = [True]
    text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if line.startswith("#ifdef"):
            keep.append(keep[-1] and line.split()[1] == "STANDARD")
            continue
        if line.startswith("#else"):
            keep[-1] = not keep[-1] and keep[-2]
            continue
        if line.startswith("#endif"):
            keep.pop()
            continue
        if not keep[-1]:
            continue
        if line.startswith("--"):
            name, _, value = line[2:].partition("=")
            script.options[name] = value
            continue
        match = _TIME.match(line)
        if match is None or (match.group(2).startswith("%{") and not match.group(2).endswith("}%")):
            raise UnsupportedError(f"line {number}: cannot parse {line!r}")
        spec, body = match.group(1).replace(" ", ""), match.group(2)
        if spec == "*":
            script.lines.append(Line(number, None, None, False, body))
            continue
        relative = spec.startswith("+")
        spec = spec.lstrip("+")
        if "..." in spec:
            a, b = spec.split("...")
            script.lines.append(Line(number, float(a), float(b), relative, body))
        else:
            script.lines.append(Line(number, float(spec), None, relative, body))
    return script


# ------------------------------------------------------------------ sysctls and socket options

def _ms(value: int) -> float:
    return value / 1000


_HONOURED: dict[str, tuple[tuple[str, ...], Callable[[int], object]]] = {
    "net.inet.tcp.insecure_rst": (("challenge_rst",), lambda v: v == 0),
    "net.inet.tcp.insecure_syn": (("challenge_syn",), lambda v: v == 0),
    "net.inet.tcp.drop_synfin": (("drop_syn_fin",), lambda v: v == 1),
    "net.inet.tcp.rexmit_initial": (("rto_initial",), _ms),
    "net.inet.tcp.icmp_may_rst": (("icmp_hard_errors",), lambda v: v == 1),
    "net.inet.tcp.delacktime": (("delayed_ack",), _ms),
    "net.inet.tcp.keepinit": (("connect_timeout",), _ms),
    "net.inet.tcp.recvspace": (("rcv_buffer",), int),
    "net.inet.tcp.sendspace": (("snd_buffer",), int),
    "net.inet.tcp.rfc1323": (("window_scaling", "timestamps"), lambda v: v == 1),
}
# Settings whose value describes what our stack does anyway; any other value is not modelled.
_ALREADY_SO: dict[str, frozenset[int]] = {  # why, for any other value: _NOT_MODELLED
    "net.inet.tcp.blackhole": frozenset({0}),
    "net.inet.tcp.hostcache.purgenow": frozenset({1}),  # there is no host cache to purge
    "net.inet.tcp.sack.enable": frozenset({0}),
    "net.inet.tcp.ecn.enable": frozenset({0, 2}),  # 2: ECN only when the peer asks, and no script's peer does
    "net.inet.tcp.rexmit_drop_options": frozenset({0}),
}
_NOT_MODELLED = {
    "kern.ipc.maxsockbuf": "FreeBSD derives its SYN window scale from it; ours follows the receive buffer",
    "net.inet.tcp.rexmit_slop": "our RTO (RFC 6298) has no slop term",
    "net.inet.tcp.ecn.maxretries": "ECN is not implemented",
    "net.inet.tcp.sack.enable": "SACK (RFC 2018) is not implemented: expected options are compared in "
                                "FreeBSD's sack.enable=0 layout",
    "net.inet.tcp.ecn.enable": "ECN (RFC 3168) is not implemented",
    "net.inet.tcp.rexmit_drop_options": "retransmitted SYNs always keep their options",
    "net.inet.tcp.blackhole": "closed ports are always answered with RST",
}


@dataclass
class Setup:
    """What the script's sysctls, options and socket options make of our configuration."""

    config: TcpConfig
    mtu: int
    unchecked: list[str]
    maxsockbuf: int | None


def _sysctls(script: Script) -> dict[str, int]:
    """The settings in force when the first event runs. Scripts set defaults, then the values the test is about,
    before their first event; changes after it are applied by the Runner when their line runs."""
    settings: dict[str, int] = {}
    for line in script.lines:
        body = line.text.strip()
        if not body.startswith("`"):
            break
        m = _SYSCTL.fullmatch(body.strip("`"))
        if m:
            settings[m.group("name")] = int(m.group("value"))
    return settings


def _honoured(name: str, value: int) -> dict[str, object]:
    fields, convert = _HONOURED[name]
    return {target: convert(value) for target in fields}


def _sysctl_note(name: str, value: int) -> str | None:
    """None when our stack already behaves as the setting asks, else why the setting is not checked."""
    if name in _ALREADY_SO and value in _ALREADY_SO[name]:
        return None
    return f"`sysctl -w {name}={value}` ({_NOT_MODELLED.get(name, 'not modelled')})"


def setup_for(script: Script) -> Setup:
    changes: dict[str, object] = {"rcv_buffer": 65536, "snd_buffer": 32768, "keepalive": False}
    settings = _sysctls(script)
    unchecked: list[str] = []
    mtu = int(script.options.get("mtu", DEFAULT_MTU))
    if mtu != DEFAULT_MTU:
        changes["mtu"] = mtu
    for name, value in settings.items():
        if name in _HONOURED:
            changes.update(_honoured(name, value))
        elif (note := _sysctl_note(name, value)) is not None:
            unchecked.append(note)
    for line in script.lines:
        m = re.search(r"setsockopt\(\d+, IPPROTO_TCP, (\w+), \[(\d+)\]", line.text)
        if m and m.group(1) == "TCP_KEEPINIT":
            changes["connect_timeout"] = float(m.group(2))
        elif m and m.group(1) == "TCP_NOOPT":
            # Honoured as far as TcpConfig can: no window scale, no timestamps. The MSS option is always sent.
            changes["window_scaling"] = changes["timestamps"] = m.group(2) == "0"
        elif m:
            raise UnsupportedError(f"socket option {m.group(1)}")
    config = dataclasses.replace(TcpConfig(), **changes)  # type: ignore[arg-type]
    return Setup(config, mtu, unchecked, settings.get("kern.ipc.maxsockbuf"))


# ------------------------------------------------------------------ the interpreter

@dataclass(frozen=True)
class PacketSpec:
    flags: int
    seq: int | None       # None for "..."
    length: int
    ack: int | None
    window: int | None
    options: tuple[opts.Option, ...] | None  # None for `<...>`


def parse_packet(body: str) -> PacketSpec:
    m = _PACKET.match(body)
    if m is None:
        raise UnsupportedError(f"cannot parse packet {body!r}")
    flags = 0
    for ch in m.group("flags"):
        flags |= FLAG_LETTERS[ch]
    text = m.group("opts")
    try:
        options = None if text is not None and text.strip() == "..." else opts.parse_options(text) if text else ()
    except opts.OptionSyntaxError as error:
        raise UnsupportedError(str(error)) from None
    return PacketSpec(
        flags, None if m.group("seq") == "..." else int(m.group("seq")), int(m.group("len")),
        None if m.group("ack") is None else int(m.group("ack")),
        None if m.group("win") is None else int(m.group("win")), options,
    )  # fmt: skip


def flag_names(flags: int) -> str:
    return "".join(ch for ch, bit in FLAG_LETTERS.items() if flags & bit)


class Runner:
    def __init__(self, script: Script) -> None:
        self.script = script
        setup = setup_for(script)
        self.maxsockbuf = setup.maxsockbuf
        self.unchecked: list[str] = list(setup.unchecked)
        self.adapted: list[str] = []
        self.layer = TcpLayer(b"packetdrill-runner-secret-key-32", setup.config)
        try:
            self.wire = Wire(self.layer, setup.mtu, ipv6=script.options.get("ip_version") == "ipv6")
        except ValueError as error:  # StackConfig refuses the script's link (e.g. an MTU outside 576..9000)
            raise SkipScript(f"--mtu={setup.mtu}: {error}") from None
        self.tolerance = int(script.options.get("tolerance_usecs", DEFAULT_TOLERANCE_USECS)) / 1e6
        self.local_iss: int | None = None
        self.fds: dict[int, str | int] = {}   # fd -> "socket" | "listener" | connection id
        self.conns: dict[int, Connection] = {}  # every connection an fd ever named (state survives destruction)
        self.under_test: int | None = None
        self.errors: dict[int, str | None] = {}
        self.peer_closed: set[int] = set()
        self.accept_queue: list[int] = []
        self.closed_at: dict[int, float] = {}
        self.blocking: list[tuple[int, str | None, float]] = []
        self.ts_map: dict[int, int] = {}  # script TS val -> the TS val we sent for it
        self.started = False
        self.last_event = max((line.number for line in script.lines if not line.text.strip().startswith("`")),
                              default=0)

    @property
    def now(self) -> float:
        return self.wire.now

    def _collect(self) -> None:
        for event in self.layer.take_events():
            if isinstance(event, ev.Accepted):
                self.accept_queue.append(event.conn)
            elif isinstance(event, ev.PeerClosed):
                self.peer_closed.add(event.conn)
            elif isinstance(event, ev.Closed):
                self.errors[event.conn] = event.error
                self.closed_at[event.conn] = self.now

    def _advance(self, until: float, *, stop_on_output: bool = False) -> None:
        self.wire.advance(until, stop_on_output=stop_on_output)
        self._collect()

    # -------------------------------------------------------------- driving

    def run(self) -> None:
        current = 0.0
        for line in self.script.lines:
            if line.start is None:
                when = None
            else:
                when = current + line.start if line.relative else line.start
                current = when
            try:
                self.execute(line, when)
            except (ScriptError, WireError, TcpError, MalformedError, SegmentError) as error:
                raise ScriptError(f"line {line.number} ({line.text.strip()}): {error}") from None
        for conn, expected, end in self.blocking:
            self._advance(end + self.tolerance)
            if self.errors.get(conn, "open") != expected:
                raise ScriptError(f"blocking call expected {expected}, connection ended with "
                                  f"{self.errors.get(conn, 'no error yet')}")
            closed = self.closed_at.get(conn, -1.0)
            if abs(closed - end) > self.tolerance:
                raise ScriptError(f"blocking call returned at {closed:.3f}, script says {end:.3f}")

    def execute(self, line: Line, when: float | None) -> None:
        body = line.text.strip()
        self.started = self.started or not body.startswith("`")
        if body.startswith(">"):
            self.expect(body, when)
            return
        if when is not None:
            self._advance(when)
        if self.wire.outbound:
            out = self.wire.outbound[0]
            raise ScriptError(f"unexpected outbound segment at {out.time:.3f}: {self.describe(out)}")
        if body.startswith("<"):
            self.inject(body)
        elif body.startswith("`"):
            self.command(body, line)
        elif body.startswith("%{"):
            self.code(body)
        else:
            self.syscall(body, line, when)
        self.wire.pump()
        self._collect()

    def describe(self, out: Outbound) -> str:
        seg = parse_segment(self.wire.local, self.wire.remote, memoryview(out.segment))
        base = self.local_iss or 0
        ack = (seg.ack - REMOTE_ISN) & MASK if seg.flags & ACK else seg.ack
        header_len = (out.segment[12] >> 4) * 4
        return (f"{flag_names(seg.flags)} {(seg.seq - base) & MASK}({len(seg.payload)}) ack {ack} "
                f"win {seg.window} {opts.describe(out.segment[20:header_len])}").rstrip()

    # -------------------------------------------------------------- packets in

    def inject_icmp(self, m: re.Match[str]) -> None:
        types, codes = (ICMP6_TYPES, ICMP6_CODES) if self.wire.ipv6 else (ICMP_TYPES, ICMP_CODES)
        if m.group("type") not in types:
            raise UnsupportedError(f"ICMP type {m.group('type')}")
        icmp_type = types[m.group("type")]
        code_name = m.group("code")
        if code_name is None:
            code = 0
        elif code_name.startswith("code_"):
            code = int(code_name[5:])
        elif code_name in codes:
            code = codes[code_name]
        else:
            raise UnsupportedError(f"ICMP code {code_name}")
        seq = ((self.local_iss or 0) + int(m.group("seq"))) & MASK
        quoted_tcp = struct.pack("!HHI", LOCAL_PORT, REMOTE_PORT, seq)
        mtu = int(m.group("mtu")) if m.group("mtu") else 0
        if self.wire.ipv6:
            header = ipv6.build_header(self.wire.local, self.wire.remote, ipv6.PROTO_TCP, 20, hop_limit=64)
            self.wire.send_icmp(icmp_type, code, struct.pack("!I", mtu), header + quoted_tcp)
            return
        quoted = bytes(build_header(self.wire.local, self.wire.remote, PROTO_TCP, 20, 0, ttl=64,
                                    dont_fragment=True)) + quoted_tcp
        self.wire.send_icmp(icmp_type, code, struct.pack("!HH", 0, mtu), quoted)

    def inject(self, body: str) -> None:
        icmp = _ICMP.match(body)
        if icmp is not None:
            self.inject_icmp(icmp)
            return
        spec = parse_packet(body)
        if spec.seq is None or spec.options is None or spec.window is None:
            raise UnsupportedError("an inbound segment needs a sequence number, a window and concrete options")
        seq = (REMOTE_ISN + spec.seq) & MASK
        ack = (spec.ack + (self.local_iss or 0)) & MASK if spec.ack is not None else 0
        options = spec.options
        if spec.flags & ACK:  # packetdrill sends a script TS ecr as the TS val we really sent
            mapped = []
            for option in options:
                if option.kind == "TS":
                    val, ecr = option.values
                    if ecr not in self.ts_map:
                        raise ScriptError(f"no outbound TS val {ecr} to map the TS ecr to")
                    option = opts.Option("TS", (val, self.ts_map[ecr]))  # noqa: PLW2901
                mapped.append(option)
            options = tuple(mapped)
        # SACK blocks a peer sends acknowledge our data: their edges are relative to our ISN
        raw = opts.encode(options, self.local_iss or 0)
        segment = build_segment(self.wire.remote, self.wire.local, REMOTE_PORT, LOCAL_PORT, seq, ack, spec.flags,
                                spec.window, raw, bytes(spec.length))
        self.wire.send_tcp(segment)

    # -------------------------------------------------------------- packets out

    def expect(self, body: str, when: float | None) -> None:
        spec = parse_packet(body)
        if not self.wire.outbound:
            self._advance(when + self.tolerance if when is not None else self.now + EXPECT_HORIZON,
                          stop_on_output=True)
        if not self.wire.outbound:
            raise ScriptError("expected segment was not sent")
        out = self.wire.outbound.pop(0)
        if when is not None and out.time < when - self.tolerance:
            raise ScriptError(f"segment sent at {out.time:.3f}, expected at {when:.3f}: {self.describe(out)}")
        try:
            self.verify(spec, out)
        except ScriptError as error:
            raise ScriptError(f"{error}; got {self.describe(out)}") from None

    def verify(self, spec: PacketSpec, out: Outbound) -> None:
        raw = out.segment
        seg = parse_segment(self.wire.local, self.wire.remote, memoryview(raw))  # the TCP checksum is verified here
        if seg.flags != spec.flags:
            raise ScriptError(f"flags {flag_names(seg.flags)}, expected {flag_names(spec.flags)}")
        if raw[12] & 0x0F:
            raise ScriptError("reserved header bits set")
        if seg.flags & SYN and self.local_iss is None:
            self.local_iss = (seg.seq - (spec.seq or 0)) & MASK
        if spec.seq is not None and (seg.seq - (self.local_iss or 0)) & MASK != spec.seq:
            raise ScriptError("sequence number differs")
        ack = (seg.ack - REMOTE_ISN) & MASK if seg.flags & ACK else seg.ack
        if ack != (spec.ack or 0):
            raise ScriptError("acknowledgement field differs")
        if spec.window is not None and seg.window != spec.window:
            raise ScriptError(f"window {seg.window}, expected {spec.window}")
        if seg.urgent:
            raise ScriptError("urgent pointer set")
        if len(seg.payload) != spec.length or any(seg.payload):
            raise ScriptError(f"payload differs (expected {spec.length} zero bytes)")
        if not out.dont_fragment:
            raise ScriptError("TCP segment sent without DF (path MTU discovery)")
        if spec.options is not None:
            self._verify_options(spec.options, raw[20 : (raw[12] >> 4) * 4], seg.options.ts_val)

    def _verify_options(self, script_options: tuple[opts.Option, ...], actual: bytes, sent_ts: int | None) -> None:
        if opts.has_sack(script_options):
            script_options = opts.without_sack(script_options)
            note = "SACK expectations compared in FreeBSD's sack.enable=0 layout (SACK is not implemented)"
            if note not in self.adapted:
                self.adapted.append(note)
        script_options = self._our_window_scale(script_options)
        script_ts = next((o.values[0] for o in script_options if o.kind == "TS"), None)
        if script_ts is not None and sent_ts is not None:
            # packetdrill without --tcp_ts_tick_usecs: the TS val is not compared, only remembered
            self.ts_map[script_ts] = sent_ts
            script_options = tuple(opts.Option("TS", (sent_ts, o.values[1])) if o.kind == "TS" else o
                                   for o in script_options)
        expected = opts.encode(script_options, REMOTE_ISN)
        if actual != expected:
            raise ScriptError(f"options {opts.describe(actual) or '<>'}, expected {opts.describe(expected) or '<>'}")

    def _our_window_scale(self, script_options: tuple[opts.Option, ...]) -> tuple[opts.Option, ...]:
        """FreeBSD's SYN shift is window_shift(kern.ipc.maxsockbuf), the buffer a socket may grow to; ours is
        window_shift(receive buffer), the buffer it has (there is no autotuning). Where the script's shift is
        exactly FreeBSD's derivation, we expect our derivation instead; any other shift is compared as written.
        The peers in these scripts never send a window scale, so the shift never changes a window they check."""
        if self.maxsockbuf is None:
            return script_options
        ours = window_shift(self.layer.config.rcv_buffer)
        out = []
        for option in script_options:
            if option.kind == "wscale" and option.values[0] == window_shift(self.maxsockbuf) != ours:
                note = (f"SYN window scale {option.values[0]} (FreeBSD's, from kern.ipc.maxsockbuf={self.maxsockbuf})"
                        f" expected as {ours} (ours, from the {self.layer.config.rcv_buffer}-byte receive buffer)")
                if note not in self.adapted:
                    self.adapted.append(note)
                option = opts.Option("wscale", (ours,))  # noqa: PLW2901
            out.append(option)
        return tuple(out)

    # -------------------------------------------------------------- commands and assertions

    def _state_name(self, value: str | int) -> str:
        if value == "socket":
            return "CLOSED"
        if value == "listener":
            return "LISTEN"
        assert isinstance(value, int)
        return BSD_STATE[self.conns[value].state]

    def command(self, body: str, line: Line) -> None:
        command = body.strip("`").strip()
        m = _SYSCTL.fullmatch(command)
        if m:
            self._sysctl(m.group("name"), int(m.group("value")), line)
            return
        m = _SOCKSTAT_OWN.fullmatch(command)
        if m:  # sockets held open by the process, by state
            count = sum(1 for value in self.fds.values() if self._state_name(value) == m.group("state"))
            self._expect_count(command, count, int(m.group("count")))
            return
        m = _SOCKSTAT_PORT.fullmatch(command)
        if m:  # every TCB (embryonic ones included) with the port on either end
            port = int(m.group("p1") or m.group("p2"))
            count = sum(1 for conn in self.layer.by_id.values()
                        if port in (conn.local_port, conn.remote_port) and BSD_STATE[conn.state] == m.group("state"))
            count += sum(1 for p in self.layer.listeners if p == port and m.group("state") == "LISTEN")
            self._expect_count(command, count, int(m.group("count")))
            return
        if command == "tcpdrop -s TIME_WAIT":
            for conn_id in list(self.layer.time_wait_ids):
                self.layer.abort(self.now, conn_id)
            return
        self.unchecked.append(body)

    def _sysctl(self, name: str, value: int, line: Line) -> None:
        """A setting after the script started: honoured ones change the layer's configuration from now on (like a
        sysctl, it reaches connections at their next use of it); others are noted unless only cleanup follows."""
        if not self.started:
            return  # part of the prologue setup_for applied
        if name in _HONOURED:
            self.layer.config = dataclasses.replace(self.layer.config, **_honoured(name, value))  # type: ignore[arg-type]
            return
        note = _sysctl_note(name, value)
        if note is not None and line.number < self.last_event and note not in self.unchecked:
            self.unchecked.append(note)

    @staticmethod
    def _expect_count(command: str, got: int, expected: int) -> None:
        # `grep N` on a count matches any count containing the digit N; we require equality (the counts are < 10)
        if got != expected:
            raise ScriptError(f"`{command}`: count is {got}, expected {expected}")

    def code(self, body: str) -> None:
        m = _TCPI_STATE.fullmatch(body)
        if m is None:
            self.unchecked.append(body)
            return
        if self.under_test is None:
            raise ScriptError("tcpi_state asserted with no socket under test")
        state = self.conns[self.under_test].state
        if state.name != m.group("state"):
            raise ScriptError(f"tcpi_state is {state.name}, expected {m.group('state')}")

    # -------------------------------------------------------------- syscalls

    def _conn(self, fd: int) -> int:
        value = self.fds.get(fd)
        if not isinstance(value, int):
            raise ScriptError(f"fd {fd} is not a connection")
        return value

    def _adopt(self, fd: int, conn_id: int) -> None:
        conn = self.layer.connection(conn_id)
        if conn is None:
            raise ScriptError(f"connection {conn_id} vanished before fd {fd} could hold it")
        self.fds[fd] = conn_id
        self.conns[conn_id] = conn
        self.under_test = conn_id

    def syscall(self, body: str, line: Line, when: float | None) -> None:
        m = re.match(r"^(\w+)\((.*)\)\s*=\s*(.*)$", body)
        if m is None:
            raise UnsupportedError(f"cannot parse syscall {body!r}")
        name, args_text, result = m.group(1), m.group(2), m.group(3).strip()
        args = [a.strip() for a in re.split(r",(?![^\[]*\])", args_text)]
        fd = int(args[0]) if args and args[0].isdigit() else -1
        if name == "socket":
            self.fds[int(result)] = "socket"
        elif name in ("fcntl", "bind"):
            return  # every socket is non-blocking here; the script's address is the only one
        elif name == "setsockopt":
            if "SO_REUSEADDR" not in args[2] and args[1] != "IPPROTO_TCP":
                raise UnsupportedError(f"socket option {args[2]}")
        elif name == "listen":
            self.layer.listen(LOCAL_PORT, int(args[1]))
            self.fds[fd] = "listener"
        elif name == "accept":
            if not self.accept_queue:
                raise ScriptError("accept: no established connection")
            self._adopt(int(result), self.accept_queue.pop(0))
        elif name == "connect":
            self._connect(fd, result, line, when)
        elif name in ("recv", "read"):
            self._recv(fd, args, result, name)
        elif name in ("send", "write"):
            sent = self.layer.send(self.now, self._conn(fd), bytes(int(args[2])))
            if str(sent) != result:
                raise ScriptError(f"{name} returned {sent}")
        elif name == "shutdown":
            self.layer.shutdown(self.now, self._conn(fd))
        elif name == "close":
            value = self.fds.pop(fd, None)
            if value == "listener":
                self.layer.unlisten(LOCAL_PORT)
            elif isinstance(value, int):
                self.layer.close(self.now, value)
        elif name == "getsockopt":
            self._getsockopt(fd, args)
        else:
            raise UnsupportedError(f"syscall {name}")

    def _connect(self, fd: int, result: str, line: Line, when: float | None) -> None:
        conn = self.layer.connect(self.now, self.wire.local, self.wire.remote, REMOTE_PORT, LOCAL_PORT)
        self._adopt(fd, conn)
        if line.end is not None:
            errno = result.split()[1] if result.startswith("-1") else "0"
            if errno not in ERRNO_TO_ERROR:
                raise UnsupportedError(f"connect result {result}")
            start = when if when is not None else self.now
            end = start - line.start + line.end if line.start is not None else line.end
            self.blocking.append((conn, ERRNO_TO_ERROR[errno], end))
        elif not result.startswith("-1 EINPROGRESS"):
            raise UnsupportedError(f"non-blocking connect result {result}")

    def _recv(self, fd: int, args: list[str], result: str, name: str) -> None:
        conn = self._conn(fd)
        size = int(args[2])
        peek = name == "recv" and "MSG_PEEK" in args[3]
        available = self.layer.readable_bytes(conn)
        if result.startswith("-1"):
            if available or conn in self.peer_closed or conn in self.errors:
                raise ScriptError(f"{name} would not block: {available} bytes available")
            return
        expected = int(result.split(maxsplit=1)[0])
        if expected == 0:
            if available or conn not in self.peer_closed:
                raise ScriptError(f"{name} expected end of stream, {available} bytes available")
            return
        got = min(size, available) if peek else len(self.layer.receive(self.now, conn, size))
        if got != expected:
            raise ScriptError(f"{name} returned {got}, expected {expected}")

    def _getsockopt(self, fd: int, args: list[str]) -> None:
        value = self.fds.get(fd)
        if "SO_RCVBUF" in args[2]:
            expected = int(args[3].strip("[]"))
            size = self.conns[value].rcv_buf_size if isinstance(value, int) else self.layer.config.rcv_buffer
            if size != expected:
                raise ScriptError(f"SO_RCVBUF is {size}, expected {expected}")
            return
        if "SO_ERROR" not in args[2]:
            raise UnsupportedError(f"getsockopt {args[2]}")
        errno = args[3].strip("[]")
        if errno not in ERRNO_TO_ERROR:
            raise UnsupportedError(f"SO_ERROR {errno}")
        got = None
        if isinstance(value, int) and value in self.errors:
            got = self.errors[value]
            self.errors[value] = None  # SO_ERROR is cleared by reading it
        if got != ERRNO_TO_ERROR[errno]:
            raise ScriptError(f"SO_ERROR is {got}, expected {ERRNO_TO_ERROR[errno]}")


@dataclass(frozen=True)
class Outcome:
    """One script's verdict, with what the runner could not check or had to adapt."""

    status: str   # "pass", "fail" or "skip"
    detail: str
    unchecked: tuple[str, ...] = ()
    adapted: tuple[str, ...] = ()


def run_script(path: Path) -> Runner:
    runner = Runner(parse_script(path))
    runner.run()
    return runner


def outcome(path: Path) -> Outcome:
    try:
        runner = Runner(parse_script(path))
    except SkipScript as skip:
        return Outcome("skip", str(skip))
    except ScriptError as error:
        return Outcome("fail", str(error))
    try:
        runner.run()
    except ScriptError as error:
        return Outcome("fail", str(error), tuple(runner.unchecked), tuple(runner.adapted))
    return Outcome("pass", "", tuple(runner.unchecked), tuple(runner.adapted))
