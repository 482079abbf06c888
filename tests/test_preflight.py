"""`tillbridge preflight`: each check triggers and clears (pure), and the command end to end
against the NetSuite simulator over real HTTP (exit codes 0 / 1 / 2, rich and JSON output)."""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.devstack.pos.generator import generate
from tillbridge.devstack.pos.reference import load_data
from tillbridge.streams.ops.preflight.checks import (
    check_traffic,
    resolve_price_level,
    run_checks,
)
from tillbridge.streams.ops.preflight.command import preflight_command
from tillbridge.streams.ops.preflight.inputs import (
    CatalogueError,
    read_catalogue,
    rollout_config,
    usage_from_sales,
)
from tillbridge.streams.ops.preflight.model import (
    CHECKS,
    NetSuiteSnapshot,
    NsItem,
    NsRef,
    PosUsage,
    TrafficSummary,
)
from tillbridge.streams.refdata.mappings import MappingError

EXAMPLE_CATALOGUE = Path(__file__).resolve().parents[1] / "deploy" / "examples" / \
    "pos_catalogue.csv"


# -- a small clean world, and one mutation per finding ---------------------------------------

def _doc() -> dict[str, Any]:
    return {"version": 1, "guest_customer": "4999", "discount_item": "2001",
            "stores": {"S001": {"location": "1", "subsidiary": "1", "tax_code": "101"}},
            "tenders": {"CASH": "1", "GIFT_CARD": "6", "STORE_CREDIT": "7"}}


def _usage() -> PosUsage:
    usage = PosUsage()
    usage.use_sku("TEE-001", store="S001", tier="BASE", price=Decimal("24.50"),
                  tax_code="TAX-CA-SF")
    usage.use_tender("CASH")
    return usage


def _ns() -> NetSuiteSnapshot:
    return NetSuiteSnapshot(
        items={"TEE-001": NsItem("1001", "TEE-001", True, "InvtPart", "1", Decimal("24.50")),
               "POS-DISCOUNT": NsItem("2001", "POS-DISCOUNT", True, "Discount", "1")},
        stocked={"1001": {"1"}},
        locations={"1": NsRef("1", "Store S001", True, "1")},
        subsidiaries={"1": NsRef("1", "Tillbridge Retail Inc.")},
        tax_codes={"101": NsRef("101", "TAX-CA-SF")},
        payment_methods={m: NsRef(m, f"method {m}") for m in ("1", "6", "7")},
        guest=NsRef("4999", "POS Guest", True, "1"),
        price_levels={"1": "Base Price", "2": "Member"},
        prices={("1001", "1"): Decimal("24.50"), ("1001", "2"): Decimal("22.05")},
    )


@dataclass
class World:
    doc: dict[str, Any] = field(default_factory=_doc)
    usage: PosUsage = field(default_factory=_usage)
    ns: NetSuiteSnapshot = field(default_factory=_ns)
    tenders: list[str] = field(default_factory=list)

    def report(self):  # noqa: ANN201
        return run_checks(self.usage, rollout_config(self.doc), self.ns,
                          listed_tenders=self.tenders)


def _item(w: World, **changes: Any) -> None:
    w.ns.items["TEE-001"] = replace(w.ns.items["TEE-001"], **changes)


def _sku_tier(w: World, tier: str, price: Decimal | None = None) -> None:
    w.usage.use_sku("TEE-001", store="S001", tier=tier, price=price)


def _no_pricing(w: World) -> None:
    w.ns.prices = w.ns.price_levels = None


Mutation = Callable[[World], object]

