"""Run one worker in this process (what `tillbridge worker` does).

Before Faust starts, table partitions ahead of their changelog are wiped (``state.py``); a
``ConsistencyError`` that still stops Faust wipes the table and re-execs this process.
"""

from __future__ import annotations

import logging
import os
import time

import faust

from tillbridge.streams.runtime import (
    faust_app,
    gc_tuning,
    logfilter,
    logformat,
    memprobe,
    state,
)
from tillbridge.streams.runtime.app import build_app
from tillbridge.streams.runtime.settings import Settings

#: How often a running worker checks its table's changelog still holds what it applied.
WATCH_INTERVAL_S = 10.0
#: When this process was re-exec'd after a ConsistencyError (epoch seconds): another one
#: within REEXEC_MIN_S means the wipe did not help, so the worker exits (no crash loop).
REEXEC_ENV = "TILLBRIDGE_STATE_REBUILT_AT"
REEXEC_MIN_S = 120.0


def run_worker(settings: Settings, loglevel: str = "warn") -> None:
    # Faust's own -l flag does not lower the root logger; a DEBUG root logger costs 5-11%
    # throughput in formatting calls that are then dropped.
    level = getattr(logging, loglevel.upper().replace("WARN", "WARNING"), logging.WARNING)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger().setLevel(level)
    logformat.install(settings.log_format)
    memprobe.start(settings.tracemalloc_frames)
    app = build_app(settings)
    table = app.tables["posted"]
    rocks = settings.store.startswith("rocksdb")
    if rocks:
        state.reconcile(app.conf.tabledir, table.name, table.changelog_topic.get_topic_name(),
                        settings.kafka_bootstrap_servers or "")
        watch = state.ChangelogWatch(table, settings.kafka_bootstrap_servers or "")
        faust_app.every(app, WATCH_INTERVAL_S, watch.tick)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    gc_tuning.tune(settings.gc_gen0_threshold)  # the app built: its heap is frozen
    # Faust's terminal spinner sets the root logger to DEBUG so it can spin on every record;
    # every aiokafka debug call then builds a LogRecord (~8% of ingest CPU, profiled).
    worker.spinner = None
    # Faust replaces the root handlers when it sets up logging: the filter goes on the new
    # ones (repeated lines, a broker outage's, once per window with a count).
    setup_root = worker.on_setup_root_logger

    def on_setup_root_logger(logger: logging.Logger, level: int) -> None:
        setup_root(logger, level)
        logfilter.install()
        logformat.install(settings.log_format)

    worker.on_setup_root_logger = on_setup_root_logger  # type: ignore[method-assign]
    try:
        worker.execute_from_commandline()
    except SystemExit:
        reason = worker.crash_reason or app.crash_reason
        last = float(os.environ.get(REEXEC_ENV) or 0)
        if not (rocks and state.is_consistency_error(reason)
                and time.time() - last > REEXEC_MIN_S):
            raise
        assert reason is not None
        state.wipe_after_crash(app.conf.tabledir, table.name, reason)
        os.environ[REEXEC_ENV] = str(time.time())
        state.reexec()
