"""Circuit breaker: stop hammering NetSuite during an outage and tell the stream to wait.

Without it every in-flight event spends its whole retry budget against a dead endpoint and
then gets dead-lettered, turning one outage into thousands of DLQ records. With it, after
``failure_threshold`` consecutive retryable failures (5xx, timeouts, connection errors)
calls fail fast with ``NetSuiteUnavailable`` until a cool-down passes; then exactly one
probe is let through (half-open). Its success closes the breaker, its failure re-opens it.

429s are neither success nor failure here: throttling means NetSuite is up and busy, which
the limiter and backoff handle. Any other HTTP answer (4xx included) proves it is up.

Probe schedule, after the breaker opens:

- the first probe after ``cooldown_s`` (NETSUITE_BREAKER_COOLDOWN_S);
- each failed probe re-opens it for a short interval that doubles from ``probe_min_s``
  (0.5 s) up to ``probe_max_s`` (NETSUITE_BREAKER_PROBE_MAX_S): 0.5, 1, 2, 4, 5, 5, ... s.

So an outage costs NetSuite one request every few seconds per worker, and its end is
noticed within ``probe_max_s`` of NetSuite answering again (a fixed 30 s cool-down between
probes stalled the sink up to ~40 s after a recovery). Every wait is jittered (+0..20%) so
that several workers sharing one account do not all probe at the same instant.

``on_state_change`` lets the Faust layer hold partitions on ``open`` and
resume them on ``closed``; the breaker has no timer of its own, so a paused consumer should
sleep ``seconds_until_probe()`` and then send one request (the probe).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from enum import StrEnum

from tillbridge.connectors.netsuite.errors import NetSuiteUnavailable


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


StateHook = Callable[[BreakerState, BreakerState], None]
"""``on_state_change(old, new)``; keep it quick, it runs inline with a request."""


def _noop(old: BreakerState, new: BreakerState) -> None:
    return None


class CircuitBreaker:
    """Consecutive-failure breaker with a jittered cool-down and a single half-open probe."""

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        jitter: float = 0.2,
        *,
        probe_min_s: float = 0.5,
        probe_max_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        on_state_change: StateHook | None = None,
    ) -> None:
        if failure_threshold < 1 or cooldown_s < 0 or jitter < 0 or not \
                0 < probe_min_s <= probe_max_s:
            raise ValueError("failure_threshold >= 1, cooldown_s >= 0, jitter >= 0, "
                             "0 < probe_min_s <= probe_max_s")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.jitter = jitter
        self.probe_min_s = probe_min_s
        self.probe_max_s = probe_max_s
        self._interval = probe_min_s  # the wait after the next failed probe
        self._clock = clock
        self._rand = rand
        self._hook = on_state_change or _noop
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._probe_at = 0.0
        self._probing = False
        self.successes = 0  # calls NetSuite answered, ever: evidence that it is up

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self._state.value}, failures={self._failures})"

    @property
    def state(self) -> BreakerState:
        """Current state; ``open`` turns into ``half_open`` only when a call is admitted."""
        return self._state

    def seconds_until_probe(self) -> float:
        """How long a caller should wait before the next call can be a probe (0 if now)."""
        if self._state is BreakerState.OPEN:
            return max(0.0, self._probe_at - self._clock())
        return 0.0

    def before_call(self) -> None:
        """Admit a call or raise ``NetSuiteUnavailable`` (open, or a probe already running)."""
        if self._state is BreakerState.CLOSED:
            return
        if self._state is BreakerState.OPEN:
            wait = self._probe_at - self._clock()
            if wait > 0:
                raise NetSuiteUnavailable("circuit open", wait)
            self._set(BreakerState.HALF_OPEN)
        if self._probing:
            raise NetSuiteUnavailable("circuit half-open, probe in flight", self._interval)
        self._probing = True

    def record_success(self) -> None:
        """NetSuite answered: reset the count and close."""
        self.successes += 1
        self._failures = 0
        self._probing = False
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """A retryable failure (5xx, timeout, connection): count it, open at the threshold."""
        self._failures += 1
        self._probing = False
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold
        ):
            self._open()

    def record_neutral(self) -> None:
        """Neither outcome (429, cancellation): free the probe slot, change nothing else."""
        self._probing = False

    def _open(self) -> None:
        """Open: the first time for the cool-down, after a failed probe for the next step of
        the probe back-off."""
        if self._state is BreakerState.HALF_OPEN:
            wait = self._interval
            self._interval = min(self._interval * 2, self.probe_max_s)
        else:
            wait, self._interval = self.cooldown_s, self.probe_min_s
        self._probe_at = self._clock() + wait * (1 + self.jitter * self._rand())
        self._set(BreakerState.OPEN)

    def _set(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        if old is not new:
            self._hook(old, new)
