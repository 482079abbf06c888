"""The loyalty ledger (pure): one NetSuite custom record per points movement, and its audit.

Points a shopper earns on a sale (sale ``loyalty_points_earned``) and points a return
takes back (return ``loyalty_points_reversed``) are each written as one record of the
custom record type ``customrecord_tillbridge_loyalty``, created on the account once (see
the README's loyalty section for its fields). A movement is signed (earned +, reversed
-), names the NetSuite customer and the transaction that moved the points (the cashSale;
the return's creditMemo or cashRefund), and carries a deterministic externalId
(``pos-loy-earn|rev-<store>-<POS txn>``), so a replay finds it instead of writing it
twice. A customer's balance is the sum of their movements, read by SuiteQL
(``BALANCE_QUERY``). Walk-ins (the guest customer) have no ledger.

Each movement also goes to ``tillbridge.audit.loyalty.v1`` (``audit_record``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tillbridge.streams.ledger.ids import external_id

RECORD_TYPE = "customrecord_tillbridge_loyalty"
#: why no movement is written for a receipt booked inside a summary (``summary`` sync mode
#: of sales): the summary books to the guest customer and upserts no shoppers, so there
#: is no customer to credit; the receipt's (and its returns') results carry
#: ``loyalty_skipped: {"reason": "summarised_sale", "points": n}`` instead
LOYALTY_SUMMARISED = "summarised_sale"
F_CUSTOMER = "custrecord_tb_loyalty_customer"
F_TRANSACTION = "custrecord_tb_loyalty_transaction"
F_POINTS = "custrecord_tb_loyalty_points"
F_MOVEMENT = "custrecord_tb_loyalty_movement"
F_POS_TXN = "custrecord_tb_loyalty_pos_txn"
F_STORE = "custrecord_tb_loyalty_store"
EARN, REVERSE = "EARN", "REVERSE"
#: The customer's balance: the sum of every movement (SuiteQL returns it as a string).
BALANCE_QUERY = ("SELECT SUM(custrecord_tb_loyalty_points) AS balance "
                 "FROM customrecord_tillbridge_loyalty WHERE custrecord_tb_loyalty_customer = ?")
#: Every movement (an auditor's read-back: which POS transaction moved how many points).
MOVEMENTS_QUERY = ("SELECT custrecord_tb_loyalty_pos_txn AS txn, "
                   "custrecord_tb_loyalty_movement AS movement, "
                   "custrecord_tb_loyalty_points AS points, "
                   "custrecord_tb_loyalty_customer AS customer "
                   "FROM customrecord_tillbridge_loyalty")


@dataclass(frozen=True, slots=True)
class Movement:
    """Points moved for one customer by one POS transaction."""

    movement: str  # EARN | REVERSE
    points: int  # signed: earned > 0, reversed < 0
    customer_id: str
    transaction_id: str  # NetSuite internal id of the sale / refund record
    transaction_type: str
    store_id: str
    pos_transaction_id: str
    loyalty_id: str | None = None

    @property
    def external_id(self) -> str:
        kind = "earn" if self.movement == EARN else "rev"
        return external_id("loy", kind, self.store_id, self.pos_transaction_id)


def movement(kind: str, points: int | None, customer_id: str | None, guest_customer: str,
             transaction: tuple[str, str], store_id: str, pos_transaction_id: str,
             loyalty_id: str | None = None) -> Movement | None:
    """The movement of an event, or None when it moves no points or has no shopper to
    credit (no points, zero, a walk-in booked to the guest customer)."""
    if not points or customer_id is None or customer_id == guest_customer:
        return None
    signed = abs(points) if kind == EARN else -abs(points)
    record_type, record_id = transaction
    return Movement(kind, signed, customer_id, record_id, record_type, store_id,
                    pos_transaction_id, loyalty_id)


def build_record(m: Movement) -> dict[str, Any]:
    """The custom record body (``externalId`` is added by the idempotent write)."""
    return {"name": f"{m.movement} {m.points:+d} {m.store_id}/{m.pos_transaction_id}"[:300],
            F_CUSTOMER: {"id": m.customer_id}, F_TRANSACTION: {"id": m.transaction_id},
            F_POINTS: m.points, F_MOVEMENT: m.movement, F_POS_TXN: m.pos_transaction_id,
            F_STORE: m.store_id}


def audit_record(m: Movement, netsuite_id: str) -> dict[str, Any]:
    """One ``tillbridge.audit.loyalty.v1`` message (JSON; schema in the README)."""
    return {"movement": m.movement, "points": m.points, "customer_id": m.customer_id,
            "loyalty_id": m.loyalty_id, "transaction_type": m.transaction_type,
            "transaction_id": m.transaction_id, "store_id": m.store_id,
            "pos_transaction_id": m.pos_transaction_id, "external_id": m.external_id,
            "netsuite_id": netsuite_id}
