"""Value types and checks of the settings object (``settings.py``).

The checks live in the annotations, so every way in (environment, file, explicit
construction, ``replace``) is held to them, and a bad value is one ``SettingsError`` line
naming its variable.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

STORE_SCHEMES = ("rocksdb", "memory")
AGENTS = ("ingest", "sink", "window", "lane", "availability", "orderstatus")

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(gt=0)]
NonNegative = Annotated[int, Field(ge=0)]
SecondsOrZero = Annotated[float, Field(ge=0, allow_inf_nan=False)]
WindowSeconds = Annotated[float, Field(ge=1, allow_inf_nan=False)]
Port = Annotated[int, Field(ge=1, le=65535)]


def lowercase(value: object) -> object:
    """Choices are matched case-insensitively (``OAuth2`` is ``oauth2``), as they always were."""
    return value.strip().lower() if isinstance(value, str) else value


def uppercase(value: object) -> object:
    """JWT algorithm names are upper case (``es256`` is ``ES256``)."""
    return value.strip().upper() if isinstance(value, str) else value


_LOG_LEVEL_ALIASES = {"warning": "warn", "critical": "crit"}


def log_level(value: object) -> object:
    """Python's spellings (warning, critical) mean the documented short names."""
    value = lowercase(value)
    return _LOG_LEVEL_ALIASES.get(value, value) if isinstance(value, str) else value


def store_url(value: str) -> str:
    """Faust would only fail on an unknown store once the worker builds its tables."""
    scheme, sep, _ = value.partition("://")
    if not sep or scheme.lower() not in STORE_SCHEMES:
        raise ValueError(f"must be {' or '.join(s + '://' for s in STORE_SCHEMES)}")
    return value


def check_agents(value: str) -> str:
    """Known agent names only, and ``lane`` beside ``ingest``: the lane reads the raw
    inventory topic in place of ingest, which then leaves inventory alone. A lane in a
    worker without ingest would read inventory while other workers' ingest still routes it
    to the window agent: every movement counted twice."""
    names = [a.strip() for a in value.split(",") if a.strip()]
    unknown = [a for a in names if a not in AGENTS]
    if unknown:
        raise ValueError(f"unknown agent {', '.join(unknown)} (known: {', '.join(AGENTS)})")
    if "lane" in names and "ingest" not in names:
        raise ValueError("lane must run in the worker that runs ingest (it reads inventory "
                         "in ingest's place); without ingest, leave lane out")
    return value
