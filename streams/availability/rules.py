"""The availability rules, pure: a POS event moves an item's availability, a NetSuite read
resets it, and each change may raise an oversell warning or a replenishment trigger.

- Available = NetSuite's ``quantityavailable`` at its last read + the POS deltas since that
  NetSuite does not show yet (``pending``). A read drops the deltas whose NetSuite record it
  found (their change is in NetSuite's figures now) and those older than ``max_age``: a
  dead-lettered sale never reaches NetSuite, and its delta must not lower availability for
  good.
- Oversell: a sale line that leaves available below zero; the quantity short is the part of
  that line not covered (never more than the line).
- Replenishment: available strictly below the reorder point, once per crossing: the trigger
  re-arms only when available is back at or above the reorder point (a read or a return).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tillbridge.streams.availability.model import (
    ZERO,
    Delta,
    ItemState,
    Level,
    Oversell,
    ReadInfo,
    Replenish,
    Signal,
)

#: Delta kinds that are sales at a till (an exchange hands goods out like a sale).
SALE_KINDS = frozenset({"SALE", "EXCHANGE"})


def suggested_quantity(level: Level | None, available: Decimal) -> Decimal:
    """Up to the preferred stock level, counting what is already on order (up to the
    reorder point when no preferred level is set); never negative."""
    if level is None:
        return ZERO
    target = level.preferred if level.preferred is not None else level.reorder_point
    if target is None:
        return ZERO
    return max(ZERO, target - available - level.on_order)


def crossing(state: ItemState, cause: str) -> list[Signal]:
    """A replenishment trigger if available just fell below the reorder point."""
    base = state.base
    rp = base.reorder_point if base is not None else None
    if base is None or rp is None:
        state.below_reorder = False
        return []
    available = state.available()
    if available >= rp:
        state.below_reorder = False
        return []
    if state.below_reorder:
        return []
    state.below_reorder = True
    return [Replenish(state.location, state.item, state.store_id, state.sku, available, rp,
                      base.preferred, base.on_order, suggested_quantity(base, available),
                      cause)]


def apply_delta(state: ItemState, delta: Delta) -> tuple[bool, list[Signal]]:
    """One POS delta into the state: (changed, signals). The same event twice (a replay, a
    POS resend) changes nothing."""
    if delta.event_id in state.pending:
        return False, []
    state.pending[delta.event_id] = delta
    state.store_id = state.store_id or delta.store_id
    state.sku = state.sku or delta.sku
    signals: list[Signal] = []
    after = state.available()
    if delta.kind in SALE_KINDS and delta.quantity < 0 and after < 0:
        short = min(-after, -delta.quantity)
        signals.append(Oversell(state.location, state.item, state.store_id, state.sku, short,
                                after, delta.pos_transaction_id, delta.event_id))
    signals += crossing(state, delta.pos_transaction_id or delta.event_id)
    return True, signals


def apply_read(state: ItemState, level: Level, read: ReadInfo, in_netsuite: frozenset[str],
               max_age: timedelta) -> tuple[bool, list[Signal]]:
    """NetSuite's new figures for this item: (changed, signals). Pending deltas NetSuite
    holds now, or older than ``max_age`` at the read, are dropped."""
    before = (state.base, state.available(), len(state.pending))
    state.base, state.read = level, read
    for event_id, delta in list(state.pending.items()):
        found = delta.netsuite_key is not None and delta.netsuite_key.lower() in in_netsuite
        stale = delta.seen_at is not None and read.read_at - delta.seen_at > max_age
        if found or stale:
            del state.pending[event_id]
    changed = before != (state.base, state.available(), len(state.pending))
    return changed, crossing(state, read.read_id)
