"""Avro schemas of the POS event families.

The ``.avsc`` files ship as package data, so code finds them through
:mod:`importlib.resources` whether tillbridge runs from a checkout, an editable
install or a wheel; nothing here depends on the working directory.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

#: Every schema file of this package, one per POS event family.
SCHEMA_FILES: tuple[str, ...] = (
    "sale.avsc",
    "payment.avsc",
    "return.avsc",
    "customer.avsc",
    "inventory.avsc",
    "settlement.avsc",
    "omnichannel.avsc",
    "availability.avsc",
)


@cache
def schema_text(file_name: str) -> str:
    """Raw text of a schema file, as registered with the schema registry (cached)."""
    if file_name not in SCHEMA_FILES:
        raise KeyError(f"unknown schema file {file_name!r}; expected one of {SCHEMA_FILES}")
    return resources.files(__name__).joinpath(file_name).read_text(encoding="utf-8")


def load_schema(file_name: str) -> dict[str, Any]:
    """Parsed JSON of a schema file (a fresh dict each call, so callers may mutate it)."""
    return json.loads(schema_text(file_name))
