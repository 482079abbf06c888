"""The demo's NetSuite account: the packaged sandbox with store S004 on a SuiteTax subsidiary.

NetSuite accounts compute tax one of two ways, per subsidiary (README "Tax"): legacy tax
codes, or SuiteTax details. The packaged sandbox and mappings are all legacy; the demo's day
should book both, so when the demo starts the simulator itself it gives it this account:
a second subsidiary (``2``, SuiteTax) holding S004's location, and mappings that put S004 on
it with the ``suitetax`` model. Everything else is the packaged example.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

SUITETAX_STORE = "S004"
SUITETAX_SUBSIDIARY = "2"
TAX_TYPE = "13"


def _packaged(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("tillbridge.connectors").joinpath(
        f"data/{name}").read_text(encoding="utf-8"))
    return data


def write(directory: Path) -> tuple[Path, Path]:
    """Write the account's seed and mappings into ``directory``; (seed, mappings) paths."""
    mappings = _packaged("mappings.json")
    store = mappings["stores"][SUITETAX_STORE]
    store["subsidiary"] = SUITETAX_SUBSIDIARY
    mappings["tax"]["subsidiaries"] = {
        "1": {"model": "legacy"},
        SUITETAX_SUBSIDIARY: {"model": "suitetax", "tax_type": TAX_TYPE}}
    seed = _packaged("sandbox.json")
    for sub in seed["subsidiaries"]:
        sub["taxModel"] = "legacy"
    seed["subsidiaries"].append({"id": SUITETAX_SUBSIDIARY, "currency": "USD",
                                 "name": "Tillbridge Retail (SuiteTax)", "taxModel": "suiteTax"})
    for loc in seed["locations"]:
        if loc["id"] == store["location"]:
            loc["subsidiary"] = SUITETAX_SUBSIDIARY
    seed_path, mappings_path = directory / "sandbox.json", directory / "mappings.json"
    seed_path.write_text(json.dumps(seed), encoding="utf-8")
    mappings_path.write_text(json.dumps(mappings), encoding="utf-8")
    return seed_path, mappings_path
