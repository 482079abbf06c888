"""The one settings object: every knob, its environment variable, default and meaning.

Read once at start (``Settings.from_env()``) and passed down; connectors never read the
environment themselves, so tests can build them with explicit values. Any setting can
also come from a file named by ``<VARIABLE>_FILE`` (the Docker/Kubernetes secrets
convention), so secrets need not sit in the environment.

Built on pydantic-settings so that types, choices and ranges are declared next to each
setting and checked at start; errors are turned into one ``SettingsError`` line that names
the variable. Only ``from_env`` reads an environment (``Settings(...)`` and ``replace``
take the values given plus the defaults, so a test never picks up an exported variable);
it is also where a production configuration (``NETSUITE_BASE_URL`` set) must name its
NetSuite credentials instead of falling back to the simulator's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tillbridge.connectors.netsuite import auth
from tillbridge.connectors.netsuite.oauth2 import Algorithm
from tillbridge.streams.runtime import settings_values as values
from tillbridge.streams.runtime.settings_source import (
    ACTIVE_SOURCE,
    FILE_SUFFIX,
    MASK,
    EnvironmentSource,
    SettingsError,
    explain,
    field_env,
    reading,
)
from tillbridge.streams.runtime.settings_values import (
    Count,
    NonNegative,
    Port,
    Seconds,
    SecondsOrZero,
    WindowSeconds,
)

AuthMethod = Literal["tba", "oauth2"]
WriteMode = Literal["create", "upsert"]
LogLevel = Literal["crit", "error", "warn", "info", "debug"]
LogFormat = Literal["text", "json"]
LagMode = Literal["auto", "on", "off"]



def _setting(env: str, default: Any, doc: str, *, secret: bool = False) -> Any:
    """Declare a setting: type comes from the annotation, value from ``env`` or ``default``.

    A ``secret`` is masked by ``describe()`` and left out of ``repr`` (so out of logs).
    """
    return Field(default, description=doc, repr=not secret,
                 json_schema_extra={"env": env, "secret": secret})


class Settings(BaseSettings):
    """tillbridge configuration. ``tillbridge settings`` prints this table with live values."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", validate_default=True,
                                      hide_input_in_errors=True)

    kafka_bootstrap_servers: str | None = _setting(
        "KAFKA_BOOTSTRAP_SERVERS", None,
        "Kafka bootstrap servers (host:port,...). Unset: the demo and tests start the embedded "
        "Tansu broker.")
    schema_registry_url: str | None = _setting(
        "SCHEMA_REGISTRY_URL", None,
        "Confluent-compatible schema registry. Unset: the embedded registry is started.")
    netsuite_account_id: str = _setting("NETSUITE_ACCOUNT_ID", auth.DEV_ACCOUNT_ID,
                                        "NetSuite account id (OAuth realm), e.g. 1234567_SB1.")
    netsuite_auth: Annotated[AuthMethod, BeforeValidator(values.lowercase)] = _setting(
        "NETSUITE_AUTH", "tba",
        "How the worker logs in to NetSuite: tba (OAuth 1.0a token-based authentication, "
        "the NETSUITE_CONSUMER_*/TOKEN_* settings) or oauth2 (OAuth 2.0 client credentials "
        "M2M, the NETSUITE_CLIENT_ID/CERTIFICATE_ID/PRIVATE_KEY_FILE settings).")
    netsuite_consumer_key: str = _setting("NETSUITE_CONSUMER_KEY", auth.DEV_CONSUMER_KEY,
                                          "TBA integration record consumer key.")
    netsuite_consumer_secret: str = _setting(
        "NETSUITE_CONSUMER_SECRET", auth.DEV_CONSUMER_SECRET,
        "TBA consumer secret (never logged).", secret=True)
    netsuite_token_id: str = _setting("NETSUITE_TOKEN_ID", auth.DEV_TOKEN_ID, "TBA token id.")
    netsuite_token_secret: str = _setting("NETSUITE_TOKEN_SECRET", auth.DEV_TOKEN_SECRET,
                                          "TBA token secret (never logged).", secret=True)
    netsuite_client_id: str | None = _setting(
        "NETSUITE_CLIENT_ID", None, "OAuth 2.0: the integration record's client id.")
    netsuite_certificate_id: str | None = _setting(
        "NETSUITE_CERTIFICATE_ID", None,
        "OAuth 2.0: the certificate id from the M2M Setup page (the JWT's kid).")
    netsuite_private_key_file: str | None = _setting(
        "NETSUITE_PRIVATE_KEY_FILE", None,
        "OAuth 2.0: PEM file with the certificate's private key (unencrypted; RSA for "
        "PS256, EC P-256 for ES256). The key is read from the file, never from the "
        "environment, and never logged.")
    netsuite_jwt_algorithm: Annotated[Algorithm, BeforeValidator(values.uppercase)] = _setting(
        "NETSUITE_JWT_ALGORITHM", "PS256",
        "OAuth 2.0: how the JWT assertion is signed: PS256 or ES256.")
    netsuite_scopes: str = _setting("NETSUITE_SCOPES", "rest_webservices",
                                    "OAuth 2.0: scopes asked for (comma list).")
    netsuite_base_url: str | None = _setting(
        "NETSUITE_BASE_URL", None,
        "Base URL up to the host, e.g. https://1234567-sb1.suitetalk.api.netsuite.com. Unset: "
        "the demo starts the simulator.")
    netsuite_timeout_s: Seconds = _setting("NETSUITE_TIMEOUT_S", 30.0, "Per-request timeout.")
    netsuite_max_concurrency: Count = _setting(
        "NETSUITE_MAX_CONCURRENCY", 5,
        "This worker's share of the account's concurrent-request limit.")
    netsuite_max_attempts: Count = _setting(
        "NETSUITE_MAX_ATTEMPTS", 5,
        "Attempts per request for a retryable failure (5xx, timeout, connection error); "
        "429s use none (they back off within NETSUITE_THROTTLE_BUDGET_S).")
    netsuite_breaker_failures: Count = _setting(
        "NETSUITE_BREAKER_FAILURES", 5,
        "Consecutive retryable failures (5xx, timeouts, connection errors) that open the "
        "circuit breaker: the sink then pauses its partitions instead of dead-lettering.")
    netsuite_breaker_cooldown_s: Seconds = _setting(
        "NETSUITE_BREAKER_COOLDOWN_S", 10.0,
        "Seconds an open breaker waits (jittered +0..20%) before its first probe request; "
        "after a failed probe the wait starts at 0.5 s and doubles up to "
        "NETSUITE_BREAKER_PROBE_MAX_S.")
    netsuite_breaker_probe_max_s: Seconds = _setting(
        "NETSUITE_BREAKER_PROBE_MAX_S", 5.0,
        "Longest wait between two probes of an open breaker: NetSuite's recovery is noticed "
        "within this many seconds (one request per probe per worker).")
    netsuite_throttle_budget_s: Seconds = _setting(
        "NETSUITE_THROTTLE_BUDGET_S", 300.0,
        "How long one request may keep being throttled (429) before the sink treats "
        "NetSuite as unavailable and pauses; 429s never dead-letter an event.")
    netsuite_write_mode: Annotated[WriteMode, BeforeValidator(values.lowercase)] = _setting(
        "NETSUITE_WRITE_MODE", "create",
        "How sales are written, both idempotent by externalId: create (POST; a repeat is "
        "refused as 'already exists' and looked up; 1 request) or upsert (PUT eid:; 2).")
    app_id: str = _setting("TILLBRIDGE_APP_ID", "tillbridge",
                           "Faust app id: consumer group and changelog topic prefix.")
    topic_partitions: Count = _setting("TILLBRIDGE_TOPIC_PARTITIONS", 4,
                                       "Partitions of the topics tillbridge creates.")
    web_host: str = _setting("TILLBRIDGE_WEB_HOST", "127.0.0.1",
                             "Worker web server bind address (/metrics, /ready).")
    web_port: Port = _setting("TILLBRIDGE_WEB_PORT", 6066, "Worker web server port.")
    data_dir: str = _setting("TILLBRIDGE_DATA_DIR", ".tillbridge", "Worker state (tables).")
    mappings_path: str | None = _setting(
        "TILLBRIDGE_MAPPINGS", None,
        "Mappings file (store/tender -> NetSuite ids). Unset: the packaged example.")
    fetch_max_wait_ms: Count = _setting(
        "TILLBRIDGE_FETCH_MAX_WAIT_MS", 50,
        "Consumer fetch wait. Faust hard-codes 1500 ms; Tansu does not wake a waiting fetch, so "
        "each hop would add ~750 ms. Harmless on Apache Kafka (fetches return on data).")
    session_timeout_s: Seconds = _setting("TILLBRIDGE_SESSION_TIMEOUT_S", 6.0,
                                          "Consumer group session timeout.")
    rebalance_timeout_s: Seconds = _setting(
        "TILLBRIDGE_REBALANCE_TIMEOUT_S", 3.0,
        "Group rebalance timeout. Tansu makes every join wait this long: keep it short.")
    agents: Annotated[str, AfterValidator(values.check_agents)] = _setting(
        "TILLBRIDGE_AGENTS", "ingest,sink,window,lane,availability,orderstatus",
        "Agents this worker runs: ingest (decode/validate/enrich/route), sink (NetSuite, one "
        "record per event), window (routed windowed sales), lane (inventory: raw topic into "
        "its windows in one hop, in ingest's place: one worker, beside ingest), availability and "
        "orderstatus (one worker each). Split them to scale NetSuite apart from validation.")
    group_instance_id: str | None = _setting(
        "TILLBRIDGE_GROUP_INSTANCE_ID", None,
        "Static group membership (KIP-345): a stable id per worker (e.g. the pod name) lets "
        "a restarted worker take its partitions back at once instead of waiting for the "
        "old member to expire.")
    log_level: Annotated[LogLevel, BeforeValidator(values.log_level)] = _setting(
        "TILLBRIDGE_LOG_LEVEL", "warn", "Worker log level: crit, error, warn, info, debug.")
    log_format: Annotated[LogFormat, BeforeValidator(values.lowercase)] = _setting(
        "TILLBRIDGE_LOG_FORMAT", "text",
        "Worker log lines: text, or json (one object per line: time, level, logger, "
        "message, the record's ids where known, exc) for log shippers.")
    tracemalloc_frames: NonNegative = _setting(
        "TILLBRIDGE_TRACEMALLOC_FRAMES", 0,
        "Trace Python allocations with this many frames (0: off) so /debug/memory can name "
        "what grew since its baseline; costs CPU, for diagnosing a rising RSS.")
    gc_gen0_threshold: NonNegative = _setting(
        "TILLBRIDGE_GC_GEN0_THRESHOLD", 50_000,
        "Allocations between two young-generation garbage collections (Python's default is "
        "700; 0 keeps it). With windows holding thousands of decoded events, collections "
        "at 700 took ~25% of the inventory lane's CPU (see runtime/gc_tuning.py).")
    store: Annotated[str, AfterValidator(values.store_url)] = _setting(
        "TILLBRIDGE_STORE", "rocksdb://",
        "Faust table store: rocksdb:// (local RocksDB, changelog-backed) or memory://.")
    refdata_refresh_s: Seconds = _setting(
        "TILLBRIDGE_REFDATA_REFRESH_S", 300.0,
        "Incremental reference-data refresh (by lastmodifieddate) every this many seconds.")
    mappings_reload_s: Seconds = _setting(
        "TILLBRIDGE_MAPPINGS_RELOAD_S", 10.0,
        "How often the mappings file is checked for changes (hot reload).")
    lag_from_watermarks: Annotated[LagMode, BeforeValidator(values.lowercase)] = _setting(
        "TILLBRIDGE_LAG_FROM_WATERMARKS", "auto",
        "Export consumer lag from high watermarks: auto (not on Tansu, whose watermarks are "
        "wrong), on, off.")
    commit_interval_s: Seconds = _setting("TILLBRIDGE_COMMIT_INTERVAL_S", 1.0,
                                          "How often processed offsets are committed.")
    tax_tolerance_cents: NonNegative = _setting(
        "TILLBRIDGE_TAX_TOLERANCE_CENTS", 1,
        "How far (cents) a line's tax may be from its taxable amount at the store's rate "
        "before the sale is dead-lettered as tax_mismatch.")
    park_timeout_s: Seconds = _setting(
        "TILLBRIDGE_PARK_TIMEOUT_S", 86400.0,
        "How long an event whose NetSuite dependency is missing (a refund before its sale) "
        "waits parked before it is dead-lettered as orphan_dependency.")
    park_recheck_s: Seconds = _setting(
        "TILLBRIDGE_PARK_RECHECK_S", 60.0,
        "How often parked events are checked: their dependency looked up in NetSuite "
        "(released when found) and expired ones dead-lettered.")
    drain_threshold: NonNegative = _setting(
        "TILLBRIDGE_DRAIN_THRESHOLD", 200,
        "Sales in one sink batch from which they are posted through NetSuite's async batch "
        "jobs (up to 100 records per request) instead of one request each: the sink is "
        "behind (after an outage, or a burst). 0 turns the drain off.")
    drain_batch: Count = _setting(
        "TILLBRIDGE_DRAIN_BATCH", 1000,
        "Most routed events one sink batch takes when the drain is on (the backlog it can "
        "see at once).")
    double_scan_window_s: NonNegative = _setting(
        "TILLBRIDGE_DOUBLE_SCAN_WINDOW_S", 600,
        "Same basket (store, register, lines, total, tenders) under a new POS transaction id "
        "within this many seconds is flagged as a possible double-scan (still posted).")
    reconcile_drift_threshold_cents: NonNegative = _setting(
        "TILLBRIDGE_RECONCILE_DRIFT_THRESHOLD_CENTS", 0,
        "A register whose reconciliation drift (sum of its differences, POS vs NetSuite) is "
        "above this many cents is flagged (tillbridge_reconciliation_register_flagged).")
    window_s: WindowSeconds = _setting(
        "TILLBRIDGE_WINDOW_S", 3600.0,
        "Tumbling event-time window of the windowed flows (inventory): one NetSuite record "
        "per key (location) and window. At least 1 s (externalIds carry the start to the "
        "second).")
    window_grace_s: SecondsOrZero = _setting(
        "TILLBRIDGE_WINDOW_GRACE_S", 300.0,
        "How long after a window's end (in event time) its late events still join it; "
        "later ones go to the next open window, never dropped.")
    window_idle_s: SecondsOrZero = _setting(
        "TILLBRIDGE_WINDOW_IDLE_S", 60.0,
        "A key (store) quiet for this many wall-clock seconds has its windows closed by the "
        "clock once their end + grace has passed.")
    netsuite_poll_s: Seconds = _setting(
        "TILLBRIDGE_NETSUITE_POLL_S", 60.0,
        "How often NetSuite is read for availability and order status changes (by "
        "lastmodifieddate): a NetSuite change is on its topic within this + 5 s.")
    availability_pending_max_s: Seconds = _setting(
        "TILLBRIDGE_AVAILABILITY_PENDING_MAX_S", 900.0,
        "A POS sale, return or movement NetSuite still does not show this long after it was "
        "read stops moving availability at the next NetSuite read (a dead-lettered sale "
        "never reaches NetSuite).")
    window_tick_s: Seconds = _setting(
        "TILLBRIDGE_WINDOW_TICK_S", 1.0,
        "How often the window agent checks the wall clock for windows to close.")
    window_retain_s: SecondsOrZero = _setting(
        "TILLBRIDGE_WINDOW_RETAIN_S", 604800.0,
        "Closed windows ending this long (event time) before their key's latest closed "
        "window are forgotten (memory and the window book topic stay bounded); an unknown "
        "event older than that is dead-lettered as window_expired, never counted twice. "
        "0 keeps every window.")

    if not TYPE_CHECKING:  # at runtime only: type checkers keep the per-field signature
        def __init__(self, **values: Any) -> None:
            """Validate ``values`` (plus the environment inside ``from_env``); a mistake is one
            ``SettingsError`` naming the variable instead of pydantic's multi-line report."""
            try:
                super().__init__(**values)
            except ValidationError as exc:
                source = ACTIVE_SOURCE.get()
                origins = source.origins if source is not None else {}
                raise SettingsError(explain(exc, origins, type(self))) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit values first; an environment only while ``from_env`` runs.

        pydantic-settings would read ``os.environ`` (and ``.env``) on every construction;
        here ``Settings(...)`` and ``replace`` never do, so a variable exported where the
        tests run cannot change them. Its secrets-directory source is left out too: the
        ``<VARIABLE>_FILE`` source below covers Docker/Kubernetes secrets.
        """
        source = ACTIVE_SOURCE.get()
        return (init_settings,) if source is None else (init_settings, source)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Build from environment variables (``os.environ`` unless ``env`` is given);
        explicit ``overrides`` win.

        ``<VARIABLE>_FILE`` is read when ``<VARIABLE>`` is unset or empty (one trailing
        newline dropped, as ``echo`` and editors leave one). ``SettingsError`` names the
        variable and the path of a file that cannot be read, never its content. With
        ``NETSUITE_BASE_URL`` set (a real NetSuite) the credentials must be given: see
        ``check_production_credentials``.
        """
        source = EnvironmentSource(cls, os.environ if env is None else env)
        with reading(source):
            settings = cls(**overrides)
        given = set(source.origins) | {k for k, v in overrides.items() if v not in (None, "")}
        settings.check_production_credentials(given)
        return settings

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, validated again (``model_copy(update=...)`` is not)."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self)(**{**values, **changes})

    def check_production_credentials(self, given: set[str]) -> None:
        """Refuse to talk to a real NetSuite (``NETSUITE_BASE_URL`` set) with the development
        credentials: they only open the simulator, and a deployment that forgot one value
        should fail at start naming it, not with 401s later.

        ``given`` holds the fields that were set explicitly (environment, file or override).
        Without a base URL the demo and tests start the simulator, which takes the dev
        defaults.
        """
        if not self.netsuite_base_url:
            return
        if self.netsuite_auth == "tba":
            missing = [name for name in TBA_FIELDS if name not in given or not getattr(self, name)]
            why = ": the development defaults only open the simulator"
        else:
            missing = [name for name in OAUTH2_FIELDS if not getattr(self, name)]
            why = ""
        if missing:
            names = ", ".join(self.env_var(name) for name in missing)
            raise SettingsError(
                f"NETSUITE_BASE_URL is set, so NETSUITE_AUTH={self.netsuite_auth} needs "
                f"{names} given explicitly (or as <VARIABLE>{FILE_SUFFIX}){why}")

    @classmethod
    def env_var(cls, field: str) -> str:
        """The environment variable of a field, e.g. ``NETSUITE_TIMEOUT_S``."""
        return field_env(cls.model_fields[field])[0]

    @classmethod
    def is_secret(cls, field: str) -> bool:
        """Whether a field is masked by ``describe()`` and kept out of ``repr``."""
        return field_env(cls.model_fields[field])[1]

    def describe(self) -> list[tuple[str, str, str]]:
        """(env var, value with secrets masked, doc) rows."""
        rows = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            shown = MASK if self.is_secret(name) and value else str(value)
            rows.append((self.env_var(name), shown, info.description or ""))
        return rows

    def to_env(self) -> dict[str, str]:
        """Variables with which ``from_env`` in a child process rebuilds these settings.

        Holds the secrets (a child needs them): pass it to a process, never print it. A
        setting that is None becomes "" (read as unset), so a variable the parent happens
        to have cannot reach the child in its place.
        """
        return {self.env_var(name): "" if value is None else str(value)
                for name, value in ((n, getattr(self, n)) for n in type(self).model_fields)}

    @property
    def state_dir(self) -> Path:
        return Path(self.data_dir)


TBA_FIELDS = ("netsuite_consumer_key", "netsuite_consumer_secret", "netsuite_token_id",
              "netsuite_token_secret")
OAUTH2_FIELDS = ("netsuite_client_id", "netsuite_certificate_id", "netsuite_private_key_file")
