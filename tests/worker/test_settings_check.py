"""A settings class is checked whole: a typo is refused with the name it meant.

In-process through ``Worker.from_settings`` and as the ``jobwire worker`` command, which
shows the refusal as one line and exits 2.
"""

from __future__ import annotations

import os
import types
from typing import Any

import pytest

from jobwire import InvalidArgument, RedisSettings
from jobwire.worker import Worker
from tests.helpers.workers import jobwire_cli

from .task_jobs import ALL, Typos, greet

NOWHERE = "redis://127.0.0.1:1/0"  # never connected to: building a worker needs no Redis


def refusal(settings: Any, **overrides: Any) -> str:
    with pytest.raises(InvalidArgument) as refused:
        Worker.from_settings(settings, **overrides)
    return str(refused.value)


def test_unknown_attributes_are_refused_with_what_they_meant() -> None:
    message = refusal(Typos)
    for typo, meant in [("fuctions", "functions"), ("max_job", "max_jobs"),
                        ("job_timout", "job_timeout")]:  # fmt: skip
        assert f"{typo!r} (did you mean {meant!r}?)" in message, message
    assert "Typos" in message and "extra_settings" in message


def test_private_names_are_ignored_and_extra_settings_are_allowed() -> None:
    class Base:
        functions = ALL
        redis_settings = NOWHERE

        def helper(self) -> str:  # a method is an attribute like any other
            return "help"

    class Settings(Base):
        max_jobs = 3
        _cache: dict[str, int] = {}  # noqa: RUF012
        extra_settings = ("helper", "region")
        region = "eu"

    worker = Worker.from_settings(Settings)
    assert worker.max_jobs == 3 and "greet" in worker.functions
    message = refusal(Base)  # a base class's helper counts too
    assert "'helper'" in message
    assert "on_startup" in refusal(type("Hooks", (Base,), {"on_statup": lambda ctx: None}))
    assert "collection" in refusal(type("Bad", (Settings,), {"extra_settings": "helper"}))
    misspelt = type("Misspelt", (Base,), {"extra_setting": ("helper",)})
    assert "'extra_setting' (did you mean 'extra_settings'?)" in refusal(misspelt)


def test_a_settings_object_is_checked_like_a_class() -> None:
    class Settings:
        def __init__(self) -> None:
            self.functions = [greet]
            self.redis_settings = NOWHERE
            self.keep_reslt = 5

    assert "'keep_reslt' (did you mean 'keep_result'?)" in refusal(Settings())


def test_a_module_as_settings_is_refused_only_its_near_misses() -> None:
    module = types.ModuleType("worker_settings")
    module.functions = ALL  # type: ignore[attr-defined]
    module.redis_url = NOWHERE  # type: ignore[attr-defined]
    module.os, module.helper, module.region = os, greet, "eu"  # type: ignore[attr-defined]
    assert Worker.from_settings(module).functions["greet"] is greet
    module.max_job = 4  # type: ignore[attr-defined]
    assert "'max_job' (did you mean 'max_jobs'?)" in refusal(module)


def test_a_worker_without_functions_is_refused() -> None:
    class Settings:
        redis_settings = NOWHERE
        max_jobs = 3

    assert "needs functions" in refusal(Settings)
    with pytest.raises(InvalidArgument, match="needs functions"):
        Worker(redis_settings=NOWHERE)


def test_redis_url_is_another_name_for_redis_settings() -> None:
    class Settings:
        functions = ALL
        redis_url = "redis://example.invalid:6390/4"

    assert Worker.from_settings(Settings).redis_settings.url == "redis://example.invalid:6390/4"
    both = type("Both", (Settings,), {"redis_settings": RedisSettings()})
    assert "not both" in refusal(both)
    assert "URL" in refusal(type("Number", (Settings,), {"redis_url": 6379}))
    given = Worker.from_settings(Settings, redis_settings="redis://elsewhere.invalid:6391/0")
    assert given.redis_settings.url == "redis://elsewhere.invalid:6391/0"  # as --url does


@pytest.mark.parametrize(
    ("settings", "says"),
    [("Typos", "'fuctions' (did you mean 'functions'?)"), ("NoFunctions", "needs functions")],
)
def test_the_worker_command_shows_a_settings_mistake_as_one_line(settings: str, says: str) -> None:
    done = jobwire_cli("worker", f"tests.worker.task_jobs.{settings}", url=NOWHERE)
    assert done.returncode == 2, done
    assert says in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_url_on_the_command_line_wins_over_the_settings_redis_url(redis_url: str) -> None:
    # the settings name one server (REDIS_URL, read as redis_url), --url another: --url wins
    done = jobwire_cli(
        "worker", "tests.worker.task_jobs.Settings", "--burst", "--url", redis_url, url=NOWHERE
    )
    assert done.returncode == 0, done
