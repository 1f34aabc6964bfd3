"""jobwire's worker: runs queued jobs (``jobwire worker dotted.path.WorkerSettings``).

>>> from jobwire.worker import Worker, func, cron, Retry  # doctest: +SKIP
"""

from .cron import CronJob, cron
from .functions import Backoff, Executor, Function, Retry, func
from .progress import progress
from .runner import Worker

__all__ = [
    "Backoff", "CronJob", "Executor", "Function", "Retry", "Worker", "cron", "func", "progress",
]  # fmt: skip
