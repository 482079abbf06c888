"""Money records: customer payment, customer deposit, customer refund and bank deposit.

The three customer-side records name the customer in ``customer``, not ``entity`` (a
classic integration bug; ``entity`` is refused as an unknown field). A bank ``deposit``
moves undeposited receipts (cash sales, payments, customer deposits) into a bank account,
and each receipt can be banked once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tillbridge.devstack.netsuite_sim.errors import invalid_value, no_lines, required, user_error
from tillbridge.devstack.netsuite_sim.records import check_ref, check_transaction, money
from tillbridge.devstack.netsuite_sim.sales import credit_open, invoice_open
from tillbridge.devstack.netsuite_sim.store import Record, Store
from tillbridge.devstack.netsuite_sim.txn import (
    COMMON_FIELDS,
    FUNDS,
    ZERO,
    applied_by_others,
    apply_lines,
    check_account,
    dec,
    deposited_in,
    optional_refs,
    own_applied,
    owner,
    positive,
    request_lines,
    require_customer,
    start,
    status,
)

_RECEIPT_FIELDS = {"customer", "account", "undepFunds", "payment", "paymentOption",
                   "paymentOperation", "handlingMode", "checkNumber", "checkNum",
                   "paymentProcessingProfile", "aRAcct"}
PAYMENT_FIELDS = COMMON_FIELDS | _RECEIPT_FIELDS | {"apply", "autoApply", "applied", "unapplied"}
# No createdFrom: a deposit names its order in ``salesOrder`` (it is not a transform target).
DEPOSIT_FIELDS = (COMMON_FIELDS - {"createdFrom"}) | _RECEIPT_FIELDS | {"salesOrder"}
REFUND_FIELDS = COMMON_FIELDS | {"customer", "account", "paymentOption", "apply", "deposit",
                                 "checkNumber", "refundMethod"}
BANK_DEPOSIT_FIELDS = COMMON_FIELDS | {"account", "payment", "other", "cashback"}
_PAY_LINE = frozenset({"deposit", "id", "amount", "line", "links", "type", "docNumber",
                       "refNum", "paymentMethod", "currency", "memo"})
_OTHER_LINE = frozenset({"account", "amount", "entity", "paymentMethod", "memo", "refNum",
                         "department", "class", "location", "line", "links"})
_CASHBACK_LINE = frozenset({"account", "amount", "memo", "department", "class", "location",
                            "line", "links"})


def _receipt(store: Store, body: dict[str, Any], known: frozenset[str]) -> tuple[dict, str]:
    out = start(body, known)
    customer = require_customer(store, out, "customer")
    optional_refs(store, out, ("location", "subsidiary", "paymentOption"))
    if out.get("account") is not None:
        check_account(store, out, "account", "account", FUNDS)
    return out, customer


# -- customer payment ----------------------------------------------------------------------

def validate_customer_payment(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """A payment amount, optionally applied to the customer's open invoices."""
    out, customer = _receipt(store, body, PAYMENT_FIELDS)
    amount = positive(out.get("payment"), "payment", "Payment Amount")
    out["payment"] = money(amount)
    applied = apply_lines(store, out, "apply", {"invoice"}, customer, invoice_open, amount)
    if applied > amount:
        raise user_error("The total applied exceeds the payment amount.", "apply")
    out["total"] = out["payment"]
    return out


def payment_open(store: Store, payment: Record) -> Decimal:
    """Unapplied part of a payment, less what was refunded from it."""
    refunded = applied_by_others(store, payment.id, {"customerRefund": ("apply",)})
    return dec(payment.fields.get("payment")) - own_applied(payment) - refunded


def _banked(store: Store, record: Record) -> bool:
    account = (record.fields.get("account") or {}).get("id")
    if account is not None and store.accounts.get(account, {}).get("accttype") == "Bank":
        return True  # received straight into a bank account
    return deposited_in(store, record.id) is not None


def derive_customer_payment(store: Store, payment: Record) -> dict[str, Any]:
    # Status codes/labels for payments are not in the reference; these mirror cashSale's.
    state = status("C", "Deposited") if _banked(store, payment) else status("B", "Not Deposited")
    return {**payment.fields, "applied": float(own_applied(payment)),
            "unapplied": float(payment_open(store, payment)), "status": state}


# -- customer deposit ------------------------------------------------------------------------

