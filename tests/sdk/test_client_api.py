"""Both clients expose the same methods with the same signatures, all documented."""

from __future__ import annotations

import inspect

import pytest

import jobwire
from tests.helpers.support import public_methods

PAIRS = [(jobwire.Client, jobwire.AsyncClient), (jobwire.Job, jobwire.AsyncJob)]


@pytest.mark.parametrize(("sync_cls", "async_cls"), PAIRS, ids=["client", "job"])
def test_same_methods_with_identical_signatures(sync_cls: type, async_cls: type) -> None:
    sync_methods, async_methods = public_methods(sync_cls), public_methods(async_cls)
    extra_async = {"connect"}  # an async-only constructor that also pings
    assert set(sync_methods) == set(async_methods) - extra_async
    for name, method in sync_methods.items():
        sync_sig = inspect.signature(method)  # type: ignore[arg-type]
        async_sig = inspect.signature(async_methods[name])  # type: ignore[arg-type]
        assert list(sync_sig.parameters.values()) == list(async_sig.parameters.values()), name


@pytest.mark.parametrize(("sync_cls", "async_cls"), PAIRS, ids=["client", "job"])
def test_every_public_method_has_a_docstring(sync_cls: type, async_cls: type) -> None:
    for cls in (sync_cls, async_cls):
        for name, method in public_methods(cls).items():
            assert inspect.getdoc(method), f"{cls.__name__}.{name} has no docstring"


def test_async_methods_that_talk_to_redis_are_coroutines() -> None:
    local = {"job", "from_url"}  # build objects only, no I/O
    iterators = {"events"}  # ``async for``: returns an async iterator, awaited step by step
    for name, method in public_methods(jobwire.AsyncClient).items():
        assert inspect.iscoroutinefunction(method) == (name not in local | iterators), name
    follower = jobwire.AsyncClient().events()
    assert hasattr(follower, "__anext__") and not inspect.iscoroutine(follower)
    for name, method in public_methods(jobwire.AsyncJob).items():
        assert inspect.iscoroutinefunction(method), name


def test_enqueue_takes_the_documented_options() -> None:
    params = inspect.signature(jobwire.Client.enqueue).parameters
    assert list(params)[:3] == ["self", "function", "args"]
    assert [p for p in params if p.startswith("_")] == [
        "_job_id", "_queue_name", "_defer_until", "_defer_by", "_expires", "_job_try",
        "_serializer", "_headers",
    ]  # fmt: skip
    assert params["kwargs"].kind is inspect.Parameter.VAR_KEYWORD
