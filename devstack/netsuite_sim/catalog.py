"""The registry of record types the simulator serves (path name -> ``RecordType``).

Kept apart from ``records`` so the order-to-cash modules can build on the shared helpers
there without an import cycle. ``tran_type`` is the SuiteQL ``transaction.type`` code.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tillbridge.devstack.netsuite_sim import custom, giftcerts, ledger, payments, receipts, sales
from tillbridge.devstack.netsuite_sim.errors import SimError
from tillbridge.devstack.netsuite_sim.pricing import CORE_TYPES, validate_cash_sale
from tillbridge.devstack.netsuite_sim.records import RecordType
from tillbridge.devstack.netsuite_sim.store import Record, Store
from tillbridge.devstack.netsuite_sim.txn import FUNDS, check_account, deposited_in, status

_ITEM_LINES = {"item": "item", "location": "location", "taxCode": "salesTaxItem",
               "orderDoc": "transaction"}
_SALES_REFS = {"entity": "customer", "location": "location", "subsidiary": "subsidiary",
               "salesRep": "employee", "createdFrom": "transaction", "account": "account",
               "paymentOption": "paymentMethod"}
_RECEIPT_REFS = {"customer": "customer", "location": "location", "subsidiary": "subsidiary",
                 "paymentOption": "paymentMethod", "account": "account"}
_APPLY_LINES = {"doc": "transaction"}


def _cash_sale(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """The core cash-sale checks, plus the billing rules when it bills a sales order.

    ``account`` (where the money lands) must be a bank or undeposited-funds account.
    """
    out = validate_cash_sale(store, body)
    if out.get("account") is not None:
        check_account(store, out, "account", "account", FUNDS)
    _gift_certificates(store, out)
    return sales.check_order_billing(store, out, "cashSale")


def _invoice(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    out = sales.validate_invoice(store, body)
    _gift_certificates(store, out)
    return out


def _gift_certificates(store: Store, out: dict[str, Any]) -> None:
    """Gift cards sold on the lines (new codes) and redeemed as tender (within balance)."""
    giftcerts.check_sold(store, out)
    giftcerts.check_redemptions(store, out)


def _credit_memo(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """A credit memo; from a return authorisation only what its receipts allow."""
    return receipts.check_ra_credit(store, sales.validate_credit_memo(store, body))


def _cash_refund(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    return receipts.check_ra_credit(store, sales.validate_cash_refund(store, body))


def _cash_sale_status(store: Store, sale: Record) -> dict[str, Any]:
    if deposited_in(store, sale.id) is not None:
        return {**sale.fields, "status": status("C", "Deposited")}
    return sale.fields


def _core(name: str) -> RecordType:
    return next(rt for rt in CORE_TYPES if rt.name == name)


_TYPES: tuple[RecordType, ...] = (
    _core("customer"),
    replace(_core("cashSale"), validate=_cash_sale, derive=_cash_sale_status,
            refs={**_core("cashSale").refs, "createdFrom": "transaction"},
            line_refs=_ITEM_LINES),
    RecordType("salesOrder", "transaction", sales.validate_sales_order, _SALES_REFS,
               _ITEM_LINES, "SalesOrd", sales.ORDER_FIELDS, sales.derive_sales_order),
    RecordType("invoice", "transaction", _invoice, _SALES_REFS, _ITEM_LINES,
               "CustInvc", sales.INVOICE_FIELDS, sales.derive_invoice),
    RecordType("itemFulfillment", "transaction", sales.validate_item_fulfillment,
               {**_SALES_REFS, "inventoryLocation": "location"}, _ITEM_LINES, "ItemShip",
               sales.FULFILL_FIELDS),
    RecordType("returnAuthorization", "transaction", sales.validate_return_authorization,
               _SALES_REFS, _ITEM_LINES, "RtnAuth", sales.ORDER_FIELDS,
               receipts.derive_return_authorization),
    RecordType("itemReceipt", "transaction", receipts.validate_item_receipt, _SALES_REFS,
               _ITEM_LINES, "ItemRcpt", receipts.RECEIPT_FIELDS),
    RecordType("creditMemo", "transaction", _credit_memo, _SALES_REFS,
               {**_ITEM_LINES, **_APPLY_LINES}, "CustCred", sales.CREDIT_FIELDS,
               sales.derive_credit_memo),
    RecordType("cashRefund", "transaction", _cash_refund, _SALES_REFS,
               _ITEM_LINES, "CashRfnd", sales.REFUND_FIELDS),
    RecordType("customerPayment", "transaction", payments.validate_customer_payment,
               _RECEIPT_REFS, _APPLY_LINES, "CustPymt", payments.PAYMENT_FIELDS,
               payments.derive_customer_payment),
    RecordType("customerDeposit", "transaction", payments.validate_customer_deposit,
               {**_RECEIPT_REFS, "salesOrder": "transaction"}, {}, "CustDep",
               payments.DEPOSIT_FIELDS, payments.derive_customer_deposit),
    RecordType("customerRefund", "transaction", payments.validate_customer_refund,
               _RECEIPT_REFS, _APPLY_LINES, "CustRfnd", payments.REFUND_FIELDS,
               payments.derive_customer_refund),
    RecordType("deposit", "transaction", payments.validate_deposit,
               {"account": "account", "subsidiary": "subsidiary", "location": "location"},
               {"account": "account", "entity": "customer", "paymentMethod": "paymentMethod",
                "location": "location"}, "Deposit", payments.BANK_DEPOSIT_FIELDS),
    RecordType("inventoryAdjustment", "transaction", ledger.validate_inventory_adjustment,
               {"account": "account", "adjLocation": "location", "subsidiary": "subsidiary"},
               {"item": "item", "location": "location"}, "InvAdjst", ledger.ADJUSTMENT_FIELDS),
    RecordType("journalEntry", "transaction", ledger.validate_journal_entry,
               {"subsidiary": "subsidiary"},
               {"account": "account", "entity": "customer", "location": "location"},
               "Journal", ledger.JOURNAL_FIELDS),
    custom.LOYALTY_TYPE,
    RecordType(giftcerts.TYPE, giftcerts.GROUP, giftcerts.read_only, derive=giftcerts.derive),
)

RECORD_TYPES: dict[str, RecordType] = {rt.name.lower(): rt for rt in _TYPES}


def lookup_type(name: str) -> RecordType:
    """Path record names are matched case-insensitively (Oracle's samples mix casings)."""
    rt = RECORD_TYPES.get(name.lower())
    if rt is None:
        raise SimError(400, "INVALID_REQUEST", f"Record type '{name}' does not exist.")
    return rt


def type_of(record: Record) -> RecordType:
    """The registered type of a stored record."""
    return RECORD_TYPES[record.type.lower()]
