"""examples/flask_app: a route enqueues with the blocking client (Flask's test client)."""

from __future__ import annotations

import jobwire

from .conftest import EXAMPLES, load_module, need, run_worker

APP = EXAMPLES / "flask_app"


def test_route_enqueues_a_job(redis_url: str) -> None:
    need("flask")
    app = load_module(APP / "app.py", "flask_example").create_app(redis_url)
    web = app.test_client()
    response = web.post("/reports", json={"month": "2026-11"})
    assert response.status_code == 202
    job_id = response.get_json()["job_id"]
    with jobwire.Client.from_url(redis_url) as client:
        info = client.job(job_id, "reports").info()
        assert (info.function, info.args, info.queue_name) == (
            "build_report",
            ("2026-11",),
            "reports",
        )
    assert web.get(f"/jobs/{job_id}").get_json()["status"] == "queued"
    app.extensions["jobwire"].close()


def test_a_real_worker_runs_the_report(redis_url: str) -> None:
    need("flask")
    app = load_module(APP / "app.py", "flask_example").create_app(redis_url)
    web = app.test_client()
    job_id = web.post("/reports", json={"month": "2026-12"}).get_json()["job_id"]
    worker = run_worker("tasks.WorkerSettings", APP, redis_url)  # as its users run it
    assert worker.returncode == 0, worker.stderr
    assert web.get(f"/jobs/{job_id}").get_json() == {
        "job_id": job_id,
        "status": "complete",
        "success": True,
        "result": {"month": "2026-12", "rows": 3, "url": "/reports/2026-12.pdf"},
    }
    app.extensions["jobwire"].close()
