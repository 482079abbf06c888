"""The per-record guard on its own: reporters in order, the dead letter of the original,
what happens when a reporter (above all the dead letter) fails, the rate-limited log, and
which ingest stage an exception is charged to. No broker, no NetSuite."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite.errors import NetSuiteUnavailable
from tillbridge.streams.runtime import guard, metrics
from tillbridge.streams.runtime.guard import (
    DeadLetterReporter,
    Failed,
    Failure,
    Guard,
    LogReporter,
    MetricsReporter,
    ingest_stage,
)
from tillbridge.streams.stages.messages import Outbound, Source
from tillbridge.streams.stages.validate import validate_sale

SRC = Source("pos.sale.v1", 3, 17, b"key", b"\x00raw", [("trace-id", b"t"), ("none", None)])


class Recorder:
    carries_outcome = False

    def __init__(self, name: str, seen: list[str], fail: bool = False) -> None:
        self.name, self.seen, self.fail = name, seen, fail

    async def report(self, failure: Failure) -> None:
        self.seen.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} down")


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _sink(sent: list[Outbound]) -> Any:
    async def send(out: Outbound) -> None:
        sent.append(out)
    return send


def test_dead_letter_is_internal_error_of_the_original_bytes_and_coordinates() -> None:
    sent: list[Outbound] = []
    g = guard.standard(_sink(sent))
    assert _run(g.failed("validate", SRC, KeyError("lines"))) is Failed.DEAD_LETTERED
    [letter] = sent
    h = dict(letter.headers)
    assert letter.topic == topics.dlq_topic("validate")
    assert (letter.key, letter.value) == (SRC.key, SRC.value)
    assert h["tillbridge.reason"] == b"internal_error"
    assert h["tillbridge.rule"] == b"validate.unexpected"
    assert (h["__connect.errors.topic"], h["__connect.errors.partition"],
            h["__connect.errors.offset"]) == (b"pos.sale.v1", b"3", b"17")
    assert h["__connect.errors.exception.class.name"] == b"KeyError"
    assert h["trace-id"] == b"t", "the record's own headers are kept"


def test_sink_side_steps_land_in_the_sink_dlq_under_their_own_stage() -> None:
    sent: list[Outbound] = []
    _run(guard.standard(_sink(sent)).failed("release", SRC, ValueError("x")))
    assert sent[0].topic == topics.dlq_topic("sink")
    assert dict(sent[0].headers)["__connect.errors.stage"] == b"release"


def test_origin_maps_what_the_step_saw_to_the_input_record_and_may_fail() -> None:
    sent: list[Outbound] = []
    routed = Source(topics.ROUTED_REALTIME, 0, 5, b"key", b"\x00raw", [])
    _run(Guard([DeadLetterReporter(_sink(sent))], origin=lambda _s: SRC).failed(
        "sink", routed, ValueError("x")))

    def broken(_s: Source) -> Source:
        raise RuntimeError("bad headers")

    _run(Guard([DeadLetterReporter(_sink(sent))], origin=broken).failed(
        "sink", routed, ValueError("x")))
    coords = [dict(o.headers)["__connect.errors.offset"] for o in sent]
    assert coords == [b"17", b"5"], "mapped; else the record as seen"


def test_every_reporter_runs_in_order_even_when_one_fails() -> None:
    seen: list[str] = []
    g = Guard([Recorder("a", seen, fail=True), Recorder("b", seen)])
    assert _run(g.failed("sink", SRC, ValueError("x"))) is Failed.DEAD_LETTERED
    assert seen == ["a", "b"], "a failing side reporter is logged, not fatal"


def test_dead_letter_failing_too_holds_the_record_and_counts_it() -> None:
    held: list[object] = []

    async def refuse(_out: Outbound) -> None:
        raise RuntimeError("message too large")

    g = Guard([MetricsReporter(), DeadLetterReporter(refuse)], hold=held.append)
    before = metrics.GUARD_HELD.labels("emit")._value.get()
    handle = object()
    assert _run(g.failed("emit", SRC, ValueError("x"), handle)) is Failed.HELD
    assert held == [handle]
    assert metrics.GUARD_HELD.labels("emit")._value.get() == before + 1


def test_a_failing_hold_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def refuse(_out: Outbound) -> None:
        raise RuntimeError("refused")

    def hold(_h: object) -> None:
        raise RuntimeError("no message")

    g = Guard([DeadLetterReporter(refuse)], hold=hold)
    assert _run(g.failed("sink", SRC, ValueError("x"), object())) is Failed.HELD
    assert "holding" in caplog.text


def test_metrics_count_failures_by_step() -> None:
    before = metrics.GUARD_FAILURES.labels("drain")._value.get()
    _run(Guard([MetricsReporter()]).failed("drain", SRC, ValueError("x")))
    assert metrics.GUARD_FAILURES.labels("drain")._value.get() == before + 1


def test_log_is_rate_limited_and_says_how_many_were_left_out(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    logger = logging.getLogger("test.guard")
    rep = LogReporter(logger, burst=2, window_s=10.0, clock=lambda: now[0])
    failure = Failure("sink", SRC, ValueError("boom"))
    with caplog.at_level(logging.ERROR, logger="test.guard"):
        for _ in range(5):
            _run(rep.report(failure))
        assert len(caplog.records) == 2 and rep.suppressed == 3
        assert caplog.records[0].exc_info is not None, "with its traceback"
        now[0] = 10.0
        _run(rep.report(failure))
    assert "3 more record failures not logged" in caplog.records[2].getMessage()
    assert len(caplog.records) == 4


def test_call_and_acall_return_the_value_or_what_became_of_the_record() -> None:
    sent: list[Outbound] = []
    g = guard.standard(_sink(sent))

    async def ok(x: int) -> int:
        return x * 2

    async def bad(_x: int) -> int:
        raise ValueError("no")

    async def main() -> list[object]:
        return [await g.call("drain", SRC, lambda x: x + 1, 1),
                await g.call("drain", SRC, lambda x: 1 // x, 0),
                await g.acall("sink", SRC, ok, 2),
                await g.acall("sink", SRC, bad, 2)]

    assert _run(main()) == [2, Failed.DEAD_LETTERED, 4, Failed.DEAD_LETTERED]
    assert len(sent) == 2


def test_cancellation_is_not_swallowed() -> None:
    async def slow(_out: Outbound) -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.create_task(guard.standard(slow).failed("sink", SRC, ValueError()))
        await asyncio.sleep(0.01)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        _run(main())


def test_ingest_stage_is_the_outermost_stage_module_on_the_traceback() -> None:
    try:
        validate_sale(None)  # type: ignore[arg-type]  # a bug inside the validate stage
    except Exception as exc:  # noqa: BLE001
        assert ingest_stage(exc) == "validate"
    try:
        raise RuntimeError("in the pipeline's own code")
    except RuntimeError as exc:
        assert ingest_stage(exc) == "decode", "default: the first ingest stage"


def test_an_outage_reaching_the_guard_holds_the_record_never_dead_letters_it() -> None:
    sent: list[Outbound] = []
    held: list[object] = []
    g = guard.standard(_sink(sent), hold=held.append)
    handle = object()
    outcome = _run(g.failed("sink", SRC, NetSuiteUnavailable("503 down"), handle))
    assert outcome is Failed.HELD and held == [handle] and not sent
