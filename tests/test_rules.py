"""The business rules, table-driven: every validate/enrich reason code has a case here.

Each case starts from the balanced factory sale and the simulator's seed snapshot, breaks one
thing (the sale, the mappings or the reference data), re-balances the money so only the
intended rule can fire, and checks the code, the rule and what the rule says it saw.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import make_sale, sandbox_refdata
from tillbridge.devstack.pos.generator import generate
from tillbridge.streams.refdata.mappings import MappingError, Mappings
from tillbridge.streams.refdata.snapshot import NamedRef, ReferenceData, TaxCodeRef
from tillbridge.streams.stages.enrich import Enrichment, enrich_sale
from tillbridge.streams.stages.reasons import CATALOGUE
from tillbridge.streams.stages.records import Rejection
from tillbridge.streams.stages.validate import cents, validate_sale

World = tuple[dict[str, Any], Mappings, ReferenceData]


def rebalance(sale: dict[str, Any]) -> dict[str, Any]:
    """Recompute the receipt totals and pay it with one tender so only the intended rule fails."""
    lines = sale["lines"]
    sale["subtotal"] = sum((cents(ln["quantity"] * ln["unit_price"]) for ln in lines), D(0))
    disc = sum((d["amount"] for ln in lines for d in ln["discounts"]), D(0))
    sale["discount_total"] = disc + sum((d["amount"] for d in sale["order_discounts"]), D(0))
    sale["tax_total"] = sum((ln["tax_amount"] for ln in lines), D(0))
    sale["total"] = sale["subtotal"] - sale["discount_total"] + sale["tax_total"]
    sale["tenders"] = [{**sale["tenders"][0], "amount": sale["total"]}]
    return sale


def run_rules(sale: dict[str, Any], maps: Mappings, ref: ReferenceData,
              tolerance: int = 1) -> Enrichment | Rejection:
    """What the ingest agent does: validate, then enrich."""
    return validate_sale(sale) or enrich_sale(sale, maps, ref, tax_tolerance_cents=tolerance)


def _line(**kw: Any) -> Callable[[World], None]:
    def mutate(w: World) -> None:
        w[0]["lines"][0].update(kw)
        rebalance(w[0])
    return mutate


def _sale(**kw: Any) -> Callable[[World], None]:
    return lambda w: w[0].update(kw)


def _inactive(table: str, key: str) -> Callable[[World], None]:
    def mutate(w: World) -> None:
        rows = getattr(w[2], table)
        for k, v in list(rows.items()):
            if v.id == key:
                rows[k] = dataclasses.replace(v, active=False)
    return mutate


def _order_discount(amount: str) -> Callable[[World], None]:
    def mutate(w: World) -> None:
        w[0]["order_discounts"] = [{"code": "BIG", "promotion_id": "P-BIG", "amount": D(amount)}]
        rebalance(w[0])
    return mutate


def _variant(w: World) -> None:
    w[0]["lines"][0]["sku"] = "TEE-001-M"
    object.__setattr__(w[1], "skus", {"TEE-001-M": "TEE-001 : M"})


def _no_discount_item(w: World) -> None:
    object.__setattr__(w[1], "discount_item", None)


#: (reason, rule, mutation, an input the rejection must carry: (key, value) or key only)
CASES: list[tuple[str, str, Callable[[World], None], tuple[str, str | None]]] = [
    ("missing_field", "required", _sale(pos_transaction_id=""), ("field", "pos_transaction_id")),
    ("missing_location", "required.store", _sale(store_id=""), ("pos_transaction_id", None)),
    ("missing_tax_code", "required.tax_code", _line(tax_code=None), ("sku", "TEE-001")),
    ("invalid_amount", "amounts.sane", _line(quantity=D("0")), ("line_no", "1")),
    ("invalid_discount", "discounts.line",
     _line(discounts=[{"code": "X", "promotion_id": None, "amount": D("40.00")}],
           tax_amount=D("0.00")), ("line_gross", "39.98")),
    ("invalid_discount", "discounts.line",
     _line(discounts=[{"code": "X", "promotion_id": None, "amount": D("-1.00")}]),
     ("codes", "X")),
    ("invalid_discount", "discounts.order", _order_discount("38.00"), ("order_discounts", "38.00")),
    ("totals_mismatch", "totals.total", _sale(total=D("41.27")), ("stated_total", "41.27")),
    ("tender_mismatch", "tenders.sum",
     lambda w: w[0]["tenders"][0].update(amount=D("30.00")), ("tendered", "30.00")),
    ("unknown_store", "mapping.store", _sale(store_id="S999"), ("known_stores", None)),
    ("invalid_location", "location.active", _inactive("locations", "1"), ("location", "1")),
    ("unknown_sku", "item.exists", _line(sku="TEE-01"), ("closest_match", "TEE-001")),
    ("unknown_variant", "item.variant", _variant, ("mapped_itemid", "TEE-001 : M")),
    ("inactive_item", "item.active", _line(sku="TEE-007"), ("item_id", "1007")),
    ("item_not_stocked", "item.location", _line(sku="TEE-008"),
     ("known_locations_for_item", "9")),
    ("unknown_tax_code", "tax.code_exists", _line(tax_code="TAX-CA-SFO"),
     ("closest_match", "TAX-CA-SF")),
    ("inactive_tax_code", "tax.code_active", _inactive("tax_codes", "101"), ("tax_code_id", "101")),
    ("tax_mismatch", "tax.amount", _line(tax_amount=D("3.30")), ("rate_expected", "8.6250")),
    ("discount_unmapped", "discount.item", _no_discount_item, ("discount_item_state", "not set")),
    ("unknown_tender", "mapping.tender",
     lambda w: w[0]["tenders"][0].update(tender_type="BITCOIN"), ("tender_type", "BITCOIN")),
    ("invalid_payment_method", "tender.method_active", _inactive("payment_methods", "2"),
     ("payment_method", "2")),
]


def world() -> World:
    return make_sale(), Mappings.load(), sandbox_refdata()


def test_the_factory_sale_passes_every_rule() -> None:
    assert isinstance(run_rules(*world()), Enrichment)


@pytest.mark.parametrize(("reason", "rule", "mutate", "seen"), CASES,
                         ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_each_rule_rejects_with_its_code_and_inputs(reason, rule, mutate, seen) -> None:
    w = world()
    mutate(w)
    rej = run_rules(*w)
    assert isinstance(rej, Rejection), f"expected {reason}, the sale passed"
    assert (rej.stage, rej.reason, rej.rule) == (CATALOGUE[reason].stage, reason, rule)
    assert rej.message
    key, value = seen
    assert key in rej.inputs, rej.inputs
    if value is not None:
        assert rej.inputs[key] == value
    assert all(isinstance(v, str) for v in rej.inputs.values()), "inputs become a JSON header"


#: Validate/enrich codes no sale can raise, and where their cases are tested.
OTHER_FAMILIES = {"settlement_unmapped": "tests/test_settlement_flow.py",
                  "unknown_movement_reason": "tests/test_inventory.py"}


def test_every_validate_and_enrich_code_has_a_case() -> None:
    wanted = {c for c, r in CATALOGUE.items() if r.stage in ("validate", "enrich")
              and c not in OTHER_FAMILIES}
    assert wanted <= {c[0] for c in CASES}, wanted - {c[0] for c in CASES}


def test_tax_mismatch_says_what_it_compared() -> None:
    w = world()
    _line(tax_amount=D("3.30"))(w)
    rej = run_rules(*w)
    assert isinstance(rej, Rejection)
    assert rej.inputs["taxable"] == "37.98" and rej.inputs["tax_expected"] == "3.28"
    assert rej.inputs["tolerance_cents"] == "1" and rej.inputs["difference"] == "0.02"
    assert "101" in rej.inputs["rate_source"]
    # the same sale passes with a wider tolerance
    assert isinstance(run_rules(*w, tolerance=2), Enrichment)


def test_tax_uses_the_store_jurisdiction_not_the_line_code() -> None:
    sale, maps, ref = world()
    sale["lines"][0].update(tax_code="TAX-OR", tax_amount=D("0.00"))  # 0% code, sold in SF
    rebalance(sale)
    rej = run_rules(sale, maps, ref)
    assert isinstance(rej, Rejection) and rej.reason == "tax_mismatch"
    assert rej.inputs["rate_expected"] == "8.6250"


def test_rules_whose_tables_are_not_readable_are_skipped() -> None:
    sale, maps, _ = world()
    sale["lines"][0]["sku"] = "TEE-008"  # not stocked at S001, but stocking is unknown
    ref = sandbox_refdata()
    ref.item_locations, ref.tax_codes, ref.payment_methods, ref.locations = None, {}, {}, {}
    enr = run_rules(sale, maps, ref)
    assert isinstance(enr, Enrichment) and enr.tax_codes == [None]


def test_enrichment_carries_the_ledger_tax_code_per_line() -> None:
    enr = run_rules(*world())
    assert isinstance(enr, Enrichment) and enr.tax_codes == ["101"]
    assert Enrichment.from_json(enr.to_json()) == enr


# -- money rules, as properties ------------------------------------------------------------

money = st.decimals(min_value=D("0.01"), max_value=D("999.99"), places=2)
rates = st.decimals(min_value=D("0"), max_value=D("15"), places=4)


@settings(max_examples=150, deadline=None)
@given(price=money, qty=st.integers(1, 5), disc_share=st.integers(0, 100), rate=rates,
       tolerance=st.integers(0, 3), off=st.integers(-6, 6))
def test_tax_within_tolerance_passes_and_beyond_fails(price, qty, disc_share, rate, tolerance,
                                                       off) -> None:
    sale, maps, ref = world()
    gross = cents(price * qty)
    disc = cents(gross * disc_share / 100)
    expected = cents((gross - disc) * rate / 100)
    stated = expected + D(off) / 100
    if stated < 0:
        return  # a negative tax is invalid_amount, another rule
    sale["lines"][0].update(quantity=D(qty), unit_price=price, tax_amount=stated,
                            discounts=[{"code": "D", "promotion_id": None, "amount": disc}])
    rebalance(sale)
    code = TaxCodeRef("101", "TAX-CA-SF", rate)
    ref.tax_codes.update({"101": code, "TAX-CA-SF": code})
    result = run_rules(sale, maps, ref, tolerance=tolerance)
    if abs(off) <= tolerance:
        assert isinstance(result, Enrichment), result
    else:
        assert isinstance(result, Rejection) and result.reason == "tax_mismatch"


@settings(max_examples=100, deadline=None)
@given(gross_disc=st.integers(0, 150), order_disc=st.integers(0, 150))
def test_discounts_within_their_base_pass_and_beyond_fail(gross_disc, order_disc) -> None:
    sale = make_sale()
    line = sale["lines"][0]
    gross = cents(line["quantity"] * line["unit_price"])  # 39.98
    line_disc = cents(gross * gross_disc / 100)
    order = cents(gross * order_disc / 100)
    line["discounts"] = [{"code": "L", "promotion_id": None, "amount": line_disc}]
    line["tax_amount"] = D("0.00")
    sale["order_discounts"] = [{"code": "O", "promotion_id": None, "amount": order}]
    rebalance(sale)
    rej = validate_sale(sale)
    if line_disc <= gross and order <= gross - line_disc:
        assert rej is None, rej
    else:
        assert rej is not None and rej.reason == "invalid_discount"


# -- customers (rule 3) ----------------------------------------------------------------------

def _shopper(**kw: Any) -> dict[str, Any]:
    sale = make_sale()
    sale["customer"].update(anonymous_tag=None, **kw)
    return sale


@pytest.mark.parametrize(("shopper", "rule", "cid"), [
    ({"loyalty_id": "LOY100001"}, "loyalty_id", "5001"),
    ({"email": " Sam.Garcia1@EXAMPLE.com"}, "email", "5001"),
    ({"phone": "(+1) 555 0101"}, "phone", "5001"),
    ({"loyalty_id": "LOY-NOT-KNOWN", "email": "sam.garcia1@example.com"}, "email", "5001"),
    ({}, "guest_fallback", "4999"),
])
def test_customer_match_order(shopper, rule, cid) -> None:
    _, maps, ref = world()
    enr = enrich_sale(_shopper(**shopper), maps, ref)
    assert isinstance(enr, Enrichment)
    assert (enr.customer.rule, enr.customer.id) == (rule, cid)


def test_a_later_event_enriches_a_matched_customer_with_what_it_lacks() -> None:
    _, maps, ref = world()
    enr = enrich_sale(_shopper(email="sam.garcia1@example.com", loyalty_id="LOY-NEW-7",
                               phone="+1-555-0999"), maps, ref)
    assert isinstance(enr, Enrichment)
    # NetSuite has a loyalty id and a phone already: only empty fields are filled
    assert enr.customer.rule == "email" and enr.customer.updates is None
    ref.customers["5001"] = dataclasses.replace(ref.customers["5001"], phone=None)
    ref.customers_by_loyalty.pop("LOY100001")
    ref.customers["5001"] = dataclasses.replace(ref.customers["5001"], loyalty_id=None)
    enr = enrich_sale(_shopper(email="sam.garcia1@example.com", loyalty_id="LOY-NEW-7",
                               phone="+1-555-0999"), maps, ref)
    assert isinstance(enr, Enrichment)
    assert enr.customer.updates == {"custentity_loyalty_id": "LOY-NEW-7", "phone": "+1-555-0999"}
    assert Enrichment.from_json(enr.to_json()) == enr


def test_ambiguous_keys_and_the_guest_are_never_matched() -> None:
    from tillbridge.streams.refdata.snapshot import _unique_index

    assert _unique_index([("a", "1"), ("a", "2"), ("b", "3"), ("b", "3")]) == {"b": "3"}
    _, maps, ref = world()
    ref.customers_by_email["walkin@example.com"] = maps.guest_customer
    enr = enrich_sale(_shopper(email="walkin@example.com"), maps, ref)
    assert isinstance(enr, Enrichment) and enr.customer.rule == "new_identified"


@pytest.mark.parametrize(("strategy", "total_over", "rule"), [
    (None, False, "new_identified"),  # default: today's behaviour, identified shoppers upserted
    ("create_all", False, "new_identified"),
    ({"mode": "guest", "enrich": False}, True, "guest_fallback"),
    ({"mode": "threshold", "threshold": 100}, False, "guest_fallback"),
    ({"mode": "threshold", "threshold": 40}, True, "new_identified"),
])
def test_customer_strategy_decides_who_is_created(strategy, total_over, rule) -> None:
    doc = {"version": 1, "stores": {"S001": {"location": "1", "tax_code": "101"}},
           "tenders": {"VISA": "2", "CASH": "1"}, "guest_customer": "4999",
           "discount_item": "2001"}
    if strategy is not None:
        doc["customer_strategy"] = strategy
    maps = Mappings.from_dict(doc)
    enr = enrich_sale(_shopper(loyalty_id="LOY-NEW-1"), maps, sandbox_refdata())
    assert isinstance(enr, Enrichment) and enr.customer.rule == rule


def test_mappings_parse_the_rollout_keys() -> None:
    maps = Mappings.from_dict({"version": 3, "stores": {}, "tenders": {}, "guest_customer": "1",
                               "skus": {"TEE-001-M": "TEE-001 : M"},
                               "price_levels": {"MEMBER": "2"},
                               "customer_strategy": "create_all"})
    assert maps.itemid("TEE-001-M") == "TEE-001 : M" and maps.itemid("X") == "X"
    assert maps.price_levels == {"MEMBER": "2"} and maps.customer_strategy.mode == "create_all"
    with pytest.raises(MappingError, match="skus"):
        Mappings.from_dict({"version": 1, "stores": {}, "tenders": {}, "guest_customer": "1",
                            "skus": ["TEE-001"]})


# -- the generator's traffic -----------------------------------------------------------------

def test_generated_sales_pass_and_dirty_ones_fail_as_intended() -> None:
    maps, ref = Mappings.load(), sandbox_refdata()
    intended = {"missing_tax_code": {"missing_tax_code"},
                "missing_location": {"missing_location", "unknown_store"},
                "unknown_sku": {"unknown_sku"}, "totals_mismatch": {"totals_mismatch"},
                "duplicate": {None}}  # same transaction id: the sink's dedupe drops it
    clean = 0
    for event in generate(2000, seed=42, dirty=0.05):
        if isinstance(event.value, bytes):
            continue
        result = run_rules(event.value, maps, ref)
        code = result.reason if isinstance(result, Rejection) else None
        if event.dirty_kind is None:
            assert code is None, (event.value["pos_transaction_id"], result)
            clean += 1
        else:
            assert code in intended[event.dirty_kind], (event.dirty_kind, result)
    assert clean > 1800


def test_known_ref_rows_are_typed() -> None:
    ref = sandbox_refdata()
    assert ref.payment_methods["2"] == NamedRef("2", "Visa", True)
    assert ref.tax_codes["TAX-CA-SF"] is ref.tax_codes["101"]


def test_load_degrades_when_an_optional_table_is_not_exposed() -> None:
    import asyncio

    from tillbridge.connectors.netsuite.errors import NetSuiteError

    class Client:
        async def suiteql(self, query: str, limit: int = 1000) -> list[dict[str, Any]]:
            if "aggregateitemlocation" in query or "salestaxitem" in query:
                raise NetSuiteError(400, "INVALID_PARAMETER", detail="Unknown identifier")
            if query.endswith("FROM item"):
                return [{"id": "1001", "itemid": "TEE-001", "isinactive": "F"}]
            if "FROM paymentmethod" in query:
                return [{"id": "2", "name": "Visa", "isinactive": "T"}]
            if "email" in query:
                return [{"id": "5", "email": "A@x.com", "phone": "555-0101-99"},
                        {"id": "6", "email": "a@x.com"}]
            return []

    ref = ReferenceData()
    asyncio.run(ref.load(Client()))
    assert ref.ready and ref.item_locations is None and ref.tax_codes == {}
    assert ref.payment_methods["2"].active is False
    assert ref.customers_by_email == {} and ref.customers_by_phone == {"555010199": "5"}

    class Down(Client):
        async def suiteql(self, query: str, limit: int = 1000) -> list[dict[str, Any]]:
            if "paymentmethod" in query:
                raise NetSuiteError(401, "INVALID_LOGIN")
            return await super().suiteql(query, limit)

    with pytest.raises(NetSuiteError):
        asyncio.run(ReferenceData().load(Down()))


def test_promotions_map_is_optional_and_checked() -> None:
    assert Mappings.load().promotions["MARKDOWN5"] == "2003"
    doc = {"version": 1, "stores": {}, "tenders": {}, "guest_customer": "4999"}
    assert Mappings.from_dict(doc).promotions == {}
    with pytest.raises(MappingError, match="promotions"):
        Mappings.from_dict({**doc, "promotions": {"COUPON10": ""}})
