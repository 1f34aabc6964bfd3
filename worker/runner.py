"""The worker: its parts, put together, and its life cycle.

A worker is a handful of collaborators handed to each other:

* :class:`~jobwire.worker.config.WorkerConfig`, the validated settings;
* :class:`~jobwire.worker.fetcher.Fetcher`, one fetch loop per queue and the reclaim loop;
* :class:`~jobwire.worker.execution.Attempts`, which runs one delivery to its outcome by the
  rules of :mod:`jobwire.worker.attempt`;
* :class:`~jobwire.worker.recorder.Recorder`, which writes outcomes (group commit);
* :class:`~jobwire.worker.leases.LeaseKeeper`, lease renewal and loop-lag watch, in a thread;
* the health record (:mod:`jobwire.worker.health`) and cron (:mod:`jobwire.worker.cron`).

Every background loop runs under :class:`~jobwire.worker.supervisor.Supervisor`, so none
can end silently; the health record says how each one is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import redis.asyncio

from jobwire.consumer import Consumer
from jobwire.errors import RedisError
from jobwire.keys import QueueKeys
from jobwire.models import Delivery
from jobwire.options import make_producer
from jobwire.packing import Lane
from jobwire.producer import Producer
from jobwire.protocol import AsyncRedis, Gen, run_async

from .config import WorkerConfig
from .connecting import server_address, wait_for_redis
from .cron import CronScheduler
from .execution import Attempts, call_hook
from .executors import ProcessPool, ThreadRunner
from .fetcher import Fetcher
from .functions import Function
from .health import RedisClock, health_key_commands, health_record, memory_policy
from .leases import LeaseKeeper
from .metrics import JobMetrics, MetricsServer
from .progress import ProgressWriter
from .recorder import GroupCommit, Recorder
from .state import QueueState, Running, Slots, Stats
from .subscriber import AbortListener
from .supervisor import Supervisor

__all__ = ["Worker"]

logger = logging.getLogger("jobwire.worker")


class Worker:
    """Runs jobs. Construct it with keyword settings or from an arq-style settings class.

    >>> Worker([send_email, func(train, executor="process")], redis_settings=...)  # doctest: +SKIP

    The settings are those of :class:`~jobwire.worker.config.WorkerConfig`; an unknown one
    is refused with the closest known name.
    """

    def __init__(
        self,
        functions: Sequence[Function | Callable[..., Any]] = (),
        *,
        config: WorkerConfig | None = None,
        **settings: Any,
    ) -> None:
        if config is None:
            config = WorkerConfig.build({"functions": functions, **settings})
        self.config = c = config
        self.functions = c.registry
        self.redis_settings = c.redis
        self.name = c.worker_name
        self.max_jobs = c.max_jobs
        self.burst = c.burst
        # on a cluster: the clock (and memory policy) of the first queue's master
        self.clock = RedisClock(QueueKeys(c.prefix, c.queues[0]).stream)
        self.core: Producer = make_producer(
            c.redis,
            {
                "prefix": c.prefix,
                "queue_name": c.queues[0],
                "accept": c.accept,
                "signing_key": c.signing_key,
                "verify_keys": c.verify_keys,
                "max_size": c.max_size,
                "keep_result": c.defaults.keep_result,
                "events": c.events,
                "max_events": c.max_events,
                "partitions": c.partitions or {},
            },
        )
        self.queues = [
            QueueState(
                q,
                Consumer(
                    self.core,
                    self.name,
                    q,
                    lease=c.lease,
                    dead_letter_cap=c.dead_letter_cap,
                    clock=self.clock.now_ms,
                ),
            )
            for q in c.queues
        ]
        self.ctx: dict[str, Any] = dict(c.ctx or {})
        self.stats = Stats()
        self.slots = Slots(c.max_jobs)
        self.threads = ThreadRunner(c.thread_workers or min(32, (os.cpu_count() or 1) + 4))
        uses_processes = any(f.executor == "process" for f in self.functions.values())
        self.processes = (
            ProcessPool(c.process_workers or os.cpu_count() or 1) if uses_processes else None
        )
        self._stop = asyncio.Event()
        self._stopping = False
        self._redis: AsyncRedis | None = None
        self._signals = 0
        self._started = False  # connected and set up: shutdown has work to do
        self._job_tasks: set[asyncio.Task[None]] = set()
        self._strays: set[str] = set()  # stray partitions last logged
        self.recorder = Recorder(
            run=self._run, pause=self._pause, codec=self.core.codec, worker=self.name,
            now_ms=self.clock.now_ms, stats=self.stats, keep_result=c.defaults.keep_result,
            grace=c.grace,
        )  # fmt: skip
        self.progress = ProgressWriter(self._run)
        self.metrics = JobMetrics()
        self.attempts = Attempts(
            config=c, codec=self.core.codec, ctx=self.ctx, recorder=self.recorder,
            slots=self.slots, threads=self.threads, processes=self.processes,
            now_ms=self.clock.now_ms, progress=self.progress, metrics=self.metrics,
        )  # fmt: skip
        self.fetcher = Fetcher(
            run=self._run, pause=self._pause, queues=self.queues, slots=self.slots,
            stats=self.stats, start=self._start, stopping=lambda: self._stopping,
            stop=self.stop, now_ms=self.clock.now_ms, max_block=self.core.max_block,
            burst=c.burst, max_burst_jobs=c.max_burst_jobs,
        )  # fmt: skip
        self.leases = LeaseKeeper(
            settings=c.redis, queues=self.queues, slots=self.slots, stats=self.stats,
            interval=max(0.2, c.lease / 3), lag_warning=c.loop_lag_warning,
            on_abort=self.abort if c.allow_abort_jobs else None,
        )  # fmt: skip
        self.supervisor = Supervisor(lambda: self._stopping, self._pause)
        self.maxmemory_policy = ""
        self.metrics_server = (
            None if c.metrics_port is None else MetricsServer(self, c.metrics_port, c.metrics_host)
        )

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> Worker:
        """Build from an arq-style settings class (or object): its attributes are settings.

        A public attribute that is no setting is refused (InvalidArgument, with the closest
        setting's name) unless the class names it in ``extra_settings``; ``overrides`` win.
        """
        return cls(config=WorkerConfig.from_settings(settings, overrides))

    # ------------------------------------------------------------ life cycle

    def run(self) -> None:
        """Run until stopped (SIGTERM/SIGINT) or, in burst mode, until the queues are empty."""
        asyncio.run(self.main())

    async def main(self) -> None:
        """The worker's whole life, for callers that already run an event loop."""
        await self.startup()
        try:
            await self._stop.wait()
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        """Connect, create the consumer groups, run ``on_startup``, start the loops.

        While Redis is unreachable it waits for it, logging each attempt (see
        :mod:`~jobwire.worker.connecting`); when stopped meanwhile it returns without
        starting anything. Refused credentials raise :class:`~jobwire.RedisAuthError`.
        """
        c = self.config
        self._stop = asyncio.Event()
        self._stopping = False
        self._started = False
        self.slots.reset()
        self._redis = c.redis.async_client()
        if c.handle_signals:
            self._install_signals()  # before waiting for Redis: a stop must end the wait
        if self.metrics_server is not None:
            self.metrics_server.start()  # scraped while waiting for Redis too
        try:
            connected = await wait_for_redis(
                lambda: self._run(self.clock.measure()), self._stop, server_address(c.redis)
            )
        except BaseException:
            await self._redis.aclose()  # refused credentials, ...: nothing else started
            self._redis = None
            if self.metrics_server is not None:
                self.metrics_server.stop()
            raise
        if not connected:
            return  # stopped while waiting; shutdown() has nothing to undo
        self._started = True
        await self._check_memory_policy()
        # each queue's fetch loop and group commit keep a connection of their own, within a
        # quarter of the pool (the rest serves jobs, leases, health); a cluster has none
        lanes = isinstance(self._redis, redis.asyncio.Redis) and (
            2 * len(self.queues) <= c.redis.max_connections // 4
        )
        for q in self.queues:
            await self._run(q.consumer.ensure_group())
            q.results = GroupCommit(partial(self.recorder.send_results, q))
            if lanes:
                q.fetch_lane, q.commit_lane = Lane(self._redis), Lane(self._redis)
        await self._run(self.core.register_queues([q.name for q in self.queues]))
        self.ctx.update(redis=self._redis, worker=self.name)
        await call_hook(c.hooks, "on_startup", self.ctx)
        if self.processes is not None:
            self.processes.start()  # in the background: loop and thread jobs need not wait
            self._warn_process_slots()
        self.leases.start()
        self.supervisor.loops[self.leases.state.name] = self.leases.state
        start = self.supervisor.start
        for q in self.queues:
            start(
                f"fetch {q.name}",
                partial(self.fetcher.fetch_loop, q),
                # a blocking read returns within max_block; any call within socket_timeout
                stall_after=self.core.max_block + (c.redis.socket_timeout or 5.0) + 1,
            )
        reclaim_every = max(0.05, min(1.0, c.lease / 20))
        start("reclaim", lambda s: self.fetcher.reclaim_loop(reclaim_every, s), reclaim_every + 10)
        start("health", self._health_loop, c.health_check_interval + 10)
        if c.allow_abort_jobs:
            channels = [q.consumer.keys.events for q in self.queues]
            listener = AbortListener(self._redis, channels, c.redis)
            await listener.subscribe()  # before the first job can start
            start("abort listener", lambda s: listener.listen(s, self.abort), stall_after=0)
        if c.cron_jobs:
            cron = CronScheduler(
                c.cron_jobs, core=self.core, queue=self.queues[0].name, worker=self.name,
                tz=c.timezone, now_ms=self.clock.now_ms, run=self._run, pause=self._pause,
                stopping=lambda: self._stopping,
            )  # fmt: skip
            start("cron", cron.loop, stall_after=30)
        logger.info(
            "worker %s started: queues %s, %d functions, max_jobs=%d, redis %s",
            self.name,
            ", ".join(q.name for q in self.queues),
            len(self.functions),
            self.max_jobs,
            c.redis.safe_url(),
        )
        for function, queue in sorted(c.unserved.items()):
            logger.warning(
                "task %s enqueues its jobs to queue %r, which this worker does not serve "
                "(queue_names): add it there or run a worker for it, or they wait forever",
                function,
                queue,
            )

    def stop(self) -> None:
        """Ask the worker to stop gracefully (what SIGTERM does)."""
        self._stopping = True
        self._stop.set()
        self.slots.wake()

    async def shutdown(self) -> None:
        """Stop taking jobs and finish.

        Running jobs get ``job_completion_wait`` seconds; the rest are re-queued. The health
        record is removed, ``on_shutdown`` runs and the connections close.
        """
        self.stop()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        if not self._started:  # stopped while waiting for Redis
            if self._redis is not None:
                await self._redis.aclose()
            logger.info("worker %s stopped before Redis could be reached", self.name)
            return
        tasks = self.supervisor.tasks
        for task in tasks:
            task.cancel()
        _, stuck = await asyncio.wait(tasks, timeout=10) if tasks else ((), ())
        if stuck:
            logger.warning("%d background tasks did not stop in time", len(stuck))
        running = [r.task for r in self.slots.snapshot() if r.task is not None]
        if running and self.config.job_completion_wait > 0:
            await asyncio.wait(running, timeout=self.config.job_completion_wait)
        leftover = self.slots.snapshot()
        for r in leftover:
            if r.task is not None:
                r.task.cancel()
        await asyncio.gather(*(r.task for r in leftover if r.task), return_exceptions=True)
        for r in leftover:
            with contextlib.suppress(RedisError):
                await self.recorder.requeue(r)
        if leftover:
            logger.info("re-queued %d unfinished jobs", len(leftover))
        if self._job_tasks:  # replaced attempts still recording their outcome
            _, late = await asyncio.wait(set(self._job_tasks), timeout=5)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.leases.stop()
        self.progress.close()
        with contextlib.suppress(RedisError):
            await self._write_health(remove=True)
        await call_hook(self.config.hooks, "on_shutdown", self.ctx)
        if self.processes is not None:
            await self.processes.close()
        for q in self.queues:
            for lane in (q.fetch_lane, q.commit_lane):
                if lane is not None:
                    await lane.close()
        if self._redis is not None:
            await self._redis.aclose()
        logger.info(
            "worker %s stopped: %d complete, %d failed, %d retried",
            self.name,
            self.stats.complete,
            self.stats.failed,
            self.stats.retried,
        )

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            self._signals += 1
            if self._signals > 1:  # a second signal: leave now, leases cover the rest
                logger.warning("second %s: exiting at once", signal.Signals(signum).name)
                os._exit(1)
            logger.info("%s: stopping gracefully", signal.Signals(signum).name)
            self.stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, on_signal, signum)

    def _warn_process_slots(self) -> None:
        assert self.processes is not None
        if self.max_jobs > self.processes.size:
            logger.warning(
                "max_jobs=%d exceeds the %d pool processes: process jobs beyond that wait for "
                "a free process (their timeout starts only when one runs them)",
                self.max_jobs,
                self.processes.size,
            )

    # ----------------------------------------------------------------- Redis

    async def _run(self, gen: Gen[Any], lane: Lane | None = None) -> Any:
        assert self._redis is not None
        return await run_async(self._redis, gen, lane)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the worker stops.

        Background loops sleep here rather than relying on cancellation alone: a cancel that
        lands while redis-py is connecting can be swallowed by it.
        """
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _check_memory_policy(self) -> None:
        policy, limit = await self._run(memory_policy(self.clock.route))
        if policy and policy != "noeviction" and policy != self.maxmemory_policy:
            logger.warning(
                "Redis maxmemory-policy is %r (maxmemory %d bytes): under memory pressure "
                "Redis evicts keys, and queued jobs, deferred jobs and results can vanish "
                "without a trace. Set maxmemory-policy noeviction for a job queue.",
                policy,
                limit,
            )
        self.maxmemory_policy = policy

    # ------------------------------------------------------------------ jobs

    def _start(self, d: Delivery, q: QueueState) -> None:
        current = self.slots.running.get(d.job_id)
        if current is not None and current.delivery.entry_id == d.entry_id:
            # this worker runs it already: its lease lapsed while Redis was out of reach and
            # it took the job back. It owns the lease again; one run is enough.
            current.lost = False
            return
        # (another entry of a running job is its retry, delivered before the previous
        # attempt's task has ended: it runs, and replaces that task here)
        running = Running(d, q)
        self.slots.add(running)
        # (create_task: ensure_future's checks were a few percent of a short job's cost)
        running.task = task = asyncio.get_running_loop().create_task(self.attempts.run(running))
        self._job_tasks.add(task)
        task.add_done_callback(self._job_tasks.discard)

    def abort(self, job_id: str) -> bool:
        """Abort a running job now (as a client's abort request does)."""
        r = self.slots.running.get(job_id)
        if r is None or r.task is None or not r.executing or r.aborted:
            return False  # not running its function (it is starting or recording its result)
        r.aborted = True
        r.abort_event.set()
        r.task.cancel()
        return True

    # ---------------------------------------------------------------- health

    def health(self) -> dict[str, Any]:
        """Counts and loop states of this worker, as its health record reports them."""
        return {
            "worker": self.name,
            "time_ms": self.clock.now_ms(),
            **self.stats.counts(),
            "ongoing": len(self.slots.running),
            "loops": self.supervisor.records(),
        }

    async def _health_loop(self, state: Any) -> None:
        while not self._stopping:
            await self._run(self.clock.measure())
            await self._check_memory_policy()
            await self._write_health()
            self.recorder.log.flush()
            self.fetcher.log.flush()
            state.beat()
            await self._pause(self.config.health_check_interval)

    async def _stray_partitions(self) -> dict[str, int]:
        """Partitions of the served queues that this worker does not serve, with their jobs.

        Producers configured with another ``partitions`` count than the worker's send
        jobs to partitions no worker takes: loud in the log and in the health record.
        """
        known = await self._run(self.core.known_queues())
        names = [n for q in self.config.logical_queues
                 for n in self.core.partitions.strays(q, known)]  # fmt: skip
        waiting = {}
        for name in names[:100]:
            sizes = await self._run(self.core.counts([self.core.keys(name)]))
            if sizes["queued"] + sizes["deferred"]:
                waiting[name] = sizes["queued"] + sizes["deferred"]
        if waiting and waiting.keys() != self._strays:
            logger.error(
                "jobs wait in queue partitions this worker does not serve (%s): producers "
                "and workers must use the same partitions= setting",
                ", ".join(f"{name!r}: {n}" for name, n in sorted(waiting.items())),
            )
        self._strays = set(waiting)
        return waiting

    async def _write_health(self, remove: bool = False) -> None:
        interval = self.config.health_check_interval
        counts = {**self.stats.counts(), "ongoing": len(self.slots.running)}
        extra = {
            "clock_offset_ms": self.clock.offset_ms,
            "maxmemory_policy": self.maxmemory_policy,
            "loop_lag_ms": int(self.leases.take_max_lag() * 1000),
            "max_jobs": self.max_jobs,
            # what this worker can run: --check wants a worker that has the settings' functions
            "functions": sorted(self.functions)[:1000],
        }
        if not remove:
            extra["stray_partitions"] = await self._stray_partitions()
        for q in self.queues:
            key = q.consumer.keys.health(self.name)
            record = None
            if not remove:
                sizes = await self._run(self.core.counts([q.consumer.keys]))
                queued = sizes["queued"] + sizes["deferred"]
                record = health_record(
                    worker=self.name, queue=q.name, queued=queued, interval=interval,
                    now_ms=self.clock.now_ms(), counts=counts, loops=self.supervisor.records(),
                    extra={**extra, "paused": q.paused},
                )  # fmt: skip
            await self._run(_one(health_key_commands(key, record, interval)))


def _one(command: Any) -> Gen[Any]:
    reply = yield command
    return reply
