"""The breaker's probe schedule: the cool-down, then probes that back off from a short first
interval to a cap, so NetSuite's recovery is noticed within the cap (no broker, no HTTP:
the breaker is a pure state machine driven by a fake clock)."""

from __future__ import annotations

import pytest

from tillbridge.connectors.netsuite.breaker import BreakerState, CircuitBreaker
from tillbridge.connectors.netsuite.errors import NetSuiteUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _failed_probe(b: CircuitBreaker, clock: Clock) -> float:
    """Wait for the probe slot, let the probe fail; the wait it took."""
    wait = b.seconds_until_probe()
    clock.now += wait
    b.before_call()
    assert b.state is BreakerState.HALF_OPEN
    b.record_failure()
    assert b.state is BreakerState.OPEN
    return wait


def test_probes_back_off_from_a_short_interval_to_the_cap() -> None:
    clock = Clock()
    b = CircuitBreaker(2, cooldown_s=10.0, jitter=0.0, probe_min_s=0.5, probe_max_s=5.0,
                       clock=clock)
    b.record_failure()
    b.record_failure()
    waits = [_failed_probe(b, clock) for _ in range(7)]
    assert waits == [10.0, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    # NetSuite is back: the next probe, at most probe_max_s away, closes the breaker.
    assert b.seconds_until_probe() == 5.0
    clock.now += 5.0
    b.before_call()
    b.record_success()
    assert b.state is BreakerState.CLOSED
    # A new outage starts again from the cool-down, then the short interval.
    b.record_failure()
    b.record_failure()
    assert [_failed_probe(b, clock) for _ in range(2)] == [10.0, 0.5]


def test_probe_waits_are_jittered_up_to_a_fifth() -> None:
    clock = Clock()
    b = CircuitBreaker(1, cooldown_s=10.0, jitter=0.2, rand=lambda: 1.0, clock=clock)
    b.record_failure()
    assert [_failed_probe(b, clock) for _ in range(3)] == pytest.approx([12.0, 0.6, 1.2])


def test_callers_behind_a_probe_in_flight_are_told_to_retry_soon() -> None:
    """Not after a whole cool-down: they wake when the probe's verdict can be known."""
    clock = Clock()
    b = CircuitBreaker(1, cooldown_s=30.0, jitter=0.0, clock=clock)
    b.record_failure()
    clock.now += 30.0
    b.before_call()  # the probe
    with pytest.raises(NetSuiteUnavailable) as info:
        b.before_call()
    assert info.value.retry_after <= 0.5


def test_bad_schedule_is_refused() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(1, probe_min_s=2.0, probe_max_s=1.0)
    with pytest.raises(ValueError):
        CircuitBreaker(1, probe_min_s=0.0)
