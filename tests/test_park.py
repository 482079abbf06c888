"""The parking table's in-memory view: index by dependency, ownership, claims, changelog."""

from __future__ import annotations

from tillbridge.streams.flows.park import ParkEntry, ParkingLot, tombstone


def entry(entry_id: str, dep: str, partition: int = 0, deadline: float = 100.0) -> ParkEntry:
    return ParkEntry(entry_id, dep, ("cashSale",), 1.0, deadline, partition, b"k",
                     b"\x00bytes", (("h", b"v"), ("none", None)), "why")


def test_entry_round_trips_through_its_changelog_json() -> None:
    e = entry("pos.return.v1/0/5", "pos-sale-S1-T1")
    assert ParkEntry.from_json(e.to_json()) == e


def test_claims_by_dependency_only_on_owned_partitions_and_only_once() -> None:
    lot = ParkingLot()
    lot.apply("a", entry("a", "pos-sale-S1-T1", partition=0))
    lot.apply("b", entry("b", "POS-SALE-S1-T1", partition=1))  # externalIds: any case
    lot.apply("c", entry("c", "pos-sale-S1-T2", partition=0))
    assert [e.id for e in lot.claim_waiting_on("pos-sale-s1-t1", {0, 1})] == ["a", "b"]
    assert lot.claim_waiting_on("pos-sale-S1-T1", {0, 1}) == [], "claimed: not twice"
    assert [e.id for e in lot.claim_due({0})] == ["c"]
    lot.unclaim("c")
    assert [e.id for e in lot.claim_due({0, 1})] == ["c"]
    assert lot.claim_due({2}) == []


def test_tombstones_and_reparking_update_the_index() -> None:
    lot = ParkingLot()
    lot.apply_record(b"a", entry("a", "dep-1").to_json())
    lot.apply_record(b"a", entry("a", "dep-2").to_json())  # parked again, new dependency
    assert lot.claim_waiting_on("dep-1", {0}) == []
    assert [e.id for e in lot.claim_waiting_on("dep-2", {0})] == ["a"]
    topic, key, value = tombstone("a")
    assert topic == "tillbridge.parked.v1" and value is None
    lot.apply_record(key, value)
    assert len(lot) == 0 and lot.get("a") is None
    assert lot.claim_waiting_on("dep-2", {0}) == []
