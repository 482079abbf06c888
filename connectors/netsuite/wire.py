"""JSON for NetSuite with exact money: Decimals become JSON number literals, never floats.

The standard encoder has no hook that emits raw number text, so Decimals are written as
tagged strings and the tags are stripped in one pass over the output.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

_TAG = "\x00dec:"
_TAGGED = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"')


def _default(obj: object) -> object:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"cannot send non-finite amount {obj} to NetSuite")
        return _TAG + format(obj, "f")
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def dumps(body: Any) -> bytes:
    """Serialize a request body; Decimal amounts are written exactly as numbers."""
    return _TAGGED.sub(r"\1", json.dumps(body, default=_default, separators=(",", ":"))).encode()
