"""The README is the operator's manual: it must list every reason code and every setting."""

from __future__ import annotations

from pathlib import Path

from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages.reasons import CATALOGUE

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_lists_every_reason_code() -> None:
    missing = [code for code in CATALOGUE if f"| `{code}` |" not in README]
    assert not missing, f"README reason catalogue lacks {missing}"


def test_readme_reason_table_is_the_catalogues_row_for_row() -> None:
    """The codes and stages are enums now; the table must still spell them as plain text."""
    from tillbridge.streams.ops.readme_tables import reasons_table

    lines = README.splitlines()
    rows = reasons_table()
    start = lines.index(rows[0])
    assert lines[start:start + len(rows)] == rows


def test_readme_lists_every_setting() -> None:
    missing = [env for env, _, _ in Settings.from_env({}).describe() if f"`{env}`" not in README]
    assert not missing, f"README configuration table lacks {missing}"


def test_readme_shows_the_two_commands() -> None:
    assert "make demo" in README and "make test" in README


def test_every_path_the_readme_names_exists() -> None:
    """The layout section and the "follow one sale" walk must not drift from the tree."""
    import re

    root = Path(__file__).resolve().parents[1]
    named = set(re.findall(r"`((?:streams|connectors|devstack|schemas|deploy|bench|tests)"
                           r"/[\w/.-]+\.(?:py|json|yml|avsc|jsonl))`", README))
    assert len(named) > 20, named
    missing = sorted(p for p in named if not (root / p).exists())
    assert not missing, f"README names files that do not exist: {missing}"
