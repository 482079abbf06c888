"""A worker configured for OAuth 2.0 M2M posts every sale with Bearer tokens only, renews
them as they expire, reads its client id from a ``_FILE``, and never logs the key or a token."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.factories import make_sale
from tests.integration.helpers import Outcomes, encode_sales, produce, sim_stats
from tillbridge.devstack.stack import Stack, WorkerProcess

pytestmark = pytest.mark.integration

SALES = 12


def test_worker_posts_with_oauth2_and_keeps_key_and_tokens_out_of_its_log(
        stack: Stack, tmp_path: Path) -> None:
    s = stack.settings
    assert stack.sim is not None, "the in-process simulator holds the issued tokens"
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    httpx.post(f"{s.netsuite_base_url}/__sim/oauth2", json={
        "client_id": "tillbridge-m2m", "certificate_id": "cert-worker",
        "public_key_pem": public.decode()}).raise_for_status()
    # Tokens live 2 s here, so the worker has to renew them while it works.
    httpx.post(f"{s.netsuite_base_url}/__sim/config",
               json={"oauth2_token_ttl_s": 2}).raise_for_status()
    key_file = tmp_path / "m2m.pem"
    key_file.write_bytes(pem)
    client_id_file = tmp_path / "client-id"
    client_id_file.write_text("tillbridge-m2m\n")
    settings = s.replace(
        netsuite_auth="oauth2", netsuite_client_id=None,
        netsuite_certificate_id="cert-worker", netsuite_private_key_file=str(key_file),
        netsuite_jwt_algorithm="ES256", log_level="info")
    sales = [make_sale(pos_transaction_id=f"M2M-{i:04d}", event_id=f"e-m2m-{i}")
             for i in range(SALES)]
    out = Outcomes(s)
    worker = WorkerProcess(settings, NETSUITE_CLIENT_ID_FILE=str(client_id_file))
    with worker:
        produce(s, encode_sales(s, sales[:SALES // 2]))
        out.wait(SALES // 2)
        time.sleep(2.2)  # outlive the token in hand: the second half needs a renewed one
        produce(s, encode_sales(s, sales[SALES // 2:]))
        out.wait(SALES)
    out.close()
    assert out.summary() == {"result:posted": SALES}
    stats = sim_stats(s)
    assert stats["records"]["cashSale"]["created"] == SALES
    auth = stats["auth"]
    assert auth["tba"] == {"accepted": 0, "refused": 0}, "no request was signed with TBA"
    assert auth["bearer"]["accepted"] > SALES
    assert auth["tokens"]["issued"] >= 2 and auth["tokens"]["refused"] == {}

    log = worker.log_path.read_text(errors="replace")
    assert "reference data v1" in log, "the worker's log was read (info level)"
    assert log.count("/services/rest/auth/oauth2/v1/token") >= 2, "token requests were logged"
    tokens = list(stack.sim.state.auth.m2m.tokens)
    assert len(tokens) == auth["tokens"]["issued"]
    body = pem.decode().splitlines()[1:-1]
    for secret in [*body, *tokens]:
        assert secret not in log
