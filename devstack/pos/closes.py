"""Register closes for generated traffic: one Z report per store, register and business
day whose totals by tender are the day's real totals (sales less refunds), with the
register's electronic journal, plus seeded dirt: a drawer counted over or short.

A "missing receipt" is made by the caller: it leaves a sale out of what it publishes but
keeps it in the close (``close_registers`` takes every sale the tills rang up).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)
Register = tuple[str, str, str]  # store, register, business date


def _kept(sale: Mapping[str, Any]) -> list[tuple[str, Decimal]]:
    """A sale's tenders at what the drawer kept: a till reporting cash as handed over
    (tenders above the total by the change) keeps the amount less the change."""
    amounts = [Decimal(str(t["amount"])) for t in sale["tenders"]]
    gross = sum(amounts, ZERO) > Decimal(str(sale["total"]))
    return [(t["tender_type"], amount - (Decimal(str(t.get("change_given") or 0)) if gross
                                         else ZERO))
            for t, amount in zip(sale["tenders"], amounts, strict=True)]


def _tenders(receipts: list[tuple[str, Mapping[str, Any]]]) -> dict[str, list[Decimal]]:
    """tender -> [net amount, payments, refunds]."""
    out: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
    for kind, doc in receipts:
        if kind == "sale":
            for tender, amount in _kept(doc):
                cur = out[tender]
                cur[0] += amount
                cur[1] += 1
        else:
            for t in doc.get("refund_tenders") or []:
                cur = out[t["tender_type"]]
                cur[0] -= Decimal(str(t["amount"]))
                cur[2] += Decimal(str(t["amount"]))
    return out


def close_registers(sales: Iterable[Mapping[str, Any]],
                    returns: Iterable[Mapping[str, Any]] = (), *, seed: int = 7,
                    over_short: Mapping[Register, Decimal] | None = None,
                    batch_prefix: str = "B") -> list[dict[str, Any]]:
    """One Z report (a ``settlement`` event) per store, register and day of the receipts.
    ``over_short``: the cash drawer's count difference per register (positive = over)."""
    rng = random.Random(seed)
    by_register: dict[Register, list[tuple[str, Mapping[str, Any]]]] = defaultdict(list)
    for s in sales:
        by_register[(s["store_id"], s["register_id"], s["business_date"])].append(("sale", s))
    for r in returns:
        by_register[(r["store_id"], r["register_id"], r["business_date"])].append(
            ("return", r))
    out = []
    for n, (reg, receipts) in enumerate(sorted(by_register.items())):
        out.append(_close(reg, receipts, n, (over_short or {}).get(reg, ZERO), rng,
                          batch_prefix))
    return out


def _close(reg: Register, receipts: list[tuple[str, Mapping[str, Any]]], n: int,
           diff: Decimal, rng: random.Random, batch_prefix: str) -> dict[str, Any]:
    store, register, day = reg
    opened = datetime.fromisoformat(f"{day}T08:00:00+00:00")
    tenders = []
    by_tender = _tenders(receipts)
    if diff:
        by_tender["CASH"]  # noqa: B018 - a drawer counted over/short has a cash line
    for tender, (net, count, refunds) in sorted(by_tender.items()):
        counted = net + diff if tender == "CASH" else net
        tenders.append({"tender_type": tender, "expected_amount": str(net),
                        "counted_amount": str(counted),
                        "over_short": str(counted - net), "payment_count": int(count),
                        "refund_amount": str(refunds) if refunds else None,
                        "batch_id": None if tender == "CASH" else
                        f"{batch_prefix}{store}{register}{rng.randrange(10**6):06d}"})
    sales = [d for k, d in receipts if k == "sale"]
    returns = [d for k, d in receipts if k == "return"]

    def money(key: str, docs: list[Mapping[str, Any]]) -> Decimal:
        return sum((Decimal(str(d[key])) for d in docs), ZERO)

    returns_total = money("refund_total", returns)
    gross = money("subtotal", sales)
    discounts = money("discount_total", sales)
    ids = [d["pos_transaction_id"] for _, d in receipts]
    return {
        "event_type": "settlement", "settlement_id": f"Z-{store}-{register}-{day}-{n}",
        "report_type": "Z", "store_id": store, "register_id": register,
        "cash_drawer_id": f"{store}-{register}-D1", "business_date": day,
        "opened_at": opened.isoformat(), "closed_at": (opened + timedelta(hours=14)).isoformat(),
        "occurred_at": (opened + timedelta(hours=14, minutes=5)).isoformat(),
        "tenders": tenders, "sale_count": len(sales), "return_count": len(returns),
        "gross_sales": str(gross), "discount_total": str(discounts),
        "returns_total": str(returns_total), "tax_total": str(money("tax_total", sales)),
        "net_sales": str(gross - discounts - returns_total),
        "first_pos_transaction_id": min(ids), "last_pos_transaction_id": max(ids),
        "transactions": [{"pos_transaction_id": d["pos_transaction_id"], "kind": k,
                          "amount": str(d["total"] if k == "sale" else d["refund_total"]),
                          "tax_amount": str(d["tax_total"] if k == "sale" else sum(
                              (Decimal(str(ln["tax_refund_amount"])) for ln in d["lines"]),
                              ZERO))}
                         for k, d in receipts],
    }


def day_with_closes(events: Iterable[Any], *, seed: int = 7, dirty: float = 0.0
                    ) -> tuple[list[Any], list[dict[str, Any]]]:
    """``events`` (GeneratedEvent sales) and the register closes of their clean sales, as
    JSON-lines documents (``tillbridge publish`` shape). With ``dirty`` > 0 the seeded dirt
    of a real day: one receipt missing (kept in its close, not published) and one cash drawer
    counted over or short."""
    events = list(events)
    sales = [e.value for e in events if isinstance(e.value, dict) and e.dirty_kind is None]
    rng = random.Random(seed)
    over_short: dict[Register, Decimal] = {}
    if dirty > 0 and sales:
        dropped = rng.choice(sales)
        events = [e for e in events if e.value is not dropped]
        drawer = rng.choice(sales)
        over_short[(drawer["store_id"], drawer["register_id"], drawer["business_date"])] = \
            Decimal(rng.choice(("-1.50", "2.00", "-0.35", "5.00")))
    return events, close_registers(sales, seed=seed, over_short=over_short)
