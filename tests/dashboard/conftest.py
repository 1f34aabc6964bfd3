"""Dashboard fixtures: the app under Starlette's TestClient, and a blocking client to fill Redis."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

import jobwire
from jobwire.dashboard import create_app
from tests.helpers.workers import start_worker

__all__ = ["TOKEN", "client", "csrf_of", "dashboard", "start_worker"]

TOKEN = "test-token-0123456789abcdef"
LOOPBACK = ("127.0.0.1", 50000)


@pytest.fixture
def client(redis_url: str) -> Iterator[jobwire.Client]:
    with jobwire.Client.from_url(redis_url) as c:
        yield c


Dashboard = Callable[..., TestClient]


@pytest.fixture
def dashboard(redis_url: str) -> Iterator[Dashboard]:
    """Build a dashboard over the test's Redis, as a TestClient (one event loop each)."""
    made: list[tuple[TestClient, jobwire.AsyncClient]] = []

    def make(
        *,
        token: str | None = TOKEN,
        read_only: bool = False,
        peer: tuple[str, int] = LOOPBACK,
        login: bool = True,
        **options: Any,
    ) -> TestClient:
        app_client = jobwire.AsyncClient.from_url(redis_url, **options)
        app = create_app(app_client, read_only=read_only, token=token)
        browser = TestClient(app, base_url="http://dash.test", client=peer)
        browser.__enter__()
        made.append((browser, app_client))
        if login and token is not None:
            assert browser.get(f"/?token={token}").status_code == 200
        return browser

    yield make
    for browser, app_client in made:
        browser.portal.call(app_client.close)
        browser.__exit__(None, None, None)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)
