"""A packetdrill-subset interpreter that drives our TcpLayer with virtual time.

It reads the FreeBSD tcp-testsuite scripts (../shared/conformance/tcp-testsuite): inbound packets (`<`) are
built and fed to the layer, outbound packets (`>`) are matched against what the layer emits, syscalls map to
the layer's user API. Flags, sequence and acknowledgement numbers (relative to each side's ISN) and payload
lengths are checked exactly; windows and option lists are the stack's own business (see the suite's README).
Backtick lines are FreeBSD sysctls: the few whose intent maps onto TcpConfig are honoured, `sockstat`/`tcpdrop`
and `%{ }%` assertions are not run. `#ifdef STANDARD` branches are kept, `#ifdef FreeBSD` ones dropped.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.layer import TcpLayer
from netstack.tcp.segment import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, build_segment, parse_segment

LOCAL = bytes([192, 168, 0, 1])
REMOTE = bytes([192, 0, 2, 1])
LOCAL_PORT = 8080
REMOTE_PORT = 40000
REMOTE_ISN = 0x10000000
MASK = 0xFFFFFFFF
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
_ICMP = re.compile(r"^<\s*icmp\s+(?P<type>\w+)(?:\s+(?P<code>\w+))?(?:\s+mtu\s+(?P<mtu>\d+))?\s*"
                   r"\[(?P<seq>\d+):\d+\(\d+\)\]\s*$")


class ScriptError(AssertionError):
    """The stack did not do what the script says (or the script uses something this runner lacks)."""


class UnsupportedError(ScriptError):
    """The script needs a feature this runner does not model."""


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
    text = path.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"%\{.*?\}%", "", text, flags=re.S)
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
        if match is None and re.fullmatch(r"\+?\s*[0-9.]+", line):
            continue  # a timestamp whose %{ }% body was removed
        if match is None:
            raise UnsupportedError(f"line {number}: cannot parse {line!r}")
        spec, body = match.group(1).replace(" ", ""), match.group(2)
        if not body.strip():
            continue
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


def config_for(script: Script) -> TcpConfig:
    """TcpConfig carrying the intent of the script's sysctls and TCP-level socket options."""
    cfg = TcpConfig(rcv_buffer=65536, snd_buffer=32768, keepalive=False)
    changes: dict[str, object] = {}
    if "mtu" in script.options:
        changes["mtu"] = int(script.options["mtu"])
    for line in script.lines:
        body = line.text
        m = re.search(r"sysctl -w net\.inet\.tcp\.([\w.]+)=(\d+)", body)
        if m:
            name, value = m.group(1), int(m.group(2))
            # A script sets a sysctl up front and restores it at the end: the first setting is the intent.
            if name == "insecure_rst":
                changes.setdefault("challenge_rst", value == 0)
            elif name == "insecure_syn":
                changes.setdefault("challenge_syn", value == 0)
            elif name == "drop_synfin":
                changes.setdefault("drop_syn_fin", value == 1)
            elif name == "rexmit_initial":
                changes["rto_initial"] = value / 1000
            elif name == "icmp_may_rst":
                changes.setdefault("icmp_hard_errors", value == 1)
            elif name == "delacktime":
                changes.setdefault("delayed_ack", value / 1000)
            elif name == "keepinit":
                changes.setdefault("connect_timeout", value / 1000)
            elif name == "rfc1323":
                changes["window_scaling"] = changes["timestamps"] = value == 1
            continue
        m = re.search(r"setsockopt\(\d+, IPPROTO_TCP, TCP_KEEPINIT, \[(\d+)\]", body)
        if m:
            changes["connect_timeout"] = float(m.group(1))
    return dataclasses.replace(cfg, **changes)  # type: ignore[arg-type]


_PACKET = re.compile(
    r"^(?P<dir>[<>])\s*(?P<flags>[SFRP.UEW]+)\s+(?P<seq>\.\.\.|\d+)(?::(?P<end>\d+))?\((?P<len>\d+)\)"
    r"(?:\s+ack\s+(?P<ack>\d+))?(?:\s+win\s+(?P<win>\d+))?\s*(?:<(?P<opts>[^>]*)>)?\s*$"
)


def build_options(text: str | None) -> bytes:
    if not text or text.strip() == "...":
        return b""
    out = bytearray()
    for item in (part.strip() for part in text.split(",")):
        words = item.split()
        if words[0] == "mss":
            out += struct.pack("!BBH", 2, 4, int(words[1]))
        elif words[0] == "nop":
            out.append(1)
        elif words[0] == "eol":
            out.append(0)
        elif words[0] == "sackOK":
            out += b"\x04\x02"
        elif words[0] == "wscale":
            out += bytes((3, 3, int(words[1])))
        elif words[0] == "TS":
            out += struct.pack("!BBII", 8, 10, int(words[2]), int(words[4]))
        elif words[0] == "sack":
            blocks = [tuple(int(x) for x in b.split(":")) for b in words[1:]]
            out += bytes((5, 2 + 8 * len(blocks)))
            for left, right in blocks:
                out += struct.pack("!II", (REMOTE_ISN + left) & MASK, (REMOTE_ISN + right) & MASK)
        else:
            raise UnsupportedError(f"option {item!r}")
    while len(out) % 4:
        out.append(0)
    return bytes(out)


