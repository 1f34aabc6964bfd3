"""examples/django_app: a view enqueues with the blocking client (Django's test client)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import jobwire
from jobwire import JobStatus

from .conftest import EXAMPLES, need, run_worker


@pytest.fixture
def django_client(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    need("django")
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "shop.settings")
    monkeypatch.syspath_prepend(str(EXAMPLES / "django_app"))
    import django
    from django.conf import settings
    from django.test import Client

    django.setup()
    assert redis_url == settings.REDIS_URL  # the session's Redis, set before first import
    return Client()


def test_view_enqueues_a_job(django_client: Any, redis_url: str) -> None:
    response = django_client.post(
        "/orders", data=json.dumps({"order_id": 7, "email": "a@example.com"}),
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    with jobwire.Client.from_url(redis_url) as client:
        info = client.job(job_id).info()
        assert (info.function, info.args, info.kwargs) == (
            "send_receipt", (7,), {"email": "a@example.com"}
        )  # fmt: skip
    status = django_client.get(f"/jobs/{job_id}").json()
    assert status == {"job_id": job_id, "status": JobStatus.QUEUED.value}


def test_a_real_worker_runs_the_enqueued_job(django_client: Any, redis_url: str) -> None:
    response = django_client.post(
        "/orders",
        data=json.dumps({"order_id": 8, "email": "b@example.com"}),
        content_type="application/json",
    )
    job_id = response.json()["job_id"]
    worker = run_worker("shop.tasks.WorkerSettings", EXAMPLES / "django_app", redis_url)
    assert worker.returncode == 0, worker.stderr
    status = django_client.get(f"/jobs/{job_id}").json()
    assert status["status"] == "complete" and status["success"] is True
    assert status["result"] == {"order_id": 8, "sent_to": "b@example.com", "shop": "shop"}


def test_views_with_the_in_memory_twin(django_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """How a Django project's tests can swap in the twin: one monkeypatch of the factory."""
    from shop import tasks, views

    from jobwire.testing import MemoryClient

    twin = MemoryClient(functions=tasks.WorkerSettings.functions)
    monkeypatch.setattr(views, "client", lambda: twin)
    response = django_client.post(
        "/orders", data=json.dumps({"order_id": 9, "email": "c@example.com"}),
        content_type="application/json",
    )  # fmt: skip
    job_id = response.json()["job_id"]
    (enqueued,) = twin.enqueued_jobs()
    assert (enqueued.job_id, enqueued.function, enqueued.args) == (job_id, "send_receipt", (9,))
    assert django_client.get(f"/jobs/{job_id}").json()["status"] == "queued"
    twin.set_failed(job_id, ConnectionError("SMTP server down"))
    status = django_client.get(f"/jobs/{job_id}").json()
    assert status["status"] == "complete" and status["success"] is False
    assert "SMTP server down" in status["result"]
    twin.enqueue("send_receipt", 10, email="d@example.com", _job_id="again")
    assert twin.run_jobs() == 1  # the real job function, inline
    assert twin.job("again").result()["sent_to"] == "d@example.com"
