"""Validate stage rules, table-driven, plus property tests of the money arithmetic."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import make_sale
from tillbridge.streams.stages.validate import cents, validate_sale


def test_balanced_sale_passes() -> None:
    assert validate_sale(make_sale()) is None


def _line(sale, **kw):
    sale["lines"][0].update(kw)
    return sale


CASES = [
    ("missing_field", "required", lambda s: s.update(pos_transaction_id="")),
    ("missing_field", "required", lambda s: s.update(lines=[])),
    ("missing_field", "required", lambda s: s.update(tenders=[])),
    ("missing_location", "required.store", lambda s: s.update(store_id="")),
    ("missing_tax_code", "required.tax_code", lambda s: _line(s, tax_code=None)),
    ("invalid_amount", "amounts.sane", lambda s: _line(s, quantity=D("0"))),
    ("invalid_amount", "amounts.sane", lambda s: _line(s, unit_price=D("-1.00"))),
    ("totals_mismatch", "totals.total", lambda s: s.update(total=D("41.27"))),
    ("totals_mismatch", "totals.subtotal", lambda s: s.update(subtotal=D("39.99"))),
    ("totals_mismatch", "totals.discount_total", lambda s: s.update(discount_total=D("0"))),
    ("totals_mismatch", "totals.tax_total", lambda s: s.update(tax_total=D("3.00"))),
    ("tender_mismatch", "tenders.sum", lambda s: s["tenders"][0].update(amount=D("30.00"))),
]


@pytest.mark.parametrize(("reason", "rule", "mutate"), CASES)
def test_each_rule_rejects_with_its_code(reason, rule, mutate) -> None:
    sale = make_sale()
    mutate(sale)
    rejection = validate_sale(sale)
    assert rejection is not None
    assert (rejection.stage, rejection.reason, rejection.rule) == ("validate", reason, rule)
    assert rejection.message


def test_rejection_carries_rule_inputs() -> None:
    sale = make_sale(total=D("41.20"))
    rej = validate_sale(sale)
    assert rej is not None
    assert rej.inputs["stated_total"] == "41.20"
    assert rej.inputs["computed_total"] == "41.26"


money = st.decimals(min_value=D("0.00"), max_value=D("9999.99"), places=2)
qty = st.decimals(min_value=D("0.001"), max_value=D("999.999"), places=3)


@given(st.lists(st.tuples(qty, money, money), min_size=1, max_size=8), money)
def test_consistent_totals_always_pass_and_off_by_a_cent_always_fails(lines, order_disc):
    sale = make_sale()
    sale["lines"] = []
    for n, (q, price, tax) in enumerate(lines, start=1):
        sale["lines"].append({**make_sale()["lines"][0], "line_no": n, "quantity": q,
                              "unit_price": price, "discounts": [], "tax_amount": tax})
    subtotal = sum((cents(q * p) for q, p, _ in lines), D(0))
    order_disc = min(order_disc, subtotal)
    tax = sum((t for _, _, t in lines), D(0))
    sale["order_discounts"] = [{"code": "ORD", "promotion_id": None, "amount": order_disc}]
    sale.update(subtotal=subtotal, discount_total=order_disc, tax_total=tax,
                total=subtotal - order_disc + tax)
    sale["tenders"] = [{**sale["tenders"][0], "amount": sale["total"]}]
    assert validate_sale(sale) is None
    sale["total"] += D("0.01")
    sale["tenders"][0]["amount"] = sale["total"]
    rej = validate_sale(sale)
    assert rej is not None and rej.reason == "totals_mismatch"


@pytest.mark.parametrize(("raw", "rounded"), [
    ("0.005", "0.01"), ("0.004", "0.00"), ("2.675", "2.68"), ("-0.005", "-0.01"), ("1.0", "1.00"),
])
def test_cents_rounds_half_up_like_a_till(raw, rounded) -> None:
    assert str(cents(D(raw))) == rounded
