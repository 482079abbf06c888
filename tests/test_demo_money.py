"""The demo's money block: drift anywhere between POS and NetSuite fails the demo."""

from __future__ import annotations

from tillbridge.devstack.demo import Tally


def _tally(drift: str) -> Tally:
    money = {"pos_total": "10.00", "netsuite_total": "10.00", "tax_pos": "0.80",
             "tax_netsuite": "0.80", "drift": drift}
    return Tally({"sale": 1}, {"sale": {"posted": 1}}, {}, {"cashSale": 1}, 0, 0, 1.0,
                 books={"sales_read_back": 1, "total_and_tax_match": 1, "money": money})


def test_no_drift_passes_and_the_json_carries_money_apart_from_books() -> None:
    t = _tally("0.00")
    assert not t.money_drift and t.balanced
    doc = t.as_json()
    assert doc["money"]["drift"] == "0.00" and "money" not in doc["books"]


def test_a_cent_of_drift_fails() -> None:
    assert _tally("0.01").money_drift
    assert not Tally({}, {}, {}, {}, 0, 0, 0.0).money_drift, "no read-back: nothing to judge"
