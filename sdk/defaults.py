"""Every default of jobwire, in one place.

Clients, workers, the in-memory twin and the command line read their defaults from here, so
changing one changes it everywhere. (The wire format's own defaults, such as the queue
name, are the SPEC's and live in :mod:`jobwire.wire`.)
"""

from __future__ import annotations

import os
from typing import Final

from jobwire.wire import DEFAULT_QUEUE

__all__ = [
    "DEAD_LETTER_CAP",
    "DEFAULT_QUEUE",
    "HISTORY",
    "KEEP_RESULT",
    "LEASE",
    "MAX_EVENTS",
    "MAX_TRIES",
    "PREFIX",
    "URL",
    "redis_url",
]

#: Where clients and workers connect when given no URL and ``$REDIS_URL`` is not set.
URL: Final = "redis://localhost:6379/0"
#: The key prefix: every key jobwire uses starts with it.
PREFIX: Final = "jobwire"
#: Seconds a job's results are kept after it ends.
KEEP_RESULT: Final = 3600.0
#: Seconds a delivered job stays leased without renewal before another worker may take it.
LEASE: Final = 10.0
#: Most dead-letter entries kept per queue; older ones are trimmed.
DEAD_LETTER_CAP: Final = 10_000
#: How many executions of a job are kept in its result history.
HISTORY: Final = 10
#: Most lifecycle events kept per queue (``XADD MAXLEN ~``: Redis trims in whole blocks, so
#: a little more may be kept); ``max_events``/``events=False`` in clients and workers.
MAX_EVENTS: Final = 10_000
#: How many times a job may start when neither its function nor the worker says otherwise.
MAX_TRIES: Final = 5


def redis_url() -> str:
    """``$REDIS_URL``, or :data:`URL`."""
    return os.environ.get("REDIS_URL") or URL
