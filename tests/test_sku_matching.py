"""SKU look-up forgives what tills do: case and surrounding whitespace (configurable), and the
closest-match suggestion on unknown_sku is case-insensitive. Pure: no broker, no HTTP."""

from __future__ import annotations

import dataclasses

from tests.factories import make_sale, sandbox_refdata
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.stages.enrich import Enrichment, closest_sku, enrich_sale
from tillbridge.streams.stages.records import Rejection


def _with_sku(sku: str) -> dict:
    sale = make_sale()
    sale["lines"][0]["sku"] = sku
    return sale


def test_case_and_whitespace_are_forgiven_by_default() -> None:
    maps, ref = Mappings.load(), sandbox_refdata()
    exact = enrich_sale(_with_sku("TEE-001"), maps, ref)
    for sku in ("tee-001", " TEE-001 ", "Tee-001\t"):
        got = enrich_sale(_with_sku(sku), maps, ref)
        assert isinstance(got, Enrichment), (sku, got)
        assert isinstance(exact, Enrichment) and got.items == exact.items


def test_case_can_be_made_strict_in_the_mappings() -> None:
    doc = {**Mappings.load().document, "sku_matching": {"ignore_case": False}}
    maps, ref = Mappings.from_dict(doc), sandbox_refdata()
    assert isinstance(enrich_sale(_with_sku(" TEE-001 "), maps, ref), Enrichment)
    got = enrich_sale(_with_sku("tee-001"), maps, ref)
    assert isinstance(got, Rejection) and got.reason == "unknown_sku"
    assert got.inputs["closest_match"] == "TEE-001"


def test_variant_mapping_keys_are_matched_the_same_way() -> None:
    doc = Mappings.load().document
    maps = Mappings.from_dict({**doc, "skus": {"TEE-RED-M": "TEE-001"}})
    assert maps.itemid(" tee-red-m ") == "TEE-001"
    assert maps.itemid("unmapped") == "unmapped"


def test_closest_match_ignores_case_and_answers_in_netsuites_spelling() -> None:
    assert closest_sku("tee-01", ["TEE-001", "MUG-010"]) == "TEE-001"
    assert closest_sku("zzz", ["TEE-001"]) is None


def test_an_item_replaced_in_place_is_read_fresh() -> None:
    ref = sandbox_refdata()
    key, item = next(iter(ref.items.items()))
    assert ref.find_item(key.lower()) is item
    ref.items[key] = dataclasses.replace(item, active=False)
    assert ref.find_item(key.lower()).active is False
    assert ref.item_by_id(item.id).active is False
