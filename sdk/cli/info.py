"""``jobwire info`` (text, ``--json``, ``--watch``) and ``jobwire dead``."""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import datetime, timezone
from typing import Any

import jobwire
from jobwire import defaults
from jobwire.health import assess, redis_time_ms

from .output import EXIT_BAD_INPUT, EXIT_NEGATIVE, ODD_DATA, REDIS_DOWN, json_text, safe

__all__ = ["dead_command", "info_command", "snapshot"]

_CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen: only ever written to a terminal


def snapshot(client: jobwire.Client) -> dict[str, Any]:
    """What ``info`` shows, as data: queues with counts and workers, and the warnings.

    Workers are the live ones (refreshed within two intervals), each with its health
    assessment; stale records are counted. A queue whose data cannot be read has an
    ``error`` instead of counts (odd data never stops the listing).
    """
    names = client.queues()
    now = client._run(redis_time_ms())
    out: dict[str, Any] = {
        "time": datetime.fromtimestamp(now / 1000, timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "redis": client.settings.safe_url(),
        "queues": [],
        "warnings": [],
    }
    for name in names:
        try:
            queue = _queue(client, name, now)
        except REDIS_DOWN:
            raise
        except ODD_DATA as exc:
            queue = {"name": name, "error": f"cannot be read: {exc}"}
            out["warnings"].append(f"queue {name}: cannot be read: {exc}")
        out["queues"].append(queue)
        for w in queue.get("workers", ()):
            if not w["healthy"]:
                problems = "; ".join(w["problems"])
                out["warnings"].append(f"queue {name}: worker {w['name']} is unhealthy: {problems}")
            out["warnings"] += [f"queue {name}: worker {w['name']}: {m}" for m in w["warnings"]]
    return out


def _queue(client: jobwire.Client, name: str, now: int) -> dict[str, Any]:
    core = client._core
    stats = client._run(core.queue_stats(name))
    judged = [assess(w, raw, now) for w, raw in client._run(core.health_records(name)).items()]
    workers = [
        {
            "name": a.worker,
            "healthy": a.healthy,
            "problems": list(a.problems),
            "warnings": list(a.warnings),
            **{k: a.count(k) for k in ("complete", "failed", "retried", "ongoing")},
        }
        for a in sorted((a for a in judged if a.live), key=lambda a: a.worker)
    ]
    stale = sum(not a.live for a in judged)
    paused = client.is_paused(name)
    return {"name": name, **stats, "paused": paused, "workers": workers, "stale_workers": stale}


def render(data: dict[str, Any]) -> list[str]:
    """The text lines of a :func:`snapshot` (every piece from Redis escaped)."""
    # where this was read: a URL left out (REDIS_URL unset) means localhost
    lines = [safe(f"redis {data['redis']}")] if "redis" in data else []
    if not data["queues"]:
        return [*lines, "no queues yet"]
    for q in data["queues"]:
        name = q["name"]
        if "error" in q:
            lines.append(safe(f"queue {name}: {q['error']}"))
            continue
        dead = q["dead_letters"]
        lines.append(
            safe(
                f"queue {name}: {q['queued']} queued, {q['deferred']} deferred, "
                f"{q['in_progress']} in progress, {dead} dead letter{'' if dead == 1 else 's'}"
                + (" (paused: workers take none of its jobs)" if q.get("paused") else "")
            )
        )
        for w in q["workers"]:
            verdict = "" if w["healthy"] else " UNHEALTHY: " + "; ".join(w["problems"])
            lines.append(
                safe(
                    f"  worker {w['name']}: {w['complete']} complete, {w['failed']} failed, "
                    f"{w['retried']} retried, {w['ongoing']} ongoing{verdict}"
                )
            )
            lines += [safe(f"  warning: {warning}") for warning in w["warnings"]]
        stale = q["stale_workers"]
        if stale:
            plural = "s" * (stale > 1)
            lines.append(f"  ({stale} stale worker record{plural}: not refreshed, ignored)")
    return lines


def info_command(args: argparse.Namespace) -> int:
    """Show queues and workers once, or every ``--watch`` seconds until Ctrl-C."""
    with jobwire.Client.from_url(args.url, prefix=args.prefix) as client:
        if args.watch is None:
            _show(snapshot(client), args.json)
            return 0
        clear = sys.stdout.isatty() and not args.json
        data: dict[str, Any] | None = snapshot(client)  # Redis down at the start: exit 3
        problem = ""
        try:
            while True:
                if clear:
                    sys.stdout.write(_CLEAR)
                if data is not None:
                    _show(data, args.json, f"every {args.watch:g}s (Ctrl-C to stop)")
                elif args.json:
                    print(json_text({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                     "error": problem}), flush=True)  # fmt: skip
                else:
                    print(f"{time.strftime('%H:%M:%S')} {safe(problem)}; trying again", flush=True)
                time.sleep(args.watch)
                try:
                    data = snapshot(client)
                except jobwire.RedisUnavailable as exc:  # shown, and tried again
                    data, problem = None, str(exc)
        except KeyboardInterrupt:
            return 0


def _show(data: dict[str, Any], as_json: bool, heading: str = "") -> None:
    if as_json:
        print(json_text(data), flush=True)
        return
    lines = render(data)
    if heading:
        lines.insert(0, f"{data['time']} {heading}")
    print("\n".join(lines), flush=True)


def dead_command(args: argparse.Namespace) -> int:
    """List, re-queue or delete dead-letter entries."""
    with jobwire.Client.from_url(args.url, prefix=args.prefix) as client:
        queues = [args.queue] if args.queue else client.queues() or [defaults.DEFAULT_QUEUE]
        if args.action == "list":
            return _dead_list(client, queues, args.limit)
        if not args.entry or not re.fullmatch(r"\d+-\d+", args.entry):
            print(
                f"jobwire: dead {args.action} needs an entry id like 1767225600000-0 "
                "(see jobwire dead list)",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        for name in queues:  # the entry's queue: the one whose dead letters hold it
            if args.action == "requeue":
                try:
                    job = client.requeue_dead_letter(args.entry, name)
                except jobwire.JobNotFound:
                    continue
                print(
                    safe(f"re-queued in {name} as job {job.job_id}")
                    if job
                    else "not re-queued: the job id is taken"
                )
                return 0 if job else EXIT_NEGATIVE
            if client.delete_dead_letter(args.entry, name):
                print(safe(f"deleted from {name}"))
                return 0
        print(safe(f"no dead letter {args.entry!r} in {', '.join(queues)}"), file=sys.stderr)
        return EXIT_NEGATIVE


def _dead_list(client: jobwire.Client, queues: list[str], limit: int) -> int:
    shown = 0
    for name in queues:
        try:
            letters = client.dead_letters(name, limit)
        except REDIS_DOWN:
            raise
        except ODD_DATA as exc:
            print(safe(f"queue {name}: cannot be read: {exc}"), file=sys.stderr)
            continue
        for letter in letters:
            print(
                safe(
                    f"{letter.entry_id}  {letter.time:%Y-%m-%d %H:%M:%S}  "
                    f"queue={name}  {letter.reason:<20} job={letter.job_id or '-'}  "
                    f"{letter.message}"
                )
            )
            shown += 1
    if not shown:  # on stderr: an empty listing stays empty for scripts
        print(safe(f"no dead letters in {', '.join(queues)}"), file=sys.stderr)
    return 0
