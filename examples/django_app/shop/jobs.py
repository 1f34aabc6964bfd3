"""One jobwire client per process, shared by every request thread (it is thread-safe)."""

from functools import cache

from django.conf import settings

import jobwire


@cache
def client() -> jobwire.Client:
    return jobwire.Client.from_url(settings.REDIS_URL)
