"""Register settlements (Z reports) -> a bank ``deposit`` and an over/short ``journalEntry``.

The POS records each sale as a cashSale in Undeposited Funds. At close the register's
receipts are banked by one deposit, at the amounts NetSuite recorded (what the POS
expected); processor fees, when the caller knows them, come off as ``cashback`` lines. What
the count found more or less than expected is then booked by a journal entry between the
bank account and Cash Over and Short, one balanced pair of lines per tender, so the bank
ends at what was counted and every difference is traceable to its tender and report.

An X report is interim (the register keeps trading) and posts nothing. Both records are
keyed by store and settlement id: a replayed report posts once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tillbridge.streams.ledger.ids import external_id
from tillbridge.streams.stages.records import SettlementRec, TenderSettlementRec

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class SettlementAccounts:
    """GL accounts (internal ids): ``bank`` (type Bank) receives the deposit,
    ``over_short`` takes count differences, ``fees`` processor fees (cashback lines)."""

    bank: str
    over_short: str
    fees: str | None = None


def deposit_external_id(s: SettlementRec) -> str:
    return external_id("dep", s["store_id"], s["settlement_id"])


def journal_external_id(s: SettlementRec) -> str:
    return external_id("je", s["store_id"], s["settlement_id"])


def over_short(tender: TenderSettlementRec) -> Decimal:
    """Counted less expected (positive = over); the report's own figure when it has one,
    zero when the tender was not counted."""
    if tender["over_short"] is not None:
        return tender["over_short"]
    if tender["counted_amount"] is None:
        return ZERO
    return tender["counted_amount"] - tender["expected_amount"]


def register_ref(s: SettlementRec) -> str:
    return (f"{s['report_type']} report {s['settlement_id']} {s['store_id']}/"
            f"{s['register_id']} {s['business_date']}")


def build_deposit(s: SettlementRec, receipts: Sequence[str], accounts: SettlementAccounts,
                  subsidiary: str, location: str | None = None,
                  fees: Mapping[str, Decimal] | None = None) -> dict[str, Any] | None:
    """The bank deposit of ``receipts`` (internal ids of the register's undeposited cash
    sales/payments), less ``fees`` per tender; None when there is nothing to bank."""
    if not receipts:
        return None
    body: dict[str, Any] = {
        "externalId": deposit_external_id(s),
        "account": {"id": accounts.bank},
        "subsidiary": {"id": subsidiary},
        "tranDate": s["business_date"],
        "memo": f"{register_ref(s)}: {len(receipts)} receipts",
        "payment": {"items": [{"deposit": True, "id": r} for r in dict.fromkeys(receipts)]},
    }
    if location:
        body["location"] = {"id": location}
    charged = {t: amount for t, amount in (fees or {}).items() if amount > 0}
    if charged:
        if accounts.fees is None:
            raise ValueError("fees given but SettlementAccounts.fees is not set")
        body["cashback"] = {"items": [
            {"account": {"id": accounts.fees}, "amount": amount,
             "memo": f"{tender} processing fees, {register_ref(s)}"}
            for tender, amount in sorted(charged.items())]}
    return body


def build_over_short_journal(s: SettlementRec, accounts: SettlementAccounts, subsidiary: str,
                             location: str | None = None) -> dict[str, Any] | None:
    """One debit/credit pair per tender that counted over or short; None when all balanced.

    Over: debit bank, credit over/short. Short: debit over/short, credit bank.
    """
    lines: list[dict[str, Any]] = []
    for tender in s["tenders"]:
        diff = over_short(tender)
        if diff == 0:
            continue
        side = "over" if diff > 0 else "short"
        memo = f"{tender['tender_type']} {side} {abs(diff)}, {register_ref(s)}"
        debit, credit = (accounts.bank, accounts.over_short) if diff > 0 else \
            (accounts.over_short, accounts.bank)
        lines += [journal_line(debit, abs(diff), memo, location),
                  journal_line(credit, -abs(diff), memo, location)]
    return journal(s, subsidiary, "Over/short", lines)


def journal_line(account: str, amount: Decimal, memo: str,
                 location: str | None) -> dict[str, Any]:
    """A journal line: a positive amount is a debit, a negative one a credit."""
    line: dict[str, Any] = {"account": {"id": account},
                            "debit" if amount > 0 else "credit": abs(amount), "memo": memo}
    if location:
        line["location"] = {"id": location}
    return line


def journal(s: SettlementRec, subsidiary: str, title: str,
            lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The register's day journal (one externalId per register and day), None if empty."""
    if not lines:
        return None
    return {"externalId": journal_external_id(s), "subsidiary": {"id": subsidiary},
            "tranDate": s["business_date"], "memo": f"{title}, {register_ref(s)}",
            "line": {"items": lines}}


