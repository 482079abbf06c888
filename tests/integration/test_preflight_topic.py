"""`tillbridge preflight --from-topic`: SKUs, stores and tenders read from real till traffic."""

from __future__ import annotations

import copy
import json

import pytest
import typer
from typer.testing import CliRunner

from tests.integration.helpers import encode_sales, produce
from tillbridge.devstack.pos.generator import generate
from tillbridge.devstack.stack import Stack, settings_env
from tillbridge.streams.ops.preflight.command import preflight_command

pytestmark = pytest.mark.integration


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("preflight")(preflight_command)

    @app.callback()
    def _root() -> None:
        """Root, so `preflight` stays a sub-command as in the real CLI."""

    return app


def test_preflight_reads_skus_stores_and_tenders_from_the_sale_topic(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in settings_env(stack.settings).items():
        monkeypatch.setenv(name, value)
    sales = [e.value for e in generate(40, seed=3) if isinstance(e.value, dict)]
    odd = copy.deepcopy(sales[0])
    odd["pos_transaction_id"] += "-X"
    odd["store_id"] = "S999"
    odd["lines"][0]["sku"] = "GHOST-1"
    odd["tenders"][0]["tender_type"] = "CRYPTO"
    produce(stack.settings, encode_sales(stack.settings, [*sales, odd]))
    produce(stack.settings, [(b"junk", b"not avro at all")])

    result = CliRunner().invoke(_app(), ["preflight", "--from-topic", "--json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)
    assert doc["sources"]["events"] == 41 and doc["sources"]["undecodable"] == 1
    errors = {(f["check"], f["subject"]) for f in doc["findings"] if f["severity"] == "error"}
    assert errors == {("item.missing", "GHOST-1"), ("store.unmapped", "S999"),
                      ("tender.unmapped", "CRYPTO")}
    traffic = next(s for s in doc["steps"] if s["id"] == "traffic")
    assert traffic["checked"] == 41 and traffic["status"] == "warn"  # the undecodable one

    capped = CliRunner().invoke(_app(), ["preflight", "--from-topic", "--max-events", "10",
                                         "--json"])
    assert json.loads(capped.output)["sources"]["events"] <= 10
