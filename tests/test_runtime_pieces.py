"""The runtime's smaller pieces, each on its own: the commit hook, the web pages, the
mappings watch, the reference-data loader (against the NetSuite simulator over HTTP), the
lag exporter, the timers, the parking side, and ``build_app``'s assembly. No broker: where
one would be used, a fake stands in (said per test)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tests.test_runtime_fakes import RecordingEmitter, refuse_first
from tillbridge.connectors.kafka import topics
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.park import ParkEntry, ParkingLot
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.runtime import commit, faust_app, guard, lag, metrics, web
from tillbridge.streams.runtime.app import build_app
from tillbridge.streams.runtime.mappings_watch import MappingsWatch
from tillbridge.streams.runtime.parking import Parking
from tillbridge.streams.runtime.refdata_loader import RefdataLoader
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.runtime.sink import SinkAgent, SinkConfig
from tillbridge.streams.stages import route
from tillbridge.streams.stages.messages import Outbound, Source

MAPS = Mappings.load()


def _pipe(**env: str) -> Pipeline:
    """A pipeline that never decodes (no registry needed for these pieces)."""
    return Pipeline(Settings.from_env(env), codec=object(),  # type: ignore[arg-type]
                    mappings=MAPS)


# -- commit -----------------------------------------------------------------------------------

def test_commit_flush_waits_for_faust_then_every_emitter_even_ones_added_later() -> None:
    """Faked: Faust's producer."""
    order: list[str] = []

    class Producer:
        async def flush(self) -> None:
            order.append("faust")

    class Em:
        def __init__(self, name: str) -> None:
            self.name = name

        async def flush(self) -> None:
            order.append(self.name)

    app = type("App", (), {"producer": Producer()})()
    emitters: list[Any] = [Em("a")]
    commit.flush_emitters_before_commit(app, emitters)
    emitters.append(Em("b"))
    asyncio.run(app.producer.flush())
    assert order == ["faust", "a", "b"]


# -- web --------------------------------------------------------------------------------------

def test_ready_is_503_until_reference_data_is_in() -> None:
    from tillbridge.streams.runtime.health import Health

    pipe, checks = _pipe(), Health()
    web.watch(pipe, checks)
    doc, status = web.ready_doc(pipe, checks)
    assert status == 503 and doc["ready"] is False and doc["refdata_version"] == 0
    assert doc["checks"]["refdata"] == {"ok": False, "detail": "not loaded yet"}
    from tests.factories import sandbox_refdata

    pipe.use_refdata(sandbox_refdata(), 7)
    doc, status = web.ready_doc(pipe, checks)
    assert status == 200 and doc["refdata_version"] == 7
    assert doc["mappings_version"] == MAPS.version and doc["refdata_items"] > 0


def test_metrics_page_serves_the_registry_with_a_bare_content_type() -> None:
    body, content_type = web.metrics_body()
    assert b"tillbridge_guard_failures" in body or b"tillbridge_events_consumed" in body
    assert "charset" not in content_type and content_type.startswith("text/plain")


# -- mappings watch ---------------------------------------------------------------------------

def test_mappings_are_reloaded_when_the_file_changes_and_a_bad_file_keeps_the_old(
        tmp_path: Path) -> None:
    doc = json.loads(resources.files("tillbridge.connectors").joinpath(
        "data/mappings.json").read_text())
    path = tmp_path / "mappings.json"
    path.write_text(json.dumps(doc))
    pipe = _pipe()
    watch = MappingsWatch(pipe, str(path))
    assert watch.check() is False, "unchanged"
    errors = metrics.MAPPINGS_RELOAD_ERRORS._value.get()
    path.write_text("{not json")
    _touch(path, 1)
    assert watch.check() is False and pipe.mappings is MAPS
    assert metrics.MAPPINGS_RELOAD_ERRORS._value.get() == errors + 1
    doc["version"] += 1
    path.write_text(json.dumps(doc))
    _touch(path, 2)
    asyncio.run(watch.tick())
    assert pipe.mappings.version == doc["version"]
    assert MappingsWatch(pipe, None).check() is False, "packaged file: nothing to watch"


def _touch(path: Path, step: int) -> None:
    import os

    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + step))


# -- reference data ---------------------------------------------------------------------------

def test_first_load_then_incremental_and_commanded_refresh(sim: SimServer) -> None:
    """Real NetSuite simulator over HTTP; the control topic's thread is a plain thread."""
    creds = sim.credentials  # a base URL means a real NetSuite: credentials are explicit
    pipe = _pipe(NETSUITE_BASE_URL=sim.base_url, NETSUITE_CONSUMER_KEY=creds.consumer_key,
                 NETSUITE_CONSUMER_SECRET=creds.consumer_secret,
                 NETSUITE_TOKEN_ID=creds.token_id, NETSUITE_TOKEN_SECRET=creds.token_secret)
    loader = RefdataLoader(pipe)

    async def main() -> list[int]:
        await pipe.start()
        try:
            await loader.scheduled()  # before the first load: nothing
            assert not pipe.ready.is_set()
            await loader.load_until_ready()
            versions = [pipe.refdata_version]
            await loader.scheduled()
            versions.append(pipe.refdata_version)
            loop = asyncio.get_running_loop()
            threading.Thread(target=loader.command,
                             args=(loop, {"command": "refresh_refdata", "full": True})).start()
            loader.command(loop, {"command": "no_such_command"})
            while pipe.refdata_version < 3:
                await asyncio.sleep(0.02)
            versions.append(pipe.refdata_version)
            return versions
        finally:
            await pipe.stop()

    assert asyncio.run(main()) == [1, 2, 3]
    assert pipe.ready.is_set() and len(pipe.refdata.items) > 0
    assert "sku" not in loader.snapshot, "rows are keyed <kind>:<id>"


