"""Regenerate the README's reason and settings tables from the code (``make docs``).

The catalogue and the settings object are the source of truth; ``tests/test_docs.py``
fails when the README falls behind, and this rewrites the two tables in place.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages.reasons import CATALOGUE


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reasons_table() -> list[str]:
    rows = ["| code | stage | meaning | typical cause | what to do | replayable |",
            "|---|---|---|---|---|---|"]
    for r in CATALOGUE.values():
        rows.append(f"| `{r.code}` | {r.stage} | {_cell(r.meaning)} | {_cell(r.cause)} | "
                    f"{_cell(r.fix)} | {'yes' if r.replayable else 'no'} |")
    return rows


def settings_table() -> list[str]:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for env, value, doc in Settings().describe():  # the defaults: no environment read
        rows.append(f"| `{env}` | `{value}` | {_cell(doc)} |")
    return rows


def _replace(lines: list[str], header: str, table: list[str]) -> list[str]:
    start = lines.index(header)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return lines[:start] + table + lines[end:]


def update(path: Path) -> bool:
    """Rewrite both tables; True when the file changed."""
    old = path.read_text()
    lines = old.splitlines()
    for table in (reasons_table(), settings_table()):
        lines = _replace(lines, table[0], table)
    new = "\n".join(lines) + "\n"
    path.write_text(new)
    return new != old


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    print(f"{target}: {'updated' if update(target) else 'up to date'}")
