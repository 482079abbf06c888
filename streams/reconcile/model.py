"""The typed records reconciliation compares: a POS receipt, a NetSuite transaction, the
state tillbridge has for a receipt, and the per-register report with its differences.

Why typed records: the comparison is a pure function over these, so every rule is unit
tested without a broker or NetSuite; the readers (``pos_side``, ``netsuite_side``) only
turn topics and SuiteQL rows into them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

ZERO = Decimal(0)


class Problem(StrEnum):
    """How a receipt differs between the till and NetSuite (values are public: the topic
    and ``--json`` carry them)."""

    MISSING = "missing"  # the till took it; NetSuite has no record
    EXTRA = "extra"  # NetSuite has a record the till did not take (e.g. a double scan)
    DIFFERENT = "different"  # both have it, at different amounts


class State(StrEnum):
    """What tillbridge knows of a receipt: its latest outcome, or why it has none."""

    POSTED = "posted"
    DUPLICATE = "duplicate"
    DOUBLE_SCAN = "double_scan"  # posted, flagged as the same basket as another receipt
    DEAD_LETTERED = "dead_lettered"
    PARKED = "parked"
    IN_FLIGHT = "in_flight"  # on its input topic, no outcome yet
    NOT_RECEIVED = "not_received"  # in the register's journal, never on an input topic
    UNKNOWN = "unknown"  # in NetSuite only: no POS event and no outcome


@dataclass(frozen=True, slots=True)
class PosTxn:
    """One receipt as the till recorded it (``kind`` sale or return; ``amount`` positive:
    a sale's total, a return's refund; ``tax`` the tax in it). ``tenders``: (tender code,
    amount) pairs."""

    txn_id: str
    store_id: str
    register_id: str
    business_date: str
    kind: str
    amount: Decimal
    tenders: tuple[tuple[str, Decimal], ...] = ()
    tax: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        """Net of tax (the tally's tax split)."""
        return self.amount - self.tax


@dataclass(frozen=True, slots=True)
class NsTxn:
    """One NetSuite transaction of the day that carries a POS transaction id."""

    netsuite_id: str
    external_id: str
    record_type: str
    txn_id: str | None  # None for records that are not one receipt (deposit, journal)
    store_id: str
    register_id: str | None
    kind: str | None  # sale, return, summary, or None (not compared receipt by receipt)
    amount: Decimal  # NetSuite's total (tax included), positive
    #: a summary cashSale (sales' ``summary`` sync mode): the POS transaction ids it covers
    covers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TxnState:
    state: State
    detail: str = ""  # the DLQ reason, what a parked event waits on, the double scan's twin


@dataclass(frozen=True, slots=True)
class Drift:
    """One receipt that does not reconcile, named by its POS transaction id."""

    txn_id: str
    problem: Problem
    kind: str
    store_id: str
    register_id: str
    pos_amount: Decimal | None
    netsuite_amount: Decimal | None
    netsuite_id: str | None
    state: State
    detail: str = ""

    @property
    def amount(self) -> Decimal:
        """What this difference moves the books by (absolute)."""
        return abs((self.netsuite_amount or ZERO) - (self.pos_amount or ZERO))

    def to_json(self) -> dict[str, Any]:
        return {"pos_transaction_id": self.txn_id, "problem": str(self.problem),
                "kind": self.kind, "store_id": self.store_id, "register_id": self.register_id,
                "pos_amount": _money(self.pos_amount),
                "netsuite_amount": _money(self.netsuite_amount),
                "netsuite_id": self.netsuite_id, "state": str(self.state),
                "detail": self.detail}


@dataclass(slots=True)
class Tally:
    """A count and a total (money as a Decimal)."""

    count: int = 0
    total: Decimal = ZERO

    def add(self, amount: Decimal) -> None:
        self.count += 1
        self.total += amount

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "total": _money(self.total)}


@dataclass(slots=True)
class RegisterReport:
    """POS versus NetSuite for one store, register and business day."""

    store_id: str
    register_id: str
    business_date: str
    pos_by_tender: dict[str, Tally] = field(default_factory=dict)
    zreport_by_tender: dict[str, Decimal] = field(default_factory=dict)
    pos_by_type: dict[str, Tally] = field(default_factory=dict)
    netsuite_by_type: dict[str, Tally] = field(default_factory=dict)
    drifts: list[Drift] = field(default_factory=list)

    @property
    def drift_amount(self) -> Decimal:
        return sum((d.amount for d in self.drifts), ZERO)

    @property
    def balanced(self) -> bool:
        return not self.drifts

    def to_json(self) -> dict[str, Any]:
        def tallies(d: dict[str, Tally]) -> dict[str, Any]:
            return {k: v.to_json() for k, v in sorted(d.items())}
        return {"store_id": self.store_id, "register_id": self.register_id,
                "business_date": self.business_date, "balanced": self.balanced,
                "drift_count": len(self.drifts), "drift_amount": _money(self.drift_amount),
                "pos_by_tender": tallies(self.pos_by_tender),
                "zreport_by_tender": {k: _money(v)
                                      for k, v in sorted(self.zreport_by_tender.items())},
                "pos_by_type": tallies(self.pos_by_type),
                "netsuite_by_type": tallies(self.netsuite_by_type),
                "drifts": [d.to_json() for d in self.drifts]}


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(Decimal("0.01")))
