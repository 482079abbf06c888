"""The POS traffic generator and the JSON-lines reader (no broker needed)."""

from __future__ import annotations

import io
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import fastavro
import pytest

from tillbridge.connectors.kafka.topics import SALE
from tillbridge.connectors.pos.jsonl import JsonLinesError, parse_jsonl, parse_line, read_jsonl
from tillbridge.devstack.pos.generator import DIRTY_KINDS, generate
from tillbridge.devstack.pos.reference import load_data
from tillbridge.schemas import load_schema
from tillbridge.streams.stages.tenders import booked_tenders

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "examples" / "sales.jsonl"
CENT = Decimal("0.01")
SANDBOX = load_data("sandbox.json")
MAPPINGS = load_data("mappings.json")
ITEMS = {i["itemid"]: i for i in SANDBOX["items"]}
LOCATION_OF = {loc["store_code"]: loc["id"] for loc in SANDBOX["locations"]}
TAX = {t["id"]: t for t in SANDBOX["tax_codes"]}
SALE_SCHEMA = fastavro.parse_schema(load_schema("sale.avsc"))


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def check_balanced(sale: dict) -> None:
    """Every arithmetic rule of a clean sale, in Decimal, to the cent."""
    subtotal = Decimal(0)
    line_discounts = Decimal(0)
    tax_total = Decimal(0)
    inclusive = sale["prices_include_tax"]
    exact_by_rate: dict[Decimal, Decimal] = {}
    for line in sale["lines"]:
        gross = line["quantity"] * line["unit_price"]
        disc = sum((d["amount"] for d in line["discounts"]), Decimal(0))
        assert 0 <= disc <= gross
        rate = line["tax_rate"]
        exact = (gross - disc) * rate / ((100 + rate) if inclusive else 100)
        exact_by_rate[rate] = exact_by_rate.get(rate, Decimal(0)) + exact
        if sale["tax_rounding"] == "LINE":
            assert line["tax_amount"] == cents(exact)
        else:  # rounded on the total: each line within a cent, each rate's sum rounded once
            assert abs(line["tax_amount"] - exact) < Decimal("0.01")
        assert line["promotion_ids"] == [
            d["promotion_id"] for d in line["discounts"] if d["promotion_id"]
        ]
        subtotal += gross
        line_discounts += disc
        tax_total += line["tax_amount"]
    order = sum((d["amount"] for d in sale["order_discounts"]), Decimal(0))
    assert sale["subtotal"] == subtotal
    assert sale["discount_total"] == line_discounts + order
    assert sale["tax_total"] == tax_total
    if sale["tax_rounding"] == "TOTAL":
        assert tax_total == sum((cents(e) for e in exact_by_rate.values()), Decimal(0))
    added = Decimal(0) if inclusive else sale["tax_total"]
    assert sale["subtotal"] - sale["discount_total"] + added == sale["total"]
    # cash change netted: some tills report cash as handed over (stages/tenders.py)
    assert sum(t["amount"] for t in booked_tenders(sale)) == sale["total"]
    assert sale["total"] > 0
    assert all(t["amount"] > 0 for t in sale["tenders"])


@pytest.fixture(scope="module")
def clean() -> list:
    return list(generate(3000, seed=11))


def test_deterministic_for_a_seed() -> None:
    a = list(generate(200, seed=5, dirty=0.2))
    b = list(generate(200, seed=5, dirty=0.2))
    assert a == b
    assert a != list(generate(200, seed=6, dirty=0.2))


def test_every_clean_sale_balances_to_the_cent(clean: list) -> None:
    for event in clean:
        assert event.dirty_kind is None and event.topic == SALE
        assert event.key == event.value["pos_transaction_id"].encode()
        check_balanced(event.value)


