"""Mappings are hot-reloaded: fix the file, the running worker picks it up, a replay posts."""

from __future__ import annotations

import json
import time
from importlib import resources

import httpx
import pytest

from tests.factories import make_sale
from tests.integration.helpers import Outcomes, encode_sales, produce, sim_stats
from tillbridge.devstack.stack import WorkerProcess

pytestmark = pytest.mark.integration


def test_fixed_mappings_file_is_reloaded_without_restart(stack, tmp_path) -> None:
    doc = json.loads(resources.files("tillbridge.connectors").joinpath(
        "data/mappings.json").read_text())
    path = tmp_path / "mappings.json"
    path.write_text(json.dumps(doc))
    s = stack.settings.replace(mappings_path=str(path), mappings_reload_s=0.5)
    sale = make_sale(pos_transaction_id="M-1")
    sale["tenders"][0]["tender_type"] = "CRYPTO"
    out = Outcomes(s)
    with WorkerProcess(s) as worker:
        produce(s, encode_sales(s, [sale]))
        out.wait(1)
        assert out.dead[0].header("tillbridge.reason") == "unknown_tender"
        # A broken file is refused and the old mappings stay.
        path.write_text("{not json")
        time.sleep(1.5)
        assert "tillbridge_mappings_reload_errors_total 1.0" in worker.metrics()
        doc["version"] += 1
        doc["tenders"]["CRYPTO"] = doc["tenders"]["VISA"]
        path.write_text(json.dumps(doc))
        deadline = time.monotonic() + 10
        while httpx.get(worker.url + "/ready").json()["mappings_version"] != doc["version"]:
            assert time.monotonic() < deadline, "mappings not reloaded"
            time.sleep(0.2)
        produce(s, [(out.dead[0].key, out.dead[0].value)])  # what `dlq replay` republishes
        out.wait(2)
    assert out.summary() == {"dlq:unknown_tender": 1, "result:posted": 1}
    assert sim_stats(s)["records"]["cashSale"]["created"] == 1
    out.close()
