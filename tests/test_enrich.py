"""Enrich stage: store, SKU, tender and customer resolution against mappings and a snapshot."""

from __future__ import annotations

import pytest

from tests.factories import make_sale, split_tenders
from tillbridge.streams.refdata.mappings import MappingError, Mappings
from tillbridge.streams.refdata.snapshot import ItemRef, ReferenceData
from tillbridge.streams.stages.enrich import Enrichment, enrich_sale
from tillbridge.streams.stages.records import Rejection


@pytest.fixture
def maps() -> Mappings:
    return Mappings.load()


@pytest.fixture
def ref() -> ReferenceData:
    return ReferenceData(
        items={"TEE-001": ItemRef("1001", "TEE-001", True),
               "TEE-007": ItemRef("1007", "TEE-007", False),
               # the discount rule (discount_unmapped) needs the mapped discount item
               "POS-DISCOUNT": ItemRef("2001", "POS-DISCOUNT", True)},
        customers_by_loyalty={"LOY100001": "5001"}, ready=True)


def test_resolves_store_items_tenders_and_guest(maps, ref) -> None:
    enr = enrich_sale(make_sale(tenders=split_tenders()), maps, ref)
    assert isinstance(enr, Enrichment)
    assert (enr.location, enr.subsidiary) == ("1", "1")
    assert enr.items == ["1001"]
    assert enr.payment_methods == [maps.tenders["VISA"], maps.tenders["CASH"]]
    assert enr.customer.rule == "guest_fallback" and enr.customer.id == maps.guest_customer
    assert Enrichment.from_json(enr.to_json()) == enr


def test_known_loyalty_id_matches_existing_customer(maps, ref) -> None:
    sale = make_sale()
    sale["customer"]["loyalty_id"] = "LOY100001"
    enr = enrich_sale(sale, maps, ref)
    assert isinstance(enr, Enrichment)
    assert (enr.customer.rule, enr.customer.id) == ("loyalty_id", "5001")


def test_new_identified_customer_is_planned_for_upsert(maps, ref) -> None:
    sale = make_sale()
    sale["customer"].update(loyalty_id="LOY999", email="new@example.com", first_name="Ann")
    enr = enrich_sale(sale, maps, ref)
    assert isinstance(enr, Enrichment)
    assert enr.customer.rule == "new_identified" and enr.customer.id is None
    assert enr.customer.external_id == "pos-cust-LOY999"


@pytest.mark.parametrize(("mutate", "reason", "key", "value"), [
    (lambda s: s.update(store_id="S999"), "unknown_store", "store_id", "S999"),
    (lambda s: s["lines"][0].update(sku="TEE-01"), "unknown_sku", "closest_match", "TEE-001"),
    (lambda s: s["lines"][0].update(sku="TEE-007"), "inactive_item", "item_id", "1007"),
    (lambda s: s["tenders"][0].update(tender_type="BITCOIN"), "unknown_tender", "tender_type",
     "BITCOIN"),
])
def test_each_enrich_rule_rejects_with_its_code(maps, ref, mutate, reason, key, value) -> None:
    sale = make_sale()
    mutate(sale)
    rej = enrich_sale(sale, maps, ref)
    assert isinstance(rej, Rejection)
    assert (rej.stage, rej.reason) == ("enrich", reason)
    assert rej.inputs[key] == value


def test_bad_mappings_file_names_the_entry(tmp_path) -> None:
    bad = tmp_path / "m.json"
    bad.write_text('{"version": 2, "stores": {"S1": {}}, "tenders": {}, "guest_customer": "1"}')
    with pytest.raises(MappingError, match=r"stores\.S1"):
        Mappings.load(bad)
    bad.write_text("{nope")
    with pytest.raises(MappingError, match="not JSON"):
        Mappings.load(bad)
