"""The worker: the Faust app assembled from the runtime's pieces.

- ``faust_app``: the faust.App with our settings, its channels, timers that never escape;
- ``ingest`` / ``sink``: the two agent bodies, every record step under ``guard``;
- ``emit``: confluent-kafka emitters; ``commit``: Faust's commit waits for them;
- ``parking``: the runtime side of the parking table; ``refdata_loader``,
  ``mappings_watch``: reference data and mappings into the pipeline; ``lag``, ``web``.

At-least-once end to end: an input offset is committed only after every outcome produced
for it is acknowledged by the broker, and a record with no outcome is never acked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.admin import ensure_topics
from tillbridge.streams.flows.park import ParkingLot
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.runtime import (
    availability,
    commit,
    events,
    faust_app,
    guard,
    lag,
    order_status,
    recon_watch,
    web,
    window_lane,
)
from tillbridge.streams.runtime.emit import Emitter
from tillbridge.streams.runtime.ingest import IngestAgent
from tillbridge.streams.runtime.mappings_watch import MappingsWatch
from tillbridge.streams.runtime.parking import Parking
from tillbridge.streams.runtime.refdata_loader import RefdataLoader
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.runtime.sink import SinkAgent, SinkConfig
from tillbridge.streams.runtime.windows import WindowAgent
from tillbridge.streams.windows.engine import WindowSpec

LAG_INTERVAL_S = 10.0
#: Topics the worker itself writes that no POS system or operator creates first.
OWN_TOPICS = [topics.PARKED, topics.AUDIT_PAYMENTS, topics.RECONCILIATION,
              topics.AUDIT_BUSINESS_DATES, topics.AUDIT_LOYALTY]


def build_app(settings: Settings, pipeline: Pipeline | None = None) -> faust.App:
    """Create the worker app. ``pipeline`` may be injected (tests); else built from settings."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    reliable = lag.watermarks_reliable(bootstrap, settings.lag_from_watermarks)
    app = faust_app.make_app(settings, trust_watermarks=reliable)
    faust_app.track_assignment(app)
    pipe = pipeline or Pipeline(settings)
    enabled = {a.strip() for a in settings.agents.split(",") if a.strip()}
    # the inventory lane reads the raw inventory topic itself: ingest leaves it alone
    channels = faust_app.channels(app, settings, frozenset(
        {topics.INVENTORY.name} if "lane" in enabled else ()))
    commit.flush_emitters_before_commit(app, emitters := [])

    def emitter() -> Emitter:
        emitters.append(Emitter(bootstrap))
        return emitters[-1]

    def owned() -> set[int]:
        return faust_app.owned_partitions(app)

    sink_emitter = emitter() if "sink" in enabled else None
    # Parking acts only through a running sink: without one its guard is never used.
    sink_guard = guard.standard(sink_emitter.send, origin=pipe.origin, hold=events.hold) \
        if sink_emitter is not None else guard.Guard([])
    lot = ParkingLot()  # the parking table (streams/flows/park.py), loaded from its topic
    pipe.parked_lookup = lot.get
    parking = Parking(pipe, lot, sink_guard, owned)
    refdata = RefdataLoader(pipe)

    @app.task
    async def start() -> None:
        """Connect, follow commands, load the parking table, then the first snapshot (the
        worker is not ready, and handles no record, before that)."""
        await pipe.start()
        refdata.follow_commands(bootstrap)
        ensure_topics(bootstrap, OWN_TOPICS, partitions=settings.topic_partitions,
                      configs=topics.TOPIC_CONFIGS)
        recon_watch.follow(bootstrap)
        await parking.load(bootstrap)
        await refdata.load_until_ready()

    faust_app.every(app, settings.refdata_refresh_s, refdata.scheduled)
    faust_app.every(app, settings.mappings_reload_s,
                    MappingsWatch(pipe, settings.mappings_path).tick)
    faust_app.every(app, LAG_INTERVAL_S, lag.LagExporter(lambda: app.consumer, reliable).export)
    faust_app.every(app, settings.park_recheck_s, parking.tick)

    _input_agents(app, settings, pipe, enabled, emitter, channels.inputs)
    if sink_emitter is not None:
        sink = SinkAgent(pipe, channels.posted, sink_emitter, sink_guard, parking,
                         owned=owned, config=SinkConfig.from_settings(settings))
        parking.outlet = sink
        pipe.on_breaker.append(sink.on_breaker)
        app.agent(channels.routed, name="netsuite_sink")(sink.run)
    _store_agents(app, settings, pipe, enabled, emitter)
    web.add_routes(app, pipe)
    return app


