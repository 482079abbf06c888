"""DLQ headers: Connect names where they fit, reason/rule/inputs/fix, attempts across replays."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tillbridge.streams.stages.deadletter import dlq_headers, header
from tillbridge.streams.stages.reasons import CATALOGUE, ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection

REJ = Rejection("validate", "totals_mismatch", "totals.total", "total is 1 but lines give 2",
                {"stated": "1", "computed": "2"})


def test_headers_say_where_what_which_rule_and_fix() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    h = dlq_headers(REJ, topic="pos.sale.v1", partition=3, offset=17,
                    original=[("traceparent", b"00-abc")], now=t0)
    assert header(h, "__connect.errors.topic") == "pos.sale.v1"
    assert header(h, "__connect.errors.partition") == "3"
    assert header(h, "__connect.errors.offset") == "17"
    assert header(h, "__connect.errors.stage") == "validate"
    assert header(h, "tillbridge.reason") == "totals_mismatch"
    assert header(h, "tillbridge.rule") == "totals.total"
    assert json.loads(header(h, "tillbridge.inputs") or "") == {"stated": "1", "computed": "2"}
    assert header(h, "tillbridge.fix") == CATALOGUE["totals_mismatch"].fix
    assert header(h, "tillbridge.attempts") == "1"
    assert header(h, "tillbridge.first_failure") == header(h, "tillbridge.last_failure")
    assert header(h, "traceparent") == "00-abc", "original headers are kept"


def test_second_failure_keeps_first_time_and_counts_attempts() -> None:
    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    first = dlq_headers(REJ, topic="t", partition=0, offset=1, now=t0)
    second = dlq_headers(REJ, topic="t", partition=0, offset=1, original=first, now=t1)
    assert header(second, "tillbridge.attempts") == "2"
    assert header(second, "tillbridge.first_failure", ).startswith("2026-01-01")
    assert header(second, "tillbridge.last_failure").startswith("2026-01-02")
    assert sum(1 for k, _ in second if k == "tillbridge.reason") == 1


def test_unknown_reason_code_is_refused() -> None:
    with pytest.raises(ValueError, match="catalogue"):
        Rejection("validate", "made_up", "r", "m")


def test_unknown_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="stage"):
        Rejection("validation", "totals_mismatch", "r", "m")


def test_headers_from_enums_are_the_plain_codes_byte_for_byte() -> None:
    """Stage/ReasonCode are StrEnums so the header contract is what plain strings gave."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    enum_rej = Rejection(Stage.VALIDATE, ReasonCode.TOTALS_MISMATCH, REJ.rule, REJ.message,
                         REJ.inputs)
    from_enums = dlq_headers(enum_rej, topic="pos.sale.v1", partition=3, offset=17, now=t0)
    assert from_enums == dlq_headers(REJ, topic="pos.sale.v1", partition=3, offset=17, now=t0)
    raw = dict(from_enums)
    assert raw["__connect.errors.stage"] == b"validate"
    assert raw["tillbridge.reason"] == b"totals_mismatch"
    assert raw["__connect.errors.class.name"] == b"tillbridge.streams.validate"
    assert all(type(v) is bytes for v in raw.values())


def test_lag_is_not_claimed_on_tansu() -> None:
    """The embedded broker's watermarks are wrong: auto mode must not trust them."""
    from tillbridge.devstack.broker import EmbeddedBroker
    from tillbridge.streams.runtime.lag import lag, watermarks_reliable

    with EmbeddedBroker() as broker:
        assert watermarks_reliable(broker.bootstrap, "auto") is False
        assert watermarks_reliable(broker.bootstrap, "on") is True
    assert lag(10, 4) == 6 and lag(3, 5) == 0 and lag(None, 1) is None