CASES: list[tuple[str, Mutation]] = [
    ("items.no_source", lambda w: w.usage.skus.clear()),
    ("item.missing", lambda w: w.usage.use_sku("TEE-0001", store="S001")),
    ("item.missing", lambda w: w.doc.update(skus={"TEE-001": "TEE-001-RED-M"})),
    ("item.inactive", lambda w: _item(w, active=False)),
    ("item.matrix_parent", lambda w: _item(w, matrix_parent=True)),
    ("item.not_sellable", lambda w: _item(w, itemtype="Description")),
    ("item.no_tax_schedule", lambda w: _item(w, taxschedule=None)),
    ("item.tax_schedule_unverified", lambda w: setattr(w.ns, "has_taxschedule", False)),
    ("item.not_stocked", lambda w: w.ns.stocked.update({"1001": {"9"}})),
    ("item.stocking_unverified", lambda w: setattr(w.ns, "stocked", None)),
    ("item.price_missing", lambda w: w.ns.prices.pop(("1001", "1"))),
    ("item.price_missing", lambda w: (_no_pricing(w), _item(w, baseprice=None))),
    ("item.price_mismatch", lambda w: _sku_tier(w, "BASE", Decimal("19.99"))),
    ("item.price_mismatch", lambda w: (_no_pricing(w), _sku_tier(w, "BASE", Decimal("1")))),
    ("price.level_unmapped", lambda w: _sku_tier(w, "CLEARANCE")),
    ("price.unverified", lambda w: (_no_pricing(w), _sku_tier(w, "MEMBER"))),
    ("discount.item_unset", lambda w: w.doc.pop("discount_item")),
    ("discount.item_missing", lambda w: w.doc.update(discount_item="2999")),
    ("discount.item_inactive",
     lambda w: w.ns.items.update({"POS-DISCOUNT": NsItem("2001", "POS-DISCOUNT", False)})),
    ("customer.guest_missing", lambda w: setattr(w.ns, "guest", None)),
    ("customer.guest_inactive", lambda w: setattr(w.ns, "guest", NsRef("4999", "G", False))),
    ("customer.guest_subsidiary",
     lambda w: setattr(w.ns, "guest", NsRef("4999", "G", True, "2"))),
    ("customer.loyalty_field_missing", lambda w: setattr(w.ns, "loyalty_field", False)),
    ("tender.unmapped", lambda w: w.usage.use_tender("VISA")),
    ("tender.unmapped", lambda w: w.tenders.append("PAYPAL")),
    ("tender.unmapped", lambda w: w.doc["tenders"].pop("STORE_CREDIT")),
    ("tender.method_missing", lambda w: w.doc["tenders"].update(CASH="99")),
    ("tender.method_inactive", lambda w: w.ns.payment_methods.update({"1": NsRef("1", "Cash",
                                                                                 False)})),
    ("tender.split_code", lambda w: w.usage.use_tender("SPLIT")),
    ("tender.shared_method", lambda w: w.doc["tenders"].update(GIFT_CARD="1")),
    ("store.unmapped", lambda w: w.usage.use_sku("TEE-001", store="S777")),
    ("store.unmapped", lambda w: w.usage.stores.add("")),
    ("store.location_missing", lambda w: w.ns.locations.clear()),
    ("store.location_inactive",
     lambda w: w.ns.locations.update({"1": NsRef("1", "Store S001", False, "1")})),
    ("store.subsidiary_mismatch",
     lambda w: w.ns.locations.update({"1": NsRef("1", "Store S001", True, "2")})),
    ("store.subsidiary_missing", lambda w: w.ns.subsidiaries.clear()),
    ("store.tax_code_unset", lambda w: w.doc["stores"]["S001"].pop("tax_code")),
    ("store.tax_code_missing", lambda w: w.doc["stores"]["S001"].update(tax_code="199")),
    ("store.tax_code_inactive",
     lambda w: w.ns.tax_codes.update({"101": NsRef("101", "TAX-CA-SF", False)})),
    ("tax.code_unknown", lambda w: w.usage.use_sku("TEE-001", tax_code="TAX-XX")),
    ("tax.code_inactive", lambda w: w.ns.tax_codes.update(
        {"102": NsRef("102", "TAX-CA-LA", False)}) or w.usage.use_sku("TEE-001",
                                                                       tax_code="TAX-CA-LA")),
]


def test_clean_world_has_no_findings_and_passes_every_step() -> None:
    report = World().report()
    assert report.findings == []
    assert report.exit_code == 0
    assert [s.status for s in report.steps] == ["pass", "pass", "pass", "pass", "skipped"]


@pytest.mark.parametrize(("check", "mutate"), CASES,
                         ids=[f"{c}-{n}" for n, (c, _) in enumerate(CASES)])
def test_each_gap_triggers_its_finding(check: str, mutate: Mutation) -> None:
    world = World()
    mutate(world)
    report = world.report()
    found = [f for f in report.findings if f.check == check]
    assert found, [f.check for f in report.findings]
    spec = CHECKS[check]
    assert all(f.severity == spec.severity and f.step == spec.step and f.fix for f in found)
    assert report.exit_code == (1 if report.errors else 0)
    step = next(s for s in report.steps if s.id == spec.step)
    assert step.status == ("fail" if step.errors else "warn")


