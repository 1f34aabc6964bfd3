"""examples/aiohttp_app: the handler awaits enqueue; client made in cleanup_ctx."""

from __future__ import annotations

import asyncio

import jobwire

from .conftest import EXAMPLES, load_module, need, run_worker


def test_handler_enqueues_a_job(redis_url: str) -> None:
    need("aiohttp")
    from aiohttp.test_utils import TestClient, TestServer

    module = load_module(EXAMPLES / "aiohttp_app" / "app.py", "aiohttp_example")

    async def main() -> str:
        async with TestClient(TestServer(module.create_app(redis_url))) as web:
            response = await web.post("/resize", json={"url": "https://x/img.png", "width": 64})
            assert response.status == 202
            job_id: str = (await response.json())["job_id"]
            status = await (await web.get(f"/jobs/{job_id}")).json()
            assert status["status"] == "queued"
            return job_id

    job_id = asyncio.run(main())
    with jobwire.Client.from_url(redis_url) as client:
        info = client.job(job_id).info()
        assert (info.function, info.args, info.kwargs) == (
            "resize_image",
            ("https://x/img.png",),
            {"width": 64},
        )


def test_a_real_worker_runs_the_enqueued_job(redis_url: str) -> None:
    need("aiohttp")
    from aiohttp.test_utils import TestClient, TestServer

    module = load_module(EXAMPLES / "aiohttp_app" / "app.py", "aiohttp_example_worker")

    async def enqueue() -> str:
        async with TestClient(TestServer(module.create_app(redis_url))) as web:
            response = await web.post("/resize", json={"url": "https://x/a.png", "width": 32})
            return str((await response.json())["job_id"])

    job_id = asyncio.run(enqueue())
    worker = run_worker("tasks.WorkerSettings", EXAMPLES / "aiohttp_app", redis_url)
    assert worker.returncode == 0, worker.stderr
    with jobwire.Client.from_url(redis_url) as client:
        assert client.job(job_id).result(timeout=5)["thumbnail"] == "https://x/a.png?w=32"


def test_cpu_jobs_example_runs_in_the_process_pool(redis_url: str) -> None:
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "cpu_jobs.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "REDIS_URL": redis_url},
    )
    assert done.returncode == 0, done.stderr
    assert "parallelism" in done.stdout
    pids = {
        line.rsplit("process ", 1)[1] for line in done.stdout.splitlines() if "process " in line
    }
    assert len(pids) >= 2  # the jobs ran in several processes


def test_handlers_with_the_in_memory_twin() -> None:
    """How an app's own tests can run without Redis: the eager twin runs the real job."""
    need("aiohttp")
    from aiohttp.test_utils import TestClient, TestServer

    from jobwire.testing import AsyncMemoryClient

    module = load_module(EXAMPLES / "aiohttp_app" / "app.py", "aiohttp_example_twin")
    tasks = load_module(EXAMPLES / "aiohttp_app" / "tasks.py", "aiohttp_example_tasks")

    async def main() -> None:
        twin = AsyncMemoryClient(functions=tasks.WorkerSettings.functions, eager=True)
        app = module.create_app(client=twin)
        async with TestClient(TestServer(app)) as web:
            response = await web.post("/resize", json={"url": "https://x/b.png", "width": 16})
            job_id = (await response.json())["job_id"]
            status = await (await web.get(f"/jobs/{job_id}")).json()
        assert status == {"job_id": job_id, "status": "complete"}
        assert await twin.job(job_id).result() == {
            "url": "https://x/b.png", "width": 16, "thumbnail": "https://x/b.png?w=16"
        }  # fmt: skip
        (enqueued,) = twin.enqueued_jobs()
        assert enqueued.function == "resize_image" and enqueued.kwargs == {"width": 16}

    asyncio.run(main())