def test_sales_use_sandbox_reference_data(clean: list) -> None:
    for event in clean:
        sale = event.value
        store = MAPPINGS["stores"][sale["store_id"]]
        rate = Decimal(TAX[store["tax_code"]]["rate"])
        for line in sale["lines"]:
            item = ITEMS[line["sku"]]
            assert not item["isinactive"]
            assert LOCATION_OF[sale["store_id"]] in item["locations"]
            own = {"TAX-EXEMPT": Decimal(0), "TAX-REDUCED": Decimal(5)}
            if line["tax_code"] in own:  # exempt item or shopper, reduced-rate item
                assert line["tax_rate"] == own[line["tax_code"]]
                assert line["sku"].startswith(("BTL-", "SCK-")) or line["gift_card_code"] or \
                    (sale["customer"]["loyalty_id"] or "").endswith("7")
            else:
                assert line["tax_rate"] == rate
                assert line["tax_code"] == TAX[store["tax_code"]]["itemid"]
            # a gift card sold is priced at its face value, on no price level
            assert line["price_level"] in ("BASE", "MEMBER", "CLEARANCE") or \
                line["gift_card_code"]
            if line["price_level"] == "BASE":
                assert line["unit_price"] == Decimal(item["basePrice"])
        for tender in sale["tenders"]:
            assert tender["tender_type"] in MAPPINGS["tenders"]


def test_the_tax_situations_of_a_chain_are_all_generated(clean: list) -> None:
    sales = [e.value for e in clean]
    seen = {
        "rounded per line": any(s["tax_rounding"] == "LINE" for s in sales),
        "rounded on the total": any(s["tax_rounding"] == "TOTAL" for s in sales),
        "VAT-inclusive": any(s["prices_include_tax"] for s in sales),
        "exempt item": any(ln["tax_code"] == "TAX-EXEMPT" and ln["sku"].startswith("BTL-")
                           for s in sales for ln in s["lines"]),
        "exempt shopper": any((s["customer"]["loyalty_id"] or "").endswith("7") and
                              all(ln["tax_code"] == "TAX-EXEMPT" for ln in s["lines"])
                              for s in sales),
        "0% jurisdiction": any(s["store_id"] == "S003" for s in sales),
        "several rates": any(len({ln["tax_rate"] for ln in s["lines"]}) > 1 for s in sales),
        "discount before tax": any(ln["discounts"] for s in sales for ln in s["lines"]),
        "discount after tax": any(s["order_discounts"] for s in sales),
    }
    assert all(seen.values()), [k for k, v in seen.items() if not v]


def test_every_sale_is_valid_avro(clean: list) -> None:
    for event in clean[:500]:
        fastavro.schemaless_writer(io.BytesIO(), SALE_SCHEMA, event.value)


def test_realistic_mix(clean: list) -> None:
    sales = [e.value for e in clean]
    n = len(sales)
    known_ids = {c["loyalty_id"] for c in SANDBOX["customers"] if c["loyalty_id"]}
    known = sum(s["customer"]["loyalty_id"] in known_ids for s in sales)
    new = sum(s["customer"]["loyalty_id"] not in known_ids | {None} for s in sales)
    walk_in = sum(s["customer"]["anonymous_tag"] == "WALKIN" for s in sales)
    assert abs(known / n - 0.40) < 0.04
    assert abs(new / n - 0.10) < 0.03
    assert known + new + walk_in == n
    sizes = Counter(len(s["lines"]) for s in sales)
    assert sizes[1] > sizes[2] > sizes[3] > sizes[4]
    assert len({s["store_id"] for s in sales}) >= 5
    assert len({(s["store_id"], s["register_id"]) for s in sales}) >= 10
    tenders = Counter(t["tender_type"] for s in sales for t in s["tenders"])
    assert {"CASH", "VISA", "GIFT_CARD"} <= set(tenders)
    assert any(len(s["tenders"]) > 1 for s in sales)
    assert all(t["gift_card_code"] for s in sales for t in s["tenders"]
               if t["tender_type"] == "GIFT_CARD")
    for s in sales:
        for t in s["tenders"]:
            if t["tender_type"] == "CASH":
                assert t["cash_drawer_id"]
            elif t["tender_type"] == "STORE_CREDIT":  # the customer's credit: no card data
                assert s["customer"]["customer_id"]
            else:
                assert t["authorization_id"] and t["gateway_code"]
    assert any(s["order_discounts"] for s in sales)
    assert any(d["promotion_id"] for s in sales for line in s["lines"] for d in line["discounts"])
    assert {"BASE", "MEMBER", "CLEARANCE"} <= {
        ln["price_level"] for s in sales for ln in s["lines"]
    }
    ids = [s["pos_transaction_id"] for s in sales]
    assert len(ids) == len(set(ids))


