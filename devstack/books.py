"""The day's books read back from NetSuite and held against the tills, per POS transaction.

An accountant's check after a day of traffic (issue 10 §7): every record is read back from
the simulator (SuiteQL over the transaction table and the loyalty ledger, never the bodies
tillbridge sent) and compared, to the cent, with the POS event it came from:

- a summary sale (the ``summary`` sync mode): its total and tax = the sums of the receipts
  it lists;
- a sale: NetSuite's total and tax = the receipt's ``total`` and ``tax_total``, and the
  money it took per payment method (``tender_books.py``: the cashSale's payment option, the
  invoice's customerPayments and credit memos applied, gift certificate redemptions) = the
  receipt's tenders, change netted;
- a return: its refund record's total and tax = ``refund_total`` and the lines' tax refunds;
  an exchange's sale total = ``exchange_total``;
- loyalty: each movement's points = the sale's ``loyalty_points_earned`` (or minus the
  return's ``loyalty_points_reversed``), and each member's balance by SuiteQL ``SUM`` = the
  sum of their POS movements.

``missing`` counts POS transactions NetSuite holds no record of (dead-lettered, parked, or
lost: the caller knows which it expects); ``mismatches`` names every difference. Used by the
demo's money block and by ``tests/integration/test_day_books.py``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.devstack.tender_books import booked_by_method, expected_by_method
from tillbridge.streams.ledger import loyalty
from tillbridge.streams.ledger.refund import exchange_external_id, return_external_id
from tillbridge.streams.ledger.sale_records import sale_external_id
from tillbridge.streams.ledger.summary import RECEIPTS_FIELD
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.stages.records import SaleRec

ZERO = Decimal(0)
MONEY = ("pos_total", "netsuite_total", "tax_pos", "tax_netsuite")


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One figure NetSuite holds differently from the till."""

    pos_transaction_id: str
    what: str  # e.g. "sale total", "return tax", "loyalty points"
    pos: str
    netsuite: str


@dataclass(slots=True)
class Books:
    """What was compared, what differs, and the day's sums on both sides."""

    checked: Counter[str] = field(default_factory=Counter)
    summarised: int = 0  # receipts checked through the summary sale that lists them
    missing: Counter[str] = field(default_factory=Counter)
    mismatches: list[Mismatch] = field(default_factory=list)
    sums: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(MONEY, ZERO))

    def compare(self, txn: str, what: str, pos: Decimal, netsuite: Decimal) -> None:
        self.checked[what] += 1
        if pos != netsuite:
            self.mismatches.append(Mismatch(txn, what, str(pos), str(netsuite)))

    def money(self) -> dict[str, str]:
        """The demo's ``money`` block: sums over the sales NetSuite holds, and the drift: the
        absolute difference of every money figure compared (totals, tax, tenders, refunds;
        loyalty points are not money)."""
        drift = sum((abs(Decimal(m.pos) - Decimal(m.netsuite)) for m in self.mismatches
                     if not m.what.startswith("loyalty")), ZERO).quantize(Decimal("0.01"))
        return {k: str(v) for k, v in {**self.sums, "drift": drift}.items()}


def _dec(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0))


async def _netsuite(client: NetSuiteClient) -> tuple[dict[str, dict[str, Any]],
                                                       list[dict[str, Any]]]:
    """Every transaction by externalId, and every loyalty movement."""
    rows = await client.suiteql("SELECT id, externalid, recordtype, foreigntotal, taxtotal, "
                                "custbody_tillbridge_receipts FROM transaction")
    moves = await client.suiteql(loyalty.MOVEMENTS_QUERY)
    return {r["externalid"]: r for r in rows if r.get("externalid")}, moves


def _sale(books: Books, sale: dict[str, Any], held: dict[str, dict[str, Any]]) -> None:
    row = held.get(sale_external_id(sale))  # type: ignore[arg-type]
    txn = sale["pos_transaction_id"]
    if row is None:
        books.missing["sale"] += 1
        return
    total, tax = _dec(row["foreigntotal"]), _dec(row["taxtotal"])
    books.compare(txn, "sale total", sale["total"], total)
    books.compare(txn, "sale tax", sale["tax_total"], tax)
    for key, value in (("pos_total", sale["total"]), ("netsuite_total", total),
                       ("tax_pos", sale["tax_total"]), ("tax_netsuite", tax)):
        books.sums[key] += value


