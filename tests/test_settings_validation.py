"""The settings refuse a bad value at start with one line naming the variable, refuse to point
a production worker at NetSuite with the development credentials, and never read an
environment they were not asked to read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tillbridge.connectors.netsuite import auth
from tillbridge.devstack.stack import settings_env
from tillbridge.streams.runtime.settings import MASK, Settings, SettingsError

PROD = "https://1234567-sb1.suitetalk.api.netsuite.com"
TBA_VARS = ("NETSUITE_CONSUMER_KEY", "NETSUITE_CONSUMER_SECRET", "NETSUITE_TOKEN_ID",
            "NETSUITE_TOKEN_SECRET")
TBA_GIVEN = {var: f"prod-{var.lower()}" for var in TBA_VARS}


def error(env: dict[str, str], **overrides: object) -> str:
    """The message ``from_env`` fails with (it must fail)."""
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env, **overrides)
    return str(info.value)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- one clear line per invalid value -----------------------------------------------------------

@pytest.mark.parametrize(("env", "message"), [
    ({"NETSUITE_AUTH": "basic"}, "NETSUITE_AUTH must be one of tba, oauth2, not 'basic'"),
    ({"NETSUITE_WRITE_MODE": "put"},
     "NETSUITE_WRITE_MODE must be one of create, upsert, not 'put'"),
    ({"TILLBRIDGE_LOG_LEVEL": "verbose"},
     "TILLBRIDGE_LOG_LEVEL must be one of crit, error, warn, info, debug, not 'verbose'"),
    ({"TILLBRIDGE_LAG_FROM_WATERMARKS": "yes"},
     "TILLBRIDGE_LAG_FROM_WATERMARKS must be one of auto, on, off, not 'yes'"),
    ({"NETSUITE_JWT_ALGORITHM": "RS256"},
     "NETSUITE_JWT_ALGORITHM must be one of PS256, ES256, not 'RS256'"),
    ({"TILLBRIDGE_STORE": "redis://cache"},
     "TILLBRIDGE_STORE='redis://cache': must be rocksdb:// or memory://"),
    ({"TILLBRIDGE_STORE": "rocksdb"}, "TILLBRIDGE_STORE='rocksdb': must be rocksdb:// or memory://"),
    ({"NETSUITE_TIMEOUT_S": "-1"}, "NETSUITE_TIMEOUT_S=-1: must be > 0"),
    ({"NETSUITE_TIMEOUT_S": "inf"}, "NETSUITE_TIMEOUT_S='inf': must be a finite number"),
    ({"NETSUITE_TIMEOUT_S": "30s"}, "NETSUITE_TIMEOUT_S='30s': expected float"),
    ({"TILLBRIDGE_WEB_PORT": "http"}, "TILLBRIDGE_WEB_PORT='http': expected int"),
    ({"TILLBRIDGE_WEB_PORT": "70000"}, "TILLBRIDGE_WEB_PORT=70000: must be <= 65535"),
    ({"TILLBRIDGE_WEB_PORT": "0"}, "TILLBRIDGE_WEB_PORT=0: must be >= 1"),
    ({"TILLBRIDGE_WEB_PORT": "-80"}, "TILLBRIDGE_WEB_PORT=-80: must be >= 1"),
    ({"TILLBRIDGE_DRAIN_THRESHOLD": "-1"}, "TILLBRIDGE_DRAIN_THRESHOLD=-1: must be >= 0"),
    ({"TILLBRIDGE_TAX_TOLERANCE_CENTS": "-2"}, "TILLBRIDGE_TAX_TOLERANCE_CENTS=-2: must be >= 0"),
])
def test_an_invalid_value_is_one_line_naming_the_variable(env: dict[str, str],
                                                         message: str) -> None:
    assert error(env) == message


@pytest.mark.parametrize("var", [
    "NETSUITE_TIMEOUT_S", "NETSUITE_BREAKER_COOLDOWN_S", "NETSUITE_THROTTLE_BUDGET_S",
    "TILLBRIDGE_SESSION_TIMEOUT_S", "TILLBRIDGE_REBALANCE_TIMEOUT_S",
    "TILLBRIDGE_REFDATA_REFRESH_S", "TILLBRIDGE_MAPPINGS_RELOAD_S", "TILLBRIDGE_COMMIT_INTERVAL_S",
    "TILLBRIDGE_PARK_TIMEOUT_S", "TILLBRIDGE_PARK_RECHECK_S", "TILLBRIDGE_FETCH_MAX_WAIT_MS",
    "NETSUITE_MAX_CONCURRENCY", "NETSUITE_MAX_ATTEMPTS", "NETSUITE_BREAKER_FAILURES",
    "TILLBRIDGE_TOPIC_PARTITIONS", "TILLBRIDGE_DRAIN_BATCH",
])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_timeouts_intervals_and_counts_must_be_positive(var: str, value: str) -> None:
    assert error({var: value}) == f"{var}={value}: must be > 0"


def test_zero_where_zero_means_off_or_exact() -> None:
    s = Settings.from_env({"TILLBRIDGE_DRAIN_THRESHOLD": "0", "TILLBRIDGE_TAX_TOLERANCE_CENTS": "0",
                           "TILLBRIDGE_DOUBLE_SCAN_WINDOW_S": "0", "TILLBRIDGE_WEB_PORT": "65535"})
    assert (s.drain_threshold, s.tax_tolerance_cents, s.double_scan_window_s) == (0, 0, 0)
    assert s.web_port == 65535


def test_choices_ignore_case_and_are_stored_in_their_canonical_form() -> None:
    s = Settings.from_env({"NETSUITE_AUTH": " OAuth2 ", "NETSUITE_JWT_ALGORITHM": "es256",
                           "NETSUITE_WRITE_MODE": "UPSERT", "TILLBRIDGE_LOG_LEVEL": "WARNING",
                           "TILLBRIDGE_LAG_FROM_WATERMARKS": "Off",
                           "TILLBRIDGE_STORE": "memory://"})
    assert (s.netsuite_auth, s.netsuite_jwt_algorithm, s.netsuite_write_mode) == (
        "oauth2", "ES256", "upsert")
    assert (s.log_level, s.lag_from_watermarks, s.store) == ("warn", "off", "memory://")
    assert Settings(log_level="critical").log_level == "crit"  # type: ignore[arg-type]


def test_several_mistakes_are_still_one_line_naming_each_variable() -> None:
    message = error({"NETSUITE_TIMEOUT_S": "0", "TILLBRIDGE_WEB_PORT": "http",
                     "NETSUITE_AUTH": "basic"})
    assert "\n" not in message
    for part in ("NETSUITE_AUTH must be one of", "NETSUITE_TIMEOUT_S=0: must be > 0",
                 "TILLBRIDGE_WEB_PORT='http': expected int"):
        assert part in message
    assert issubclass(SettingsError, ValueError)


def test_a_bad_value_from_a_file_names_the_file_never_the_content(tmp_path: Path) -> None:
    auth_file = write(tmp_path, "auth", "hunter2-not-a-method\n")
    assert error({"NETSUITE_AUTH_FILE": auth_file}) == (
        f"NETSUITE_AUTH_FILE={auth_file}: must be one of tba, oauth2")
    timeout_file = write(tmp_path, "timeout", "-1\n")
    assert error({"NETSUITE_TIMEOUT_S_FILE": timeout_file}) == (
        f"NETSUITE_TIMEOUT_S_FILE={timeout_file}: must be > 0")
    assert "hunter2" not in error({"NETSUITE_AUTH_FILE": auth_file})


def test_explicit_construction_and_replace_are_checked_the_same_way() -> None:
    with pytest.raises(SettingsError, match=r"^NETSUITE_TIMEOUT_S=-1: must be > 0$"):
        Settings(netsuite_timeout_s=-1)
    with pytest.raises(SettingsError, match=r"^TILLBRIDGE_WEB_PORT=0: must be >= 1$"):
        Settings().replace(web_port=0)
    with pytest.raises(SettingsError, match="NETSUITE_AUTH must be one of tba, oauth2, not 'x'"):
        Settings().replace(netsuite_auth="x")
    with pytest.raises(SettingsError, match=r"^unknown setting 'netsuite_timeout'$"):
        Settings().replace(netsuite_timeout=5)
    with pytest.raises(SettingsError, match=r"^unknown setting 'bogus'$"):
        Settings.from_env({}, bogus=1)


def test_replace_keeps_the_other_values_and_the_original() -> None:
    s = Settings.from_env({"NETSUITE_TIMEOUT_S": "12", "TILLBRIDGE_APP_ID": "a"})
    t = s.replace(app_id="b")
    assert (t.app_id, t.netsuite_timeout_s, s.app_id) == ("b", 12.0, "a")
    with pytest.raises(ValueError):
        s.app_id = "c"  # type: ignore[misc]  # frozen: a worker's settings do not drift


# -- a production worker gives its credentials --------------------------------------------------

@pytest.mark.parametrize("left_out", [(), ("NETSUITE_CONSUMER_KEY",),
                                      ("NETSUITE_CONSUMER_SECRET", "NETSUITE_TOKEN_SECRET"),
                                      TBA_VARS])
def test_production_tba_needs_the_four_values_given(left_out: tuple[str, ...]) -> None:
    env = {"NETSUITE_BASE_URL": PROD, **{k: v for k, v in TBA_GIVEN.items() if k not in left_out}}
    if not left_out:
        s = Settings.from_env(env)
        assert (s.netsuite_consumer_key, s.netsuite_token_secret) == (
            TBA_GIVEN["NETSUITE_CONSUMER_KEY"], TBA_GIVEN["NETSUITE_TOKEN_SECRET"])
        return
    message = error(env)
    assert message.startswith("NETSUITE_BASE_URL is set, so NETSUITE_AUTH=tba needs "
                              f"{', '.join(left_out)} given explicitly")
    assert "development" in message
    for var in set(TBA_VARS) - set(left_out):
        assert var not in message
    for value in TBA_GIVEN.values():
        assert value not in message


def test_production_tba_values_may_come_from_files_or_overrides(tmp_path: Path) -> None:
    env = {"NETSUITE_BASE_URL": PROD, "NETSUITE_CONSUMER_KEY": "ck",
           "NETSUITE_CONSUMER_SECRET_FILE": write(tmp_path, "cs", "cs-from-file\n"),
           "NETSUITE_TOKEN_ID": "", "NETSUITE_TOKEN_ID_FILE": write(tmp_path, "ti", "ti\n")}
    s = Settings.from_env(env, netsuite_token_secret="ts")
    assert (s.netsuite_consumer_secret, s.netsuite_token_id, s.netsuite_token_secret) == (
        "cs-from-file", "ti", "ts")
    # Given is given, even when it is the simulator's value (the dev stack passes them so).
    dev = {"NETSUITE_BASE_URL": "http://127.0.0.1:9",
           "NETSUITE_CONSUMER_KEY": auth.DEV_CONSUMER_KEY,
           "NETSUITE_CONSUMER_SECRET": auth.DEV_CONSUMER_SECRET,
           "NETSUITE_TOKEN_ID": auth.DEV_TOKEN_ID, "NETSUITE_TOKEN_SECRET": auth.DEV_TOKEN_SECRET}
    assert Settings.from_env(dev).netsuite_token_id == auth.DEV_TOKEN_ID
    # An empty file is no value.
    env["NETSUITE_CONSUMER_SECRET_FILE"] = write(tmp_path, "empty", "\n")
    assert "needs NETSUITE_CONSUMER_SECRET given" in error(env, netsuite_token_secret="ts")


def test_production_oauth2_needs_client_certificate_and_key(tmp_path: Path) -> None:
    key_file = write(tmp_path, "m2m.pem", "not read here")
    full = {"NETSUITE_BASE_URL": PROD, "NETSUITE_AUTH": "oauth2", "NETSUITE_CLIENT_ID": "client",
            "NETSUITE_CERTIFICATE_ID": "cert", "NETSUITE_PRIVATE_KEY_FILE": key_file}
    s = Settings.from_env(full)  # the TBA values are not needed for oauth2
    assert (s.netsuite_client_id, s.netsuite_private_key_file) == ("client", key_file)
    for var in ("NETSUITE_CLIENT_ID", "NETSUITE_CERTIFICATE_ID", "NETSUITE_PRIVATE_KEY_FILE"):
        env = {k: v for k, v in full.items() if k != var}
        assert error(env) == (f"NETSUITE_BASE_URL is set, so NETSUITE_AUTH=oauth2 needs {var} "
                              "given explicitly (or as <VARIABLE>_FILE)")
    assert "NETSUITE_CLIENT_ID, NETSUITE_CERTIFICATE_ID, NETSUITE_PRIVATE_KEY_FILE" in error(
        {"NETSUITE_BASE_URL": PROD, "NETSUITE_AUTH": "oauth2"})
    by_file = {**full, "NETSUITE_CLIENT_ID": "",
               "NETSUITE_CLIENT_ID_FILE": write(tmp_path, "cid", "client-from-file\n")}
    assert Settings.from_env(by_file).netsuite_client_id == "client-from-file"


def test_without_a_base_url_the_dev_credentials_are_the_defaults() -> None:
    s = Settings.from_env({})
    assert s.netsuite_base_url is None
    assert (s.netsuite_account_id, s.netsuite_consumer_key, s.netsuite_consumer_secret,
            s.netsuite_token_id, s.netsuite_token_secret) == (
        auth.DEV_ACCOUNT_ID, auth.DEV_CONSUMER_KEY, auth.DEV_CONSUMER_SECRET, auth.DEV_TOKEN_ID,
        auth.DEV_TOKEN_SECRET)
    assert Settings.from_env({"NETSUITE_AUTH": "oauth2"}).netsuite_client_id is None


def test_a_worker_started_by_the_dev_stack_passes_the_rule() -> None:
    """stack.py starts workers with the simulator's URL: the child gets every value, the
    credentials included, and rebuilds exactly the parent's settings."""
    parent = Settings(netsuite_base_url="http://127.0.0.1:8000", group_instance_id=None)
    env = settings_env(parent)
    assert {env[var] for var in TBA_VARS} == {auth.DEV_CONSUMER_KEY, auth.DEV_CONSUMER_SECRET,
                                              auth.DEV_TOKEN_ID, auth.DEV_TOKEN_SECRET}
    assert Settings.from_env(env) == parent
    assert env["TILLBRIDGE_GROUP_INSTANCE_ID"] == "", "None is passed as unset"


