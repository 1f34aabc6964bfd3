"""examples/fastapi_app: endpoints get the app's AsyncClient from jobwire.fastapi."""

from __future__ import annotations

from typing import Any

import pytest

import jobwire

from .conftest import EXAMPLES, load_module, need, run_worker

APP = EXAMPLES / "fastapi_app"


@pytest.fixture
def example() -> Any:
    need("fastapi")
    need("httpx")  # the TestClient's HTTP client
    return load_module(APP / "app.py", "fastapi_example")


def test_endpoint_enqueues_a_job(example: Any, redis_url: str) -> None:
    from fastapi.testclient import TestClient

    with TestClient(example.create_app(redis_url)) as web:
        response = web.post("/resize", json={"url": "https://x/img.png", "width": 64})
        assert response.status_code == 202
        job_id = response.json()["job_id"]
        assert web.get(f"/jobs/{job_id}").json() == {"job_id": job_id, "status": "queued"}
    with jobwire.Client.from_url(redis_url) as client:
        info = client.job(job_id).info()
        assert info is not None
        assert (info.function, info.args, info.kwargs) == (
            "resize_image", ("https://x/img.png",), {"width": 64}
        )  # fmt: skip


def test_a_real_worker_runs_the_enqueued_job(
    example: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    monkeypatch.setenv("REDIS_URL", redis_url)  # the module's own app, as uvicorn runs it
    with TestClient(example.app) as web:
        job_id = web.post("/resize", json={"url": "https://x/a.png", "width": 32}).json()["job_id"]
        worker = run_worker("tasks.WorkerSettings", APP, redis_url)
        assert worker.returncode == 0, worker.stderr
        status = web.get(f"/jobs/{job_id}").json()
    assert status["status"] == "complete" and status["success"] is True
    assert status["result"] == {
        "url": "https://x/a.png",
        "width": 32,
        "thumbnail": "https://x/a.png?w=32",
    }


def test_endpoints_with_the_in_memory_twin(example: Any) -> None:
    """How an app's own tests can run without Redis: the eager twin runs the real job."""
    from fastapi.testclient import TestClient

    from jobwire.testing import AsyncMemoryClient

    tasks = load_module(APP / "tasks.py", "fastapi_example_tasks")
    twin = AsyncMemoryClient(functions=tasks.WorkerSettings.functions, eager=True)
    with TestClient(example.create_app(client=twin)) as web:
        job_id = web.post("/resize", json={"url": "https://x/b.png", "width": 16}).json()["job_id"]
        status = web.get(f"/jobs/{job_id}").json()
    assert status["status"] == "complete"
    assert status["result"] == {
        "url": "https://x/b.png",
        "width": 16,
        "thumbnail": "https://x/b.png?w=16",
    }
    (enqueued,) = twin.enqueued_jobs()
    assert enqueued.function == "resize_image" and enqueued.kwargs == {"width": 16}
