"""Rate-limit repeated log lines: one broker outage made librdkafka and aiokafka log the
same connection error ~125 times a second, burying everything else.

``RepeatFilter`` lets the first occurrence of a (logger, message template, level) through,
suppresses the same key for ``window_s``, and when the key is next seen after the window
adds " (repeated N times)" to that line. Keyed on the template (``record.msg``), not the
formatted text, so lines differing only in an argument (a port, a count) still collapse.

Only warnings and errors are filtered: an outage's noise is made of them, while info lines
that share a template carry different facts (httpx logs every request under one template:
collapsing those would hide each token request and record post from the log).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

#: Keys remembered at most; the oldest are forgotten past it (templates are few).
MAX_KEYS = 4096


class RepeatFilter(logging.Filter):
    """Suppress repeats of one template within ``window_s``; count them in the next line."""

    def __init__(self, window_s: float = 10.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()  # librdkafka logs from its own threads
        self._seen: dict[tuple[str, str, int], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg), record.levelno)
        now = self._clock()
        with self._lock:
            first, suppressed = self._seen.get(key, (float("-inf"), 0))
            if now - first < self._window_s:
                self._seen[key] = (first, suppressed + 1)
                return False
            if len(self._seen) >= MAX_KEYS:
                self._seen.pop(next(iter(self._seen)))
            self._seen[key] = (now, 0)
        if suppressed:
            record.msg = f"{record.msg} (repeated {suppressed} times)"
        return True


def install(window_s: float = 10.0) -> RepeatFilter:
    """Put one filter on every handler of the root logger (filters on a logger do not see
    records propagated from its children; handler filters see them all)."""
    flt = RepeatFilter(window_s)
    for handler in logging.getLogger().handlers:
        handler.addFilter(flt)
    return flt
