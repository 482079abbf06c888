"""Restart on the worker's own table state, whatever the broker kept.

The ``posted`` table (RocksDB, changelog-backed) is a cache of what NetSuite holds: every
write is idempotent by externalId, so discarding a partition of it costs NetSuite requests,
never correctness. Keeping it when it disagrees with the changelog is what crashed workers:
after kill -9, a broker restart or broker data loss, the offset RocksDB persisted can be
above the changelog's end, and Faust's recovery raises ``ConsistencyError`` (Apache Kafka,
check on) at every start; on Tansu (check off) it would keep state the log no longer has.

Two layers, both ending in "wipe the table's local partition(s), rebuild from the changelog":

1. ``reconcile`` before Faust starts. For each local partition of a table, read the offset
   RocksDB persisted (``P``, the last changelog record applied) and ask the broker for a
   record at offset >= ``P``: one seek and a short read, not a read of the whole log (which
   could be large), and no watermark (Tansu's "latest offset" is wrong; a record read is
   evidence). No record within the timeout means the changelog ends at or below ``P``: the
   partition is ahead, so it is wiped. A false "ahead" (a very slow broker) costs a rebuild.
   Not caught: a log lost and rewritten past ``P`` again before the restart; the local
   entries are then a stale cache, and the sink's NetSuite lookup still decides.
2. ``ChangelogWatch`` while running: broker data loss under a running worker (the
   changelog emptied) is seen by the same probe; the broker must say "out of range" twice,
   an unanswered probe (an outage) never counts. The worker wipes and re-execs (below): its
   emitters' idempotence state is desynchronised too, so a fresh process is what recovers.
3. ``is_consistency_error`` after Faust stopped: a ``ConsistencyError`` that slips through
   (e.g. raised at a later rebalance while running) makes ``worker.py`` wipe every local
   partition of the tables and re-exec itself (same pid, same data dir): a fresh process
   is more robust than restarting Faust's services inside one that crashed.

Each rebuild logs ONE warning line starting with ``table state rebuilt``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

log = logging.getLogger(__name__)

#: How long a partition's changelog gets to show a record at the persisted offset.
PROBE_TIMEOUT_S = 5.0
#: Faust's key for the last changelog offset applied to a RocksDB partition.
OFFSET_KEY = b"__faust\0offset__"
REBUILT = "table state rebuilt"


def local_partitions(tabledir: Path, table: str) -> dict[int, Path]:
    """``{partition: path}`` of the RocksDB directories Faust keeps for ``table``."""
    found: dict[int, Path] = {}
    pattern = re.compile(rf"^{re.escape(table)}-(\d+)\.db$")
    if tabledir.is_dir():
        for path in tabledir.iterdir():
            m = pattern.match(path.name)
            if m and path.is_dir():
                found[int(m.group(1))] = path
    return found


def persisted_offset(path: Path) -> int | None:
    """The changelog offset a RocksDB partition last applied (None: never; -1: unreadable,
    which ``reconcile`` treats as ahead)."""
    from rocksdict import AccessType, Rdict

    try:
        db = Rdict(str(path), access_type=AccessType.read_only())
    except Exception as exc:  # noqa: BLE001 - unreadable state is rebuilt, not fatal
        log.debug("cannot open %s: %s", path.name, exc)
        return -1
    try:
        raw = db.get(OFFSET_KEY)
        return int(raw) if raw is not None else None
    finally:
        db.close()


def changelog_reaches(bootstrap: str, topic: str, offsets: dict[int, int],
                      timeout: float = PROBE_TIMEOUT_S) -> dict[int, bool | None]:
    """Per partition of ``topic``: True once a record at its offset or later is read; False
    when the broker says there is none — offset out of range, no such topic, or (Tansu,
    which answers a fetch past the end with nothing) it serves the partition's metadata but
    no record there within ``timeout``; None when the broker did not answer at all."""
    found: dict[int, bool | None] = {}
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "tillbridge-state-probe",
                         "enable.auto.commit": False, "auto.offset.reset": "error",
                         "fetch.wait.max.ms": 100, "enable.partition.eof": False})
    try:
        consumer.assign([TopicPartition(topic, p, o) for p, o in offsets.items()])
        deadline = time.monotonic() + timeout
        while len(found) < len(offsets) and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            part = msg.partition() if msg is not None else None
            if msg is None or part in found:
                continue
            err = msg.error()
            if err is None and part is not None:
                found[part] = (msg.offset() or 0) >= offsets[part]
            elif err is not None and err.code() in (
                    KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE,
                    KafkaError.UNKNOWN_TOPIC_OR_PART):
                found[part if part is not None and part in offsets else -1] = False
        if -1 in found:  # the topic itself is unknown: every partition is gone
            return dict.fromkeys(offsets, False)
        served = _served_partitions(consumer, topic)
        return {p: found.get(p, False if p in served else None) for p in offsets}
    finally:
        consumer.close()


def _served_partitions(consumer: Consumer, topic: str) -> set[int]:
    """Partitions of ``topic`` the broker answers for now (empty: no answer)."""
    try:
        meta = consumer.list_topics(topic, timeout=2.0).topics.get(topic)
    except Exception:  # noqa: BLE001 - no answer is no evidence
        return set()
    if meta is None or meta.error is not None:
        return set()
    return {p for p, pm in meta.partitions.items() if pm.error is None}


def wipe(paths: dict[int, Path]) -> None:
    for path in paths.values():
        shutil.rmtree(path, ignore_errors=True)


def reconcile(tabledir: Path, table: str, changelog: str, bootstrap: str) -> list[int]:
    """Wipe the local partitions of ``table`` that are ahead of ``changelog``; returns them.

    A partition that never persisted an offset is left alone (nothing to disagree with)."""
    local = local_partitions(tabledir, table)
    offsets = {p: o for p, o in ((p, persisted_offset(path)) for p, path in local.items())
               if o is not None}
    # Unreadable (-1) or no answer (None) counts as ahead: not started yet, a rebuild is cheap.
    probe = {p: o for p, o in offsets.items() if o >= 0}
    seen = changelog_reaches(bootstrap, changelog, probe) if probe else {}
    ahead = {p: local[p] for p in sorted(offsets) if not seen.get(p)}
    if ahead:
        wipe(ahead)
        log.warning("%s: table %s partitions %s were ahead of changelog %s (persisted "
                    "offsets %s, no record there); wiped, rebuilding from the changelog",
                    REBUILT, table, sorted(ahead), changelog,
                    {p: offsets[p] for p in ahead})
    return sorted(ahead)


class ChangelogWatch:
    """Timer body for a running worker: broker data loss under it (the changelog emptied)
    leaves its table ahead and its producers desynchronised (idempotence state gone). A
    partition whose persisted offset the broker twice says is out of range (not merely
    unanswered: an outage is not data loss) makes the worker wipe the table and re-exec."""

    def __init__(self, table: Any, bootstrap: str) -> None:
        self.table = table
        self.bootstrap = bootstrap
        self._suspect: set[tuple[int, int]] = set()

    async def tick(self) -> None:
        from faust.types import TP

        topic = self.table.changelog_topic.get_topic_name()
        offsets = {p: o for p in sorted(getattr(self.table.data, "_dbs", {}))
                   if (o := self.table.persisted_offset(TP(topic, p))) is not None}
        if not offsets:
            return
        seen = await asyncio.get_running_loop().run_in_executor(
            None, changelog_reaches, self.bootstrap, topic, offsets)
        suspect = {(p, offsets[p]) for p, ok in seen.items() if ok is False}
        lost = suspect & self._suspect
        self._suspect = suspect
        if lost:
            partition, offset = min(lost)
            self.lost(topic, partition, offset)

    def lost(self, topic: str, partition: int, offset: int) -> None:
        parts = local_partitions(Path(self.table.data.path), self.table.name)
        wipe(parts)
        log.warning("%s: changelog %s[%d] lost its records up to %d while running (broker "
                    "data loss); wiped table %s partitions %s, restarting the worker on the "
                    "same data dir", REBUILT, topic, partition, offset, self.table.name,
                    sorted(parts))
        reexec()


def reexec() -> None:
    """Replace this process by a fresh worker (same pid, argv, environment, data dir)."""
    logging.shutdown()
    # orig_argv keeps "-m tillbridge.streams.ops.cli" as the worker was started.
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606 - argv as started


def wipe_after_crash(tabledir: Path, table: str, reason: BaseException) -> None:
    """The fallback: every local partition of ``table`` goes, then the worker re-execs."""
    parts = local_partitions(tabledir, table)
    wipe(parts)
    log.warning("%s: %s after start (%s); wiped table %s partitions %s, restarting the "
                "worker on the same data dir", REBUILT, type(reason).__name__,
                " ".join(str(reason).split()),
                table, sorted(parts))


def is_consistency_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) is Faust's ``ConsistencyError``."""
    from faust.exceptions import ConsistencyError

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ConsistencyError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
