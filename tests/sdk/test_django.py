"""jobwire.django.enqueue_on_commit: a job is sent when its transaction commits, never before.

Each test runs its Django code in a fresh process (Django is set up once per process) with
a real SQLite database file and real transactions: the commit path is Django's own, not a
test case's wrapper that never commits. The test then looks at Redis from outside.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import jobwire
from jobwire import JobStatus
from tests.helpers.redis_harness import free_port
from tests.helpers.support import need
from tests.helpers.workers import ROOT

#: What every test's Django process starts with: settings, a table of orders, and helpers.
PRELUDE = """
import json, logging, os, sys
import django
from django.conf import settings

settings.configure(
    DATABASES={
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["DB"]},
        "other": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["DB"] + "2"},
    },
    JOBWIRE_REDIS_URL=os.environ["JOBWIRE_TEST_URL"],
    USE_TZ=True,
)
django.setup()
logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")

import jobwire
from django.db import connections, transaction
from jobwire.django import enqueue_on_commit

for alias in ("default", "other"):
    with connections[alias].cursor() as c:
        c.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, email TEXT)")

def insert(email, using="default"):
    with connections[using].cursor() as c:
        c.execute("INSERT INTO orders (email) VALUES (%s)", [email])

def orders(using="default"):
    with connections[using].cursor() as c:
        c.execute("SELECT email FROM orders ORDER BY id")
        return [row[0] for row in c.fetchall()]

def queued():
    return jobwire.Client.from_url(os.environ["JOBWIRE_TEST_URL"]).queue_size()

REPORT = {}
def report(**values):
    REPORT.update(values)
    print(json.dumps(REPORT), flush=True)
