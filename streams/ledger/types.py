"""What a flow's post returns: the records one POS event produced (``Posting``), the
dependency it waits for (``Missing``), why it needs no record (``Skipped``), or NetSuite's
refusal of it (``Refused``). The sink turns each into messages (``flows/sink.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tillbridge.streams.stages.messages import Outbound
from tillbridge.streams.stages.records import Rejection


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
    #: extra fields for the event's results record (e.g. the customer a sale matched)
    result: Mapping[str, Any] = field(default_factory=dict)
    #: audit messages that go with it (e.g. one per promotion on a posted sale)
    audit: tuple[Outbound, ...] = ()
    #: the same event again (a replay after a crash), its records written by its own earlier
    #: attempt: its outcome is re-emitted as it was, not counted as a POS duplicate
    replay: bool = False

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


@dataclass(frozen=True, slots=True)
class Refused:
    """NetSuite refused the event's record: dead-lettered with ``o:errorDetails``
    (``details``) verbatim. A flow returns this instead of raising when it has something
    to keep first (a sale whose customer was written: a partial sync)."""

    rejection: Rejection
    details: object = None


Outcome = Posting | Missing | Skipped | Refused
