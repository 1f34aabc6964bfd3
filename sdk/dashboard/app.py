"""The dashboard's ASGI application: pages, actions and the live stream.

Pages are server-rendered by Jinja2 with autoescaping on, so every value read from Redis
is text in the page, never markup. Actions are plain HTML forms (POST, then a redirect
back); htmx refreshes the job lists as you type a search, and a small script draws the
live counters, progress and latest events from the server-sent events of ``/live`` (fed by
the queues' event streams) and the charts of ``/api/stats`` (the workers' stats).
``/metrics`` serves queue gauges to Prometheus.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from jobwire.aio import AsyncClient
from jobwire.errors import InvalidArgument, JobNotFound, JobwireError, WaitTimeout
from jobwire.keys import check_job_id, check_name
from jobwire.wire import WireError

from . import data, metrics
from .auth import Policy, SecurityHeaders, csrf_token, session_secret
from .live import Sampler, sse_stream

__all__ = ["create_app"]

HERE = Path(__file__).parent
PER_PAGE = 50
STATES = ("queued", "deferred", "running")


def create_app(
    client: AsyncClient, *, read_only: bool = False, token: str | None = None
) -> Starlette:
    """The dashboard as an ASGI app, to run with uvicorn or mount in FastAPI/Starlette.

    ``client`` is the application's :class:`jobwire.AsyncClient` (the dashboard reads
    through it, never unpickling, and does not close it). ``token`` is required unless
    ``read_only``: pages then need it (login link, basic auth or a bearer header) and every
    action needs it plus the session's CSRF token. A read-only dashboard without a token
    answers loopback clients only.

    >>> app.mount("/jobs", create_app(client, token=os.environ["TOKEN"]))  # doctest: +SKIP
    """
    if token is not None and (not isinstance(token, str) or len(token) < 16):
        raise InvalidArgument("the dashboard token must be a string of at least 16 characters")
    if token is None and not read_only:
        raise InvalidArgument(
            "a dashboard that can change things needs a token (or read_only=True, which "
            "without a token answers loopback clients only)"
        )
    view = data.safe_view(client)
    policy = Policy(token=token, read_only=read_only)
    pages = _Pages(view, policy, Sampler(view))
    page, action = policy.page, policy.action
    routes = [
        Route("/", page(pages.overview), name="overview"),
        Route("/queue", page(pages.queue), name="queue"),
        Route("/job", page(pages.job), name="job"),
        Route("/dead", page(pages.dead), name="dead"),
        Route("/failures", page(pages.failures), name="failures"),
        Route("/live", page(pages.live), name="live"),
        Route("/api/overview", page(pages.api_overview), name="api_overview"),
        Route("/api/stats", page(pages.api_stats), name="api_stats"),
        Route("/metrics", page(pages.metrics), name="metrics"),
        Route("/queue/pause", action(pages.pause), methods=["POST"]),
        Route("/queue/resume", action(pages.resume), methods=["POST"]),
        Route("/job/abort", action(pages.abort), methods=["POST"]),
        Route("/job/delete", action(pages.delete), methods=["POST"]),
        Route("/dead/requeue", action(pages.requeue_letters), methods=["POST"]),
        Route("/dead/delete", action(pages.delete_letters), methods=["POST"]),
        Mount(
            "/static",
            # (an editable install links the files: they are ours, follow them)
            StaticFiles(directory=HERE / "static", follow_symlink=True),
            name="static",
        ),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=session_secret(token),
            session_cookie="jobwire_dashboard",
            same_site="strict",
            max_age=12 * 3600,
        ),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # (a mounted app's lifespan does not run: the sampler also stops with its last viewer)
        yield
        await pages.sampler.close()

    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={JobwireError: pages.failed, WireError: pages.failed},
        lifespan=lifespan,
    )
    app.state.jobwire_read_only = read_only
    return app


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is text unless a template says otherwise (none does)
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = lambda t: "" if t is None else t.strftime("%Y-%m-%d %H:%M:%S")
    return env


class _Pages:
    """The endpoints, sharing the client view, the policy and the sampler."""

    def __init__(self, client: AsyncClient, policy: Policy, sampler: Sampler) -> None:
        self.client = client
        self.policy = policy
        self.sampler = sampler
        self.templates = Jinja2Templates(env=_environment())

    # -------------------------------------------------------------- helpers

    def render(self, request: Request, template: str, **context: Any) -> Response:
        root: str = request.scope.get("root_path", "")

        def rel(path: str, **query: Any) -> str:  # a path of this dashboard, for ``next``
            items = {k: v for k, v in query.items() if v not in (None, "")}
            return path + (f"?{urlencode(items)}" if items else "")

        def link(path: str, **query: Any) -> str:  # a link the browser follows
            return root + rel(path, **query)

        flash = request.session.pop("flash", None) if "session" in request.scope else None
        context.update(
            link=link,
            rel=rel,
            static=lambda p: root + "/static/" + p,
            read_only=self.policy.read_only,
            csrf=csrf_token(request) if not self.policy.read_only else "",
            flash=flash if isinstance(flash, str) else None,
        )
        status = context.pop("status", 200)
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    def back(self, request: Request, message: str, fallback: str = "/") -> Response:
        request.session["flash"] = message[:500]
        root = request.scope.get("root_path", "")
        target = request.query_params.get("next", "")
        # only a path of this dashboard: never an open redirect
        if not target.startswith("/") or target.startswith("//"):
            target = fallback
        return RedirectResponse(root + target, status_code=303)

    @staticmethod
    def queue_param(value: Any) -> str:
        if not isinstance(value, str):
            raise InvalidArgument("a queue name is needed")
        return check_name("queue name", value)

    async def failed(self, request: Request, exc: Exception) -> Response:
        """A jobwire error while serving: bad input (400) or Redis trouble (503)."""
        status = 400 if isinstance(exc, (InvalidArgument, WireError)) else 503
        return PlainTextResponse(f"jobwire dashboard: {exc}"[:1000], status_code=status)

    # ---------------------------------------------------------------- pages

    async def overview(self, request: Request) -> Response:
        names = await data.queue_names(self.client)
        queues = [await data.queue_counts(self.client, n) for n in names]
        # one row per worker, with its queues (each queue has a record of it)
        workers: dict[str, data.WorkerView] = {}
        queues_of: dict[str, list[str]] = {}
        paused_of: dict[str, list[str]] = {}
        served: dict[str, int] = {}
        stale = 0
        for name in names:
            found, old = await data.workers(self.client, name)
            stale += old
            served[name] = len(found)
            for view in found:
                workers.setdefault(view.name, view)
                queues_of.setdefault(view.name, []).append(name)
                if view.assessment.record.get("paused") is True:
                    paused_of.setdefault(view.name, []).append(name)
        return self.render(
            request, "overview.html", queues=queues, workers=list(workers.values()),
            queues_of=queues_of, paused_of=paused_of, served=served, stale=stale,
            chart_queue="",
        )  # fmt: skip

    async def queue(self, request: Request) -> Response:
        try:
            name = self.queue_param(request.query_params.get("name"))
        except InvalidArgument as exc:
            return self.render(request, "error.html", message=str(exc), status=400)
        state = request.query_params.get("state", "queued")
        state = state if state in STATES else "queued"
        search = request.query_params.get("q", "")[:200]
        page = _page(request.query_params.get("page"))
        jobs, total = await data.jobs_page(self.client, name, state, search, page, PER_PAGE)
        progress = await data.progress_of(self.client, name, jobs) if state == "running" else {}
        context = {
            "progress": progress,
            "name": name, "state": state, "states": STATES, "search": search, "page": page,
            "pages": max(1, math.ceil(total / PER_PAGE)), "total": total, "jobs": jobs,
            "counts": await data.queue_counts(self.client, name), "chart_queue": name,
        }  # fmt: skip
        if request.headers.get("hx-request") == "true":  # htmx: only the listing
            return self.render(request, "_jobs.html", **context)
        return self.render(request, "queue.html", **context)

    async def job(self, request: Request) -> Response:
        try:
            queue = self.queue_param(request.query_params.get("queue"))
            job_id = check_job_id(request.query_params.get("id", ""))
        except InvalidArgument as exc:
            return self.render(request, "error.html", message=str(exc), status=400)
        detail = await data.job_detail(self.client, queue, job_id)
        return self.render(
            request, "job.html", job=detail, args_json=_args_text(detail),
            headers=data.letter_header, client=self.client,
            events=await data.job_events(self.client, queue, job_id),
        )  # fmt: skip

    async def dead(self, request: Request) -> Response:
        names = await data.queue_names(self.client)
        wanted = request.query_params.get("queue", "")
        queues = [wanted] if wanted in names else names
        letters = await data.dead_letters(self.client, queues, 200)
        rows = [(d, data.letter_header(self.client, d), data.preview(d.data)) for d in letters]
        return self.render(request, "dead.html", rows=rows, names=names, queue=wanted)

    async def failures(self, request: Request) -> Response:
        return self.render(
            request, "failures.html", results=await data.recent_failures(self.client)
        )

    async def live(self, request: Request) -> Response:
        return StreamingResponse(
            sse_stream(self.sampler),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def api_overview(self, request: Request) -> Response:
        return JSONResponse(await self.sampler.sample())

    async def api_stats(self, request: Request) -> Response:
        """Jobs finished per minute by outcome and duration percentiles, the last hour.

        From the stats workers keep in Redis (``client.stats``): of one queue
        (``?queue=``), or of every queue summed.
        """
        wanted = request.query_params.get("queue", "")
        names = [self.queue_param(wanted)] if wanted else await data.queue_names(self.client)
        series = await data.stats_series(self.client, names)
        return JSONResponse({"queue": wanted, **series.as_dict()})

    async def metrics(self, request: Request) -> Response:
        """Queue-level gauges for Prometheus (see :mod:`jobwire.dashboard.metrics`)."""
        body, content_type = metrics.exposition(await metrics.read_gauges(self.client))
        return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})

    # -------------------------------------------------------------- actions

    async def _form(self, request: Request) -> dict[str, Any]:
        form = await request.form()
        return {k: form.getlist(k) if k == "entry" else form.get(k) for k in form}

    async def pause(self, request: Request) -> Response:
        return await self._pause_or_resume(request, pause=True)

    async def resume(self, request: Request) -> Response:
        return await self._pause_or_resume(request, pause=False)

    async def _pause_or_resume(self, request: Request, *, pause: bool) -> Response:
        name = self.queue_param((await self._form(request)).get("name"))
        if pause:
            changed = await self.client.pause(name)
            return self.back(
                request, f"queue {name} paused" if changed else f"{name}: already paused"
            )
        changed = await self.client.resume(name)
        return self.back(request, f"queue {name} resumed" if changed else f"{name}: not paused")

    async def abort(self, request: Request) -> Response:
        form = await self._form(request)
        queue, job_id = self.queue_param(form.get("queue")), check_job_id(str(form.get("id", "")))
        try:
            aborted = await self.client.job(job_id, queue).abort(timeout=2)
        except WaitTimeout:
            return self.back(request, f"abort of {job_id} requested: the job has not stopped yet")
        return self.back(
            request,
            f"job {job_id} aborted" if aborted else f"job {job_id} was not running or waiting",
        )

    async def delete(self, request: Request) -> Response:
        """Remove a waiting job from its queue (it ends aborted, before it started)."""
        form = await self._form(request)
        queue, job_id = self.queue_param(form.get("queue")), check_job_id(str(form.get("id", "")))
        info = await self.client.job(job_id, queue).info()
        if info is None or info.status.value == "in_progress":
            return self.back(request, f"job {job_id} is not waiting: nothing removed")
        removed = await self.client.job(job_id, queue).abort(timeout=0)
        return self.back(
            request, f"job {job_id} removed from {queue}" if removed else "nothing removed"
        )

    async def requeue_letters(self, request: Request) -> Response:
        return await self._letters(request, requeue=True)

    async def delete_letters(self, request: Request) -> Response:
        return await self._letters(request, requeue=False)

    async def _letters(self, request: Request, *, requeue: bool) -> Response:
        """Requeue or delete dead letters: each ``entry`` is ``QUEUE ENTRY_ID``."""
        form = await self._form(request)
        done, failed = 0, []
        for item in form.get("entry") or []:
            queue, _, entry = str(item).rpartition(" ")
            try:
                queue = self.queue_param(queue)
                if requeue:
                    job = await self.client.requeue_dead_letter(entry, queue)
                    ok = job is not None
                else:
                    ok = await self.client.delete_dead_letter(entry, queue)
            except (JobNotFound, InvalidArgument, WireError, JobwireError):
                ok = False
            if ok:
                done += 1
            else:
                failed.append(entry)
        verb = "re-queued" if requeue else "deleted"
        message = f"{done} dead letter{'s' * (done != 1)} {verb}"
        if failed:
            message += f"; not {verb} (gone, id taken or unreadable): {', '.join(failed[:10])}"
        return self.back(request, message, fallback="/dead")


def _page(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 10_000))
    except ValueError:
        return 1


def _args_text(detail: data.JobDetail) -> str | None:
    info = detail.info
    if info is None or info.args is None:
        return None
    return data.args_json({"args": list(info.args), "kwargs": info.kwargs or {}})