def _input_agents(app: faust.App, settings: Settings, pipe: Pipeline, enabled: set[str],
                  emitter: Callable[[], Emitter], inputs: Any) -> None:
    """The window agent, the inventory lane (``window_lane.py``) and the ingest agent, which
    starts only once the other two have read their window book."""
    lane_on = "lane" in enabled
    window = _window_agent(app, settings, pipe, emitter(), lane_on) \
        if "window" in enabled else None
    lane = window_lane.install(app, settings, pipe, emitter()) if lane_on else None
    if "ingest" in enabled:
        out = emitter()
        ingest = IngestAgent(pipe, out, guard.standard(out.send, hold=events.hold),
                             after=[a.ready for a in (window, lane) if a is not None])
        app.agent(inputs, name="ingest")(ingest.run)


def _store_agents(app: faust.App, settings: Settings, pipe: Pipeline, enabled: set[str],
                  emitter: Callable[[], Emitter]) -> None:
    """NetSuite back to the stores: availability and order status, each with state of its
    own (``runtime/availability.py``, ``runtime/order_status.py``)."""
    if "availability" in enabled:
        availability.install(app, settings, pipe, emitter())
    if "orderstatus" in enabled:
        order_status.install(app, settings, pipe, emitter())


def _window_agent(app: faust.App, settings: Settings, pipe: Pipeline,
                  out: Emitter, lane: bool) -> WindowAgent:
    """The window agent (``runtime/windows.py``) on the routed windowed topic, its book
    loaded before it takes an event, and its wall-clock tick."""
    spec = WindowSpec(settings.window_s, settings.window_grace_s, settings.window_idle_s,
                      settings.window_retain_s)
    agent = WindowAgent(pipe, out, guard.standard(out.send, origin=pipe.origin,
                                                  hold=events.hold), spec,
                        # with the lane on, inventory windows are the lane's
                        mine=lambda flow: not (lane and flow == window_lane.INVENTORY_PLAN),
                        owned=lambda: faust_app.owned_partitions(app, topics.ROUTED_WINDOW))
    app.window_agent = agent  # type: ignore[attr-defined]  # tests and the demo read it

    @app.task
    async def load_windows() -> None:
        ensure_topics(settings.kafka_bootstrap_servers or "", [topics.ROUTED_WINDOW,
                                                               topics.WINDOWS],
                      partitions=settings.topic_partitions, configs=topics.TOPIC_CONFIGS)
        await agent.load(settings.kafka_bootstrap_servers or "")

    def on_assigned(sender: object, /, *args: object, **_: object) -> None:
        agent.on_assigned()

    def on_revoked(sender: object, /, *args: Any, **_: object) -> None:
        gone = args[0] if args else ()
        agent.revoked({tp.partition for tp in gone if tp.topic == topics.ROUTED_WINDOW})

    app.on_partitions_assigned.connect(on_assigned)
    app.on_partitions_revoked.connect(on_revoked)
    faust_app.every(app, settings.window_tick_s, agent.tick)
    topic = app.topic(topics.ROUTED_WINDOW, key_serializer="raw", value_serializer="raw")
    app.agent(topic, name="windows")(agent.run)
    return agent

