"""Prometheus series (OpenMetrics naming), defined once here and served on /metrics.

Counters are labelled by topic/stage/reason so SREs can alert on a reason code appearing,
not only on volume.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

REGISTRY = CollectorRegistry(auto_describe=True)
# process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds,
# process_max_fds, ... (from /proc; nothing on platforms without it) and python_info.
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

CONSUMED = Counter("tillbridge_events_consumed", "Records read from an input topic.",
                   ["topic"], registry=REGISTRY)
VALIDATED = Counter("tillbridge_events_validated", "Records that passed validation.",
                    ["topic"], registry=REGISTRY)
ROUTED = Counter("tillbridge_events_routed", "Records routed to a destination.",
                 ["topic", "destination"], registry=REGISTRY)
DEAD_LETTERED = Counter("tillbridge_events_dead_lettered", "Records sent to a dead-letter topic.",
                        ["topic", "stage", "reason"], registry=REGISTRY)
WINDOW_CLOSE_FAILURES = Counter(
    "tillbridge_window_close_failures",
    "Closed windows whose close (book, post, outcomes) failed; each is tried again at the "
    "next tick, its members held.", ["flow"], registry=REGISTRY)
POSTED = Counter("tillbridge_records_posted", "NetSuite records created or upserted.",
                 ["record_type"], registry=REGISTRY)
DUPLICATES = Counter("tillbridge_duplicates_prevented",
                     "Events for a POS transaction that was already posted.",
                     ["topic"], registry=REGISTRY)
CONFLICTING_RESENDS = Counter("tillbridge_conflicting_resends",
                              "A posted POS transaction id re-sent with other content "
                              "(dead-lettered as conflicting_resend).",
                              ["store"], registry=REGISTRY)
BUSINESS_DATE_MISMATCH = Counter("tillbridge_business_date_mismatch",
                                 "Posted sales whose till business_date disagrees with the "
                                 "store-local date by more than the store's cut-off.",
                                 ["store"], registry=REGISTRY)
REPLAYED = Counter("tillbridge_events_replayed",
                   "Events seen again after a crash or restart whose records their own earlier "
                   "attempt wrote: the outcome is re-emitted, nothing is written.",
                   ["topic"], registry=REGISTRY)
DOUBLE_SCANS = Counter("tillbridge_double_scan_suspected",
                       "Sales whose basket repeats an earlier one under a new POS transaction "
                       "id within the double-scan window (posted, flagged).",
                       ["topic"], registry=REGISTRY)
PARTIAL_COMPLETED = Counter("tillbridge_partial_syncs_completed",
                            "Sales whose customer was written earlier but whose cashSale was "
                            "not, completed on a later attempt.", registry=REGISTRY)
NS_REQUESTS = Counter("tillbridge_netsuite_requests", "NetSuite HTTP requests by outcome.",
                      ["record_type", "method", "outcome"], registry=REGISTRY)
NS_LATENCY = Histogram("tillbridge_netsuite_request_duration_seconds",
                       "NetSuite request latency.", ["record_type", "method"],
                       buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30),
                       registry=REGISTRY)
EVENT_TO_RECORD = Histogram("tillbridge_event_to_record_seconds",
                            "POS event time to NetSuite record posted.",
                            buckets=(.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300),
                            registry=REGISTRY)
LAG = Gauge("tillbridge_consumer_lag", "Records behind the high watermark, per partition. "
            "Not exported when the broker's watermarks are unreliable (Tansu).",
            ["topic", "partition"], registry=REGISTRY)
LAG_RELIABLE = Gauge("tillbridge_consumer_lag_reliable",
                     "1 when consumer lag is computed from trustworthy watermarks; 0 on brokers "
                     "(Tansu 0.6) whose latest-offset answer is wrong, where lag is not exported.",
                     registry=REGISTRY)
LANE_FIRST_RECORD = Gauge("tillbridge_lane_first_record_seconds",
                          "When the inventory lane took its first record (epoch seconds).",
                          registry=REGISTRY)
READY = Gauge("tillbridge_ready", "1 once reference data is loaded and the worker processes.",
              registry=REGISTRY)
REFDATA_VERSION = Gauge("tillbridge_refdata_version",
                        "Version of the reference snapshot this worker uses (0: none yet).",
                        registry=REGISTRY)
REFDATA_REFRESHES = Counter("tillbridge_refdata_refreshes", "Reference data refreshes run.",
                            ["mode", "outcome"], registry=REGISTRY)
MAPPINGS_VERSION = Gauge("tillbridge_mappings_version", "Version of the loaded mappings file.",
                         registry=REGISTRY)
MAPPINGS_RELOAD_ERRORS = Counter("tillbridge_mappings_reload_errors",
                                 "Mappings files that failed validation (the old ones stay).",
                                 registry=REGISTRY)
REFDATA_ITEMS = Gauge("tillbridge_refdata_items", "Items in the reference snapshot.",
                      registry=REGISTRY)
NS_IN_FLIGHT = Gauge("tillbridge_netsuite_requests_in_flight",
                     "NetSuite requests in flight from this worker.", registry=REGISTRY)
NS_CONCURRENCY_LIMIT = Gauge("tillbridge_netsuite_concurrency_limit",
                             "This worker's share of the account's concurrency limit.",
                             registry=REGISTRY)
NS_THROTTLED = Counter("tillbridge_netsuite_throttled",
                       "429 CONCURRENCY_LIMIT_EXCEEDED answers received (never an event "
                       "failure; retried with jittered backoff).", registry=REGISTRY)
NS_RETRIES = Counter("tillbridge_netsuite_retries", "NetSuite calls retried, by reason "
                     "(throttled, server_error, timeout, connection, auth_refresh, lookup).",
                     ["reason"], registry=REGISTRY)
BREAKER_STATE = Gauge("tillbridge_netsuite_breaker_state",
                      "Circuit breaker: 0 closed, 1 half-open (probing), 2 open (paused).",
                      registry=REGISTRY)
PAUSED_PARTITIONS = Gauge("tillbridge_sink_paused_partitions",
                          "Sink input partitions held (not fetched, not committed) while "
                          "NetSuite is unavailable.",
                          registry=REGISTRY)
UNAVAILABLE_WAITS = Counter("tillbridge_sink_unavailable_waits",
                            "Times a sink record waited for NetSuite to come back instead of "
                            "being dead-lettered.", registry=REGISTRY)
PARKED = Gauge("tillbridge_parked_events",
               "Events waiting for a NetSuite dependency (e.g. a refund for its sale).",
               registry=REGISTRY)
PARK_OUTCOMES = Counter("tillbridge_park_outcomes",
                        "Parking: parked, released (dependency landed), expired "
                        "(dead-lettered as orphan_dependency).", ["outcome"], registry=REGISTRY)
BATCH_JOBS = Counter("tillbridge_netsuite_batch_jobs",
                     "NetSuite async batch jobs (backlog drain) by state.", ["state"],
                     registry=REGISTRY)
DRAINS = Counter("tillbridge_sink_drains",
                 "Sink batches whose sales went through async batch jobs (backlog drain).",
                 registry=REGISTRY)
BATCH_RECORDS = Counter("tillbridge_netsuite_batch_records",
                        "Records posted through async batch jobs, by outcome.", ["outcome"],
                        registry=REGISTRY)

SKIPPED = Counter("tillbridge_events_skipped",
                  "Events that need no NetSuite record (e.g. a declined card attempt: "
                  "recorded on the payments audit topic instead).", ["topic"],
                  registry=REGISTRY)

# -- the per-record guard, the emitter, the assignment (runtime/guard.py, emit.py, faust_app.py)
GUARD_FAILURES = Counter("tillbridge_guard_failures",
                         "Records an agent step failed on unexpectedly (a bug, not bad input), "
                         "by step; each is dead-lettered as internal_error.", ["stage"],
                         registry=REGISTRY)
GUARD_HELD = Counter("tillbridge_guard_held",
                     "Failed records whose dead letter could not be produced either: held "
                     "unacked, so their partition's committed offset stops before them "
                     "(alert on any).", ["stage"], registry=REGISTRY)
ASSIGNED = Gauge("tillbridge_assigned_partitions",
                 "Partitions of each topic assigned to this worker, as of the last rebalance.",
                 ["topic"], registry=REGISTRY)
HELD_AFTER_REBALANCE = Counter("tillbridge_sink_held_after_rebalance",
                               "Records held through a NetSuite outage whose partition went "
                               "to another worker meanwhile: left to it, not posted here.",
                               registry=REGISTRY)
EMIT_QUEUE_FULL_WAITS = Counter("tillbridge_emit_queue_full_waits",
                                "Times an agent awaited room in the producer's local queue "
                                "(back-pressure from the broker).", registry=REGISTRY)

DLQ_PRODUCE_RETRIES = Counter("tillbridge_dlq_produce_retries",
                              "Dead letters that could not be produced and are being retried "
                              "with backoff (the DLQ itself is failing: the agent waits).",
                              registry=REGISTRY)

RECON_DRIFT_AMOUNT = Gauge("tillbridge_reconciliation_drift_amount",
                          "Latest reconciliation of a store: sum of its differences (POS vs "
                          "NetSuite, currency units).", ["store"], registry=REGISTRY)
RECON_DRIFT_COUNT = Gauge("tillbridge_reconciliation_drift_count",
                         "Latest reconciliation of a store: receipts missing, extra or "
                         "different in NetSuite.", ["store"], registry=REGISTRY)
RECON_FLAGGED = Gauge("tillbridge_reconciliation_register_flagged",
                      "1 when a register's latest reconciliation drifts past "
                      "TILLBRIDGE_RECONCILE_DRIFT_THRESHOLD_CENTS.", ["store", "register"],
                      registry=REGISTRY)


def reconciliation(doc: dict[str, Any]) -> None:
    """Export one record of the reconciliation topic: a summary sets each store's drift, a
    register record its flag."""
    if doc.get("type") == "summary":
        for store, figures in (doc.get("stores") or {}).items():
            RECON_DRIFT_AMOUNT.labels(store).set(float(figures["drift_amount"]))
            RECON_DRIFT_COUNT.labels(store).set(int(figures["drift_count"]))
    elif doc.get("type") == "register":
        RECON_FLAGGED.labels(doc["store_id"], doc["register_id"]).set(
            1 if doc.get("flagged") else 0)


AVAILABILITY_EVENTS = Counter("tillbridge_availability_events",
                              "Availability records published (a POS event or a NetSuite "
                              "read changed an item's state at a location).", registry=REGISTRY)
AVAILABILITY_SIGNALS = Counter("tillbridge_availability_signals",
                               "Oversell warnings and replenishment triggers, by store.",
                               ["type", "store"], registry=REGISTRY)
AVAILABILITY_SKIPPED = Counter("tillbridge_availability_skipped",
                               "Input records the availability flow could not read "
                               "(undecodable; the ingest flow dead-letters them).",
                               ["topic"], registry=REGISTRY)
AVAILABILITY_POLLS = Counter("tillbridge_availability_polls",
                             "NetSuite availability reads, by mode (full, incremental) or "
                             "error.", ["mode"], registry=REGISTRY)
ORDER_STATUS_POLLS = Counter("tillbridge_order_status_polls",
                             "NetSuite order-status reads, by outcome.", ["outcome"],
                             registry=REGISTRY)
ORDER_STATUS_CHANGES = Counter("tillbridge_order_status_changes",
                               "Order status changes published, by status and by who made "
                               "them (tillbridge or netsuite).", ["status", "by"],
                               registry=REGISTRY)

_BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def breaker_state(name: str) -> None:
    BREAKER_STATE.set(_BREAKER_VALUES.get(name, 2))


def in_flight_hook(in_flight: int, limit: int) -> None:
    """ConcurrencyLimiter on_in_flight callback."""
    NS_IN_FLIGHT.set(in_flight)
    NS_CONCURRENCY_LIMIT.set(limit)


def retry_hook(reason: str, delay_s: float) -> None:
    """ReliableClient on_retry callback."""
    NS_RETRIES.labels(reason).inc()


def throttled_hook() -> None:
    NS_THROTTLED.inc()


def ns_request_hook(record_type: str, method: str, status: int | None, seconds: float) -> None:
    """NetSuiteClient on_request callback."""
    if status is None:
        outcome = "error"
    elif status < 300:
        outcome = "ok"
    elif status == 429:
        outcome = "throttled"
    else:
        outcome = f"{status // 100}xx"
    NS_REQUESTS.labels(record_type, method, outcome).inc()
    NS_LATENCY.labels(record_type, method).observe(seconds)


def observe_all(histogram: Histogram, amounts: Sequence[float]) -> None:
    """Many observations at once (a window's thousands of members): each bucket and the
    sum incremented once, where ``observe`` per member took ~5 % of the inventory lane's
    time (py-spy). Uses the client's own bucket values; ``tests/test_logformat.py``
    checks the exposition equals ``observe``'s."""
    if not amounts:
        return
    bounds = histogram._upper_bounds  # noqa: SLF001 - see the docstring
    counts = [0] * len(bounds)
    for amount in amounts:
        counts[bisect_left(bounds, amount)] += 1  # the first bound >= amount (+Inf last)
    histogram._sum.inc(sum(amounts))  # noqa: SLF001
    for bucket, n in zip(histogram._buckets, counts, strict=True):  # noqa: SLF001
        if n:
            bucket.inc(n)
