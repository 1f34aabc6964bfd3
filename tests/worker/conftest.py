"""Worker suite fixtures: in-process workers (``start_worker``), worker processes
(``workers``) and a blocking client on the test's Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import jobwire
from tests.helpers.workers import start_worker, workers

__all__ = ["client", "start_worker", "workers"]


@pytest.fixture
def client(redis_url: str) -> Iterator[jobwire.Client]:
    with jobwire.Client.from_url(redis_url) as c:
        yield c
