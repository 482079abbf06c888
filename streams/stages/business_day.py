"""A store's business date: its local date, with late-night trade counted on the day before.

Each store has an IANA time zone and a business-day cut-off (hours past local midnight that
still belong to the previous business day) in the mappings. Pure functions; the zone is a
``zoneinfo.ZoneInfo`` so DST changes are the zone database's business, not ours.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tillbridge.streams.stages.records import SaleRec


class StoreDay(Protocol):
    """What a store's mapping says about its day (refdata's ``StoreMapping``; a protocol so
    the mappings loader can use this module without an import cycle)."""

    @property
    def timezone(self) -> str: ...
    @property
    def business_day_cutoff(self) -> float: ...

#: Hours after local midnight that still count as the previous business day, when a store
#: names none: a bar or late supermarket closing at 02:00 books the night on the day it opened.
DEFAULT_CUTOFF_HOURS = 4.0


def zone(name: str) -> ZoneInfo:
    """The IANA zone, or ValueError naming it (the mappings loader turns that into a refusal)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. America/New_York)") from exc


def business_date(completed_at: datetime, tz: ZoneInfo, cutoff_hours: float) -> date:
    """The store-local business date of a sale completed at ``completed_at`` (aware)."""
    local = completed_at.astimezone(tz)
    # Wall-clock arithmetic on purpose: the cut-off is "02:00 on the clock", DST or not.
    return (local.replace(tzinfo=None) - timedelta(hours=cutoff_hours)).date()


def date_mismatch(stated: str, completed_at: datetime, tz: ZoneInfo,
                  cutoff_hours: float) -> bool:
    """True when the till's ``business_date`` disagrees with the completion time by more
    than the cut-off: the local completion time lies outside the stated day's midnight to
    the next midnight plus the cut-off. A till that does not apply the cut-off (01:00 booked
    on the calendar day) is forgiven; a sale a day or more away is not."""
    day = date.fromisoformat(stated)
    local = completed_at.astimezone(tz).replace(tzinfo=None)
    start = datetime.combine(day, time())
    end = datetime.combine(day + timedelta(days=1), time()) + timedelta(hours=cutoff_hours)
    return not start <= local < end


def store_business_date(sale: SaleRec, store: StoreDay) -> str:
    """ISO business date of a sale at its store, from its completion time."""
    return business_date(sale["completed_at"], zone(store.timezone),
                         store.business_day_cutoff).isoformat()


def mismatch_audit(sale: SaleRec, store: StoreDay) -> dict[str, Any] | None:
    """The audit record of a till ``business_date`` beyond the cut-off from the completion
    time (flagged, never refused), else None. A sale without one has nothing to disagree."""
    stated = sale.get("business_date")
    if not stated:
        return None
    tz = zone(store.timezone)
    if not date_mismatch(stated, sale["completed_at"], tz, store.business_day_cutoff):
        return None
    return {"kind": "business_date_mismatch", "store_id": sale["store_id"],
            "pos_transaction_id": sale["pos_transaction_id"], "stated": stated,
            "computed": store_business_date(sale, store),
            "completed_at": sale["completed_at"].isoformat(),
            "local_completed_at": sale["completed_at"].astimezone(tz).isoformat(),
            "timezone": store.timezone, "business_day_cutoff": store.business_day_cutoff}
