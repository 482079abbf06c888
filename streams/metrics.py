"""Prometheus series (OpenMetrics naming), defined once here and served on /metrics.

Counters are labelled by topic/stage/reason so SREs can alert on a reason code appearing,
not only on volume.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

CONSUMED = Counter("tillbridge_events_consumed", "Records read from an input topic.",
                   ["topic"], registry=REGISTRY)
VALIDATED = Counter("tillbridge_events_validated", "Records that passed validation.",
                    ["topic"], registry=REGISTRY)
ROUTED = Counter("tillbridge_events_routed", "Records routed to a destination.",
                 ["topic", "destination"], registry=REGISTRY)
DEAD_LETTERED = Counter("tillbridge_events_dead_lettered", "Records sent to a dead-letter topic.",
                        ["topic", "stage", "reason"], registry=REGISTRY)
POSTED = Counter("tillbridge_records_posted", "NetSuite records created or upserted.",
                 ["record_type"], registry=REGISTRY)
DUPLICATES = Counter("tillbridge_duplicates_prevented",
                     "Events for a POS transaction that was already posted.",
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
