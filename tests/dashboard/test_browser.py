"""The dashboard in a real Chromium, with a real worker and a real Redis.

Chromium starts once for the module; each test gets its own dashboard server, workers and a
fresh browser context. The run saves screenshots of the overview and of a job page in
``tests/dashboard/screenshots/run/`` (the README shows a copy of the overview).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

import jobwire
from jobwire.worker import func
from tests.dashboard.browser import SCREENSHOTS, Server, Workers, chromium_path, serve
from tests.dashboard.conftest import TOKEN
from tests.dashboard.jobs import XSS, functions, nap, ok
from tests.helpers.support import LoopThread, wait_until

# Playwright's sync API keeps an event loop on the test's thread: the blocking client says so
pytestmark = pytest.mark.filterwarnings("ignore:jobwire.Client was called:RuntimeWarning")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    # Once for all the browser tests (they are all in this module). Not session-wide:
    # Playwright's sync API keeps an event loop running on this thread while it is open,
    # which later tests that call asyncio.run() must not find.
    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def server(redis_url: str) -> Iterator[Server]:
    yield from serve(redis_url, TOKEN)


@pytest.fixture
def workers(redis_url: str, loop_thread: LoopThread) -> Iterator[Workers]:
    w = Workers(redis_url, loop_thread)
    yield w
    w.close()


@pytest.fixture
def page(chromium: Browser, server: Server) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    p = context.new_page()
    errors: list[str] = []  # a script error or a refused script (CSP) fails the test
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.goto(f"{server.url}/?token={TOKEN}")  # the login link
    yield p
    context.close()
    assert errors == []


@pytest.fixture
def client(redis_url: str) -> Iterator[jobwire.Client]:
    with jobwire.Client.from_url(redis_url) as c:
        yield c


def cell(page: Page, queue: str, field: str) -> Any:
    return page.locator(f'[data-live-queue="{queue}"][data-live-field="{field}"]').first


def test_the_overview_shows_the_queues_and_updates_live(
    page: Page, server: Server, client: jobwire.Client, workers: Workers
) -> None:
    workers.start([func(nap), func(ok)], queue_names=["default", "emails"], max_jobs=2)
    client.enqueue_many([jobwire.JobSpec("report", n, _queue_name="reports") for n in range(3)])
    client.enqueue("report", _queue_name="reports", _defer_by=3600)
    client.enqueue("ok", 1, _queue_name="emails")
    client.enqueue("nap", 0)
    page.goto(server.url + "/")
    expect(page.locator("#queues")).to_contain_text("reports")
    expect(cell(page, "reports", "queued")).to_have_text("3")
    expect(cell(page, "reports", "deferred")).to_have_text("1")
    expect(page.locator("#live-status")).to_have_text("● live")
    # counters follow Redis without a reload, and the chart draws the samples
    client.enqueue_many([jobwire.JobSpec("report", n, _queue_name="reports") for n in range(4)])
    client.enqueue_many([jobwire.JobSpec("nap", 0.25) for _ in range(24)])
    expect(cell(page, "reports", "queued")).to_have_text("7")
    expect(cell(page, "default", "in_progress")).to_have_text("2")
    expect(cell(page, "default", "queued")).to_have_text("0", timeout=15_000)
    expect(page.locator("#chart-depth canvas")).to_have_count(1)
    # never more than one sample a second
    samples = int(page.evaluate("document.body.dataset.liveSamples"))
    elapsed = page.evaluate("performance.now()") / 1000
    assert 3 <= samples <= elapsed + 1
    page.reload()  # the charts start from what the server kept
    expect(page.locator("table.workers")).to_contain_text("healthy")
    expect(page.locator("table.workers")).to_contain_text("fetch emails: ")
    expect(cell(page, "default", "workers")).to_have_text("1")
    time.sleep(1.2)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True)


def test_a_failed_jobs_traceback_is_on_its_page(
    page: Page, server: Server, client: jobwire.Client, workers: Workers
) -> None:
    workers.start(functions())
    job = client.enqueue("boom", "the disk is full", _job_id="nightly-backup")
    assert job is not None
    wait_until(lambda: job.outcome() == "error", timeout=10)
    page.goto(server.url + "/failures")
    page.get_by_role("link", name="nightly-backup").click()
    history = page.locator("section.execution")
    expect(history).to_contain_text("try 1: error")
    expect(history).to_contain_text("ValueError: the disk is full")
    expect(page.locator("pre.traceback")).to_contain_text("Traceback (most recent call last)")
    expect(page.locator("pre.traceback")).to_contain_text("raise ValueError(message)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "job.png"), full_page=True)


def test_requeuing_a_dead_letter_from_the_page_makes_the_job_run(
    page: Page, server: Server, client: jobwire.Client, workers: Workers
) -> None:
    old = workers.start([func(nap)], unknown_function_grace=0)  # a worker without "ok"
    client.enqueue("ok", "back again", _job_id="rollout-7")
    wait_until(lambda: client.dead_letters(), timeout=10)
    workers.stop(old)
    workers.start([func(ok)])  # the new release has it
    page.goto(server.url + "/dead")
    row = page.locator("table.letters tr", has_text="rollout-7")
    expect(row).to_contain_text("unknown_function")
    row.locator('input[type="checkbox"]').check()
    page.get_by_test_id("requeue-selected").click()
    expect(page.locator(".flash")).to_have_text("1 dead letter re-queued")
    assert client.job("rollout-7").result(timeout=10) == "back again"
    page.goto(server.url + "/job?queue=default&id=rollout-7")
    # newest first: the run after the re-queue, then the dead letter's failed result
    expect(page.locator("section.execution").first).to_contain_text("try 1: success")
    expect(page.locator("section.execution").nth(1)).to_contain_text("unknown_function")


def test_pausing_a_queue_stops_new_jobs_and_resuming_restarts_them(
    page: Page, server: Server, client: jobwire.Client, workers: Workers
) -> None:
    workers.start(functions())
    page.goto(server.url + "/queue?name=default")
    page.get_by_test_id("pause").click()
    expect(page.locator(".flash")).to_have_text("queue default paused")
    expect(cell(page, "default", "paused")).to_have_text("paused")
    time.sleep(1.1)  # workers notice within a second
    job = client.enqueue("ok", 42)
    assert job is not None
    expect(cell(page, "default", "queued")).to_have_text("1")  # live, no reload
    time.sleep(1.5)
    assert job.status() is jobwire.JobStatus.QUEUED  # nobody took it
    page.get_by_test_id("resume").click()
    expect(page.locator(".flash")).to_have_text("queue default resumed")
    assert job.result(timeout=5) == 42
    expect(cell(page, "default", "queued")).to_have_text("0")


def test_an_xss_payload_in_a_job_id_and_its_arguments_stays_text(
    page: Page, server: Server, client: jobwire.Client
) -> None:
    client.enqueue(XSS, XSS, _job_id=XSS, title=XSS)
    client.enqueue("plain", _job_id="plain-1")
    page.goto(server.url + "/queue?name=default")
    expect(page.locator("table.jobs")).to_contain_text("plain-1")
    page.get_by_label("search").fill("xss")  # htmx swaps the listing as you type
    expect(page.locator("table.jobs")).not_to_contain_text("plain-1")
    assert "q=xss" in page.url
    link = page.get_by_role("link", name=XSS)
    expect(link).to_have_count(1)
    expect(page.locator("table.jobs")).to_contain_text(XSS)  # the function name, as text
    link.click()
    expect(page.locator("#job-id")).to_have_text(XSS)
    expect(page.locator("#job-function")).to_have_text(XSS)
    expect(page.locator("#job-args")).to_contain_text("window.__xss=1</script>")
    assert page.evaluate("window.__xss") is None
    assert page.locator("script:not([src])").count() == 0  # no script element from the data


def test_events_arrive_live_and_a_running_jobs_progress_moves(
    page: Page, server: Server, client: jobwire.Client, workers: Workers
) -> None:
    workers.start(functions())
    page.goto(server.url + "/")
    expect(page.locator("#live-status")).to_have_text("● live")
    expect(page.locator("#chart-outcomes canvas")).to_have_count(1)  # drawn from /api/stats
    expect(page.locator("body")).to_have_attribute("data-stats-loads", "1")
    job = client.enqueue("ok", 1, _job_id=XSS)
    assert job is not None
    events = page.locator("#recent-events")
    expect(events).to_contain_text(XSS)  # no reload: pushed from the event stream
    expect(events).to_contain_text("succeeded")
    expect(page.locator("#recent-events-none")).to_be_hidden()
    assert page.evaluate("window.__xss") is None
    assert page.locator("#recent-events script, #recent-events img").count() == 0
    slow = client.enqueue("working", 3, "resizing <b>big</b>", _job_id="resize-2")
    assert slow is not None
    wait_until(lambda: slow.progress() is not None, timeout=10)
    page.goto(server.url + "/queue?name=default&state=running")
    progress = page.locator('[data-progress-job="resize-2"]')
    expect(progress).to_contain_text("· resizing <b>big</b>")
    expect(progress).to_contain_text("80 %", timeout=5_000)  # live, from its progress event
    assert page.locator("td.progress b").count() == 0
