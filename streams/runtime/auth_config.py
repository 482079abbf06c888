"""The NetSuite login the settings ask for: TBA (default) or OAuth 2.0 client credentials.

Kept apart from the pipeline so every NetSuite client of a process (the sink, preflight)
logs in the same way, and so a configuration mistake is found at start-up with a message
that names the variable and the file, never a secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tillbridge.connectors.netsuite.auth import (
    Authenticator,
    NetSuiteCredentials,
    TbaSigner,
    default_base_url,
)
from tillbridge.connectors.netsuite.oauth2 import OAuth2ClientCredentials, OAuth2Credentials
from tillbridge.streams.runtime.settings import FILE_SUFFIX, Settings, SettingsError


def authenticator(settings: Settings, base_url: str | None = None,
                  **oauth2_options: Any) -> Authenticator:
    """The ``Authenticator`` for ``NETSUITE_AUTH``.

    OAuth 2.0 buys its tokens on the REST host (``base_url``, else ``NETSUITE_BASE_URL``,
    else the account's default host); ``oauth2_options`` go to ``OAuth2ClientCredentials``
    (a test passes a clock or a transport).
    """
    if settings.netsuite_auth == "tba":  # the settings hold a valid, lower-case method
        return TbaSigner(tba_credentials(settings))
    url = (base_url or settings.netsuite_base_url
           or default_base_url(settings.netsuite_account_id))
    oauth2_options.setdefault("timeout", settings.netsuite_timeout_s)
    credentials = oauth2_credentials(settings)
    try:
        return OAuth2ClientCredentials.for_base_url(credentials, url, **oauth2_options)
    except ValueError as exc:  # the key does not fit the algorithm (message has no key text)
        raise SettingsError(f"NETSUITE_PRIVATE_KEY_FILE={settings.netsuite_private_key_file}: "
                            f"{exc}") from None


def tba_credentials(settings: Settings) -> NetSuiteCredentials:
    """TBA consumer + token of the integration, from the settings."""
    s = settings
    return NetSuiteCredentials(s.netsuite_account_id, s.netsuite_consumer_key,
                               s.netsuite_consumer_secret, s.netsuite_token_id,
                               s.netsuite_token_secret)


def oauth2_credentials(settings: Settings) -> OAuth2Credentials:
    """The M2M mapping from the settings; the private key is read from its file here."""
    s = settings
    required = {"NETSUITE_CLIENT_ID": s.netsuite_client_id,
                "NETSUITE_CERTIFICATE_ID": s.netsuite_certificate_id,
                "NETSUITE_PRIVATE_KEY_FILE": s.netsuite_private_key_file}
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise SettingsError(f"NETSUITE_AUTH=oauth2 needs {', '.join(missing)} (or "
                            f"{missing[0]}{FILE_SUFFIX})")
    scopes = tuple(part.strip() for part in s.netsuite_scopes.split(",") if part.strip())
    if not scopes:
        raise SettingsError("NETSUITE_SCOPES is empty: NetSuite needs rest_webservices")
    path = str(s.netsuite_private_key_file)
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise SettingsError(f"NETSUITE_PRIVATE_KEY_FILE={path}: cannot read the file "
                            f"({why})") from None
    return OAuth2Credentials(s.netsuite_account_id, str(s.netsuite_client_id),
                             str(s.netsuite_certificate_id), pem,
                             s.netsuite_jwt_algorithm, scopes)
