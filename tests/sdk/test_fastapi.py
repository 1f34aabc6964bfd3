"""jobwire.fastapi: one AsyncClient per app, opened and closed by the lifespan, as a dependency.

Driven by Starlette's TestClient (what FastAPI's is), which runs the app's lifespan, against
the session's real Redis. No ``from __future__ import annotations`` here: FastAPI reads
the endpoints' annotations, and those name local aliases.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
import redis

import jobwire
from jobwire import JobStatus
from tests.helpers.redis_harness import free_port
from tests.helpers.support import need, wait_until

pytestmark = pytest.mark.usefixtures("frameworks")


@pytest.fixture
def frameworks() -> None:
    need("fastapi", "fastapi")
    need("httpx", "examples")  # the TestClient's HTTP client


def connections(url: str) -> int:
    """Clients connected to the Redis at ``url``, not counting the one asking."""
    with redis.Redis.from_url(url) as r:
        return int(r.info("clients")["connected_clients"]) - 1


def resize_app(**lifespan_options: Any) -> Any:
    from fastapi import Depends, FastAPI

    from jobwire.fastapi import get_client, lifespan

    app = FastAPI(lifespan=lifespan(**lifespan_options))
    Jobs = Annotated[jobwire.AsyncClient, Depends(get_client)]

    @app.post("/resize")
    async def resize(url: str, jobs: Jobs) -> dict[str, str]:
        job = await jobs.enqueue("resize_image", url, width=64)
        assert job is not None
        return {"job_id": job.job_id, "queue": jobs.queue_name}

    return app


def test_the_lifespan_opens_one_client_and_closes_it_at_shutdown(redis_url: str) -> None:
    from fastapi.testclient import TestClient

    before = connections(redis_url)
    with TestClient(resize_app(url=redis_url, queue_name="images")) as web:
        replies = [web.post("/resize", params={"url": f"https://x/{i}.png"}) for i in range(5)]
        assert all(reply.status_code == 200 for reply in replies)
        assert {reply.json()["queue"] for reply in replies} == {"images"}  # the options given
        assert connections(redis_url) > before
    # closed at shutdown: nothing of the app's stays connected
    assert wait_until(lambda: connections(redis_url) == before, timeout=3)
    with jobwire.Client.from_url(redis_url, queue_name="images") as client:
        job = client.job(replies[0].json()["job_id"])
        assert job.status() is JobStatus.QUEUED
        info = job.info()
        assert info is not None and info.args == ("https://x/0.png",)
        assert client.queue_size() == 5


def test_the_url_defaults_to_redis_url(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    monkeypatch.setenv("REDIS_URL", redis_url)
    with TestClient(resize_app()) as web:
        job_id = web.post("/resize", params={"url": "https://x/a.png"}).json()["job_id"]
    with jobwire.Client.from_url(redis_url) as client:
        assert client.job(job_id).status() is JobStatus.QUEUED


def test_the_apps_own_lifespan_runs_inside_and_keeps_its_state(redis_url: str) -> None:
    from fastapi import Depends, FastAPI, Request
    from fastapi.testclient import TestClient

    from jobwire.fastapi import get_client, lifespan

    events: list[str] = []

    @asynccontextmanager
    async def own(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append("own start")
        yield {"db": "the app's database"}
        events.append("own stop")

    app = FastAPI(lifespan=lifespan(redis_url, wrap=own))

    @app.get("/both")
    async def both(
        request: Request, jobs: Annotated[jobwire.AsyncClient, Depends(get_client)]
    ) -> dict[str, Any]:
        return {"db": request.state.db, "ping": await jobs.ping()}

    with TestClient(app) as web:
        assert events == ["own start"]
        assert web.get("/both").json() == {"db": "the app's database", "ping": True}
    assert events == ["own start", "own stop"]


def test_a_client_given_is_used_and_left_open(redis_url: str) -> None:
    from fastapi.testclient import TestClient

    from jobwire.testing import AsyncMemoryClient

    twin = AsyncMemoryClient()  # how an app's tests run without Redis
    with TestClient(resize_app(client=twin)) as web:
        job_id = web.post("/resize", params={"url": "https://x/t.png"}).json()["job_id"]
    (enqueued,) = twin.enqueued_jobs()
    assert (enqueued.job_id, enqueued.function, enqueued.kwargs) == (
        job_id, "resize_image", {"width": 64}
    )  # fmt: skip

    before = connections(redis_url)
    mine = jobwire.AsyncClient.from_url(redis_url)
    with TestClient(resize_app(client=mine)) as web:
        web.post("/resize", params={"url": "https://x/u.png"})
    assert connections(redis_url) > before  # still open: it belongs to its caller
    del mine  # (its connections were made on the TestClient's loop, gone now)
    with pytest.raises(jobwire.InvalidArgument, match="not both"):
        resize_app(client=twin, url=redis_url)


def test_a_plain_starlette_app_and_a_websocket(redis_url: str) -> None:
    from fastapi import Depends, FastAPI, WebSocket
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from jobwire.fastapi import get_client, lifespan

    async def enqueue(request: Request) -> JSONResponse:
        job = await get_client(request).enqueue("resize_image", "https://x/s.png")
        assert job is not None
        return JSONResponse({"job_id": job.job_id})

    starlette_app = Starlette(
        routes=[Route("/", enqueue, methods=["POST"])], lifespan=lifespan(redis_url)
    )
    with TestClient(starlette_app) as web:
        job_id = web.post("/").json()["job_id"]

    app = FastAPI(lifespan=lifespan(redis_url))

    @app.websocket("/ws")
    async def status(
        socket: WebSocket, jobs: Annotated[jobwire.AsyncClient, Depends(get_client)]
    ) -> None:
        await socket.accept()
        job_id = await socket.receive_text()
        await socket.send_text((await jobs.job(job_id).status()).value)
        await socket.close()

    with TestClient(app) as web, web.websocket_connect("/ws") as socket:
        socket.send_text(job_id)
        assert socket.receive_text() == "queued"


def test_without_the_lifespan_the_dependency_says_what_is_missing() -> None:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from jobwire.fastapi import get_client

    app = FastAPI()

    @app.get("/")
    async def endpoint(jobs: Annotated[jobwire.AsyncClient, Depends(get_client)]) -> None:
        raise AssertionError("not reached")

    with TestClient(app) as web, pytest.raises(jobwire.InvalidArgument, match="lifespan="):
        web.get("/")


def test_an_unreachable_redis_stops_the_start_up() -> None:
    from fastapi.testclient import TestClient

    app: Callable[..., Any] = resize_app(url=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(jobwire.RedisUnavailable), TestClient(app):
        pass
