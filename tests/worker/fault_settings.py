"""WorkerSettings for fault tests: ``jobwire worker tests.worker.fault_settings.Settings``."""

from __future__ import annotations

import os

from jobwire.worker import func

from .jobs import record


class Settings:
    functions = (func(record),)
    redis_settings = os.environ.get("REDIS_URL")
    max_jobs = 50
    thread_workers = 50
    lease = float(os.environ.get("LEASE", "2"))
    max_tries = int(os.environ.get("MAX_TRIES", "5"))
    job_completion_wait = float(os.environ.get("COMPLETION_WAIT", "0"))
    health_check_interval = 1
