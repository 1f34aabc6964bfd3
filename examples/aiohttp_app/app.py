"""An aiohttp app that enqueues jobs with jobwire's AsyncClient.

The client is created once in a ``cleanup_ctx`` (startup) and closed there (shutdown);
tests pass their own, such as ``jobwire.testing.AsyncMemoryClient``, to ``create_app``.
Run, from this directory: ``REDIS_URL=redis://localhost:6379/0 python app.py`` and, for
the jobs, ``REDIS_URL=... jobwire worker tasks.WorkerSettings`` (``tasks.py``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from aiohttp import web

import jobwire

CLIENT = web.AppKey("jobwire", jobwire.AsyncClient)


def jobwire_ctx(redis_url: str, client: jobwire.AsyncClient | None = None):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[CLIENT] = client or await jobwire.AsyncClient.connect(redis_url)
        yield
        if client is None:  # a client given to create_app belongs to its caller
            await app[CLIENT].close()

    return ctx


async def resize(request: web.Request) -> web.Response:
    body = await request.json()
    job = await request.app[CLIENT].enqueue(
        "resize_image", body["url"], width=body.get("width", 256)
    )
    assert job is not None
    return web.json_response({"job_id": job.job_id}, status=202)


async def job_status(request: web.Request) -> web.Response:
    job = request.app[CLIENT].job(request.match_info["job_id"])
    status = await job.status()
    return web.json_response({"job_id": job.job_id, "status": status.value})


def create_app(
    redis_url: str | None = None, client: jobwire.AsyncClient | None = None
) -> web.Application:
    app = web.Application()
    url = redis_url or os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    app.cleanup_ctx.append(jobwire_ctx(url, client))
    app.router.add_post("/resize", resize)
    app.router.add_get("/jobs/{job_id}", job_status)
    return app


if __name__ == "__main__":
    web.run_app(create_app())