def validate_customer_deposit(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Prepayment against an (optional) open sales order of the same customer."""
    out, customer = _receipt(store, body, DEPOSIT_FIELDS)
    out["payment"] = money(positive(out.get("payment"), "payment", "Payment Amount"))
    if out.get("salesOrder") is not None:
        order = check_transaction(store, out, "salesOrder", {"salesOrder"})
        if owner(order) != customer or (order.fields.get("orderStatus") or {}).get("id") == "C":
            raise invalid_value(order.id, "salesOrder", "salesOrder")
    out["total"] = out["payment"]
    return out


def deposit_open(store: Store, deposit: Record) -> Decimal:
    """Deposit not yet refunded (deposit applications are not simulated)."""
    refunded = applied_by_others(store, deposit.id, {"customerRefund": ("deposit",)})
    return dec(deposit.fields.get("payment")) - refunded


def derive_customer_deposit(store: Store, deposit: Record) -> dict[str, Any]:
    # customerDeposit status enum is A|B|R|C|D [B]; the labels are unconfirmed.
    if deposit_open(store, deposit) <= 0:
        state = status("C", "Fully Applied")
    elif _banked(store, deposit):
        state = status("B", "Deposited")
    else:
        state = status("A", "Not Deposited")
    return {**deposit.fields, "status": state}


# -- customer refund -------------------------------------------------------------------------

def validate_customer_refund(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Pays out open credit (credit memos, unapplied payments) and customer deposits."""
    out, customer = _receipt(store, body, REFUND_FIELDS)
    total = apply_lines(store, out, "apply", {"creditMemo", "customerPayment"}, customer,
                        _credit_open)
    total += apply_lines(store, out, "deposit", {"customerDeposit"}, customer, deposit_open)
    if total <= 0:
        raise no_lines("apply")
    out["total"] = money(total)
    return out


def _credit_open(store: Store, record: Record) -> Decimal:
    return credit_open(store, record) if record.type == "creditMemo" else \
        payment_open(store, record)


def derive_customer_refund(store: Store, refund: Record) -> dict[str, Any]:
    # Oracle: the deposit sublist is always empty on GET (kept internally for balances).
    return {**refund.fields, "deposit": {"items": []}}


# -- bank deposit ----------------------------------------------------------------------------

_RECEIPT_AMOUNT = {"cashSale": "total", "customerPayment": "payment",
                   "customerDeposit": "payment"}


def validate_deposit(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Bank undeposited receipts plus ``other`` income, less ``cashback``; total >= 0."""
    out = start(body, BANK_DEPOSIT_FIELDS)
    if out.get("account") is None:
        raise required("Account", "account")
    check_account(store, out, "account", "account", ("Bank",))
    optional_refs(store, out, ("subsidiary", "location"))
    total = _deposit_payments(store, out) + _deposit_other(store, out, "other", _OTHER_LINE)
    total -= _deposit_other(store, out, "cashback", _CASHBACK_LINE)
    if not (out.get("payment") or {}).get("items") and not (out.get("other") or {}).get("items"):
        raise no_lines("payment")
    if total < 0:
        raise user_error("The deposit total cannot be negative.", "cashback")
    out["total"] = money(total)
    return out


def _deposit_payments(store: Store, out: dict[str, Any]) -> Decimal:
    total = ZERO
    kept = []
    seen: set[str] = set()
    for base, line in request_lines(out, "payment", _PAY_LINE, need=False):
        if line.get("deposit") is False:
            continue
        rid = str(line.get("id"))
        receipt = store.transaction(rid)
        if receipt is None or receipt.type not in _RECEIPT_AMOUNT or rid in seen \
                or _banked(store, receipt):
            raise invalid_value(line.get("id"), "id", f"{base}.id")
        seen.add(rid)
        # A cash sale's gift certificates took no money: only the rest was received.
        amount = dec(receipt.fields.get(_RECEIPT_AMOUNT[receipt.type])) - \
            dec(receipt.fields.get("giftCertApplied"))
        kept.append({"deposit": True, "id": rid, "type": receipt.type, "amount": money(amount)})
        total += amount
    if kept or "payment" in out:
        out["payment"] = {"items": kept}
    return total


def _deposit_other(store: Store, out: dict[str, Any], sublist: str,
                   known: frozenset[str]) -> Decimal:
    total = ZERO
    kept = []
    for base, line in request_lines(out, sublist, known, need=False):
        if line.get("account") is None:
            raise required("Account", f"{base}.account")
        check_account(store, line, "account", f"{base}.account")
        amount = positive(line.get("amount"), f"{base}.amount", "Amount")
        line["amount"] = money(amount)
        if line.get("entity") is not None:
            require_customer(store, line, "entity", f"{base}.entity")
        if line.get("paymentMethod") is not None:
            check_ref(store, line, "paymentMethod", store.payment_methods, "paymentMethod",
                      f"{base}.paymentMethod")
        if line.get("location") is not None:
            check_ref(store, line, "location", store.locations, "location", f"{base}.location")
        kept.append(line)
        total += amount
    if kept or sublist in out:
        out[sublist] = {"items": kept}
    return total
