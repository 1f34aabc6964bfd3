"""A Flask app that enqueues jobs with jobwire's blocking client.

Run, from this directory: ``REDIS_URL=redis://localhost:6379/0 flask --app app run`` and,
for the jobs, ``REDIS_URL=... jobwire worker tasks.WorkerSettings`` (``tasks.py``).
"""

from __future__ import annotations

import atexit
import os

from flask import Flask, jsonify, request

import jobwire


def create_app(redis_url: str | None = None) -> Flask:
    app = Flask(__name__)
    # one client for the whole app: thread-safe, with its own connection pool
    client = jobwire.Client.from_url(
        redis_url or os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    )
    app.extensions["jobwire"] = client
    atexit.register(client.close)

    @app.post("/reports")
    def build_report():  # type: ignore[no-untyped-def]
        payload = request.get_json(silent=True) or {}
        job = client.enqueue("build_report", payload.get("month"), _queue_name="reports")
        assert job is not None
        return jsonify(job_id=job.job_id), 202

    @app.get("/jobs/<job_id>")
    def job_status(job_id: str):  # type: ignore[no-untyped-def]
        job = client.job(job_id, "reports")
        body: dict[str, object] = {"job_id": job_id, "status": job.status().value}
        result = job.result_info()
        if result is not None:
            body["success"] = result.success
            body["result"] = result.value if result.success else str(result.error)
        return jsonify(body)

    return app
