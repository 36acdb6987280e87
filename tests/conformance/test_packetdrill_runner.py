"""The packetdrill runner itself: small scripts in the suite's style that must pass, and one-line changes to them
that must fail, so a lenient comparison (window, options, TS ecr, sockstat counts, SO_RCVBUF) cannot go unnoticed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.packetdrill import Outcome, outcome, run_script

PASSIVE = """\
--tolerance_usecs=10000
 0.00 `sysctl -w net.inet.tcp.sack.enable=1`
+0.00 `sysctl -w net.inet.tcp.recvspace=65536`
+0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0.00 bind(3, ..., ...) = 0
+0.00 listen(3, 1) = 0
+0.00 < S  0:0(0) win 32767 <mss 1460,sackOK,eol,eol>
+0.00 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>
+0.00 `sockstat -4 -P tcp -p 8080 -s | grep -c SYN_RCVD | grep 1`
+0.10 <  . 1:1(0) ack 1 win 32767
+0.00 accept(3, ..., ...) = 4
+0.00 getsockopt(4, SOL_SOCKET, SO_RCVBUF, [65700], [4]) = 0
+0.00 `sockstat -4 -P tcp -s | grep packetdril | grep -c ESTABLISHED | grep 1`
+0.00 < P. 1:1001(1000) ack 1 win 32767
+0.00 recv(4, ..., 2000, 0) = 1000
+0.10 >  . 1:1(0) ack 1001 win 65535
"""

ACTIVE = """\
--tolerance_usecs=10000
 0.00 `sysctl -w kern.ipc.maxsockbuf=2097152`
+0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0.00 > S  0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>
+0.00 %{ assert tcpi_state == TCPI_SYN_SENT }%
+0.10 < S. 0:0(0) ack 1 win 32767 <mss 1460,sackOK,eol,eol>
+0.00 >  . 1:1(0) ack 1 win 65535
+0.00 %{ assert tcpi_state == TCPI_ESTABLISHED }%
"""


def run(tmp_path: Path, text: str) -> Outcome:
    path = tmp_path / "script.pkt"
    path.write_text(text)
    return outcome(path)


@pytest.mark.parametrize("script", [PASSIVE, ACTIVE])
def test_reference_scripts_pass(tmp_path: Path, script: str) -> None:
    result = run(tmp_path, script)
    assert result.status == "pass", result.detail
    assert any("SACK" in note for note in result.adapted)


def test_segments_cross_the_ipv4_stack(tmp_path: Path) -> None:
    path = tmp_path / "script.pkt"
    path.write_text(PASSIVE)
    runner = run_script(path)
    stats = runner.wire.stack.stats()
    assert stats["rx-frames"] >= 3
    assert stats["tx-frames"] >= 3


@pytest.mark.parametrize(("old", "new", "complaint"), [
    ("ack 1 win 65535 <mss 1460,sackOK,eol,eol>", "ack 1 win 65534 <mss 1460,sackOK,eol,eol>", "window"),
    ("ack 1 win 65535 <mss 1460,sackOK,eol,eol>", "ack 1 win 65535 <mss 1400,sackOK,eol,eol>", "options"),
    ("ack 1 win 65535 <mss 1460,sackOK,eol,eol>", "ack 1 win 65535 <mss 1460,nop,nop,eol,eol>", "options"),
    ("ack 1 win 65535 <mss 1460,sackOK,eol,eol>", "ack 1 win 65535", "options"),
    ("ack 1 win 65535 <mss 1460,sackOK,eol,eol>", "ack 2 win 65535 <mss 1460,sackOK,eol,eol>", "acknowledgement"),
    ("> S. 0:0(0)", "> SE. 0:0(0)", "flags"),
    ("grep -c SYN_RCVD | grep 1", "grep -c SYN_RCVD | grep 0", "count is 1"),
    ("grep -c ESTABLISHED | grep 1", "grep -c TIME_WAIT | grep 1", "count is 0"),
    ("[65700]", "[65536]", "SO_RCVBUF"),
    ("recv(4, ..., 2000, 0) = 1000", "recv(4, ..., 2000, 0) = 999", "returned 1000"),
    ("+0.10 >  . 1:1(0) ack 1001 win 65535\n", "+0.20 close(4) = 0\n", "unexpected outbound segment"),
])  # fmt: skip
def test_one_changed_line_fails(tmp_path: Path, old: str, new: str, complaint: str) -> None:
    assert old in PASSIVE
    result = run(tmp_path, PASSIVE.replace(old, new, 1))
    assert result.status == "fail"
    assert complaint in result.detail


def test_ts_ecr_is_compared_and_ts_val_is_not(tmp_path: Path) -> None:
    assert run(tmp_path, ACTIVE.replace("TS val 100 ecr 0", "TS val 7 ecr 0")).status == "pass"
    result = run(tmp_path, ACTIVE.replace("TS val 100 ecr 0", "TS val 100 ecr 5"))
    assert result.status == "fail"
    assert "options" in result.detail


def test_window_scale_adapted_only_where_it_is_freebsds_derivation(tmp_path: Path) -> None:
    """With kern.ipc.maxsockbuf=2097152 FreeBSD's shift is 6 and ours (65536-byte buffer) is 1; a script that
    names any other shift, or gives no maxsockbuf to derive it from, is compared as written."""
    assert run(tmp_path, ACTIVE.replace("wscale 6", "wscale 5")).status == "fail"
    no_basis = ACTIVE.replace(" 0.00 `sysctl -w kern.ipc.maxsockbuf=2097152`\n+0.00", " 0.00")
    assert run(tmp_path, no_basis).status == "fail"
    assert run(tmp_path, no_basis.replace("wscale 6", "wscale 1")).status == "pass"


def test_tcpi_state_is_asserted(tmp_path: Path) -> None:
    result = run(tmp_path, ACTIVE.replace("TCPI_SYN_SENT", "TCPI_ESTABLISHED"))
    assert result.status == "fail"
    assert "tcpi_state is SYN_SENT" in result.detail


def test_unknown_commands_are_reported_not_passed_silently(tmp_path: Path) -> None:
    result = run(tmp_path, PASSIVE + "+0.00 `netstat -s | grep drops`\n+0.00 %{ assert tcpi_rto == 1 }%\n"
                                      "+0.00 `sysctl -w net.inet.tcp.rexmit_slop=200`\n+0.00 close(4) = 0\n")
    assert result.status == "pass", result.detail
    assert "`netstat -s | grep drops`" in result.unchecked
    assert "%{ assert tcpi_rto == 1 }%" in result.unchecked
    assert any("rexmit_slop" in note for note in result.unchecked)


def test_inbound_ts_ecr_needs_a_script_ts_val_we_sent(tmp_path: Path) -> None:
    result = run(tmp_path, ACTIVE.replace("< S. 0:0(0) ack 1 win 32767 <mss 1460,sackOK,eol,eol>",
                                          "< S. 0:0(0) ack 1 win 32767 <mss 1460,nop,nop,TS val 1 ecr 99>"))
    assert result.status == "fail"
    assert "TS ecr" in result.detail


def test_link_mtu_outside_the_stacks_range_is_a_skip(tmp_path: Path) -> None:
    result = run(tmp_path, "--mtu=72\n" + ACTIVE)
    assert result.status == "skip"
    assert "576..9000" in result.detail
