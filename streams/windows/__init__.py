"""Windowed batch aggregation: a flow posts either per record (the real-time sink) or
through a window (``engine``: event-time tumbling windows per key; ``book``: what each
closed window holds, durable on ``tillbridge.windows.v1``)."""
