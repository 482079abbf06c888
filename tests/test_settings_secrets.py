"""Settings from ``<VARIABLE>_FILE`` (Docker/Kubernetes secrets), secrets kept out of sight,
and the login the settings choose (``NETSUITE_AUTH``), proven against the simulator."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tillbridge.connectors.netsuite import NetSuiteClient, TbaSigner
from tillbridge.connectors.netsuite.auth import Authenticator
from tillbridge.connectors.netsuite.oauth2 import TOKEN_PATH, OAuth2ClientCredentials
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.runtime.auth_config import authenticator
from tillbridge.streams.runtime.settings import Settings, SettingsError

CONSUMER_SECRET = "consumer-secret-from-a-file-7f3a"
TOKEN_SECRET = "token-secret-from-a-file-91c2"


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def key_lines(key: ec.EllipticCurvePrivateKey) -> list[str]:
    """The base64 body of the PEM: what must never be shown anywhere."""
    return key_pem(key).decode().splitlines()[1:-1]


# -- <VARIABLE>_FILE ----------------------------------------------------------------------------

def test_file_is_read_when_the_variable_is_unset(tmp_path: Path) -> None:
    s = Settings.from_env({
        "NETSUITE_CONSUMER_SECRET_FILE": write(tmp_path, "cs", CONSUMER_SECRET + "\n"),
        "NETSUITE_TOKEN_SECRET_FILE": write(tmp_path, "ts", TOKEN_SECRET + "\r\n"),
        "NETSUITE_TOKEN_ID": "",  # empty counts as unset: its file is read
        "NETSUITE_TOKEN_ID_FILE": write(tmp_path, "ti", "token-id\n\n"),
        "NETSUITE_MAX_CONCURRENCY_FILE": write(tmp_path, "mc", "7\n"),
        "NETSUITE_TIMEOUT_S_FILE": write(tmp_path, "to", "12.5"),
    })
    assert s.netsuite_consumer_secret == CONSUMER_SECRET
    assert s.netsuite_token_secret == TOKEN_SECRET
    assert s.netsuite_token_id == "token-id\n", "only one trailing newline is dropped"
    assert (s.netsuite_max_concurrency, s.netsuite_timeout_s) == (7, 12.5)


def test_the_variable_wins_over_its_file_and_overrides_win_over_both(tmp_path: Path) -> None:
    env = {"NETSUITE_CLIENT_ID": "from-env",
           "NETSUITE_CLIENT_ID_FILE": write(tmp_path, "id", "from-file")}
    assert Settings.from_env(env).netsuite_client_id == "from-env"
    assert Settings.from_env(env, netsuite_client_id="explicit").netsuite_client_id == "explicit"
    del env["NETSUITE_CLIENT_ID"]
    assert Settings.from_env(env).netsuite_client_id == "from-file"


def test_a_set_variable_means_its_file_is_never_opened(tmp_path: Path) -> None:
    """Precedence: variable, then ``<VARIABLE>_FILE``, then the default; an empty file is unset."""
    missing = str(tmp_path / "mounted-later")
    s = Settings.from_env({"NETSUITE_TOKEN_SECRET": TOKEN_SECRET,
                           "NETSUITE_TOKEN_SECRET_FILE": missing,
                           "NETSUITE_CONSUMER_SECRET_FILE": write(tmp_path, "empty", "\n")})
    assert s.netsuite_token_secret == TOKEN_SECRET
    assert s.netsuite_consumer_secret == Settings().netsuite_consumer_secret
    assert Settings.from_env({"NETSUITE_TOKEN_SECRET_FILE": ""}).netsuite_token_secret == (
        Settings().netsuite_token_secret)


def test_unreadable_files_name_the_variable_and_path_never_the_content(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-secret")
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"NETSUITE_TOKEN_SECRET_FILE": missing})
    assert str(info.value) == (f"NETSUITE_TOKEN_SECRET_FILE={missing}: cannot read the file "
                               "(No such file or directory)")
    with pytest.raises(SettingsError, match="NETSUITE_TOKEN_SECRET_FILE=.*cannot read"):
        Settings.from_env({"NETSUITE_TOKEN_SECRET_FILE": str(tmp_path)})  # a directory
    binary = write(tmp_path, "bin", b"\xffsecret-bytes\xfe")
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"NETSUITE_CONSUMER_SECRET_FILE": binary})
    assert binary in str(info.value) and "secret-bytes" not in str(info.value)
    not_int = write(tmp_path, "n", "seven-secret\n")
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"NETSUITE_MAX_CONCURRENCY_FILE": not_int})
    assert str(info.value) == (f"NETSUITE_MAX_CONCURRENCY_FILE={not_int}: the file does not "
                               "hold a valid int")
    with pytest.raises(SettingsError, match="NETSUITE_MAX_CONCURRENCY='x': expected int"):
        Settings.from_env({"NETSUITE_MAX_CONCURRENCY": "x"})


# -- secrets out of describe / repr / logs ------------------------------------------------------

def test_secrets_are_masked_and_kept_out_of_repr_and_logs(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key_file = write(tmp_path, "m2m.pem", "not shown")
    s = Settings.from_env({
        "NETSUITE_CONSUMER_SECRET_FILE": write(tmp_path, "cs", CONSUMER_SECRET),
        "NETSUITE_TOKEN_SECRET": TOKEN_SECRET, "NETSUITE_PRIVATE_KEY_FILE": key_file,
        "NETSUITE_CLIENT_ID": "client-abc"})
    rows = {env: value for env, value, _ in s.describe()}
    assert rows["NETSUITE_CONSUMER_SECRET"] == rows["NETSUITE_TOKEN_SECRET"] == "***"
    assert rows["NETSUITE_PRIVATE_KEY_FILE"] == key_file, "the path is not a secret"
    assert rows["NETSUITE_CLIENT_ID"] == "client-abc"
    caplog.set_level(logging.DEBUG)
    logging.getLogger("tillbridge.test").info("settings: %s / %r", s, s)
    for text in (repr(s), str(s), caplog.text, str(rows)):
        assert CONSUMER_SECRET not in text and TOKEN_SECRET not in text
    assert "client-abc" in caplog.text, "the settings were logged (the check is not empty)"


# -- NETSUITE_AUTH -> Authenticator -------------------------------------------------------------

def _oauth2_env(tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    return {"NETSUITE_AUTH": "OAuth2", "NETSUITE_CLIENT_ID": "client-abc",
            "NETSUITE_CERTIFICATE_ID": "cert-abc", "NETSUITE_JWT_ALGORITHM": "es256",
            "NETSUITE_PRIVATE_KEY_FILE": write(tmp_path, "m2m.pem", key_pem(key)),
            "NETSUITE_SCOPES": "rest_webservices, restlets"}


def test_auth_method_is_chosen_by_configuration(tmp_path: Path,
                                                key: ec.EllipticCurvePrivateKey) -> None:
    assert isinstance(authenticator(Settings.from_env({})), TbaSigner)
    s = Settings.from_env(_oauth2_env(tmp_path, key))
    m2m = authenticator(s, "https://1234567.suitetalk.api.netsuite.com")
    assert isinstance(m2m, OAuth2ClientCredentials)
    assert m2m.token_url == "https://1234567.suitetalk.api.netsuite.com" + TOKEN_PATH
    default_host = authenticator(s)
    assert isinstance(default_host, OAuth2ClientCredentials)
    assert default_host.token_url.startswith("https://tstdrv1234567-sb1.suitetalk.api.")
    for text in (repr(m2m), repr(s), str(s.describe())):
        assert not any(line in text for line in key_lines(key))


@pytest.mark.parametrize(("change", "message"), [
    ({"NETSUITE_AUTH": "basic"}, "NETSUITE_AUTH must be one of tba, oauth2, not 'basic'"),
    ({"NETSUITE_CLIENT_ID": ""}, "NETSUITE_AUTH=oauth2 needs NETSUITE_CLIENT_ID"),
    ({"NETSUITE_CERTIFICATE_ID": "", "NETSUITE_PRIVATE_KEY_FILE": ""},
     "needs NETSUITE_CERTIFICATE_ID, NETSUITE_PRIVATE_KEY_FILE"),
    ({"NETSUITE_JWT_ALGORITHM": "RS256"}, "NETSUITE_JWT_ALGORITHM must be one of PS256, ES256"),
    ({"NETSUITE_SCOPES": " , "}, "NETSUITE_SCOPES is empty"),
    ({"NETSUITE_PRIVATE_KEY_FILE": "no-such-dir/m2m.pem"},
     "NETSUITE_PRIVATE_KEY_FILE=no-such-dir/m2m.pem: cannot read the file"),
    ({"NETSUITE_JWT_ALGORITHM": "PS256"}, "PS256 needs an RSA key"),
])
def test_oauth2_configuration_mistakes_are_named(
        tmp_path: Path, key: ec.EllipticCurvePrivateKey, change: dict[str, str],
        message: str) -> None:
    env = {**_oauth2_env(tmp_path, key), **change}
    with pytest.raises(SettingsError) as info:
        authenticator(Settings.from_env(env))
    assert message in str(info.value)
    assert not any(line in str(info.value) for line in key_lines(key))


def test_a_key_file_that_is_not_a_key_is_not_quoted(tmp_path: Path,
                                                    key: ec.EllipticCurvePrivateKey) -> None:
    env = _oauth2_env(tmp_path, key)
    env["NETSUITE_PRIVATE_KEY_FILE"] = write(tmp_path, "oops.pem", "TOP-SECRET-PASSWORD\n")
    with pytest.raises(SettingsError) as info:
        authenticator(Settings.from_env(env))
    assert env["NETSUITE_PRIVATE_KEY_FILE"] in str(info.value)
    assert "TOP-SECRET" not in str(info.value)


# -- the whole chain against the simulator ------------------------------------------------------

async def _get(base_url: str, auth: Authenticator) -> str:
    async with NetSuiteClient(base_url, auth) as client:
        return (await client.get("customer", "5001"))["id"]


def test_file_secrets_log_in_to_the_simulator_either_way(
        sim: SimServer, tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """TBA secrets from files sign correctly (newline dropped); oauth2 from files buys a token."""
    dev = sim.credentials
    tba = Settings.from_env({
        "NETSUITE_CONSUMER_SECRET_FILE": write(tmp_path, "cs", dev.consumer_secret + "\n"),
        "NETSUITE_TOKEN_SECRET_FILE": write(tmp_path, "ts", dev.token_secret + "\n")})
    assert asyncio.run(_get(sim.base_url, authenticator(tba))) == "5001"
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    httpx.post(sim.base_url + "/__sim/oauth2", json={
        "client_id": "client-abc", "certificate_id": "cert-abc",
        "public_key_pem": public.decode()}).raise_for_status()
    env = _oauth2_env(tmp_path, key)
    env["NETSUITE_CLIENT_ID_FILE"] = write(tmp_path, "cid", env.pop("NETSUITE_CLIENT_ID") + "\n")
    m2m = Settings.from_env(env).replace(netsuite_base_url=sim.base_url)
    assert asyncio.run(_get(sim.base_url, authenticator(m2m))) == "5001"
    auth = httpx.get(sim.base_url + "/__sim/stats").json()["auth"]
    assert auth["tba"]["accepted"] == 1 and auth["bearer"]["accepted"] == 1
    assert auth["tokens"]["issued"] == 1
