"""RFC 6298 arithmetic of the RTT estimator, checked against the RFC's formulas by hand."""

from __future__ import annotations

import pytest

from netstack.tcp.config import TcpConfig
from netstack.tcp.rtt import RttEstimator

CONFIG = TcpConfig(rto_initial=1.0, rto_min=0.2, rto_max=60.0, clock_granularity=0.001)


def test_first_and_later_samples() -> None:
    rtt = RttEstimator(CONFIG)
    assert rtt.rto == 1.0
    rtt.sample(0.1, CONFIG)                    # §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4 RTTVAR)
    assert rtt.srtt == pytest.approx(0.1)
    assert rtt.rttvar == pytest.approx(0.05)
    assert rtt.rto == pytest.approx(0.3)
    rtt.sample(0.3, CONFIG)                    # §2.3: RTTVAR first, from the old SRTT
    assert rtt.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.2)
    assert rtt.srtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.3)
    assert rtt.rto == pytest.approx(rtt.srtt + 4 * rtt.rttvar)


def test_bounds_and_negative_samples() -> None:
    rtt = RttEstimator(CONFIG)
    rtt.sample(-5.0, CONFIG)                   # a clock step backwards counts as zero, and the floor holds
    assert (rtt.srtt, rtt.rto) == (0.0, 0.2)
    rtt.sample(100.0, CONFIG)
    assert rtt.rto == 60.0


def test_back_off_doubles_up_to_the_ceiling() -> None:
    rtt = RttEstimator(CONFIG)
    for expected in (2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0):
        rtt.back_off(CONFIG)
        assert rtt.rto == expected


def test_handshake_done_resets_a_backed_off_rto_without_a_sample() -> None:
    rtt = RttEstimator(CONFIG)
    rtt.back_off(CONFIG)
    rtt.handshake_done(CONFIG)
    assert rtt.rto == 1.0
    rtt.sample(0.01, CONFIG)
    rtt.rto = 0.05
    rtt.handshake_done(CONFIG)
    assert rtt.rto == 0.2


def test_timing_one_segment_and_karn() -> None:
    rtt = RttEstimator(CONFIG)
    assert not rtt.timed_at
    rtt.start(1000, 5.0)
    assert (rtt.timed_seq, rtt.timed_at) == (1000, 5.0)
    rtt.cancel()
    assert rtt.timed_seq is None
