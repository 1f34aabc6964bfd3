"""examples/django_app: a view saves an order and enqueues its receipt on commit.

Driven with Django's test client, which commits for real (it wraps no transaction around a
request), on a SQLite file that the worker process reads too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import jobwire
from jobwire import JobStatus

from .conftest import EXAMPLES, need, run_worker


@pytest.fixture(scope="session")
def shop_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shop") / "db.sqlite3"


@pytest.fixture
def django_client(redis_url: str, shop_database: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    need("django")
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("SHOP_DATABASE", str(shop_database))  # for the worker process too
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "shop.settings")
    monkeypatch.syspath_prepend(str(EXAMPLES / "django_app"))
    import django
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    django.setup()
    # the session's Redis and database, set before the settings were first read
    assert redis_url == settings.REDIS_URL
    assert settings.DATABASES["default"]["NAME"] == str(shop_database)
    call_command("migrate", verbosity=0)
    return Client()


def order(django_client: Any, **body: Any) -> Any:
    return django_client.post("/orders", data=json.dumps(body), content_type="application/json")


def test_view_enqueues_a_job_when_the_order_commits(django_client: Any, redis_url: str) -> None:
    from shop.models import Order

    response = order(django_client, email="a@example.com", item="teapot")
    assert response.status_code == 202
    order_id, job_id = response.json()["order_id"], response.json()["job_id"]
    assert Order.objects.get(pk=order_id).receipt_job == job_id  # stored before the commit
    with jobwire.Client.from_url(redis_url) as client:
        info = client.job(job_id).info()
        assert info is not None
        assert (info.function, info.args, info.kwargs) == ("send_receipt", (order_id,), {})
    status = django_client.get(f"/jobs/{job_id}").json()
    assert status == {"job_id": job_id, "status": JobStatus.QUEUED.value}


def test_an_order_rolled_back_sends_no_receipt(django_client: Any, redis_url: str) -> None:
    from shop.models import Order

    response = order(django_client, email="z@example.com", item="teapot", quantity=99)
    assert response.status_code == 409
    assert not Order.objects.filter(email="z@example.com").exists()
    with jobwire.Client.from_url(redis_url) as client:
        assert client.queue_size() == 0


def test_a_real_worker_finds_the_committed_order(django_client: Any, redis_url: str) -> None:
    response = order(django_client, email="b@example.com", item="kettle")
    order_id, job_id = response.json()["order_id"], response.json()["job_id"]
    worker = run_worker("shop.tasks.WorkerSettings", EXAMPLES / "django_app", redis_url)
    assert worker.returncode == 0, worker.stderr
    status = django_client.get(f"/jobs/{job_id}").json()
    assert status["status"] == "complete" and status["success"] is True, status
    assert status["result"] == {"order_id": order_id, "sent_to": "b@example.com", "item": "kettle"}


def test_views_with_the_in_memory_twin(django_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """How a Django project's tests can swap in the twin: one monkeypatch of the factory."""
    from shop import tasks, views

    from jobwire.testing import MemoryClient

    twin = MemoryClient(functions=tasks.WorkerSettings.functions)
    monkeypatch.setattr(views, "client", lambda: twin)
    response = order(django_client, email="c@example.com", item="cup")
    order_id, job_id = response.json()["order_id"], response.json()["job_id"]
    (enqueued,) = twin.enqueued_jobs()  # sent to the twin when the order committed
    assert (enqueued.job_id, enqueued.function, enqueued.args) == (
        job_id, "send_receipt", (order_id,)
    )  # fmt: skip
    assert django_client.get(f"/jobs/{job_id}").json()["status"] == "queued"
    twin.set_failed(job_id, ConnectionError("SMTP server down"))
    status = django_client.get(f"/jobs/{job_id}").json()
    assert status["status"] == "complete" and status["success"] is False
    assert "SMTP server down" in status["result"]
    twin.enqueue("send_receipt", order_id, _job_id="again")
    assert twin.run_jobs() == 1  # the real job function, inline, with the real database
    assert twin.job("again").result()["sent_to"] == "c@example.com"
