"""Integer ranges and the null rule (SPEC §3): code and JSON Schemas agree, in both directions."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jsonschema
import msgpack
import orjson
import pytest

import jobwire.wire as wire
from jobwire.wire import (
    MAX_MS,
    MAX_RESULT_TRY,
    MAX_TRY,
    Codec,
    EncodeError,
    ErrorRecord,
    InvalidEnvelope,
    JobEnvelope,
    ResultEnvelope,
)

SCHEMA_DIR = Path(wire.__file__).parent / "schema"
SCHEMAS = {
    kind: jsonschema.Draft202012Validator(
        json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text(encoding="utf-8"))
    )
    for kind in ("job", "result")
}
T0 = 1_767_225_600_000
JOB: dict[str, Any] = {"v": "1.0", "fmt": "json", "id": "x", "function": "f", "enqueued_ms": T0}
RESULT: dict[str, Any] = {
    **JOB,
    "outcome": "success",
    "started_ms": T0,
    "finished_ms": T0,
}
BASES = {"job": JOB, "result": RESULT}
# (kind, wire member, envelope attribute, smallest, largest)
RANGES = [
    ("job", "try", "job_try", 1, MAX_TRY),
    ("job", "enqueued_ms", "enqueued_ms", 0, MAX_MS),
    ("job", "defer_until_ms", "defer_until_ms", 0, MAX_MS),
    ("job", "expires_ms", "expires_ms", 0, MAX_MS),
    ("result", "try", "job_try", 1, MAX_RESULT_TRY),
    ("result", "enqueued_ms", "enqueued_ms", 0, MAX_MS),
    ("result", "started_ms", "started_ms", 0, MAX_MS),
    ("result", "finished_ms", "finished_ms", 0, MAX_MS),
]
CODEC = Codec(accept=wire.FORMATS)


def range_id(case: tuple[str, str, str, int, int]) -> str:
    return f"{case[0]}-{case[1]}"


def decode(kind: str, data: bytes) -> Any:
    return CODEC.decode_result(data) if kind == "result" else CODEC.decode_job(data)


def pack(doc: dict[str, Any], fmt: str) -> bytes:
    if fmt == "json":
        return orjson.dumps(doc)
    return msgpack.packb({**doc, "fmt": "msgpack"}, use_bin_type=True)


def outside(lo: int, hi: int) -> list[Any]:
    """Values a reader must refuse where an integer in lo..hi is expected."""
    return [lo - 1, hi + 1, -(2**63), 2**63, 2**64 - 1, True, False, "1", [1], {"n": 1}]


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
@pytest.mark.parametrize("case", RANGES, ids=range_id)
def test_both_ends_of_every_range_are_read(case: tuple[str, str, str, int, int], fmt: str) -> None:
    kind, member, attribute, lo, hi = case
    for value in (lo, hi):
        decoded = decode(kind, pack({**BASES[kind], member: value}, fmt))
        assert getattr(decoded, attribute) == value


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
@pytest.mark.parametrize("case", RANGES, ids=range_id)
def test_values_outside_a_range_or_not_integers_are_refused(
    case: tuple[str, str, str, int, int], fmt: str
) -> None:
    kind, member, _, lo, hi = case
    values = outside(lo, hi)
    if fmt == "msgpack":  # JSON cannot carry these
        values += [float("nan"), float("inf"), float("-inf"), 1.0, float(lo)]
    for value in values:
        with pytest.raises(InvalidEnvelope) as info:
            decode(kind, pack({**BASES[kind], member: value}, fmt))
        assert info.value.reason == "invalid_envelope"
        assert member in str(info.value)


def _envelope(kind: str, fmt: str) -> JobEnvelope | ResultEnvelope:
    if kind == "result":
        return ResultEnvelope(
            id="x", function="f", enqueued_ms=T0, started_ms=T0, finished_ms=T0, format=fmt
        )
    return JobEnvelope(id="x", function="f", enqueued_ms=T0, format=fmt)  # type: ignore[arg-type]


def _encode(envelope: JobEnvelope | ResultEnvelope) -> bytes:
    if isinstance(envelope, ResultEnvelope):
        return CODEC.encode_result(envelope)
    return CODEC.encode_job(envelope)


@pytest.mark.parametrize("fmt", wire.FORMATS)
@pytest.mark.parametrize("case", RANGES, ids=range_id)
def test_writers_accept_exactly_the_range_readers_accept(
    case: tuple[str, str, str, int, int], fmt: str
) -> None:
    kind, member, attribute, lo, hi = case
    envelope = _envelope(kind, fmt)
    for value in (lo, hi):
        data = _encode(dataclasses.replace(envelope, **{attribute: value}))
        assert getattr(decode(kind, data), attribute) == value
    for value in [*outside(lo, hi), 1.0, float("nan"), float("inf")]:
        with pytest.raises(EncodeError, match=member) as info:
            _encode(dataclasses.replace(envelope, **{attribute: value}))
        assert not isinstance(info.value, wire.UnsupportedValue)


@pytest.mark.parametrize("case", RANGES, ids=range_id)
def test_the_json_schema_states_the_same_ranges(case: tuple[str, str, str, int, int]) -> None:
    kind, member, _, lo, hi = case
    # 1.0 is left out: JSON Schema counts it as an integer, the SPEC and the reader do not
    for value in [lo, hi, (lo + hi) // 2, *outside(lo, hi), 1.5]:
        doc = {**BASES[kind], member: value}
        try:
            decode(kind, orjson.dumps(doc))
        except InvalidEnvelope:
            accepted = False
        else:
            accepted = True
        assert SCHEMAS[kind].is_valid(doc) == accepted, (member, value)


def test_every_time_in_range_converts_to_a_datetime() -> None:
    for ms in (0, MAX_MS):
        datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    assert datetime.fromtimestamp(MAX_MS / 1000, tz=timezone.utc).year == 9999
    with pytest.raises((ValueError, OverflowError)):
        datetime.fromtimestamp((MAX_MS + 1) / 1000, tz=timezone.utc)


def test_a_result_has_room_for_re_deliveries_of_the_highest_job_try() -> None:
    job = CODEC.decode_job(
        CODEC.encode_job(JobEnvelope(id="x", function="f", enqueued_ms=T0, job_try=MAX_TRY))
    )
    result = dataclasses.replace(_envelope("result", "json"), job_try=job.job_try + 1_000_000)
    assert CODEC.decode_result(_encode(result)).job_try == MAX_TRY + 1_000_000


# ------------------------------------------------------------------- null


def _optional_members(kind: str) -> list[str]:
    schema = SCHEMAS[kind].schema
    members = [m for m in schema["properties"] if m not in schema["required"]]
    return [m for m in members if m != "sig"]  # sig is absent or a signature (SPEC §8)


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
@pytest.mark.parametrize(
    ("kind", "member"),
    [(kind, m) for kind in ("job", "result") for m in _optional_members(kind)],
)
def test_null_is_the_same_as_absent_for_every_optional_member(
    kind: str, member: str, fmt: str
) -> None:
    base = {**BASES[kind], "error": None} if member == "error" else BASES[kind]
    without = {k: v for k, v in base.items() if k != member}
    with_null = {**without, member: None}
    assert decode(kind, pack(with_null, fmt)) == decode(kind, pack(without, fmt))
    if fmt == "json":
        assert SCHEMAS[kind].is_valid(with_null)


@pytest.mark.parametrize(
    ("kind", "member"),
    [(kind, m) for kind in ("job", "result") for m in SCHEMAS[kind].schema["required"]],
)
def test_null_is_missing_for_every_required_member(kind: str, member: str) -> None:
    doc = {**BASES[kind], member: None}
    with pytest.raises(wire.DecodeError):
        decode(kind, orjson.dumps(doc))
    assert not SCHEMAS[kind].is_valid(doc)


def test_null_inside_an_error_record_is_absent_too() -> None:
    doc = {
        **RESULT,
        "outcome": "error",
        "error": {"type": "builtins.ValueError", "message": "m", "traceback": None, "cause": None},
    }
    assert CODEC.decode_result(orjson.dumps(doc)).error == ErrorRecord("builtins.ValueError", "m")
    assert SCHEMAS["result"].is_valid(doc)
    doc["error"] = None  # required by a failure, so null is missing
    with pytest.raises(InvalidEnvelope):
        CODEC.decode_result(orjson.dumps(doc))
    assert not SCHEMAS["result"].is_valid(doc)


# ----------------------------------------------------- other metadata a writer checks


def test_writers_refuse_names_and_headers_that_readers_refuse() -> None:
    job = _envelope("job", "json")
    for changes in (
        {"id": ""},
        {"id": "x" * 1025},
        {"function": ""},
        {"id": 7},
        {"queue": None},
        {"headers": {"n": 1}},
        {"headers": {1: "v"}},
        {"headers": [("n", "v")]},
    ):
        with pytest.raises(EncodeError):
            _encode(dataclasses.replace(job, **changes))
    assert CODEC.decode_job(_encode(dataclasses.replace(job, id="x" * 1024))).id == "x" * 1024


def test_writers_refuse_results_that_readers_refuse() -> None:
    result = dataclasses.replace(_envelope("result", "json"), outcome="error")
    deep = ErrorRecord("t", "m")
    for _ in range(wire.fields.MAX_CAUSE_DEPTH + 1):
        deep = ErrorRecord("t", "m", cause=deep)
    for changes in (
        {"outcome": ""},
        {"outcome": "x" * 65},
        {"outcome": None},
        {"worker": None},
        {"error": deep},
        {"error": ErrorRecord("t", None)},  # type: ignore[arg-type]
    ):
        with pytest.raises(EncodeError):
            _encode(dataclasses.replace(result, **{"error": ErrorRecord("t", "m"), **changes}))
    # the deepest chain a reader accepts is written
    ok = deep.cause
    assert ok is not None
    assert CODEC.decode_result(_encode(dataclasses.replace(result, error=ok))).error == ok
