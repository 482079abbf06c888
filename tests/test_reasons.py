"""Stage and ReasonCode: the enums, the catalogue rows behind them, and the public spellings
(DLQ topics and headers, metric labels, `tillbridge dlq` filters) they must not change."""

from __future__ import annotations

import json

import pytest

from tillbridge.connectors.kafka import topics
from tillbridge.streams.ops.dlq.model import DeadLetter, Selection, select
from tillbridge.streams.runtime import metrics
from tillbridge.streams.stages.deadletter import dead_letter, dlq_headers, header, internal_error
from tillbridge.streams.stages.messages import Source
from tillbridge.streams.stages.reasons import CATALOGUE, ReasonCode, Stage, markdown_table, reason
from tillbridge.streams.stages.records import Rejection, reject

#: Every reason code as shipped. Spelled out, not derived from the enum, so renaming a code
#: (a break of the DLQ/metrics/CLI contract) fails here; a new code is appended here too.
CODES = (
    "not_avro", "unknown_schema_id", "schema_mismatch",
    "missing_field", "missing_tax_code", "missing_location", "invalid_amount",
    "totals_mismatch", "tender_mismatch",
    "unknown_store", "settlement_unmapped", "unknown_sku", "inactive_item", "unknown_tender",
    "invalid_discount", "unknown_variant", "item_not_stocked", "invalid_location",
    "invalid_payment_method", "unknown_tax_code", "inactive_tax_code", "tax_mismatch",
    "discount_unmapped",
    "netsuite_rejected", "netsuite_auth", "netsuite_unavailable", "orphan_dependency",
    "internal_error", "payload_too_large", "conflicting_resend",
    "unknown_movement_reason", "window_conflict", "window_expired",
    "store_credit_unavailable", "gift_card_unavailable",
)
STAGES = ("decode", "validate", "enrich", "route", "sink", "any")


def src(topic: str = topics.SALE.name) -> Source:
    return Source(topic, 3, 17, b"key", b"\x00\x00\x00\x00\x01body", [])


# -- the enums keep today's strings ---------------------------------------------------------

def test_reason_codes_are_exactly_todays_strings() -> None:
    assert sorted(c.value for c in ReasonCode) == sorted(CODES)
    assert len(ReasonCode) == len(CODES)


@pytest.mark.parametrize("code", CODES)
def test_each_code_is_its_string_under_its_upper_case_name(code: str) -> None:
    member = ReasonCode[code.upper()]
    assert member.value == code and member == code
    assert str(member) == f"{member}" == code
    assert json.dumps({"reason": member}) == json.dumps({"reason": code})


def test_stages_are_exactly_todays_strings() -> None:
    assert [s.value for s in Stage] == list(STAGES)
    for name in STAGES:
        assert Stage[name.upper()] == name and str(Stage(name)) == name


# -- enum <-> catalogue ---------------------------------------------------------------------

def test_every_code_has_one_catalogue_row_and_every_row_a_code() -> None:
    assert set(CATALOGUE) == set(ReasonCode)
    rows = markdown_table().splitlines()[2:]
    assert len(rows) == len(ReasonCode), "one row per code, no duplicates"
    for code in ReasonCode:
        row = CATALOGUE[code]
        assert row.code is code
        assert type(row.stage) is Stage
        assert reason(code) is row


def test_catalogue_rows_are_found_by_plain_header_text() -> None:
    """`tillbridge dlq` reads codes back from headers as plain strings."""
    assert CATALOGUE["unknown_sku"] is CATALOGUE[ReasonCode.UNKNOWN_SKU]
    assert reason("internal_error").stage is Stage.ANY
    assert "made_up" not in CATALOGUE


def test_readme_table_keeps_plain_spellings() -> None:
    table = markdown_table()
    assert "| `unknown_sku` | enrich |" in table
    assert "| `internal_error` | any |" in table
    assert "ReasonCode" not in table and "Stage." not in table


# -- a rejection is built only from known values ------------------------------------------

def test_rejection_holds_enum_members_even_when_given_strings() -> None:
    """flows/ and runtime/ still pass plain strings: they are coerced at construction."""
    from_str = Rejection("sink", "orphan_dependency", "park.dependency_timeout", "m")
    from_enum = Rejection(Stage.SINK, ReasonCode.ORPHAN_DEPENDENCY, "park.dependency_timeout",
                          "m")
    assert from_str == from_enum
    assert from_str.stage is Stage.SINK and from_str.reason is ReasonCode.ORPHAN_DEPENDENCY
    assert from_str.inputs == {}


