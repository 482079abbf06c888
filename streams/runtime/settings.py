"""The one settings object: every knob, its environment variable, default and meaning.

Read once at start (``Settings.from_env()``) and passed down; connectors never read the
environment themselves, so tests can build them with explicit values. Any setting can
also come from a file named by ``<VARIABLE>_FILE`` (the Docker/Kubernetes secrets
convention), so secrets need not sit in the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from tillbridge.connectors.netsuite import auth

FILE_SUFFIX = "_FILE"
MASK = "***"


class SettingsError(ValueError):
    """A setting that cannot be read or used; names the variable (and file), never a value
    that might be a secret."""


def _opt(env: str, default: str | int | float | None, doc: str, *,  # noqa: ANN202
         secret: bool = False):
    """Declare a setting: type comes from the annotation, value from ``env`` or ``default``.

    A ``secret`` is masked by ``describe()`` and left out of ``repr`` (so out of logs).
    """
    return field(default=default, repr=not secret,
                 metadata={"env": env, "doc": doc, "secret": secret})


@dataclass(frozen=True)
class Settings:
    """tillbridge configuration. ``tillbridge settings`` prints this table with live values."""

    kafka_bootstrap_servers: str | None = _opt(
        "KAFKA_BOOTSTRAP_SERVERS", None,
        "Kafka bootstrap servers (host:port,...). Unset: the demo and tests start the embedded "
        "Tansu broker.")
    schema_registry_url: str | None = _opt(
        "SCHEMA_REGISTRY_URL", None,
        "Confluent-compatible schema registry. Unset: the embedded registry is started.")
    netsuite_account_id: str = _opt("NETSUITE_ACCOUNT_ID", auth.DEV_ACCOUNT_ID,
                                    "NetSuite account id (OAuth realm), e.g. 1234567_SB1.")
    netsuite_auth: str = _opt(
        "NETSUITE_AUTH", "tba",
        "How the worker logs in to NetSuite: tba (OAuth 1.0a token-based authentication, "
        "the NETSUITE_CONSUMER_*/TOKEN_* settings) or oauth2 (OAuth 2.0 client credentials "
        "M2M, the NETSUITE_CLIENT_ID/CERTIFICATE_ID/PRIVATE_KEY_FILE settings).")
    netsuite_consumer_key: str = _opt("NETSUITE_CONSUMER_KEY", auth.DEV_CONSUMER_KEY,
                                      "TBA integration record consumer key.")
    netsuite_consumer_secret: str = _opt("NETSUITE_CONSUMER_SECRET", auth.DEV_CONSUMER_SECRET,
                                         "TBA consumer secret (never logged).", secret=True)
    netsuite_token_id: str = _opt("NETSUITE_TOKEN_ID", auth.DEV_TOKEN_ID, "TBA token id.")
    netsuite_token_secret: str = _opt("NETSUITE_TOKEN_SECRET", auth.DEV_TOKEN_SECRET,
                                      "TBA token secret (never logged).", secret=True)
    netsuite_client_id: str | None = _opt(
        "NETSUITE_CLIENT_ID", None, "OAuth 2.0: the integration record's client id.")
    netsuite_certificate_id: str | None = _opt(
        "NETSUITE_CERTIFICATE_ID", None,
        "OAuth 2.0: the certificate id from the M2M Setup page (the JWT's kid).")
    netsuite_private_key_file: str | None = _opt(
        "NETSUITE_PRIVATE_KEY_FILE", None,
        "OAuth 2.0: PEM file with the certificate's private key (unencrypted; RSA for "
        "PS256, EC P-256 for ES256). The key is read from the file, never from the "
        "environment, and never logged.")
    netsuite_jwt_algorithm: str = _opt("NETSUITE_JWT_ALGORITHM", "PS256",
                                       "OAuth 2.0: how the JWT assertion is signed: PS256 or "
                                       "ES256.")
    netsuite_scopes: str = _opt("NETSUITE_SCOPES", "rest_webservices",
                                "OAuth 2.0: scopes asked for (comma list).")
    netsuite_base_url: str | None = _opt(
        "NETSUITE_BASE_URL", None,
        "Base URL up to the host, e.g. https://1234567-sb1.suitetalk.api.netsuite.com. Unset: "
        "the demo starts the simulator.")
    netsuite_timeout_s: float = _opt("NETSUITE_TIMEOUT_S", 30.0, "Per-request timeout.")
    netsuite_max_concurrency: int = _opt(
        "NETSUITE_MAX_CONCURRENCY", 5,
        "This worker's share of the account's concurrent-request limit.")
    netsuite_max_attempts: int = _opt(
        "NETSUITE_MAX_ATTEMPTS", 5,
        "Attempts per request for a retryable failure (5xx, timeout, connection error); "
        "429s use none (they back off within NETSUITE_THROTTLE_BUDGET_S).")
    netsuite_breaker_failures: int = _opt(
        "NETSUITE_BREAKER_FAILURES", 5,
        "Consecutive retryable failures (5xx, timeouts, connection errors) that open the "
        "circuit breaker: the sink then pauses its partitions instead of dead-lettering.")
    netsuite_breaker_cooldown_s: float = _opt(
        "NETSUITE_BREAKER_COOLDOWN_S", 30.0,
        "Seconds an open breaker waits (jittered +0..20%) before one probe request.")
    netsuite_throttle_budget_s: float = _opt(
        "NETSUITE_THROTTLE_BUDGET_S", 300.0,
        "How long one request may keep being throttled (429) before the sink treats "
        "NetSuite as unavailable and pauses; 429s never dead-letter an event.")
    netsuite_write_mode: str = _opt(
        "NETSUITE_WRITE_MODE", "create",
        "How sales are written, both idempotent by externalId: create (POST; a repeat is "
        "refused as 'already exists' and looked up; 1 request) or upsert (PUT eid:; 2).")
    app_id: str = _opt("TILLBRIDGE_APP_ID", "tillbridge",
                       "Faust app id: consumer group and changelog topic prefix.")
    topic_partitions: int = _opt("TILLBRIDGE_TOPIC_PARTITIONS", 4,
                                 "Partitions of the topics tillbridge creates.")
    web_host: str = _opt("TILLBRIDGE_WEB_HOST", "127.0.0.1",
                         "Worker web server bind address (/metrics, /ready).")
    web_port: int = _opt("TILLBRIDGE_WEB_PORT", 6066, "Worker web server port.")
    data_dir: str = _opt("TILLBRIDGE_DATA_DIR", ".tillbridge", "Worker state (tables).")
    mappings_path: str | None = _opt(
        "TILLBRIDGE_MAPPINGS", None,
        "Mappings file (store/tender -> NetSuite ids). Unset: the packaged example.")
    fetch_max_wait_ms: int = _opt(
        "TILLBRIDGE_FETCH_MAX_WAIT_MS", 50,
        "Consumer fetch wait. Faust hard-codes 1500 ms; Tansu does not wake a waiting fetch, so "
        "each hop would add ~750 ms. Harmless on Apache Kafka (fetches return on data).")
    session_timeout_s: float = _opt("TILLBRIDGE_SESSION_TIMEOUT_S", 6.0,
                                    "Consumer group session timeout.")
    rebalance_timeout_s: float = _opt(
        "TILLBRIDGE_REBALANCE_TIMEOUT_S", 3.0,
        "Group rebalance timeout. Tansu makes every join wait this long: keep it short.")
    agents: str = _opt(
        "TILLBRIDGE_AGENTS", "ingest,sink",
        "Agents this worker runs: ingest (decode/validate/enrich/route), sink (NetSuite). "
        "Split them to scale the NetSuite side apart from validation.")
    group_instance_id: str | None = _opt(
        "TILLBRIDGE_GROUP_INSTANCE_ID", None,
        "Static group membership (KIP-345): a stable id per worker (e.g. the pod name) lets "
        "a restarted worker take its partitions back at once instead of waiting for the "
        "old member to expire.")
    log_level: str = _opt("TILLBRIDGE_LOG_LEVEL", "warn",
                          "Worker log level: crit, error, warn, info, debug.")
    store: str = _opt(
        "TILLBRIDGE_STORE", "rocksdb://",
        "Faust table store: rocksdb:// (local RocksDB, changelog-backed) or memory://.")
    refdata_refresh_s: float = _opt(
        "TILLBRIDGE_REFDATA_REFRESH_S", 300.0,
        "Incremental reference-data refresh (by lastmodifieddate) every this many seconds.")
    mappings_reload_s: float = _opt(
        "TILLBRIDGE_MAPPINGS_RELOAD_S", 10.0,
        "How often the mappings file is checked for changes (hot reload).")
    lag_from_watermarks: str = _opt(
        "TILLBRIDGE_LAG_FROM_WATERMARKS", "auto",
        "Export consumer lag from high watermarks: auto (not on Tansu, whose watermarks are "
        "wrong), on, off.")
    commit_interval_s: float = _opt("TILLBRIDGE_COMMIT_INTERVAL_S", 1.0,
                                    "How often processed offsets are committed.")
    tax_tolerance_cents: int = _opt(
        "TILLBRIDGE_TAX_TOLERANCE_CENTS", 1,
        "How far (cents) a line's tax may be from its taxable amount at the store's rate "
        "before the sale is dead-lettered as tax_mismatch.")
    park_timeout_s: float = _opt(
        "TILLBRIDGE_PARK_TIMEOUT_S", 86400.0,
        "How long an event whose NetSuite dependency is missing (a refund before its sale) "
        "waits parked before it is dead-lettered as orphan_dependency.")
    park_recheck_s: float = _opt(
        "TILLBRIDGE_PARK_RECHECK_S", 60.0,
        "How often parked events are checked: their dependency looked up in NetSuite "
        "(released when found) and expired ones dead-lettered.")
    drain_threshold: int = _opt(
        "TILLBRIDGE_DRAIN_THRESHOLD", 200,
        "Sales in one sink batch from which they are posted through NetSuite's async batch "
        "jobs (up to 100 records per request) instead of one request each: the sink is "
        "behind (after an outage, or a burst). 0 turns the drain off.")
    drain_batch: int = _opt(
        "TILLBRIDGE_DRAIN_BATCH", 1000,
        "Most routed events one sink batch takes when the drain is on (the backlog it can "
        "see at once).")
    double_scan_window_s: int = _opt(
        "TILLBRIDGE_DOUBLE_SCAN_WINDOW_S", 600,
        "Same basket (store, register, lines, total, tenders) under a new POS transaction id "
        "within this many seconds is flagged as a possible double-scan (still posted).")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build from environment variables; explicit ``overrides`` win.

        ``<VARIABLE>_FILE`` is read when ``<VARIABLE>`` is unset or empty (one trailing
        newline dropped, as ``echo`` and editors leave one). ``SettingsError`` names the
        variable and the path of a file that cannot be read, never its content.
        """
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        for f in fields(cls):
            found = _lookup(env, f.metadata["env"])
            if found is None:
                continue
            raw, path = found
            values[f.name] = _coerce(f.type, raw, f.metadata["env"], path)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def describe(self) -> list[tuple[str, str, str]]:
        """(env var, value with secrets masked, doc) rows."""
        rows = []
        for f in fields(self):
            value = getattr(self, f.name)
            shown = MASK if f.metadata["secret"] and value else str(value)
            rows.append((f.metadata["env"], shown, f.metadata["doc"]))
        return rows

    @property
    def state_dir(self) -> Path:
        return Path(self.data_dir)


def _lookup(env: Mapping[str, str], name: str) -> tuple[str, str | None] | None:
    """(value, file path or None) of one setting, or None when it is not set either way."""
    raw = env.get(name)
    if raw:
        return raw, None
    path = env.get(name + FILE_SUFFIX)
    if not path:
        return None
    var = name + FILE_SUFFIX
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SettingsError(f"{var}={path}: the file is not UTF-8 text") from None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise SettingsError(f"{var}={path}: cannot read the file ({why})") from None
    text = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
    return (text, path) if text else None


def _coerce(type_: object, raw: str, env: str, path: str | None = None) -> object:
    """The typed value; an error quotes the value only when it came from the environment."""
    kind = str(type_)
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
    except ValueError:
        expected = kind.split()[0]
        if path:
            raise SettingsError(f"{env}{FILE_SUFFIX}={path}: the file does not hold "
                                f"a valid {expected}") from None
        raise SettingsError(f"{env}={raw!r}: expected {expected}") from None
    return raw
