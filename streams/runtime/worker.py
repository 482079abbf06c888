"""Run one worker in this process (what `tillbridge worker` does)."""

from __future__ import annotations

import logging

import faust

from tillbridge.streams.runtime import logfilter
from tillbridge.streams.runtime.app import build_app
from tillbridge.streams.runtime.settings import Settings


def run_worker(settings: Settings, loglevel: str = "warn") -> None:
    # Faust's own -l flag does not lower the root logger; a DEBUG root logger costs 5-11%
    # throughput in formatting calls that are then dropped.
    level = getattr(logging, loglevel.upper().replace("WARN", "WARNING"), logging.WARNING)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger().setLevel(level)
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    # Faust's terminal spinner sets the root logger to DEBUG so it can spin on every record;
    # every aiokafka debug call then builds a LogRecord (~8% of ingest CPU, profiled).
    worker.spinner = None
    # Faust replaces the root handlers when it sets up logging: the filter goes on the new
    # ones (repeated lines, a broker outage's, once per window with a count).
    setup_root = worker.on_setup_root_logger

    def on_setup_root_logger(logger: logging.Logger, level: int) -> None:
        setup_root(logger, level)
        logfilter.install()

    worker.on_setup_root_logger = on_setup_root_logger  # type: ignore[method-assign]
    worker.execute_from_commandline()