class Runner:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.config = config_for(script)
        self.layer = TcpLayer(b"packetdrill-runner-secret-key-32", self.config)
        self.tolerance = int(script.options.get("tolerance_usecs", "4000")) / 1e6
        self.now = 0.0
        self.local_iss: int | None = None
        self.local_port = LOCAL_PORT
        self.emitted: list[tuple[float, bytes]] = []
        self.fds: dict[int, str | int] = {}   # fd -> "socket" | "listener" | connection id
        self.errors: dict[int, str | None] = {}
        self.peer_closed: set[int] = set()
        self.accept_queue: list[int] = []
        self.closed_at: dict[int, float] = {}
        self.blocking: list[tuple[int, str | None, float]] = []
        self.unchecked = 0

    # -------------------------------------------------------------- time and output

    def _collect(self) -> None:
        for _src, _dst, segment in self.layer.take_outgoing():
            self.emitted.append((self.now, segment))
        for event in self.layer.take_events():
            if isinstance(event, ev.Accepted):
                self.accept_queue.append(event.conn)
            elif isinstance(event, ev.PeerClosed):
                self.peer_closed.add(event.conn)
            elif isinstance(event, ev.Closed):
                self.errors[event.conn] = event.error
                self.closed_at[event.conn] = self.now

    def advance(self, until: float, *, stop_on_output: bool = False) -> None:
        while True:
            deadline = self.layer.next_deadline()
            if deadline is None or deadline > until:
                break
            self.now = max(self.now, deadline)
            self.layer.timers_expired(self.now)
            self._collect()
            if stop_on_output and self.emitted:
                return
        self.now = max(self.now, until)

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
            except ScriptError as error:
                raise type(error)(f"line {line.number} ({line.text.strip()}): {error}") from None
        for conn, expected, end in self.blocking:
            self.advance(end + self.tolerance)
            self._collect()
            if self.errors.get(conn, "open") != expected:
                raise ScriptError(f"blocking call expected {expected}, connection ended with "
                                  f"{self.errors.get(conn, 'no error yet')}")
            closed = self.closed_at.get(conn, -1.0)
            if abs(closed - end) > self.tolerance:
                raise ScriptError(f"blocking call returned at {closed:.3f}, script says {end:.3f}")

    def execute(self, line: Line, when: float | None) -> None:
        body = line.text.strip()
        if body.startswith(">"):
            self.expect(body, when)
            return
        if when is not None:
            self.advance(when)
            self._collect()
        if self.emitted:
            t, segment = self.emitted[0]
            raise ScriptError(f"unexpected outbound segment at {t:.3f}: {self.describe(segment)}")
        if body.startswith("<"):
            self.inject(body)
        elif body.startswith("`"):
            self.unchecked += 1
        else:
            self.syscall(body, line, when)
        self._collect()

    def describe(self, segment: bytes) -> str:
        seg = parse_segment(LOCAL, REMOTE, memoryview(segment))
        names = "".join(ch for ch, bit in FLAG_LETTERS.items() if seg.flags & bit)
        base = self.local_iss or 0
        return (f"{names} {(seg.seq - base) & MASK}({len(seg.payload)}) "
                f"ack {(seg.ack - REMOTE_ISN) & MASK} win {seg.window}")

    def inject_icmp(self, m: re.Match[str]) -> None:
        icmp_type = ICMP_TYPES[m.group("type")]
        code_name = m.group("code")
        if code_name is None:
            code = 0
        elif code_name.startswith("code_"):
            code = int(code_name[5:])
        elif code_name in ICMP_CODES:
            code = ICMP_CODES[code_name]
        else:
            raise UnsupportedError(f"ICMP code {code_name}")
        seq = ((self.local_iss or 0) + int(m.group("seq"))) & MASK
        ip_header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 60, 0, 0x4000, 64, 6, 0, LOCAL, REMOTE)
        quoted = ip_header + struct.pack("!HHI", self.local_port, REMOTE_PORT, seq)
        mtu = int(m.group("mtu")) if m.group("mtu") else None
        self.layer.icmp_error_received(self.now, icmp_type, code, quoted, mtu)

    def inject(self, body: str) -> None:
        icmp = _ICMP.match(body)
        if icmp is not None:
            self.inject_icmp(icmp)
            return
        m = _PACKET.match(body)
        if m is None:
            raise UnsupportedError(f"cannot parse packet {body!r}")
        flags = 0
        for ch in m.group("flags"):
            flags |= FLAG_LETTERS[ch]
        seq = (REMOTE_ISN + int(m.group("seq"))) & MASK
        length = int(m.group("len"))
        ack = 0
        if m.group("ack") is not None:
            ack = (int(m.group("ack")) + (self.local_iss or 0)) & MASK
        window = int(m.group("win") or 0)
        segment = build_segment(REMOTE, LOCAL, REMOTE_PORT, self.local_port, seq, ack, flags, window,
                                build_options(m.group("opts")), b"\x00" * length)
        self.layer.segment_received(self.now, REMOTE, LOCAL, memoryview(segment))

    def expect(self, body: str, when: float | None) -> None:
        m = _PACKET.match(body)
        if m is None:
            raise UnsupportedError(f"cannot parse packet {body!r}")
        if not self.emitted:
            self.advance(when + self.tolerance if when is not None else self.now + 600.0, stop_on_output=True)
            self._collect()
        if not self.emitted:
            raise ScriptError("expected segment was not sent")
        t, segment = self.emitted.pop(0)
        if when is not None and t < when - self.tolerance:
            raise ScriptError(f"segment sent at {t:.3f}, expected at {when:.3f}")
        seg = parse_segment(LOCAL, REMOTE, memoryview(segment))
        flags = 0
        for ch in m.group("flags"):
            flags |= FLAG_LETTERS[ch]
        got = self.describe(segment)
        if seg.flags & ~(ECE | CWR) != flags:
            raise ScriptError(f"flags differ: got {got}")
        if seg.flags & SYN and self.local_iss is None:
            self.local_iss = (seg.seq - int(m.group("seq"))) & MASK if m.group("seq") != "..." else seg.seq
        if m.group("seq") != "...":
            rel = (seg.seq - (self.local_iss or 0)) & MASK
            if rel != int(m.group("seq")):
                raise ScriptError(f"sequence number differs: got {got}")
        if len(seg.payload) != int(m.group("len")):
            raise ScriptError(f"payload length differs: got {got}")
        if m.group("ack") is not None and (seg.ack - REMOTE_ISN) & MASK != int(m.group("ack")):
            raise ScriptError(f"acknowledgement number differs: got {got}")

    # -------------------------------------------------------------- syscalls

    def _conn(self, fd: int) -> int:
        value = self.fds.get(fd)
        if not isinstance(value, int):
            raise ScriptError(f"fd {fd} is not a connection")
        return value

    def syscall(self, body: str, line: Line, when: float | None) -> None:
        m = re.match(r"^(\w+)\((.*)\)\s*=\s*(.*)$", body)
        if m is None:
            raise UnsupportedError(f"cannot parse syscall {body!r}")
        name, args_text, result = m.group(1), m.group(2), m.group(3).strip()
        args = [a.strip() for a in re.split(r",(?![^\[]*\])", args_text)]
        fd = int(args[0]) if args and args[0].isdigit() else -1
        if name == "socket":
            self.fds[int(result)] = "socket"
        elif name in ("fcntl", "bind", "setsockopt"):
            return
        elif name == "listen":
            self.layer.listen(self.local_port, int(args[1]))
            self.fds[fd] = "listener"
        elif name == "accept":
            if not self.accept_queue:
                raise ScriptError("accept: no established connection")
            self.fds[int(result)] = self.accept_queue.pop(0)
        elif name == "connect":
            conn = self.layer.connect(self.now, LOCAL, REMOTE, REMOTE_PORT, self.local_port)
            self.fds[fd] = conn
            self._collect()
            if line.end is not None:
                errno = result.split()[1] if result.startswith("-1") else "0"
                if errno not in ERRNO_TO_ERROR:
                    raise UnsupportedError(f"connect result {result}")
                start = when if when is not None else self.now
                self.blocking.append((conn, ERRNO_TO_ERROR[errno], start - line.start + line.end
                                      if line.start is not None else line.end))
        elif name in ("recv", "read"):
            self._recv(fd, args, result, name)
        elif name in ("send", "write"):
            conn = self._conn(fd)
            size = int(args[2])
            sent = self.layer.send(self.now, conn, b"\x00" * size)
            if str(sent) != result:
                raise ScriptError(f"{name} returned {sent}")
        elif name == "shutdown":
            self.layer.shutdown(self.now, self._conn(fd))
        elif name == "close":
            value = self.fds.pop(fd, None)
            if value == "listener":
                self.layer.unlisten(self.local_port)
            elif isinstance(value, int):
                self.layer.close(self.now, value)
        elif name == "getsockopt":
            self._getsockopt(fd, args)
        else:
            raise UnsupportedError(f"syscall {name}")

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
        if "SO_ERROR" not in args[2]:
            return
        errno = args[3].strip("[]")
        if errno not in ERRNO_TO_ERROR:
            raise UnsupportedError(f"SO_ERROR {errno}")
        value = self.fds.get(fd)
        if not isinstance(value, int):
            got = None
        else:
            got = self.errors.pop(value, None) if value in self.errors else None
            if got is not None:
                self.errors[value] = None  # SO_ERROR is cleared by reading it
        if got != ERRNO_TO_ERROR[errno]:
            raise ScriptError(f"SO_ERROR is {got}, expected {ERRNO_TO_ERROR[errno]}")


def run_script(path: Path) -> Runner:
    runner = Runner(parse_script(path))
    runner.run()
    return runner
