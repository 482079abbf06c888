"""What a flow returns: the records one POS event produced, or the dependency it waits for."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Written:
    """One NetSuite record written (or found already written) for an event."""

    record_type: str
    netsuite_id: str
    external_id: str
    created: bool = True  # False: NetSuite already held it (replay or duplicate)
    links: dict[str, str] = field(default_factory=dict)  # e.g. {"createdFrom": "123"}
    updated: bool = False  # an existing record was changed (e.g. an order cancelled)


@dataclass(frozen=True, slots=True)
class Posting:
    """Every record one event produced, in the order they were written."""

    records: tuple[Written, ...]

    @property
    def created(self) -> bool:
        """True when at least one record is new (False: a full replay)."""
        return any(w.created for w in self.records)

    @property
    def updated(self) -> bool:
        return any(w.updated for w in self.records)

    @property
    def primary(self) -> Written:
        return self.records[0]


@dataclass(frozen=True, slots=True)
class Missing:
    """The event needs a record that is not in NetSuite yet (a refund before its sale).

    ``dependency`` is the externalId it waits for; the sink parks the event under it and
    releases it when that record is written, or dead-letters it as ``orphan_dependency``.
    """

    dependency: str
    record_types: tuple[str, ...]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Skipped:
    """The event needs no NetSuite record (e.g. a declined card attempt); ``why`` says so."""

    why: str