"""

RunDjango = Callable[..., "Ran"]


class Ran:
    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        self.returncode = done.returncode
        self.stderr = done.stderr
        lines = done.stdout.strip().splitlines()
        self.report: dict[str, Any] = json.loads(lines[-1]) if lines else {}

    def __getitem__(self, key: str) -> Any:
        return self.report[key]


@pytest.fixture
def run_django(redis_url: str, tmp_path: Path) -> RunDjango:
    need("django", "django")

    def run(body: str, url: str = redis_url, ok: bool = True) -> Ran:
        env = {**os.environ, "DB": str(tmp_path / "db.sqlite3"), "JOBWIRE_TEST_URL": url}
        done = subprocess.run(
            [sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        ran = Ran(done)
        if ok:
            assert ran.returncode == 0, ran.stderr
        return ran

    return run


def test_a_committed_transaction_sends_the_job_after_the_commit(
    run_django: RunDjango, redis_url: str
) -> None:
    ran = run_django("""
        with transaction.atomic():
            insert("a@example.com")
            job = enqueue_on_commit("send_receipt", 1, email="a@example.com", _queue_name="mail")
            report(job_id=job.job_id, inside=job.status().value, queued_inside=queued())
        report(after=job.status().value)
    """)
    assert (ran["inside"], ran["after"]) == ("not_found", "queued")
    with jobwire.Client.from_url(redis_url) as client:
        job = client.job(ran["job_id"], "mail")
        assert job.status() is JobStatus.QUEUED
        info = job.info()
        assert info is not None
        assert (info.function, info.args, info.kwargs) == (
            "send_receipt", (1,), {"email": "a@example.com"}
        )  # fmt: skip


def test_a_rolled_back_transaction_sends_nothing(run_django: RunDjango, redis_url: str) -> None:
    ran = run_django("""
        class Refused(Exception):
            pass

        try:
            with transaction.atomic():
                insert("b@example.com")
                job = enqueue_on_commit("send_receipt", 2, _job_id="order-2")
                raise Refused
        except Refused:
            pass
        report(orders=orders(), status=job.status().value, job_id=job.job_id)
    """)
    assert ran["orders"] == [] and ran["status"] == "not_found"
    assert ran["job_id"] == "order-2"  # the id given is the handle's
    with jobwire.Client.from_url(redis_url) as client:
        assert client.queue_size() == 0
        assert client.redis.keys("*") == []  # nothing at all was sent


def test_savepoints_rolled_back_or_released_inside_a_transaction(
    run_django: RunDjango, redis_url: str
) -> None:
    ran = run_django("""
        with transaction.atomic():
            outer = enqueue_on_commit("job", "outer")
            try:
                with transaction.atomic():  # a savepoint, rolled back
                    dropped = enqueue_on_commit("job", "dropped")
                    raise ValueError
            except ValueError:
                pass
            with transaction.atomic():  # a savepoint, released: still waits for the commit
                kept = enqueue_on_commit("job", "kept")
            report(before_commit=queued())
        report(
            outer=outer.status().value, dropped=dropped.status().value, kept=kept.status().value
        )
    """)
    assert ran["before_commit"] == 0
    assert (ran["outer"], ran["kept"], ran["dropped"]) == ("queued", "queued", "not_found")
    with jobwire.Client.from_url(redis_url) as client:
        assert [info.args for info in client.queued_jobs()] == [("outer",), ("kept",)]


def test_outside_a_transaction_the_job_is_sent_at_once(run_django: RunDjango) -> None:
    ran = run_django("""
        job = enqueue_on_commit("send_receipt", 3)
        report(status=job.status().value)
    """)
    assert ran["status"] == "queued"


def test_a_closed_default_client_is_replaced_on_the_next_call(run_django: RunDjango) -> None:
    ran = run_django("""
        from jobwire.django import get_client
        first = get_client()
        first.close()  # (an app's shutdown hook, a test's teardown)
        second = get_client()
        with transaction.atomic():
            insert("a@example.com")
            job = enqueue_on_commit("send_receipt", 1)
        report(closed=first.closed, new=second is not first, open=not second.closed,
               status=job.status().value)
    """)
    assert ran.report == {"closed": True, "new": True, "open": True, "status": "queued"}


def test_the_transaction_of_the_database_named_by_using(run_django: RunDjango) -> None:
    ran = run_django("""
        with transaction.atomic(using="other"):
            insert("c@example.com", using="other")
            job = enqueue_on_commit("send_receipt", 4, _using="other")
            with transaction.atomic():  # the default database commits first: not this one
                pass
            report(before=job.status().value)
        report(after=job.status().value)
    """)
    assert (ran["before"], ran["after"]) == ("not_found", "queued")


def test_a_bad_job_raises_at_once_so_the_transaction_rolls_back(run_django: RunDjango) -> None:
    ran = run_django("""
        for bad in ({"_expires": -5}, {"_job_id": ""}, {"_serializer": "yaml"}, {"x": object()}):
            try:
                with transaction.atomic():
                    insert("d@example.com")
                    enqueue_on_commit("send_receipt", 5, **bad)
            except jobwire.JobwireError as e:
                report(**{next(iter(bad)): type(e).__name__})
        try:
            enqueue_on_commit("send_receipt", _client=jobwire.AsyncClient.from_url("redis://x"))
        except jobwire.InvalidArgument as e:
            report(async_client=str(e))
        report(orders=orders(), queued=queued())
    """)
    assert (ran["_expires"], ran["_job_id"], ran["_serializer"]) == ("InvalidArgument",) * 3
    assert ran["x"] == "UnsupportedValue"
    assert "blocking jobwire.Client" in ran["async_client"]
    assert ran["orders"] == [] and ran["queued"] == 0


def test_redis_down_at_commit_is_logged_and_raised_with_the_data_committed(
    run_django: RunDjango, redis_url: str
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    ran = run_django(f"""
        from jobwire import RedisSettings
        client = jobwire.Client(settings=RedisSettings.from_url({down!r}, retries=0))
        try:
            with transaction.atomic():
                insert("e@example.com")
                job = enqueue_on_commit("send_receipt", 6, _client=client)
        except jobwire.RedisUnavailable:
            report(raised=True, job_id=job.job_id)
        report(orders=orders())
    """)
    assert ran["raised"] is True and ran["orders"] == ["e@example.com"]
    assert f"ERROR jobwire.django could not enqueue job {ran['job_id']} (send_receipt)" in (
        ran.stderr
    )
    assert "Traceback" in ran.stderr and "RedisUnavailable" in ran.stderr


def test_robust_logs_the_failure_and_the_other_callbacks_still_run(
    run_django: RunDjango, redis_url: str
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    ran = run_django(f"""
        from jobwire import RedisSettings
        client = jobwire.Client(settings=RedisSettings.from_url({down!r}, retries=0))
        with transaction.atomic():
            lost = enqueue_on_commit("send_receipt", 7, _client=client, _robust=True)
            sent = enqueue_on_commit("send_receipt", 8)
        report(lost=lost.job_id, sent=sent.status().value)
    """)
    assert ran["sent"] == "queued"
    assert f"could not enqueue job {ran['lost']} (send_receipt)" in ran.stderr
    assert "Traceback" in ran.stderr


def test_a_job_id_taken_at_commit_sends_nothing_new(run_django: RunDjango, redis_url: str) -> None:
    with jobwire.Client.from_url(redis_url) as client:
        first = client.enqueue("send_receipt", 9, _job_id="order-9")
        assert first is not None
        ran = run_django("""
            with transaction.atomic():
                job = enqueue_on_commit("send_receipt", 10, _job_id="order-9")
            report(job_id=job.job_id)
        """)
        assert ran["job_id"] == "order-9"
        info = first.info()
        assert info is not None and info.args == (9,)  # the first job, untouched
        assert client.queue_size() == 1