# -- no environment unless asked ---------------------------------------------------------------

def test_ambient_variables_reach_only_from_env_without_a_mapping(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "ci-broker:9092")
    monkeypatch.setenv("NETSUITE_TIMEOUT_S", "7")
    monkeypatch.setenv("NETSUITE_BASE_URL", PROD)
    monkeypatch.setenv("NETSUITE_TOKEN_SECRET_FILE", str(tmp_path / "not-there"))
    for s in (Settings(), Settings.from_env({}), Settings.from_env({}).replace(app_id="x"),
              Settings(app_id="y").replace(web_port=7000)):
        assert (s.kafka_bootstrap_servers, s.netsuite_timeout_s, s.netsuite_base_url) == (
            None, 30.0, None)
    monkeypatch.delenv("NETSUITE_BASE_URL")
    monkeypatch.delenv("NETSUITE_TOKEN_SECRET_FILE")
    read = Settings.from_env()
    assert (read.kafka_bootstrap_servers, read.netsuite_timeout_s) == ("ci-broker:9092", 7.0)


def test_a_settings_value_in_the_child_wins_over_the_parents_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The dev stack starts children with ``{**os.environ, **settings_env(...)}``: a setting
    that is None must not be replaced by whatever the parent's environment holds."""
    monkeypatch.setenv("TILLBRIDGE_MAPPINGS", "/ci/leftover/mappings.json")
    child = Settings.from_env({**os.environ, **settings_env(Settings())})
    assert child.mappings_path is None


