"""Hot reload of the mappings file: checked every ``TILLBRIDGE_MAPPINGS_RELOAD_S``; a
changed file that validates replaces the pipeline's mappings, a bad one keeps the old."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.runtime import metrics

log = logging.getLogger(__name__)


def mtime(path: str | None) -> float | None:
    """Modification time of the mappings file (None: packaged file or missing)."""
    if not path:
        return None
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


class MappingsWatch:
    def __init__(self, pipe: Pipeline, path: str | None, *,
                 load: Callable[[str | None], Mappings] = Mappings.load) -> None:
        self.pipe = pipe
        self.path = path
        self._load = load
        self._mtime = mtime(path)

    def check(self) -> bool:
        """Reload when the file changed; True when new mappings are in use."""
        current = mtime(self.path)
        if current is None or current == self._mtime:
            return False
        self._mtime = current  # a bad file is reported once, not every check
        try:
            new = self._load(self.path)
        except Exception as exc:  # noqa: BLE001 - any bad file keeps the old mappings
            metrics.MAPPINGS_RELOAD_ERRORS.inc()
            log.error("mappings not reloaded, keeping v%s: %s", self.pipe.mappings.version, exc)
            return False
        self.pipe.use_mappings(new)
        log.warning("mappings reloaded: v%s from %s", new.version, new.source)
        return True

    async def tick(self) -> None:
        """Timer body."""
        self.check()
