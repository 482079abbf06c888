"""What each tender of a sale books: the amount the sale keeps, cash change netted.

Tills report cash two ways. Most report the amount the sale keeps (``amount``, change
already deducted) and may say how much change went back (``change_given``). Some report
what the shopper handed over, so the tenders add up to more than the total by exactly the
change. Both book the same: the kept amount. An over-tender that no change explains is
never booked (``validate.rule_tenders`` refuses it as ``tender_mismatch``), so cash handed
back can never reach NetSuite as revenue.
"""

from __future__ import annotations

from decimal import Decimal

from tillbridge.streams.stages.records import SaleRec, TenderRec

ZERO = Decimal(0)
CASH = "CASH"


def change_of(tender: TenderRec) -> Decimal:
    """The change handed back on a tender (0 when the till gave none)."""
    return tender.get("change_given") or ZERO


def reports_handed_over(sale: SaleRec) -> bool:
    """True when the till reported cash as handed over: the tenders exceed the total by
    exactly the change on the cash tenders (and there is some)."""
    change = sum((change_of(t) for t in sale["tenders"] if t["tender_type"] == CASH), ZERO)
    tendered = sum((t["amount"] for t in sale["tenders"]), ZERO)
    return change > 0 and tendered - sale["total"] == change


def booked_tenders(sale: SaleRec) -> list[TenderRec]:
    """The tenders as NetSuite books them: each cash tender at what the sale kept."""
    if not reports_handed_over(sale):
        return list(sale["tenders"])
    return [TenderRec(**{**t, "amount": t["amount"] - change_of(t)})
            if t["tender_type"] == CASH else t for t in sale["tenders"]]


def handed_over(tender: TenderRec) -> Decimal:
    """What the shopper handed over on a booked tender: kept amount plus change."""
    return tender["amount"] + change_of(tender)
