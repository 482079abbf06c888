"""`tillbridge trace` against a real broker, registry, NetSuite simulator and worker process:
a posted sale's story ends in the NetSuite record read back live with the receipt's total; a
dead-lettered one shows its reason and fix; an unknown id says so and exits non-zero."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.factories import make_sale
from tests.integration.helpers import Outcomes, encode_sales, produce
from tillbridge.devstack.stack import WorkerProcess, settings_env
from tillbridge.streams.ops import cli
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages.reasons import CATALOGUE

pytestmark = pytest.mark.integration


def trace(settings: Settings, *args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli.app, ["trace", *args, "--json"], env=settings_env(settings))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def test_trace_tells_a_posted_and_a_dead_lettered_receipt_and_an_unknown_id(stack) -> None:
    s = stack.settings
    good = make_sale(pos_transaction_id="TR-OK-1")
    bad = make_sale(pos_transaction_id="TR-BAD-1")
    bad["tenders"][0]["tender_type"] = "BITCOIN"
    out = Outcomes(s)
    with WorkerProcess(s):
        produce(s, encode_sales(s, [good, bad]))
        out.wait(2)
    out.close()

    code, story = trace(s, "TR-OK-1")
    assert code == 0 and story["found"] and story["complete"]
    kinds = [step["kind"] for step in story["steps"]]
    assert kinds == ["published", "outcome"], kinds
    published, outcome = story["steps"]
    assert (published["topic"], outcome["detail"]["outcome"]) == ("pos.sale.v1", "posted")
    assert outcome["detail"]["source"] == (f"{published['topic']}/{published['partition']}/"
                                           f"{published['offset']}")
    (record,) = story["netsuite"]
    assert record["external_id"] == "pos-sale-S001-TR-OK-1" and record["netsuite_id"]
    # Read back live from the simulator: NetSuite's total is the receipt's, tax included.
    assert Decimal(record["total"]) == good["total"] == Decimal("41.26")

    # The externalId and the NetSuite id lead to the same receipt.
    for other in (record["external_id"], record["netsuite_id"]):
        code, again = trace(s, other)
        assert code == 0 and [st["offset"] for st in again["steps"]] == [
            st["offset"] for st in story["steps"]], other

    code, story = trace(s, "TR-BAD-1")
    assert code == 0
    (letter,) = [st for st in story["steps"] if st["kind"] == "dead_letter"]
    assert letter["detail"]["reason"] == "unknown_tender"
    assert letter["detail"]["fix"] == CATALOGUE["unknown_tender"].fix
    assert story["netsuite"] == []

    code, story = trace(s, "NO-SUCH-RECEIPT")
    assert (code, story["found"], story["steps"]) == (1, False, [])
