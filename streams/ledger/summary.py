"""Summary sales: one cashSale per store, register, business day and window instead of one
per receipt (the ``summary`` sync mode of sales, ``refdata/sync_modes.py``).

The window's receipts are folded into one synthetic POS sale and that sale goes through the
per-receipt builder (``sale_records.build_cash_sale``) unchanged, so the summary carries
tax exactly as a receipt does: the till's tax per line, NetSuite's per-line rounding
checked, cents moved where it would differ (``ledger/tax.py``). Folding is exact:

- plain item lines (no discount, whole-cent amount) of the same NetSuite item, unit
  price, tax code and rate are one line (quantities and tax summed) when NetSuite books
  that one line at exactly their summed amount and tax (its per-line rounding, or backed
  out of ``grossAmt``); every other line stays as its receipt had it, so folding never
  moves a cent (a line with discounts, a fractional amount, VAT-inclusive prices, or a
  group whose rounding would differ);
- order discounts are summed per code, tenders per tender type (the largest names the
  cashSale's payment option; all of them are in the memo);
- the total, subtotal, tax and discount totals are the sums of the receipts'.

So the summary's NetSuite total is the sum of its receipts' totals, to the cent. Each
receipt stays traceable: the summary names its receipts in ``custbody_tillbridge_receipts``
(comma-separated POS transaction ids; on a real account a Long Text body field), every
receipt's results record names the summary's externalId, and reconciliation matches the
receipts through the summary (``reconcile/compare.py``). Walk-in and identified shoppers
alike book to the guest customer: a summary has no single shopper.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from tillbridge.streams.ledger.ids import external_id
from tillbridge.streams.ledger.sale_records import build_cash_sale
from tillbridge.streams.ledger.tax import TaxSetup, ns_gross_split, ns_line_tax
from tillbridge.streams.stages.enrich import Enrichment
from tillbridge.streams.stages.records import DiscountRec, SaleLineRec, SaleRec, TenderRec

RECEIPTS_FIELD = "custbody_tillbridge_receipts"
SUMMARY_KIND = "sum"
SUMMARY_PREFIX = f"pos-{SUMMARY_KIND}-"
CENT = Decimal("0.01")


def summary_txn_id(register: str, business_date: str, start: datetime, shape: str) -> str:
    """The summary's own POS transaction id: register, business day, window start and
    window shape (a window of another shape never shares a start's id)."""
    return (f"SUM-{register}-{business_date.replace('-', '')}-"
            f"{start.strftime('%Y%m%dT%H%M%SZ')}-{shape}")


def summary_external_id(store: str, txn_id: str) -> str:
    return external_id(SUMMARY_KIND, store, txn_id)


def _merge_discounts(into: dict[str, DiscountRec], discounts: Sequence[DiscountRec]) -> None:
    for disc in discounts:
        held = into.get(disc["code"])
        if held is None:
            into[disc["code"]] = {"code": disc["code"], "promotion_id": disc.get("promotion_id"),
                                  "amount": disc["amount"]}
        else:
            held["amount"] += disc["amount"]


Column = tuple[str, str | None, Decimal | None]  # NetSuite item, tax code, tax rate


def _foldable(line: SaleLineRec, rate: Decimal | None) -> bool:
    """A plain line (no discount, whole-cent amount, a known rate) may join a fold."""
    return (rate is not None and not line["discounts"]
            and (line["quantity"] * line["unit_price"]) % CENT == 0)


def _exact(lines: Sequence[SaleLineRec], rate: Decimal) -> bool:
    """Whether one line of the lines' summed amount carries their summed tax in NetSuite
    (by its own per-line rounding, or backed out of ``grossAmt``): else they stay apart."""
    net = sum((ln["quantity"] * ln["unit_price"] for ln in lines), Decimal(0))
    tax = sum((ln["tax_amount"] for ln in lines), Decimal(0))
    return ns_line_tax(net, rate) == tax or ns_gross_split(net + tax, rate) == (net, tax)


def _fold_lines(receipts: Sequence[tuple[SaleRec, Enrichment]], inclusive: bool
                ) -> tuple[list[SaleLineRec], list[Column]]:
    """Item lines folded per (item, price, tax code, rate) where that is exact, with their
    enrichment columns; any other line is kept as the receipt had it."""
    groups: dict[tuple[Any, ...], list[SaleLineRec]] = {}
    columns: dict[tuple[Any, ...], Column] = {}
    for n, (sale, enr) in enumerate(receipts):
        for i, line in enumerate(sale["lines"]):
            code = enr.tax_codes[i] if i < len(enr.tax_codes) else None
            rate = enr.tax_rates[i] if i < len(enr.tax_rates) else None
            key: tuple[Any, ...] = (enr.items[i], line["unit_price"], code, rate,
                                    line["tax_rate"])
            if inclusive or not _foldable(line, rate):
                key += (n, i)  # its own line, exactly as on its receipt
            groups.setdefault(key, []).append(line)
            columns[key] = (enr.items[i], code, rate)
    lines: list[SaleLineRec] = []
    cols: list[Column] = []
    for key, same in groups.items():
        rate = columns[key][2]
        parts = [same] if len(same) == 1 or (rate is not None and _exact(same, rate)) \
            else [[ln] for ln in same]
        for part in parts:
            line = cast(SaleLineRec, {
                **part[0], "line_no": len(lines) + 1,
                "quantity": sum((ln["quantity"] for ln in part), Decimal(0)),
                "tax_amount": sum((ln["tax_amount"] for ln in part), Decimal(0)),
                "discounts": list(part[0]["discounts"]),
                "promotion_ids": list(dict.fromkeys(
                    p for ln in part for p in (ln.get("promotion_ids") or [])))})
            lines.append(line)
            cols.append(columns[key])
    return lines, cols


def _fold_tenders(receipts: Sequence[tuple[SaleRec, Enrichment]]
                  ) -> tuple[list[TenderRec], list[str]]:
    tenders: dict[str, TenderRec] = {}
    methods: dict[str, str] = {}
    for sale, enr in receipts:
        for i, tender in enumerate(sale["tenders"]):
            kind = tender["tender_type"]
            if kind in tenders:
                tenders[kind]["amount"] += tender["amount"]
            else:
                tenders[kind] = {"tender_type": kind, "amount": tender["amount"],
                                 "authorization_id": None, "gateway_code": None,
                                 "card_last4": None, "cash_drawer_id": None}
                methods[kind] = enr.payment_methods[i]
    return list(tenders.values()), [methods[k] for k in tenders]


def _total(receipts: Sequence[tuple[SaleRec, Enrichment]], field: str) -> Decimal:
    return sum((cast(Decimal, s[field]) for s, _ in receipts), Decimal(0))  # type: ignore[literal-required]


def summary_sale(receipts: Sequence[tuple[SaleRec, Enrichment]], txn_id: str
                 ) -> tuple[SaleRec, Enrichment]:
    """The receipts (one store, register and business day) as one POS sale."""
    first, enr = receipts[0]
    lines, cols = _fold_lines(receipts, bool(first.get("prices_include_tax")))
    tenders, methods = _fold_tenders(receipts)
    order_discounts: dict[str, DiscountRec] = {}
    for sale, _ in receipts:
        _merge_discounts(order_discounts, sale["order_discounts"])
    sale = cast(SaleRec, {
        **first, "pos_transaction_id": txn_id, "lines": lines,
        "order_discounts": list(order_discounts.values()), "tenders": tenders,
        "subtotal": _total(receipts, "subtotal"),
        "discount_total": _total(receipts, "discount_total"),
        "tax_total": _total(receipts, "tax_total"), "total": _total(receipts, "total"),
        "receipt": {**first["receipt"], "receipt_number": txn_id},
        "started_at": min(s["started_at"] for s, _ in receipts),
        "completed_at": max(s["completed_at"] for s, _ in receipts)})
    return sale, replace(enr, items=[c[0] for c in cols], tax_codes=[c[1] for c in cols],
                         tax_rates=[c[2] for c in cols], payment_methods=methods,
                         sales_rep=None)


def build_summary_cash_sale(receipts: Sequence[tuple[SaleRec, Enrichment]], txn_id: str,
                            guest_customer: str, discount_item: str | None = None,
                            tax: TaxSetup | None = None) -> dict[str, Any]:
    """The summary cashSale of ``receipts`` (same store, register, business day; sorted
    by the caller so the body is the same whatever order they came in)."""
    sale, enr = summary_sale(receipts, txn_id)
    body = build_cash_sale(sale, enr, guest_customer, discount_item, tax)
    store = sale["store_id"]
    ids = [s["pos_transaction_id"] for s, _ in receipts]
    body["externalId"] = summary_external_id(store, txn_id)
    body["memo"] = (f"POS summary {store}/{sale['register_id']} {txn_id}: {len(ids)} receipts; "
                    + body["memo"].split("; ", 1)[-1])[:999]
    body[RECEIPTS_FIELD] = ",".join(ids)
    return body