def test_a_failed_refresh_keeps_the_old_data_and_the_first_load_retries() -> None:
    """NetSuite faked by the refresh function (it fails once, then answers)."""
    from tillbridge.streams.refdata import sync

    calls: list[bool] = []

    async def refresh(client: Any, current: Any, *, full: bool) -> Any:
        calls.append(full)
        if len(calls) == 1:
            raise ConnectionError("NetSuite down")
        return {}, {"version": 5, "mode": "full", "written": 0, "deleted": 0,
                    "cursor": None, "unreadable": [], "kinds": sorted(sync.QUERIES)}

    pipe = _pipe()
    pipe.client = object()  # type: ignore[assignment]  # the faked refresh never uses it
    loader = RefdataLoader(pipe, refresh=refresh, retry_first_s=0.01)
    errors = metrics.REFDATA_REFRESHES.labels("full", "error")._value.get()
    asyncio.run(loader.load_until_ready())
    assert calls == [True, True]
    assert metrics.REFDATA_REFRESHES.labels("full", "error")._value.get() == errors + 1
    assert loader.snapshot[sync.META]["version"] == 5


# -- lag and timers ---------------------------------------------------------------------------

def test_lag_is_exported_only_from_trusted_watermarks() -> None:
    """Faked: the Kafka consumer."""
    from faust.types import TP

    class Consumer:
        def assignment(self) -> set[TP]:
            return {TP("pos.sale.v1", 3)}

        def highwater(self, tp: TP) -> int:
            return 10

        async def position(self, tp: TP) -> int:
            return 4

    asyncio.run(lag.LagExporter(lambda: Consumer(), reliable=True).export())
    assert metrics.LAG.labels("pos.sale.v1", "3")._value.get() == 6
    assert metrics.LAG_RELIABLE._value.get() == 1
    metrics.LAG.labels("pos.sale.v1", "3").set(0)
    asyncio.run(lag.LagExporter(lambda: Consumer(), reliable=False).export())
    assert metrics.LAG.labels("pos.sale.v1", "3")._value.get() == 0
    assert metrics.LAG_RELIABLE._value.get() == 0

    def broken() -> Any:
        raise RuntimeError("consumer not started")

    asyncio.run(lag.LagExporter(broken, reliable=True).export())  # logged, not raised


def test_a_timer_body_that_raises_is_logged_and_the_timer_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    """Faked: Faust's ``app.timer``."""
    timers: list[tuple[float, Any]] = []

    class App:
        def timer(self, interval: float) -> Any:
            return lambda fn: timers.append((interval, fn))

    async def body() -> None:
        raise RuntimeError("boom")

    faust_app.every(App(), 5.0, body)  # type: ignore[arg-type]
    [(interval, tick)] = timers
    with caplog.at_level(logging.ERROR):
        asyncio.run(tick())
        asyncio.run(tick())
    assert interval == 5.0 and len(caplog.records) == 2
    assert tick.__name__ == body.__qualname__


# -- build_app --------------------------------------------------------------------------------

@pytest.mark.parametrize("agents,expected", [("ingest,sink", {"ingest", "netsuite_sink"}),
                                              ("ingest,sink,window",
                                               {"ingest", "netsuite_sink", "windows"}),
                                              ("sink", {"netsuite_sink"}),
                                              ("ingest", {"ingest"})])
def test_build_app_assembles_the_enabled_agents(agents: str, expected: set[str],
                                                tmp_path: Path) -> None:
    """Built, not started: no broker is reached."""
    settings = Settings.from_env({}, kafka_bootstrap_servers="127.0.0.1:1",
                                 lag_from_watermarks="off", agents=agents,
                                 data_dir=str(tmp_path))
    pipe = _pipe()
    app = build_app(settings, pipe)
    assert set(app.agents) == expected
    assert app.conf.stream_wait_empty is False
    assert app.fetch_max_wait_ms == settings.fetch_max_wait_ms
    # the sink holds records on an open breaker; /ready's sink_breaker check follows it too
    owners = {getattr(cb, "__self__", cb).__class__.__name__ for cb in pipe.on_breaker}
    assert owners == ({"SinkAgent", "function"} if "sink" in agents else {"function"})
    assert pipe.parked_lookup("nothing") is None, "wired to the parking lot"
    names = {t.__name__ for t in app._app_tasks}
    assert {"start_probe", "heartbeat"} <= names, "the health probe and liveness heartbeat"
    windowed = 2 if "window" in agents else 0  # the window book's load and the clock tick
    assert len(app._app_tasks) == 7 + windowed, (
        "startup + refdata, mappings, lag and parking timers + the health probe and the "
        "liveness heartbeat (+ the window agent's load and tick)")