def test_every_catalogued_check_has_a_case() -> None:
    covered = {c for c, _ in CASES} | {"traffic.empty", "traffic.undecodable"}
    assert covered == set(CHECKS)


def test_traffic_findings_trigger_and_clear() -> None:
    assert check_traffic(None) == []
    assert check_traffic(TrafficSummary("pos.sale.v1", 10)) == []
    assert [f.check for f in check_traffic(TrafficSummary("pos.sale.v1", 0))] == [
        "traffic.empty"]
    assert [f.check for f in check_traffic(TrafficSummary("t", 5, undecodable=2))] == [
        "traffic.undecodable"]
    report = run_checks(_usage(), rollout_config(_doc()), _ns(),
                        traffic=TrafficSummary("t", 0))
    assert report.steps[-1].status == "warn" and report.exit_code == 0


def test_variant_mapping_resolves_to_the_matrix_child() -> None:
    world = World()
    world.doc["skus"] = {"TEE-001-M": "TEE-001"}
    world.usage = PosUsage()
    world.usage.use_sku("TEE-001-M", store="S001", tier="BASE", price=Decimal("24.50"))
    assert world.report().findings == []


def test_unverifiable_tiers_warn_once_per_tier_not_per_sku() -> None:
    world = World()
    _no_pricing(world)
    world.ns.items["TEE-002"] = NsItem("1002", "TEE-002", True, "InvtPart", "1", Decimal("26"))
    world.ns.stocked["1002"] = {"1"}
    for sku in ("TEE-001", "TEE-002"):
        world.usage.use_sku(sku, store="S001", tier="MEMBER")
    report = world.report()
    assert [(f.check, f.subject) for f in report.findings] == [
        ("price.unverified", "price level MEMBER")]
    assert report.exit_code == 0


def test_price_level_resolution() -> None:
    levels = {"1": "Base Price", "2": "Member", "5": "Online Price"}
    assert resolve_price_level("BASE", {}, levels) == "1"
    assert resolve_price_level("MEMBER", {}, levels) == "2"
    assert resolve_price_level("WEB", {"WEB": "Online Price"}, levels) == "5"
    assert resolve_price_level("WEB", {"WEB": "5"}, levels) == "5"
    assert resolve_price_level("CLEARANCE", {}, levels) is None


def test_json_shape() -> None:
    world = World()
    world.usage.use_tender("BITCOIN")
    doc = json.loads(json.dumps(world.report().as_json(), default=str))
    assert doc["ok"] is False and doc["exit_code"] == 1
    assert [s["id"] for s in doc["steps"]] == ["items", "customers", "tenders", "stores",
                                               "traffic"]
    assert set(doc["steps"][0]) == {"id", "title", "status", "checked", "errors", "warnings",
                                    "detail"}
    assert doc["findings"] == [{
        "check": "tender.unmapped", "severity": "error", "step": "tenders", "subject": "BITCOIN",
        "message": "tender 'BITCOIN' (seen on 1 tender lines) maps to no NetSuite payment method",
        "fix": CHECKS["tender.unmapped"].fix}]
    assert doc["summary"] == {"errors": 1, "warnings": 0, "steps_failed": 1,
                              "by_check": {"tender.unmapped": 1}}


# -- inputs ----------------------------------------------------------------------------------

def test_catalogue_csv_and_json_lines(tmp_path: Path) -> None:
    csv_file = tmp_path / "cat.csv"
    csv_file.write_text("\ufeffSKU,description,price,price_level,tax_code,store_ids\n"
                        "TEE-001,Tee,24.50,,TAX-CA-SF,S001;S002\n"
                        "TEE-001,Tee,22.05,member,,S001\n", encoding="utf-8")
    usage = read_catalogue(csv_file)
    use = usage.skus["TEE-001"]
    assert use.stores == {"S001", "S002"} and usage.stores == {"S001", "S002"}
    assert use.prices == {"BASE": Decimal("24.50"), "MEMBER": Decimal("22.05")}
    assert use.tax_codes == {"TAX-CA-SF"}

    jsonl = tmp_path / "cat.jsonl"
    jsonl.write_text('{"sku": "TEE-001", "price": "24.50", "store_ids": ["S001"]}\n\n'
                     '{"sku": "TEE-002", "store_ids": "S002;S003"}\n')
    usage = read_catalogue(jsonl)
    assert usage.skus["TEE-002"].stores == {"S002", "S003"}
    assert usage.skus["TEE-002"].prices == {"BASE": None}