# -- secrets out of sight -----------------------------------------------------------------------

def test_explicit_secrets_are_masked_and_absent_from_repr_and_errors() -> None:
    s = Settings(netsuite_consumer_secret="cs-explicit-5e1", netsuite_token_secret="ts-exp-77a")
    rows = {env: value for env, value, _ in s.describe()}
    assert rows["NETSUITE_CONSUMER_SECRET"] == rows["NETSUITE_TOKEN_SECRET"] == MASK
    for text in (repr(s), str(s), str(rows)):
        assert "cs-explicit-5e1" not in text and "ts-exp-77a" not in text
    assert "NETSUITE_TOKEN_SECRET" in rows and rows["NETSUITE_TOKEN_ID"] == auth.DEV_TOKEN_ID
    with pytest.raises(SettingsError) as info:
        Settings(netsuite_token_secret=123456789)  # type: ignore[arg-type]
    assert str(info.value) == "NETSUITE_TOKEN_SECRET: expected str"


def test_describe_rows_follow_the_declaration_with_docs() -> None:
    rows = Settings().describe()
    assert [env for env, _, _ in rows][:3] == ["KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL",
                                               "NETSUITE_ACCOUNT_ID"]
    assert ("NETSUITE_TIMEOUT_S", "30.0", "Per-request timeout.") in rows
    assert rows[0][:2] == ("KAFKA_BOOTSTRAP_SERVERS", "None")
    assert all(doc for _, _, doc in rows)
    assert len(rows) == len({env for env, _, _ in rows}) == len(Settings.model_fields)