@pytest.mark.parametrize("bad", ["made_up", "Missing_Field", "missing field", ""])
def test_unknown_reason_cannot_be_built(bad: str) -> None:
    with pytest.raises(ValueError, match="catalogue"):
        Rejection(Stage.VALIDATE, bad, "r", "m")
    with pytest.raises(ValueError, match="catalogue"):
        reject(Stage.VALIDATE, bad, "r", "m")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["validation", "Enrich", "dlq", "", None])
def test_unknown_stage_cannot_be_built(bad: str | None) -> None:
    with pytest.raises(ValueError, match="stage"):
        Rejection(bad, ReasonCode.MISSING_FIELD, "r", "m")  # type: ignore[arg-type]


def test_a_reason_code_is_not_a_stage_nor_the_other_way() -> None:
    with pytest.raises(ValueError, match="stage"):
        Rejection(ReasonCode.MISSING_FIELD, Stage.VALIDATE, "r", "m")


# -- DLQ topics ---------------------------------------------------------------------------

def test_dlq_topic_takes_a_stage_or_its_string() -> None:
    assert topics.DLQ_STAGES == ("decode", "validate", "enrich", "route", "sink")
    assert all(type(s) is str for s in topics.DLQ_STAGES)
    for name in topics.DLQ_STAGES:
        assert topics.dlq_topic(Stage(name)) == topics.dlq_topic(name) \
            == f"tillbridge.dlq.{name}.v1"
    assert tuple(f"tillbridge.dlq.{s}.v1" for s in topics.DLQ_STAGES) == topics.DLQ_TOPICS


def test_any_stage_dead_letters_to_the_sink_topic() -> None:
    assert topics.dlq_topic(Stage.ANY) == topics.dlq_topic(Stage.SINK)
    out = dead_letter(src(), Rejection(Stage.ANY, ReasonCode.INTERNAL_ERROR, "x.unexpected", "m"))
    assert out.topic == "tillbridge.dlq.sink.v1"
    assert header(out.headers, "__connect.errors.stage") == "any"


def test_unknown_stage_has_no_dlq_topic() -> None:
    with pytest.raises(ValueError, match="unknown stage"):
        topics.dlq_topic("validation")


def test_internal_error_still_takes_the_runtimes_plain_stage() -> None:
    out = internal_error(src(), "decode", KeyError("total"))
    assert out.topic == topics.dlq_topic(Stage.DECODE)
    assert header(out.headers, "tillbridge.reason") == "internal_error"
    assert header(out.headers, "tillbridge.rule") == "decode.unexpected"
    assert header(out.headers, "__connect.errors.stage") == "decode"


# -- the public contract: headers, metric labels, `tillbridge dlq --reason` ----------------

def test_dead_letter_counts_under_plain_labels() -> None:
    labels = {"topic": topics.SALE.name, "stage": "enrich", "reason": "unknown_sku"}
    name = "tillbridge_events_dead_lettered_total"
    before = metrics.REGISTRY.get_sample_value(name, labels) or 0.0
    dead_letter(src(), reject(Stage.ENRICH, ReasonCode.UNKNOWN_SKU, "item.exists", "m"))
    assert metrics.REGISTRY.get_sample_value(name, labels) == before + 1
    values = {v for m in metrics.REGISTRY.collect() for s in m.samples for v in s.labels.values()}
    assert not any("Stage." in v or "ReasonCode." in v for v in values)


def test_dlq_reason_and_stage_filters_match_a_letter_written_from_enums() -> None:
    rej = reject(Stage.ENRICH, ReasonCode.UNKNOWN_SKU, "item.exists", "m", sku="X")
    headers = dlq_headers(rej, topic=topics.SALE.name, partition=3, offset=17)
    letter = DeadLetter(topics.dlq_topic(rej.stage), 0, 1, None, b"", list(headers))
    assert letter.reason == "unknown_sku" and letter.stage == "enrich"
    assert select([letter], Selection.build(reason=["unknown_sku"], topic=["enrich"])) == [letter]
    assert select([letter], Selection.build(reason=["unknown_store"])) == []
