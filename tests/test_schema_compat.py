"""Every schema must stay BACKWARD compatible with its previous version.

Previous version = the file at ``HEAD~1`` (and at ``HEAD`` when the working
copy differs) when git history exists, else the stored baseline in
``tests/data/schemas_prev/``. A schema with no previous version is new and
skipped. The check writes synthetic records with the old schema and reads them
with the new one through fastavro's schema resolution.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import fastavro
import pytest

from tillbridge.schemas import SCHEMA_FILES, load_schema, schema_text
from tillbridge.schemas.compat import backward_problems, is_backward_compatible

REPO = Path(__file__).resolve().parents[1]
BASELINE = Path(__file__).parent / "data" / "schemas_prev"


def _git_show(rev: str, file_name: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "show", f"{rev}:schemas/{file_name}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def previous_versions(file_name: str) -> dict[str, str]:
    """Label -> text of every earlier version we can find."""
    current = schema_text(file_name)
    found: dict[str, str] = {}
    for rev in ("HEAD~1", "HEAD"):
        text = _git_show(rev, file_name)
        if text is not None and text != current:
            found[f"git {rev}"] = text
    if not any(label == "git HEAD~1" for label in found):
        stored = BASELINE / file_name
        if stored.exists():
            found["stored baseline"] = stored.read_text(encoding="utf-8")
    return found


@pytest.mark.parametrize("file_name", SCHEMA_FILES)
def test_schema_parses_and_follows_conventions(file_name: str) -> None:
    schema = load_schema(file_name)
    fastavro.parse_schema(schema)
    assert schema["namespace"] == "com.tillbridge.pos"
    names = {f["name"] for f in schema["fields"]}
    assert "event_id" in names
    assert "store_id" in names
    assert names & {"completed_at", "occurred_at"}, "needs an event time"
    timestamps = [f for f in schema["fields"] if f["name"] in ("completed_at", "occurred_at")]
    assert all(f["type"]["logicalType"] == "timestamp-millis" for f in timestamps)


@pytest.mark.parametrize("file_name", SCHEMA_FILES)
def test_schema_is_backward_compatible_with_previous_version(file_name: str) -> None:
    previous = previous_versions(file_name)
    if not previous:
        pytest.skip(f"{file_name} is new: no previous version to compare with")
    current = schema_text(file_name)
    for label, old in previous.items():
        problems = backward_problems(old, current)
        assert not problems, f"{file_name} cannot read data written with {label}: {problems}"


def test_baseline_covers_every_schema() -> None:
    assert sorted(p.name for p in BASELINE.glob("*.avsc")) == sorted(SCHEMA_FILES)


def _sale() -> dict:
    return load_schema("sale.avsc")


def test_adding_field_without_default_is_detected() -> None:
    new = _sale()
    new["fields"].append({"name": "channel_code", "type": "string"})
    problems = backward_problems(_sale(), new)
    assert problems and "channel_code" in problems[0]


def test_adding_field_with_default_is_compatible() -> None:
    new = _sale()
    new["fields"].append({"name": "channel_code", "type": "string", "default": "POS"})
    assert is_backward_compatible(_sale(), new)


def test_removing_field_is_compatible_for_backward() -> None:
    new = _sale()
    new["fields"] = [f for f in new["fields"] if f["name"] != "cashier_id"]
    assert is_backward_compatible(_sale(), new)


def test_changing_a_type_is_detected() -> None:
    new = _sale()
    for f in new["fields"]:
        if f["name"] == "register_id":
            f["type"] = "int"
    assert not is_backward_compatible(_sale(), new)


def test_dropping_null_from_a_nested_union_is_detected() -> None:
    new = _sale()
    lines = next(f for f in new["fields"] if f["name"] == "lines")
    tax_code = next(f for f in lines["type"]["items"]["fields"] if f["name"] == "tax_code")
    tax_code["type"] = "string"
    del tax_code["default"]
    assert not is_backward_compatible(_sale(), new)


def test_renaming_a_required_field_is_detected() -> None:
    new = _sale()
    for f in new["fields"]:
        if f["name"] == "store_id":
            f["name"] = "store_code"
    assert not is_backward_compatible(_sale(), new)


def test_enum_symbol_removal_is_detected() -> None:
    old = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "k", "type": {"type": "enum", "name": "K", "symbols": ["A", "B", "C"]}}
        ],
    }
    new = copy.deepcopy(old)
    new["fields"][0]["type"]["symbols"] = ["A", "B"]
    assert not is_backward_compatible(old, new)


def test_invalid_schema_is_reported_not_raised() -> None:
    assert backward_problems(json.dumps(_sale()), '{"type": "record"}')
    assert backward_problems("not json", json.dumps(_sale()))