def _summaries(books: Books, events: list[tuple[str, dict[str, Any]]],
               held: dict[str, dict[str, Any]]) -> set[str]:
    """Summary cashSales (sales in the ``summary`` sync mode: one per store, register and
    window, listing its receipts in ``RECEIPTS_FIELD``) against the sum of their receipts;
    the POS transaction ids they cover."""
    sales = {ev["pos_transaction_id"]: ev for topic, ev in events if topic == topics.SALE.name}
    covered: set[str] = set()
    for eid, row in held.items():
        receipts = [t for t in str(row.get(RECEIPTS_FIELD) or "").split(",") if t]
        if not receipts or not all(t in sales for t in receipts):
            continue
        total = sum((sales[t]["total"] for t in receipts), ZERO)
        tax = sum((sales[t]["tax_total"] for t in receipts), ZERO)
        ns_total, ns_tax = _dec(row["foreigntotal"]), _dec(row["taxtotal"])
        books.compare(eid, "summary total", total, ns_total)
        books.compare(eid, "summary tax", tax, ns_tax)
        books.summarised += len(receipts)
        for key, value in (("pos_total", total), ("netsuite_total", ns_total),
                           ("tax_pos", tax), ("tax_netsuite", ns_tax)):
            books.sums[key] += value
        covered.update(receipts)
    return covered


async def _tenders(client: NetSuiteClient, books: Books, sale: dict[str, Any],
                   methods: Mapping[str, str]) -> None:
    """The sale's money per payment method, NetSuite's against the till's."""
    got = await booked_by_method(client, cast(SaleRec, sale))
    if got is None:
        return  # no sale record: counted missing by _sale
    want = expected_by_method(cast(SaleRec, sale), methods)
    for method in sorted({*want, *got}):
        books.compare(sale["pos_transaction_id"], f"tender {method}",
                      want.get(method, ZERO), got.get(method, ZERO))


def _return(books: Books, ret: dict[str, Any], held: dict[str, dict[str, Any]]) -> None:
    txn = ret["pos_transaction_id"]
    if ret["lines"] and ret["refund_total"]:
        row = held.get(return_external_id(ret))  # type: ignore[arg-type]
        if row is None:
            books.missing["return"] += 1
        else:
            tax = sum((ln["tax_refund_amount"] for ln in ret["lines"]), ZERO)
            books.compare(txn, "return total", ret["refund_total"], _dec(row["foreigntotal"]))
            books.compare(txn, "return tax", tax, _dec(row["taxtotal"]))
    if ret.get("exchange_lines"):
        row = held.get(exchange_external_id(ret))  # type: ignore[arg-type]
        if row is None:
            books.missing["exchange"] += 1
        else:
            books.compare(txn, "exchange total", ret["exchange_total"],
                          _dec(row["foreigntotal"]))


def _loyalty(books: Books, events: list[tuple[str, dict[str, Any]]],
             moves: list[dict[str, Any]]) -> dict[str, Decimal]:
    """Each movement against its POS event; returns each member's balance by the tills."""
    pos: dict[tuple[str, str], int] = {}
    for topic, ev in events:
        if topic == topics.SALE.name and ev.get("loyalty_points_earned"):
            pos[(ev["pos_transaction_id"], loyalty.EARN)] = ev["loyalty_points_earned"]
        elif topic == topics.RETURN.name and ev.get("loyalty_points_reversed"):
            pos[(ev["pos_transaction_id"], loyalty.REVERSE)] = -ev["loyalty_points_reversed"]
    balances: dict[str, Decimal] = {}
    for m in moves:
        key = (m["txn"], m["movement"])
        want = pos.get(key)
        got = int(Decimal(str(m["points"])))
        books.compare(m["txn"], "loyalty points", Decimal(want if want is not None else 0),
                      Decimal(got))
        balances[m["customer"]] = balances.get(m["customer"], ZERO) + Decimal(
            want if want is not None else 0)
    return balances


async def _balances(client: NetSuiteClient, books: Books, by_tills: dict[str, Decimal],
                    most: int) -> None:
    """Each member's balance by SuiteQL ``SUM`` (the query a storefront would run)."""
    for customer, expected in sorted(by_tills.items())[:most]:
        rows = await client.suiteql(loyalty.BALANCE_QUERY, params=[customer])
        books.compare(f"customer {customer}", "loyalty balance", expected,
                      _dec(rows[0].get("balance") if rows else 0))


def read_books(base_url: str, events: Iterable[tuple[str, dict[str, Any]]],
               balances: int = 50) -> Books:
    """Compare ``events`` ((topic, decoded POS event) of clean traffic) with NetSuite.
    ``balances``: how many members' balances to check by SuiteQL (one query each)."""
    events = list(events)

    async def run() -> Books:
        async with NetSuiteClient(base_url, NetSuiteCredentials.dev()) as client:
            held, moves = await _netsuite(client)
            books = Books()
            methods = Mappings.load().tenders
            summarised = _summaries(books, events, held)
            for topic, ev in events:
                if topic == topics.SALE.name and ev["pos_transaction_id"] not in summarised:
                    _sale(books, ev, held)
                    await _tenders(client, books, ev, methods)
                elif topic == topics.RETURN.name:
                    _return(books, ev, held)
            await _balances(client, books, _loyalty(books, events, moves), balances)
            return books
    return asyncio.run(run())
