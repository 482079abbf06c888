"""TBA signing (client) and verification (simulator) against Oracle's published vector."""

from __future__ import annotations

import pytest

from tillbridge.connectors.netsuite.auth import NetSuiteCredentials, TbaSigner
from tillbridge.devstack.netsuite_sim.auth import AuthFailure, TbaVerifier

# Oracle's REST TBA sample (reference section 4.2).
VECTOR_URL = "https://123456.suitetalk.api.netsuite.com/services/rest/record/v1/employee/40"
VECTOR_CREDS = NetSuiteCredentials(
    account_id="123456",
    consumer_key="ef40afdd8abaac111b13825dd5e5e2ddddb44f86d5a0dd6dcf38c20aae6b67e4",
    consumer_secret="d26ad321a4b2f23b0741c8d38392ce01c3e23e109df6c96eac6d099e9ab9e8b5",
    token_id="2b0ce516420110bcbd36b69e99196d1b7f6de3c6234c5afb799b73d87569f5cc",
    token_secret="c29a677df7d5439a458c063654187e3d678d73aca8e3c9d8bea1478a3eb0d295",
)
VECTOR_NONCE = "fjaLirsIcCGVZWzBX0pg"
VECTOR_TS = "1508242306"
VECTOR_SIG = "B5OIWznZ2YP0OB7VrJrGkYsTh%2B8H%2B5T9Hag%2Bo92q0zY%3D"


def _vector_header(creds: NetSuiteCredentials = VECTOR_CREDS) -> str:
    return TbaSigner(creds).authorization("GET", VECTOR_URL, nonce=VECTOR_NONCE,
                                          timestamp=VECTOR_TS)


def test_signer_reproduces_oracle_vector() -> None:
    header = _vector_header()
    assert header.startswith('OAuth realm="123456"')
    assert f'oauth_signature="{VECTOR_SIG}"' in header
    assert 'oauth_signature_method="HMAC-SHA256"' in header
    assert 'oauth_version="1.0"' in header


def test_verifier_accepts_vector_then_rejects_replay() -> None:
    verifier = TbaVerifier(VECTOR_CREDS)
    headers = {"authorization": _vector_header()}
    verifier.verify("GET", VECTOR_URL, headers, now=int(VECTOR_TS) + 10)
    with pytest.raises(AuthFailure, match="NonceUsed"):
        verifier.verify("GET", VECTOR_URL, headers, now=int(VECTOR_TS) + 11)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"consumer_secret": "0" * 64}, "InvalidSignature"),
        ({"token_secret": "0" * 64}, "InvalidSignature"),
        ({"consumer_key": "f" * 64}, "consumer_key_unknown"),
        ({"token_id": "f" * 64}, "token_rejected"),
        ({"account_id": "654321"}, "InvalidAccount"),
    ],
)
def test_verifier_rejects_wrong_credentials(change: dict[str, str], reason: str) -> None:
    signed_with = NetSuiteCredentials(**{**VECTOR_CREDS.__dict__, **change})
    with pytest.raises(AuthFailure, match=reason):
        TbaVerifier(VECTOR_CREDS).verify("GET", VECTOR_URL,
                                         {"authorization": _vector_header(signed_with)},
                                         now=int(VECTOR_TS))


def test_verifier_rejects_stale_timestamp_and_other_url() -> None:
    verifier = TbaVerifier(VECTOR_CREDS)
    headers = {"authorization": _vector_header()}
    with pytest.raises(AuthFailure, match="InvalidTimestamp"):
        verifier.verify("GET", VECTOR_URL, headers, now=int(VECTOR_TS) + 301)
    with pytest.raises(AuthFailure, match="InvalidSignature"):
        verifier.verify("GET", VECTOR_URL + "?limit=5", headers, now=int(VECTOR_TS))
    with pytest.raises(AuthFailure, match="InvalidSignature"):
        verifier.verify("DELETE", VECTOR_URL, headers, now=int(VECTOR_TS))


def test_query_parameters_are_signed() -> None:
    url = VECTOR_URL + "?limit=10&offset=20"
    header = TbaSigner(VECTOR_CREDS).authorization("GET", url, nonce=VECTOR_NONCE,
                                                   timestamp=VECTOR_TS)
    assert f'oauth_signature="{VECTOR_SIG}"' not in header
    TbaVerifier(VECTOR_CREDS).verify("GET", url, {"authorization": header}, now=int(VECTOR_TS))


def test_secrets_not_in_repr() -> None:
    text = repr(VECTOR_CREDS) + repr(TbaSigner(VECTOR_CREDS))
    assert VECTOR_CREDS.consumer_secret not in text
    assert VECTOR_CREDS.token_secret not in text


def test_from_env_reads_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETSUITE_ACCOUNT_ID", "7654321_SB1")
    monkeypatch.setenv("NETSUITE_TOKEN_SECRET", "tsecret")
    creds = NetSuiteCredentials.from_env()
    assert creds.account_id == "7654321_SB1"
    assert creds.token_secret == "tsecret"
    assert creds.consumer_key == NetSuiteCredentials.dev().consumer_key


def test_verifier_remembers_only_the_replay_window() -> None:
    """Nonces older than the window are forgotten as time moves on (memory stays bounded
    at a steady request rate), while a replay inside the window is still refused."""
    verifier, signer = TbaVerifier(VECTOR_CREDS), TbaSigner(VECTOR_CREDS)
    start = int(VECTOR_TS)
    for i in range(1500):
        ts = str(start + i)
        header = signer.authorization("GET", VECTOR_URL, nonce=f"nonce{i}", timestamp=ts)
        verifier.verify("GET", VECTOR_URL, {"authorization": header}, now=start + i)
    assert len(verifier._seen) <= 2 * 300 + 1  # noqa: SLF001 - the bound is the point
    with pytest.raises(AuthFailure, match="NonceUsed"):
        verifier.verify("GET", VECTOR_URL, {"authorization": header}, now=start + 1500)