def test_dirty_kinds_appear_at_about_the_ratio() -> None:
    events = list(generate(6000, seed=3, dirty=0.3))
    kinds = Counter(e.dirty_kind for e in events)
    dirty = sum(v for k, v in kinds.items() if k)
    assert abs(dirty / len(events) - 0.3) < 0.03
    for kind in DIRTY_KINDS:
        assert abs(kinds[kind] / len(events) - 0.05) < 0.015, (kind, kinds)


def test_dirty_events_are_what_their_label_says() -> None:
    seen: dict[str, dict] = {}
    for event in generate(3000, seed=4, dirty=0.25):
        kind, sale = event.dirty_kind, event.value
        if kind is None:
            seen[sale["pos_transaction_id"]] = sale
            continue
        if kind == "not_avro":
            assert isinstance(sale, bytes)
            assert len(sale) < 6 or sale[0] != 0
            continue
        assert isinstance(sale, dict)
        fastavro.schemaless_writer(io.BytesIO(), SALE_SCHEMA, sale)  # still valid Avro
        if kind == "missing_tax_code":
            assert any(line["tax_code"] is None for line in sale["lines"])
        elif kind == "missing_location":
            assert sale["store_id"] not in MAPPINGS["stores"]
        elif kind == "unknown_sku":
            assert any(line["sku"] not in ITEMS for line in sale["lines"])
        elif kind == "totals_mismatch":
            assert sale["subtotal"] - sale["discount_total"] + sale["tax_total"] != sale["total"]
            assert sum(t["amount"] for t in booked_tenders(sale)) == sale["total"]
        elif kind == "duplicate":
            original = seen[sale["pos_transaction_id"]]
            assert event.key == original["pos_transaction_id"].encode()
            assert sale["event_id"] != original["event_id"]
            assert {**sale, "event_id": None} == {**original, "event_id": None}


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        list(generate(1, dirty=1.5))
    with pytest.raises(ValueError):
        list(generate(-1))


# -- JSON lines --------------------------------------------------------------------


def test_example_file_parses_and_balances() -> None:
    events = read_jsonl(EXAMPLE)
    assert len(events) == 5
    for event in events:
        assert event.topic == SALE
        assert event.key == event.value["pos_transaction_id"].encode()
        check_balanced(event.value)
        fastavro.schemaless_writer(io.BytesIO(), SALE_SCHEMA, event.value)


def test_jsonl_conversions() -> None:
    line = EXAMPLE.read_text().splitlines()[2]
    sale = parse_line(line).value
    assert sale["total"] == Decimal("137.00") and isinstance(sale["total"], Decimal)
    assert sale["lines"][0]["quantity"] == Decimal("1.000")
    assert sale["completed_at"].isoformat() == "2025-03-03T15:11:35+00:00"  # from epoch millis
    assert sale["currency"] == "USD"  # schema default
    assert sale["event_id"]  # filled in


def _bad(**change: object) -> str:
    import json

    obj = json.loads(EXAMPLE.read_text().splitlines()[0])
    obj.update(change)
    return json.dumps(obj)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (_bad(event_type="sales"), "event_type"),
        (_bad(total=26.61), "strings"),
        (_bad(total="26.615"), "decimal places"),
        (_bad(total="lots"), "not a decimal"),
        (_bad(completed_at="2025-03-03T15:03:41"), "UTC offset"),
        (_bad(completed_at="yesterday"), "ISO-8601"),
        (_bad(store_code="S001"), "unknown field"),
        (_bad(register_id=None), "register_id"),
        (_bad(lines=[{"line_no": 1}]), "lines[0].sku"),
    ],
)
def test_bad_lines_are_reported_with_line_numbers(line: str, needle: str) -> None:
    good = EXAMPLE.read_text().splitlines()[0]
    with pytest.raises(JsonLinesError) as err:
        list(parse_jsonl(["# comment", good, "", line], source="t.jsonl"))
    assert err.value.problems[0][0] == 4
    assert needle in str(err.value)
    assert str(err.value).startswith("t.jsonl:4: ")


def test_read_jsonl_lists_every_bad_line(tmp_path: Path) -> None:
    good = EXAMPLE.read_text().splitlines()[0]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([good, "{", good, _bad(total=1.5)]) + "\n")
    with pytest.raises(JsonLinesError) as err:
        read_jsonl(path)
    assert [n for n, _ in err.value.problems] == [2, 4]