# -- parking -----------------------------------------------------------------------------------

def _entry(entry_id: str = "pos.return.v1/0/5", deadline: float = 100.0,
           partition: int = 0) -> ParkEntry:
    return ParkEntry(entry_id, "pos-sale-S1-T1", ("cashSale",), 1.0, deadline, partition,
                     b"S1-T1", b"\x00return", ((route.H_SRC_TOPIC, b"pos.return.v1"),
                                               (route.H_SRC_PARTITION, b"0"),
                                               (route.H_SRC_OFFSET, b"5")))


def _parking(now: float = 50.0, emitter: RecordingEmitter | None = None,
             sink_all: Any = None) -> tuple[Parking, RecordingEmitter, Pipeline]:
    """Parking with a real (unstarted) sink agent as its outlet. NetSuite faked by
    replacing the pipeline's dependency check / sink call where a test needs them."""
    pipe = _pipe()
    out = emitter or RecordingEmitter()
    g = guard.standard(out.send, origin=pipe.origin)
    lot = ParkingLot()
    parking = Parking(pipe, lot, g, lambda: {0}, clock=lambda: now)
    sink = SinkAgent(pipe, {}, out, g, parking, owned=lambda: {0},
                     config=SinkConfig(batch=10, drain_threshold=0))
    parking.outlet = sink
    if sink_all is not None:
        pipe.sink_all = sink_all  # type: ignore[method-assign]
    return parking, out, pipe


def test_tick_waits_for_the_sink_then_expires_overdue_entries() -> None:
    parking, out, _ = _parking(now=150.0)
    parking.lot.apply("pos.return.v1/0/5", _entry())
    asyncio.run(parking.tick())
    assert not out.sent, "the sink is not running yet"
    assert parking.outlet is not None
    parking.outlet.running = True
    asyncio.run(parking.tick())
    [orphan, tomb] = out.sent
    assert dict(orphan.headers)["tillbridge.reason"] == b"orphan_dependency"
    assert orphan.value == b"\x00return"
    assert dict(orphan.headers)["__connect.errors.topic"] == b"pos.return.v1"
    assert (tomb.topic, tomb.key, tomb.value) == (topics.PARKED, b"pos.return.v1/0/5", None)
    assert len(parking.lot) == 0


def test_a_failing_dependency_check_leaves_the_entry_parked_and_unclaimed() -> None:
    parking, out, pipe = _parking()

    async def down(_e: ParkEntry) -> bool:
        raise ConnectionError("NetSuite down")

    pipe.dependency_exists = down  # type: ignore[method-assign]
    parking.lot.apply("pos.return.v1/0/5", _entry())
    asyncio.run(parking.sweep())
    assert not out.sent and len(parking.lot) == 1
    assert parking.lot.claim_due({0}), "not left busy"


def test_a_landed_dependency_releases_the_entry() -> None:
    result = Outbound(topics.RESULTS, b"k", b'{"outcome": "posted"}')

    async def sink_all(src: Source, posted: Any) -> list[Outbound]:
        assert src.value == b"\x00return"
        return [result]

    async def landed(_e: ParkEntry) -> bool:
        return True

    parking, out, pipe = _parking(sink_all=sink_all)
    pipe.dependency_exists = landed  # type: ignore[method-assign]
    parking.lot.apply("pos.return.v1/0/5", _entry())
    asyncio.run(parking.sweep())
    assert [o.topic for o in out.sent] == [topics.RESULTS, topics.PARKED]
    assert len(parking.lot) == 0


def test_a_release_whose_dead_letter_is_refused_is_retried_then_released() -> None:
    """The sink call raises and its dead letter is refused once: the guard retries it, the
    entry ends released with its dead letter (never dropped, never released without one)."""
    async def sink_all(src: Source, posted: Any) -> list[Outbound]:
        raise RuntimeError("bug")

    parking, out, _ = _parking(emitter=RecordingEmitter(refuse=refuse_first(1, lambda o: True)),
                               sink_all=sink_all)
    parking.lot.apply("pos.return.v1/0/5", _entry())
    entries = parking.lot.claim_waiting_on("pos-sale-S1-T1", {0})
    asyncio.run(parking.release(entries))
    assert [o.topic for o in out.sent][0] == topics.dlq_topic("sink")
    assert len(parking.lot) == 0 or not parking.lot.claim_due({0})


def test_only_owned_partitions_are_swept() -> None:
    parking, out, _ = _parking(now=150.0)
    parking.lot.apply("pos.return.v1/1/9", _entry("pos.return.v1/1/9", partition=1))
    asyncio.run(parking.sweep())
    assert not out.sent and len(parking.lot) == 1
