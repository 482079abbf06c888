"""The till's side, from what tillbridge reads: decoded POS events (sales, returns, register
closes), the results topic and the dead letters, turned into the typed records of
``model``. Pure: the operator command reads the topics and hands the records in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tillbridge.streams.reconcile.model import PosTxn, State, TxnState
from tillbridge.streams.stages.records import ReturnRec, SaleRec, SettlementRec
from tillbridge.streams.stages.tenders import booked_tenders

#: Which state wins when a receipt has several traces: a posted outcome (e.g. after a
#: replay) beats its dead letter, a dead letter (a parking timeout) beats parked.
_RANK = {State.POSTED: 5, State.DOUBLE_SCAN: 5, State.DUPLICATE: 4, State.DEAD_LETTERED: 3,
         State.PARKED: 2}


@dataclass(frozen=True, slots=True)
class DeadLetterTrace:
    """What reconciliation needs of one dead letter."""

    txn_id: str
    reason: str
    stage: str
    letter_id: str


def sale_txn(sale: SaleRec) -> PosTxn:
    return PosTxn(sale["pos_transaction_id"], sale["store_id"], sale["register_id"],
                  sale["business_date"], "sale", sale["total"],
                  tuple((t["tender_type"], t["amount"]) for t in booked_tenders(sale)),
                  sale["tax_total"])


def return_txn(ret: ReturnRec) -> PosTxn:
    return PosTxn(ret["pos_transaction_id"], ret["store_id"], ret["register_id"],
                  ret["business_date"], "return", ret["refund_total"],
                  tuple((t["tender_type"], t["amount"]) for t in ret["refund_tenders"]),
                  sum((ln["tax_refund_amount"] for ln in ret["lines"]), Decimal(0)))


def journal(close: SettlementRec) -> list[PosTxn]:
    """The receipts a Z report's electronic journal lists (empty when it sends none)."""
    return [PosTxn(t["pos_transaction_id"], close["store_id"], close["register_id"],
                   close["business_date"], t["kind"], t["amount"],
                   tax=t.get("tax_amount") or Decimal(0))
            for t in close.get("transactions") or []]


def zreport_tenders(close: SettlementRec) -> dict[str, Decimal]:
    return {t["tender_type"]: t["expected_amount"] for t in close["tenders"]}


def states(results: Iterable[Mapping[str, Any]],
           letters: Iterable[DeadLetterTrace]) -> dict[str, TxnState]:
    """Each receipt's state in tillbridge, by POS transaction id, from its results records
    (in topic order) and its dead letters."""
    out: dict[str, TxnState] = {}

    def offer(txn: str, state: TxnState) -> None:
        held = out.get(txn)
        if held is None or _RANK.get(state.state, 0) >= _RANK.get(held.state, 0):
            out[txn] = state

    for doc in results:
        txn = doc.get("pos_transaction_id")
        if not txn or doc.get("event_type") not in ("sale", "return"):
            continue
        state = _result_state(doc)
        if state is not None:
            offer(str(txn), state)
    for letter in letters:
        offer(letter.txn_id, TxnState(State.DEAD_LETTERED,
                                      f"{letter.reason} at {letter.stage} ({letter.letter_id})"))
    return out


def _result_state(doc: Mapping[str, Any]) -> TxnState | None:
    outcome = doc.get("outcome")
    if outcome in ("posted", "updated"):
        twin = doc.get("double_scan_of")
        if twin:
            return TxnState(State.DOUBLE_SCAN, f"same basket as {twin}")
        return TxnState(State.POSTED)
    if outcome == "duplicate":
        return TxnState(State.DUPLICATE, "the same POS transaction id again")
    if outcome == "parked":
        return TxnState(State.PARKED, f"waiting for {doc.get('waiting_for') or '?'}")
    return None
