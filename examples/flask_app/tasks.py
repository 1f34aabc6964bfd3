"""The jobs of the Flask app: ``jobwire worker tasks.WorkerSettings`` (from this directory)."""

from __future__ import annotations

import os
import time
from typing import Any


def build_report(ctx: dict[str, Any], month: str | None) -> dict[str, Any]:
    """A blocking job (``def``): the worker runs it in its thread pool, off the event loop."""
    time.sleep(0.01)  # a real app would query its database and render the report here
    return {"month": month, "rows": 3, "url": f"/reports/{month}.pdf"}


class WorkerSettings:
    functions = (build_report,)
    queue_name = "reports"  # the app enqueues to this queue
    redis_settings = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
