"""Hostile input: whatever bytes arrive, the decoder raises only its own typed error.

And what it does accept is usable: its numbers are in range (times convert to a datetime) and
it can be written again, so a worker can always record the result of a job it read. Each
property runs at least 2,000 examples in the default test run.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgpack
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jobwire.wire as wire
from jobwire.wire import (
    FORMATS,
    MAX_MS,
    MAX_RESULT_TRY,
    MAX_TRY,
    Codec,
    JobEnvelope,
    ResultEnvelope,
    UnsupportedValue,
    WireError,
)

# 500 examples per property by default; HOSTILE_EXAMPLES=2000 for the long run
EXAMPLES = settings(
    max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "500")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
READERS = [
    Codec(),
    Codec(accept=FORMATS),
    Codec(accept=FORMATS, signing_key="k"),
    Codec(max_size=64),
]
WRITER = Codec(accept=FORMATS, max_size=1 << 24)
FIELDS = [
    "v", "fmt", "id", "function", "queue", "try", "enqueued_ms", "defer_until_ms",
    "expires_ms", "headers", "args", "kwargs", "payload", "sig", "outcome", "value", "error",
    "started_ms", "finished_ms", "worker",
]  # fmt: skip
VALID = Path(wire.__file__).parent / "vectors" / "jobs.json"
SAMPLES = [
    v["encoded"].encode() if "encoded" in v else bytes.fromhex(v["encoded_hex"])
    for v in json.loads(VALID.read_text(encoding="utf-8"))["vectors"]
]


def check_all_entry_points(data: bytes) -> None:
    """Every decoding entry point either returns a well-typed value or raises WireError."""
    for codec in READERS:
        try:
            job = codec.decode_job(data)
        except WireError:
            pass
        else:
            assert_well_typed(job)
            assert_writable(job)
        try:
            header = codec.read_job_header(data)
        except WireError:
            pass
        else:
            assert isinstance(header.id, str) and header.id
        try:
            result = codec.decode_result(data)
        except WireError:
            pass
        else:
            assert isinstance(result, ResultEnvelope)
            assert result.success or result.error is not None
            assert type(result.job_try) is int and 1 <= result.job_try <= MAX_RESULT_TRY
            for ms in (result.enqueued_ms, result.started_ms, result.finished_ms):
                assert_time(ms)
            # Only the value may fail to be written again (a worker then records an error).
            with contextlib.suppress(UnsupportedValue):
                WRITER.encode_result(result)


def assert_time(ms: int | None) -> None:
    assert type(ms) is int and 0 <= ms <= MAX_MS
    datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def assert_writable(job: JobEnvelope) -> None:
    """A job that was read can be written again, and so can a result of each of its tries."""
    with contextlib.suppress(UnsupportedValue):  # argument values are not the point here
        WRITER.encode_job(job)
    result = ResultEnvelope(
        id=job.id,
        function=job.function,
        queue=job.queue,
        job_try=job.job_try + 100,  # re-deliveries since
        outcome="error",
        error=wire.ErrorRecord("t", "m"),
        enqueued_ms=job.enqueued_ms,
        started_ms=MAX_MS,
        finished_ms=MAX_MS,
        format=job.format,
    )
    WRITER.encode_result(result)


def assert_well_typed(job: JobEnvelope) -> None:
    assert type(job.id) is str and job.id
    assert type(job.function) is str and job.function
    assert type(job.queue) is str
    assert type(job.job_try) is int and 1 <= job.job_try <= MAX_TRY
    assert_time(job.enqueued_ms)
    for ms in (job.defer_until_ms, job.expires_ms):
        if ms is not None:
            assert_time(ms)
    assert type(job.args) is tuple
    assert type(job.kwargs) is dict and all(type(k) is str for k in job.kwargs)
    assert all(type(k) is str and type(v) is str for k, v in job.headers.items())
    assert job.format in FORMATS


@EXAMPLES
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_wire_errors(data: bytes) -> None:
    check_all_entry_points(data)


EDGES = [0, 1, -1, MAX_TRY, MAX_TRY + 1, MAX_MS, MAX_MS + 1, MAX_RESULT_TRY + 1, 2**63, 2**64 - 1]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.sampled_from(EDGES)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["1.0", "1.9", "2.0", "json", "msgpack", "pickle", "", "0.1", "1."])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
msgpack_values = st.recursive(
    scalars | st.binary(max_size=20) | st.sampled_from([float("nan"), float("inf"), 1.0]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(-5, 5), inner, max_size=4)
    ),
    max_leaves=12,
)
BASE: dict[str, Any] = {"v": "1.0", "id": "x", "function": "f", "enqueued_ms": 1}


@st.composite
def wrong_envelopes(draw: st.DrawFn, values: st.SearchStrategy[Any], fmt: str) -> dict[str, Any]:
    """Near-valid envelopes: real field names, some dropped, some with arbitrary values."""
    doc = dict(BASE, fmt=draw(st.sampled_from([fmt, fmt, "json", "msgpack", "pickle", "x"])))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=6)):
        if draw(st.booleans()):
            doc.pop(name, None)
        else:
            doc[name] = draw(values)
    return doc


@EXAMPLES
@given(wrong_envelopes(json_values, "json"))
def test_wrong_json_envelopes_raise_only_wire_errors(doc: dict[str, Any]) -> None:
    check_all_entry_points(orjson.dumps(doc))


@EXAMPLES
@given(wrong_envelopes(msgpack_values, "msgpack"))
def test_wrong_msgpack_envelopes_raise_only_wire_errors(doc: dict[str, Any]) -> None:
    check_all_entry_points(msgpack.packb(doc, use_bin_type=True))


@EXAMPLES
@given(
    st.sampled_from(SAMPLES),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 10_000),
)
def test_corrupted_valid_messages_raise_only_wire_errors(
    sample: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(sample)
    for pos, byte in flips:
        data[pos % len(data)] = byte
    check_all_entry_points(bytes(data[: max(1, len(data) - cut % 40)]))


class Trap:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_fail, ("a refusing reader unpickled a payload",))


def _fail(message: str) -> None:
    raise AssertionError(message)


@EXAMPLES
@given(wrong_envelopes(msgpack_values, "pickle"), st.booleans())
def test_refusing_readers_never_unpickle(doc: dict[str, Any], trap: bool) -> None:
    doc["fmt"] = "pickle"
    doc["payload"] = pickle.dumps(((Trap(),), {})) if trap else doc.get("payload", b"")
    data = msgpack.packb(doc, use_bin_type=True)
    for codec in (Codec(), Codec(accept={"json"})):
        for decode in (codec.decode_job, codec.read_job_header, codec.decode_result):
            with contextlib.suppress(WireError):
                decode(data)