def journal_totals(body: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """(debits, credits) of a journal body: equal, or NetSuite refuses it."""
    lines = body["line"]["items"]
    return (sum((Decimal(str(ln.get("debit", 0))) for ln in lines), ZERO),
            sum((Decimal(str(ln.get("credit", 0))) for ln in lines), ZERO))


# -- the register's day as NetSuite holds it ---------------------------------------------

#: externalId kind of a receipt -> the journal line kind it answers
RECEIPT_KINDS = {"sale": "sale", "rtn": "return"}


@dataclass(frozen=True, slots=True)
class PostedReceipt:
    """A receipt of the register's day found in NetSuite (a SuiteQL row, typed)."""

    netsuite_id: str
    record_type: str  # as SuiteQL spells it: cashsale, cashrefund, creditmemo, ...
    txn_id: str
    kind: str  # sale | return
    amount: Decimal  # positive


def receipt_external_id(s: SettlementRec, kind: str, txn_id: str) -> str:
    return external_id("sale" if kind == "sale" else "rtn", s["store_id"], txn_id)


def waiting_for(s: SettlementRec, posted: Sequence[PostedReceipt]) -> list[tuple[str, str]]:
    """(kind, POS transaction id) of each receipt the Z report's journal lists that
    NetSuite does not hold yet: the day is incomplete until they are there."""
    have = {(p.kind, p.txn_id) for p in posted}
    return [(t["kind"], t["pos_transaction_id"]) for t in s.get("transactions") or []
            if (t["kind"], t["pos_transaction_id"]) not in have]


def counted_total(s: SettlementRec) -> Decimal:
    """What the register handed over: counted where counted, else what it expected."""
    return sum((t["counted_amount"] if t["counted_amount"] is not None
                else t["expected_amount"] for t in s["tenders"]), ZERO)


def comparison(s: SettlementRec, posted: Sequence[PostedReceipt]) -> dict[str, Any]:
    """The POS's totals by tender against what was posted for the register and day (JSON
    ready: money as strings). NetSuite keeps one payment method per cash sale, so the
    posted side is compared in total: sales less refunds."""
    sales = sum((p.amount for p in posted if p.kind == "sale"), ZERO)
    refunds = sum((p.amount for p in posted if p.kind == "return"), ZERO)
    expected = sum((t["expected_amount"] for t in s["tenders"]), ZERO)
    return {"expected_by_tender": {t["tender_type"]: str(t["expected_amount"])
                                   for t in s["tenders"]},
            "over_short_by_tender": {t["tender_type"]: str(over_short(t))
                                     for t in s["tenders"] if over_short(t) != 0},
            "expected_total": str(expected), "posted_sales": str(sales),
            "posted_refunds": str(refunds), "posted_total": str(sales - refunds),
            "posted_difference": str(sales - refunds - expected),
            "receipts_posted": len(posted)}


def build_summary_journal(s: SettlementRec, accounts: SettlementAccounts, undeposited: str,
                          recorded: Decimal, subsidiary: str,
                          location: str | None = None) -> dict[str, Any] | None:
    """One journal for the register's day (``mode: journal``): the bank gets what was
    counted, Undeposited Funds gives what NetSuite recorded, over/short the difference."""
    counted = counted_total(s)
    signed = ((accounts.bank, counted, "counted"), (undeposited, -recorded, "recorded"),
              (accounts.over_short, recorded - counted, "over/short"))
    lines = [journal_line(account, amount, f"{what}, {register_ref(s)}", location)
             for account, amount, what in signed if amount != 0]
    return journal(s, subsidiary, "Settlement", lines)
