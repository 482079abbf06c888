"""Settlement enrich: a register close resolved against the mappings file: the store's
location and subsidiary, and the GL accounts and posting mode of its ``settlement``
section. Pure.

``settlement`` in the mappings file::

    {"bank_account": "110", "over_short_account": "620", "fees_account": "610",
     "undeposited_account": "120", "mode": "deposit"}

``mode`` ``deposit`` (default) banks the register's receipts by a ``deposit`` and books the
count's over/short by a ``journalEntry``; ``journal`` books one summary ``journalEntry``
(Undeposited Funds to the bank at what was counted, the difference to over/short).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tillbridge.streams.ledger.settlement import SettlementAccounts
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection, SettlementRec

MODES = ("deposit", "journal")


@dataclass(frozen=True, slots=True)
class SettlementRefs:
    location: str
    subsidiary: str
    accounts: SettlementAccounts
    undeposited: str | None
    mode: str


def _unmapped(s: SettlementRec, why: str, inputs: dict[str, Any]) -> Rejection:
    return Rejection(Stage.ENRICH, ReasonCode.SETTLEMENT_UNMAPPED, "mappings.settlement",
                     f"settlement {s['settlement_id']} of {s['store_id']}: {why}", inputs)


def resolve_settlement(s: SettlementRec, maps: Mappings) -> SettlementRefs | Rejection:
    store = maps.stores.get(s["store_id"])
    if store is None:
        return Rejection(Stage.ENRICH, ReasonCode.UNKNOWN_STORE, "mappings.stores",
                         f"store {s['store_id']!r} has no location mapping",
                         {"store_id": s["store_id"], "known_stores": ",".join(maps.stores)})
    cfg = maps.document.get("settlement")
    if not isinstance(cfg, dict) or not cfg.get("bank_account") \
            or not cfg.get("over_short_account"):
        return _unmapped(s, "the mappings file has no settlement.bank_account and "
                            "settlement.over_short_account", {"settlement": str(cfg)})
    mode = str(cfg.get("mode") or "deposit")
    if mode not in MODES:
        return _unmapped(s, f"settlement.mode {mode!r} is not one of {MODES}", {"mode": mode})
    undeposited = cfg.get("undeposited_account")
    if mode == "journal" and not undeposited:
        return _unmapped(s, "mode journal needs settlement.undeposited_account", {})
    fees = cfg.get("fees_account")
    accounts = SettlementAccounts(str(cfg["bank_account"]), str(cfg["over_short_account"]),
                                  str(fees) if fees else None)
    return SettlementRefs(store.location, store.subsidiary, accounts,
                          str(undeposited) if undeposited else None, mode)