@pytest.mark.parametrize("content", ["name,price\nTEE,1\n", "sku,price\nTEE-001,abc\n",
                                     "sku,price\n,1\n", '{"sku": "A"}\n[1]\n', '{"sku": \n'])
def test_bad_catalogue_is_rejected_with_its_row(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(CatalogueError, match="bad.csv"):
        read_catalogue(path)


def test_rollout_keys_in_the_mappings_file() -> None:
    cfg = rollout_config(_doc())
    assert not cfg.customer.configured and cfg.customer.mode == "guest"
    assert "default" in cfg.customer.describe()
    cfg = rollout_config({**_doc(), "customer_strategy": {"mode": "threshold",
                                                          "threshold": "50"},
                          "skus": {"TEE-001-M": "TEE-001 : M"}, "price_levels": {"MEMBER": "2"}})
    assert cfg.customer.threshold == Decimal("50") and "50" in cfg.customer.describe()
    assert cfg.itemid("TEE-001-M") == "TEE-001 : M" and cfg.itemid("X") == "X"
    assert rollout_config({**_doc(), "customer_strategy": "create_all"}).customer.configured


@pytest.mark.parametrize("extra", [{"customer_strategy": "everyone"},
                                   {"customer_strategy": {"mode": "threshold"}},
                                   {"customer_strategy": {"mode": "threshold", "threshold": -1}},
                                   {"skus": ["TEE-001"]}, {"skus": {"A": ""}},
                                   {"stores": ["S001"]}])
def test_bad_rollout_keys_are_mapping_errors(extra: dict[str, Any]) -> None:
    with pytest.raises(MappingError):
        rollout_config({**_doc(), **extra})


def test_usage_from_generated_sales_counts_split_tenders() -> None:
    sales = [e.value for e in generate(300, seed=7) if isinstance(e.value, dict)]
    usage = usage_from_sales(sales)
    assert usage.stores <= {"S001", "S002", "S003", "S004", "S005"}
    assert {"CASH", "GIFT_CARD"} <= set(usage.tenders)
    assert usage.split_sales == sum(len(s["tenders"]) > 1 for s in sales) > 0
    assert {"BASE", "MEMBER"} <= {t for u in usage.skus.values() for t in u.prices}


# -- the command against the simulator over HTTP ---------------------------------------------

def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("preflight")(preflight_command)

    @app.callback()
    def _root() -> None:
        """Root, so `preflight` stays a sub-command as in the real CLI."""

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer() as sim:
        yield sim


@pytest.fixture
def sim(server: SimServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    httpx.post(server.base_url + "/__sim/reset").raise_for_status()
    for var in ("TILLBRIDGE_MAPPINGS", "KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL",
                "NETSUITE_ACCOUNT_ID", "NETSUITE_CONSUMER_KEY", "NETSUITE_CONSUMER_SECRET",
                "NETSUITE_TOKEN_ID", "NETSUITE_TOKEN_SECRET", "NETSUITE_AUTH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETSUITE_BASE_URL", server.base_url)
    # A base URL means a real NetSuite to the settings: give the simulator's credentials.
    creds = server.credentials
    for var, value in (("NETSUITE_CONSUMER_KEY", creds.consumer_key),
                       ("NETSUITE_CONSUMER_SECRET", creds.consumer_secret),
                       ("NETSUITE_TOKEN_ID", creds.token_id),
                       ("NETSUITE_TOKEN_SECRET", creds.token_secret)):
        monkeypatch.setenv(var, value)
    yield server


def invoke(*args: str) -> Any:
    return CliRunner().invoke(_app(), ["preflight", *args], env={"COLUMNS": "200"})


def test_help_documents_the_exit_codes() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Exit codes: 0 no errors" in text and "2 preflight could not run" in text


def test_demo_data_passes(sim: SimServer) -> None:
    result = invoke("--catalogue", str(EXAMPLE_CATALOGUE))
    assert result.exit_code == 0, result.output
    assert "Item and SKU alignment" in result.output and "FAIL" not in result.output

    result = invoke("--catalogue", str(EXAMPLE_CATALOGUE), "--json")
    doc = json.loads(result.output)
    assert result.exit_code == 0 and doc["ok"] is True
    assert doc["summary"]["errors"] == 0
    # The simulator exposes per-level prices (pricing/pricelevel): every tier is verified.
    assert doc["findings"] == []
    assert doc["sources"]["catalogue_skus"] == doc["steps"][0]["checked"] > 40


def test_gaps_fail_and_are_named(sim: SimServer, tmp_path: Path) -> None:
    httpx.post(sim.base_url + "/__sim/items/TEE-001/deactivate").raise_for_status()
    httpx.post(sim.base_url + "/__sim/items/NEW-001").raise_for_status()  # no tax schedule
    catalogue = tmp_path / "pos.csv"
    catalogue.write_text(
        EXAMPLE_CATALOGUE.read_text()
        + "ZZZ-404,Not in NetSuite,9.99,BASE,,S001\n"
        + "TEE-001,Organic Tee #1,24.50,BASE,,S001\n"
        + "NEW-001,New,0.00,BASE,,S001\n"
        + "TEE-008,Warehouse only,16.50,BASE,,S002\n"
        + "CAP-001,Cap,22.99,BASE,TAX-MARS,S777\n")
    mappings = load_data("mappings.json")
    mappings["tenders"]["PAYPAL"] = "99"
    del mappings["tenders"]["STORE_CREDIT"]
    mappings_file = tmp_path / "mappings.json"
    mappings_file.write_text(json.dumps(mappings))

    args = ("--catalogue", str(catalogue), "--mappings", str(mappings_file),
            "--tender", "BITCOIN")
    result = invoke(*args, "--json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.output)
    gaps = {(f["check"], f["subject"]) for f in doc["findings"] if f["severity"] == "error"}
    assert gaps == {
        ("item.missing", "ZZZ-404"), ("item.inactive", "TEE-001"),
        ("item.no_tax_schedule", "NEW-001"), ("item.not_stocked", "TEE-008"),
        ("tender.unmapped", "BITCOIN"), ("tender.unmapped", "STORE_CREDIT"),
        ("tender.method_missing", "PAYPAL"), ("store.unmapped", "S777"),
        ("tax.code_unknown", "TAX-MARS")}
    assert {s["id"]: s["status"] for s in doc["steps"]} == {
        "items": "fail", "customers": "pass", "tenders": "fail", "stores": "fail",
        "traffic": "skipped"}

    result = invoke(*args)
    assert result.exit_code == 1
    for name in ("ZZZ-404", "BITCOIN", "S777", "NOT READY"):
        assert name in result.output


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_netsuite_exits_2(sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETSUITE_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    result = invoke("--json")
    assert result.exit_code == 2
    assert "unreachable" in json.loads(result.output)["error"]


def test_wrong_credentials_exit_2(sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETSUITE_TOKEN_SECRET", "not-the-secret")
    result = invoke()
    assert result.exit_code == 2 and "credentials" in result.output


def test_bad_inputs_exit_2(sim: SimServer, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "mappings.json"
    bad.write_text(json.dumps({**_doc(), "customer_strategy": "everyone"}))
    assert invoke("--mappings", str(bad)).exit_code == 2
    monkeypatch.setenv("TILLBRIDGE_MAPPINGS", str(tmp_path / "missing.json"))
    result = invoke("--json")
    assert result.exit_code == 2 and "missing.json" in json.loads(result.output)["error"]
    monkeypatch.delenv("TILLBRIDGE_MAPPINGS")
    (tmp_path / "cat.csv").write_text("name\nx\n")
    assert invoke("--catalogue", str(tmp_path / "cat.csv")).exit_code == 2
    assert invoke("--from-topic").exit_code == 2  # no Kafka configured


def test_guest_customer_and_strategy_over_http(sim: SimServer, tmp_path: Path) -> None:
    doc = copy.deepcopy(_doc())
    doc["stores"] = load_data("mappings.json")["stores"]
    doc.update(guest_customer="4998", customer_strategy={"mode": "threshold", "threshold": 75})
    path = tmp_path / "mappings.json"
    path.write_text(json.dumps(doc))
    result = invoke("--mappings", str(path), "--json")
    out = json.loads(result.output)
    assert result.exit_code == 1
    assert [f["check"] for f in out["findings"] if f["severity"] == "error"] == [
        "customer.guest_missing"]
    assert "75" in out["steps"][1]["detail"]
