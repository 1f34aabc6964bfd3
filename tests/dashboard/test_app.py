"""The dashboard without a browser: access rules, CSRF, escaping, pickle, actions, pages."""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path

import pytest
import redis

import jobwire
from jobwire.dashboard import create_app
from tests.dashboard.conftest import TOKEN, Dashboard, csrf_of
from tests.dashboard.jobs import XSS, Trap, functions
from tests.helpers.support import wait_until
from tests.helpers.workers import StartWorker

# ------------------------------------------------------------------ access


def test_every_page_needs_the_token(dashboard: Dashboard) -> None:
    browser = dashboard(login=False)
    for path in ("/", "/queue?name=default", "/dead", "/failures", "/api/overview", "/live"):
        denied = browser.get(path)
        assert denied.status_code == 401, path
        assert denied.headers["www-authenticate"].startswith("Basic ")
    assert browser.get("/?token=wrong-token-0123456789").status_code == 401
    assert browser.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    assert browser.get("/", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    wrong = base64.b64encode(b"anyone:nope").decode()
    assert browser.get("/", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    # the static files (public libraries) need nothing
    assert browser.get("/static/htmx.min.js").status_code == 200


def test_the_login_link_sets_a_strict_session_cookie_and_drops_the_token(
    dashboard: Dashboard,
) -> None:
    browser = dashboard(login=False)
    login = browser.get(f"/dead?queue=q1&token={TOKEN}", follow_redirects=False)
    assert login.status_code == 303
    assert login.headers["location"] == "/dead?queue=q1"  # the token leaves the address bar
    cookie = login.headers["set-cookie"].lower()
    assert "samesite=strict" in cookie and "httponly" in cookie
    assert browser.get("/dead?queue=q1").status_code == 200  # the cookie is enough now


def test_a_dashboard_that_can_change_things_needs_a_token(redis_url: str) -> None:
    client = jobwire.AsyncClient.from_url(redis_url)
    with pytest.raises(jobwire.InvalidArgument, match="needs a token"):
        create_app(client)
    with pytest.raises(jobwire.InvalidArgument, match="at least 16"):
        create_app(client, token="short")


def test_read_only_without_a_token_serves_loopback_only(
    dashboard: Dashboard, client: jobwire.Client
) -> None:
    client.enqueue("ok", 1)
    local = dashboard(token=None, read_only=True)
    page = local.get("/")
    assert page.status_code == 200
    assert 'name="csrf"' not in page.text and "Pause" not in page.text  # no actions offered
    assert local.post("/queue/pause", data={"name": "default"}).status_code == 403
    assert not client.is_paused()
    remote = dashboard(token=None, read_only=True, peer=("192.0.2.10", 50000))
    assert remote.get("/").status_code == 403
    assert remote.get("/api/overview").status_code == 403


def test_read_only_with_a_token_refuses_actions(
    dashboard: Dashboard, client: jobwire.Client
) -> None:
    client.enqueue("ok", 1)
    browser = dashboard(read_only=True, peer=("192.0.2.10", 50000))
    assert browser.get("/").status_code == 200
    assert browser.post("/queue/pause", data={"name": "default", "csrf": "x"}).status_code == 403
    assert not client.is_paused()


def test_every_action_needs_the_session_csrf_token(
    dashboard: Dashboard, client: jobwire.Client
) -> None:
    client.enqueue("ok", 1)
    browser = dashboard()
    csrf = csrf_of(browser.get("/").text)
    refused = [
        {"name": "default"},  # no token
        {"name": "default", "csrf": "forged"},  # a wrong one
    ]
    for form in refused:
        assert browser.post("/queue/pause", data=form).status_code == 403
    # a bearer header alone is no CSRF token, and another site's form is refused
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert browser.post("/queue/pause", data={"name": "default"}, headers=bearer).status_code == 403
    evil = {"Origin": "https://evil.example"}
    form = {"name": "default", "csrf": csrf}
    assert browser.post("/queue/pause", data=form, headers=evil).status_code == 403
    assert not client.is_paused()
    # another session's token does not work in this one
    other = dashboard()
    assert other.post("/queue/pause", data=form).status_code == 403
    assert not client.is_paused()

    done = browser.post("/queue/pause", data=form, follow_redirects=False)
    assert done.status_code == 303 and client.is_paused()
    assert "queue default paused" in browser.get("/").text  # the flash message
    browser.post("/queue/resume", data=form)
    assert not client.is_paused()


def test_a_redirect_after_an_action_stays_on_the_dashboard(
    dashboard: Dashboard, client: jobwire.Client
) -> None:
    client.enqueue("ok", 1)
    browser = dashboard()
    form = {"name": "default", "csrf": csrf_of(browser.get("/").text)}
    for target in ("https://evil.example/", "//evil.example/x"):
        answer = browser.post(f"/queue/pause?next={target}", data=form, follow_redirects=False)
        assert answer.headers["location"] == "/", target
        client.resume()


def test_responses_forbid_inline_scripts_and_framing(dashboard: Dashboard) -> None:
    answer = dashboard().get("/")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"


# ----------------------------------------------------------------- escaping


def _assert_text_only(page: str, where: str) -> None:
    # no tag of the payload survives as markup; the payload is shown as text
    assert "<script>window" not in page and "<img src=x" not in page, where
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;&lt;img src=x onerror=" in page, where


def test_every_value_read_from_redis_is_escaped(
    dashboard: Dashboard, client: jobwire.Client, redis_url: str, start_worker: StartWorker
) -> None:
    queue = "q<script>window.__xss=3</script>"  # (queue names hold no white space)
    client.enqueue(XSS, XSS, _job_id=XSS, _queue_name=queue, _headers={XSS: XSS}, note=XSS)
    client.enqueue("boom", XSS, _job_id="fails")
    with redis.Redis.from_url(redis_url) as r:
        key = jobwire.keys.QueueKeys("jobwire", queue).dead
        r.xadd(key, {"job_id": XSS, "reason": XSS, "message": XSS, "data": XSS, "at_ms": "1"})
    start_worker(functions(), name="w" + XSS, queue_names=["default", queue],
                 health_check_interval=0.2)  # fmt: skip
    wait_until(lambda: client.job("fails").outcome() == "error", timeout=10)

    browser = dashboard()
    wait_until(lambda: "healthy" in browser.get("/").text, timeout=5)  # the worker's record
    pages = {
        "overview": browser.get("/").text,
        "queue": browser.get("/queue", params={"name": queue}).text,
        "search": browser.get("/queue", params={"name": queue, "q": "script"}).text,
        "job": browser.get("/job", params={"queue": queue, "id": XSS}).text,
        "traceback": browser.get("/job", params={"queue": "default", "id": "fails"}).text,
        "dead": browser.get("/dead").text,
        "failures": browser.get("/failures").text,
    }
    for where, page in pages.items():
        if where not in ("traceback", "failures", "queue", "search"):
            _assert_text_only(page, where)
        assert "<script>window" not in page, where
    for where in ("queue", "search"):  # the queue's own name, as text
        assert "q&lt;script&gt;window.__xss=3&lt;/script&gt;" in pages[where], where
    assert "ValueError" in pages["traceback"] and "Traceback" in pages["traceback"]
    assert "ValueError" in pages["failures"]
    # the live data is JSON: the browser puts it in as text (dashboard.js uses textContent)
    assert queue in browser.get("/api/overview").json()["queues"]


# ------------------------------------------------------------------- pickle


def test_pickle_jobs_and_results_are_never_unpickled(
    dashboard: Dashboard, redis_url: str, tmp_path: Path, start_worker: StartWorker
) -> None:
    args_flag, result_flag = tmp_path / "args-unpickled", tmp_path / "result-unpickled"
    pickled = {"accept": ("json", "msgpack", "pickle")}
    with jobwire.Client.from_url(redis_url, **pickled) as producer:
        producer.enqueue("ok", Trap(str(args_flag)), _job_id="waits", _serializer="pickle",
                         _queue_name="held")  # fmt: skip
        start_worker(functions(), accept=("json", "msgpack", "pickle"))
        job = producer.enqueue("trap", str(result_flag), _job_id="done", _serializer="pickle")
        assert job is not None
        wait_until(lambda: job.outcome() == "success", timeout=10)
        result_flag.unlink(missing_ok=True)  # result() in wait_until may not have read it
        # an app whose own client accepts pickle: the dashboard still does not unpickle
        browser = dashboard(**pickled)
        waiting = browser.get("/job", params={"queue": "held", "id": "waits"}).text
        listing = browser.get("/queue", params={"name": "held"}).text
        finished = browser.get("/job", params={"queue": "default", "id": "done"}).text
        browser.get("/failures")
    assert not args_flag.exists() and not result_flag.exists()
    assert "its arguments are not shown" in waiting and "bytes" in waiting
    assert "waits" in listing and "pickle" in listing
    assert "a pickled value of" in finished and "not shown" in finished


# ------------------------------------------------------------------ actions


def test_dead_letters_are_requeued_and_deleted_in_bulk(
    dashboard: Dashboard, client: jobwire.Client, start_worker: StartWorker
) -> None:
    for n in range(3):
        client.enqueue("missing", n, _job_id=f"lost-{n}")
    start_worker(functions(), unknown_function_grace=0)
    wait_until(lambda: len(client.dead_letters()) == 3, timeout=10)
    letters = client.dead_letters()
    browser = dashboard()
    page = browser.get("/dead").text
    assert "unknown_function" in page and "lost-0" in page
    form = {"csrf": csrf_of(page), "entry": [f"default {letters[0].entry_id}"]}
    answer = browser.post("/dead/delete?next=/dead", data=form)
    assert "1 dead letter deleted" in answer.text
    client.pause()  # so that the worker leaves the re-queued jobs queued (within a second)
    time.sleep(1.1)
    form["entry"] = [f"default {d.entry_id}" for d in letters[1:]] + ["default 1-1"]
    answer = browser.post("/dead/requeue?next=/dead", data=form)
    assert "2 dead letters re-queued" in answer.text and "not re-queued" in answer.text
    assert {j.job_id for j in client.queued_jobs()} == {d.job_id for d in letters[1:]}
    assert client.dead_letters() == []


def test_waiting_jobs_are_removed_and_aborted_from_their_page(
    dashboard: Dashboard, client: jobwire.Client
) -> None:
    client.enqueue("ok", 1, _job_id="soon", _defer_by=600)
    browser = dashboard()
    page = browser.get("/job", params={"queue": "default", "id": "soon"}).text
    assert "deferred" in page and '"args"' in html.unescape(page)
    form = {"csrf": csrf_of(page), "queue": "default", "id": "soon"}
    answer = browser.post("/job/delete?next=/", data=form)
    assert "removed" in answer.text
    assert client.job("soon").outcome() == "aborted"


def test_a_failed_job_is_retried_from_its_page(
    dashboard: Dashboard, client: jobwire.Client, start_worker: StartWorker
) -> None:
    client.enqueue("boom", "card declined", _job_id="pay-1")
    client.enqueue("ok", 1, _job_id="fine-1")
    start_worker(functions())
    job = client.job("pay-1")
    wait_until(lambda: job.outcome() == "error" and client.job("fine-1").outcome(), timeout=10)
    browser = dashboard()
    assert 'data-testid="retry"' not in browser.get("/job?queue=default&id=fine-1").text
    page = browser.get("/job", params={"queue": "default", "id": "pay-1"}).text
    assert 'data-testid="retry"' in page and "/job/retry" in page
    form = {"queue": "default", "id": "pay-1"}
    assert browser.post("/job/retry", data=form).status_code == 403  # no CSRF token
    form["csrf"] = csrf_of(page)
    answer = browser.post("/job/retry?next=/", data=form)
    assert "job pay-1 re-queued" in answer.text
    # it ran again, with the same arguments
    wait_until(lambda: len(job.results()) == 2, timeout=10)
    assert [r.error.message for r in job.results() if r.error] == ["card declined"] * 2
    answer = browser.post("/job/retry?next=/", data={**form, "id": "fine-1"})
    assert "job fine-1 not retried" in answer.text and "succeeded" in answer.text


def test_the_queue_listing_pages_and_searches(dashboard: Dashboard, client: jobwire.Client) -> None:
    client.enqueue_many(
        [jobwire.JobSpec("alpha", _job_id=f"a-{n:03}") for n in range(60)]
        + [jobwire.JobSpec("beta", _job_id="b-1")]
    )
    client.enqueue("gamma", _job_id="later", _defer_by=600)
    browser = dashboard()
    first = browser.get("/queue", params={"name": "default"}).text
    assert "61 queued jobs" in first and "page 1 of 2" in first and "a-000" in first
    second = browser.get("/queue", params={"name": "default", "page": 2}).text
    assert "b-1" in second and "a-000" not in second
    found = browser.get("/queue", params={"name": "default", "q": "BETA"}).text
    assert "1 queued job" in found and "b-1" in found and "a-001" not in found
    partial = browser.get(
        "/queue", params={"name": "default", "q": "b-"}, headers={"HX-Request": "true"}
    )
    assert "<html" not in partial.text and "b-1" in partial.text  # htmx gets the listing only
    deferred = browser.get("/queue", params={"name": "default", "state": "deferred"}).text
    assert "later" in deferred and "gamma" in deferred


def test_the_overview_counts_and_the_live_sample(
    dashboard: Dashboard, client: jobwire.Client, start_worker: StartWorker
) -> None:
    client.enqueue("ok", 1, _queue_name="emails", _defer_by=600)
    client.enqueue("ok", 2, _queue_name="emails")
    client.pause("emails")
    start_worker(functions(), queue_names=["emails"], health_check_interval=0.2)
    browser = dashboard()
    sample = browser.get("/api/overview").json()["queues"]["emails"]
    assert sample["queued"] == 1 and sample["deferred"] == 1 and sample["paused"] is True
    page = browser.get("/").text
    assert "emails" in page and "paused" in page
    wait_until(lambda: "healthy" in browser.get("/").text, timeout=5)
    page = browser.get("/").text
    assert "fetch emails: waiting" in page and "clock offset" in page and "emails paused" in page


def test_it_mounts_under_a_path_of_another_app(redis_url: str, client: jobwire.Client) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    client.enqueue("ok", 1, _job_id="mounted")
    app_client = jobwire.AsyncClient.from_url(redis_url)
    outer = Starlette(routes=[Mount("/jobs", app=create_app(app_client, token=TOKEN))])
    with TestClient(outer, base_url="http://dash.test") as browser:
        login = browser.get(f"/jobs/?token={TOKEN}", follow_redirects=False)
        assert login.headers["location"] == "/jobs/"
        page = browser.get("/jobs/queue", params={"name": "default"}).text
        assert 'href="/jobs/job?queue=default&amp;id=mounted"' in page
        assert 'src="/jobs/static/htmx.min.js"' in page
        assert browser.get("/jobs/static/dashboard.js").status_code == 200
        form = {"name": "default", "csrf": csrf_of(page)}
        answer = browser.post("/jobs/queue/pause?next=/queue?name=default", data=form,
                              follow_redirects=False)  # fmt: skip
        assert answer.headers["location"] == "/jobs/queue?name=default"
        assert client.is_paused()
        browser.portal.call(app_client.close)
