"""The golden vectors in wire/vectors/ against the code, and the JSON vectors against the schema."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import jobwire.wire as wire
from jobwire.wire import FORMATS, Codec, ErrorRecord, JobEnvelope, ResultEnvelope

from .vector_values import same, untag

WIRE_DIR = Path(wire.__file__).parent
VECTORS = WIRE_DIR / "vectors"


def load(name: str) -> list[dict[str, Any]]:
    doc = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    vectors: list[dict[str, Any]] = doc["vectors"]
    return vectors


JOBS = load("jobs.json")
RESULTS = load("results.json")
INVALID = load("invalid.json")
ENCODE_ERRORS = load("encode_errors.json")
SCHEMAS = {
    name: jsonschema.Draft202012Validator(
        json.loads((WIRE_DIR / "schema" / f"{name}.schema.json").read_text())
    )
    for name in ("job", "result")
}


def raw(v: dict[str, Any]) -> bytes:
    return v["encoded"].encode() if "encoded" in v else bytes.fromhex(v["encoded_hex"])


def ids(v: dict[str, Any]) -> str:
    return str(v["name"])


def codec_for(v: dict[str, Any]) -> Codec:
    return Codec(
        accept=v.get("accept", FORMATS),
        signing_key=v.get("signing_key"),
        max_size=v.get("max_size", 1 << 24),
    )


def test_vector_counts_cover_the_contract() -> None:
    for fmt in FORMATS:
        both = [v for v in JOBS if v["format"] == fmt and v["direction"] == "both"]
        assert len(both) >= 10, fmt
        outcomes = {
            v["input"]["outcome"]
            for v in RESULTS
            if v["format"] == fmt and v["direction"] == "both"
        }
        assert {"success", "error"} <= outcomes, fmt
    assert len(INVALID) >= 10
    assert {v["reason"] for v in INVALID} == {
        "undecodable",
        "invalid_envelope",
        "unsupported_version",
        "format_refused",
        "bad_signature",
        "oversized",
    }


@pytest.mark.parametrize("v", [v for v in JOBS if v["direction"] == "both"], ids=ids)
def test_job_vectors_encode_to_the_exact_bytes(v: dict[str, Any]) -> None:
    inp = v["input"]
    job = JobEnvelope(
        id=inp["id"],
        function=inp["function"],
        queue=inp["queue"],
        enqueued_ms=inp["enqueued_ms"],
        job_try=inp["try"],
        defer_until_ms=inp.get("defer_until_ms"),
        expires_ms=inp.get("expires_ms"),
        headers=inp.get("headers", {}),
        format=v["format"],
        args=tuple(untag(inp["args"])),
        kwargs=untag(inp["kwargs"]),
    )
    assert codec_for(v).encode_job(job) == raw(v)


@pytest.mark.parametrize("v", JOBS, ids=ids)
def test_job_vectors_decode_to_the_expected_values(v: dict[str, Any]) -> None:
    job = codec_for(v).decode_job(raw(v))
    expected = v["input"] if v["direction"] == "both" else v["expected"]
    assert job.id == expected["id"]
    assert job.function == expected["function"]
    assert job.queue == expected["queue"]
    assert job.enqueued_ms == expected["enqueued_ms"]
    assert job.job_try == expected["try"]
    assert job.format == v["format"]
    assert job.defer_until_ms == expected.get("defer_until_ms")
    assert job.expires_ms == expected.get("expires_ms")
    assert job.headers == expected.get("headers", {})
    assert same(list(job.args), untag(v["decoded"]["args"]))
    assert same(job.kwargs, untag(v["decoded"]["kwargs"]))
    # metadata is readable without the arguments, by a reader that accepts nothing
    header = Codec(accept=(), signing_key=v.get("signing_key")).read_job_header(raw(v))
    assert header == job.header()


def _error(d: dict[str, Any] | None) -> ErrorRecord | None:
    if d is None:
        return None
    return ErrorRecord(d["type"], d["message"], d.get("traceback", ""), _error(d.get("cause")))


@pytest.mark.parametrize("v", [v for v in RESULTS if v["direction"] == "both"], ids=ids)
def test_result_vectors_round_trip_exactly(v: dict[str, Any]) -> None:
    inp = v["input"]
    exc = inp.get("exception")
    result = ResultEnvelope(
        id=inp["id"],
        function=inp["function"],
        queue=inp["queue"],
        job_try=inp["try"],
        outcome=inp["outcome"],
        value=untag(inp.get("value")),
        error=_error(inp.get("error")),
        exception=ValueError(*exc["args"]) if exc else None,
        enqueued_ms=inp["enqueued_ms"],
        started_ms=inp["started_ms"],
        finished_ms=inp["finished_ms"],
        worker=inp["worker"],
        format=v["format"],
    )
    codec = codec_for(v)
    assert codec.encode_result(result) == raw(v)
    back = codec.decode_result(raw(v))
    assert back.outcome == inp["outcome"]
    assert back.error == result.error
    assert same(back.value, untag(v["decoded"]["value"]))
    if exc:
        assert isinstance(back.exception, ValueError)
        assert back.exception.args == tuple(exc["args"])


@pytest.mark.parametrize("v", [v for v in RESULTS if v["direction"] == "decode"], ids=ids)
def test_result_vectors_from_other_writers_decode_to_the_expected_values(v: dict[str, Any]) -> None:
    back = codec_for(v).decode_result(raw(v))
    expected = v["expected"]
    assert (back.id, back.function, back.queue, back.job_try, back.outcome, back.worker) == (
        expected["id"],
        expected["function"],
        expected["queue"],
        expected["try"],
        expected["outcome"],
        expected["worker"],
    )
    assert (back.enqueued_ms, back.started_ms, back.finished_ms) == (
        expected["enqueued_ms"],
        expected["started_ms"],
        expected["finished_ms"],
    )
    assert back.error == _error(expected.get("error"))
    assert same(back.value, untag(v["decoded"]["value"]))


@pytest.mark.parametrize("v", INVALID, ids=ids)
def test_invalid_vectors_raise_their_typed_error(v: dict[str, Any]) -> None:
    codec = codec_for(v)
    error_type = getattr(wire, v["error"])
    decode = codec.decode_result if v["kind"] == "result" else codec.decode_job
    with pytest.raises(error_type) as info:
        decode(raw(v))
    assert info.value.reason == v["reason"]


# wire member name -> envelope attribute, for the metadata of encode_errors.json
ATTRIBUTES = {"try": "job_try"}


def _metadata(v: dict[str, Any]) -> dict[str, Any]:
    return {ATTRIBUTES.get(k, k): untag(x) for k, x in v["metadata"].items()}


@pytest.mark.parametrize("v", [v for v in ENCODE_ERRORS if "metadata" in v], ids=ids)
def test_encode_error_vectors_refuse_metadata_out_of_range(v: dict[str, Any]) -> None:
    with pytest.raises(getattr(wire, v["error"])) as info:
        _encode_with_metadata(v)
    assert not isinstance(info.value, wire.UnsupportedValue)  # metadata, not a value


def _encode_with_metadata(v: dict[str, Any]) -> bytes:
    fmt, changes = v["format"], _metadata(v)
    if v.get("kind") == "result":
        result = ResultEnvelope(
            id="e", function="f", enqueued_ms=0, started_ms=0, finished_ms=0, format=fmt
        )
        return Codec().encode_result(dataclasses.replace(result, **changes))
    job = JobEnvelope(id="e", function="f", enqueued_ms=0, format=fmt)
    return Codec().encode_job(dataclasses.replace(job, **changes))


@pytest.mark.parametrize("v", [v for v in ENCODE_ERRORS if "location" in v], ids=ids)
def test_encode_error_vectors_name_the_argument(v: dict[str, Any]) -> None:
    job = JobEnvelope(
        id="e",
        function="f",
        enqueued_ms=0,
        format=v["format"],
        args=tuple(untag(v.get("args", []))),
        kwargs=untag(v.get("kwargs", {})),
    )
    with pytest.raises(getattr(wire, v["error"])) as info:
        Codec().encode_job(job)
    assert info.value.location == v["location"]  # type: ignore[attr-defined]
    assert v["location"] in str(info.value)


@pytest.mark.parametrize("v", [v for v in JOBS if v["format"] == "json"], ids=ids)
def test_json_job_vectors_match_the_schema(v: dict[str, Any]) -> None:
    SCHEMAS["job"].validate(json.loads(v["encoded"]))


@pytest.mark.parametrize("v", [v for v in RESULTS if v["format"] == "json"], ids=ids)
def test_json_result_vectors_match_the_schema(v: dict[str, Any]) -> None:
    SCHEMAS["result"].validate(json.loads(v["encoded"]))


SCHEMA_REASONS = {"invalid_envelope", "unsupported_version", "format_refused"}


@pytest.mark.parametrize(
    "v",
    [v for v in INVALID if "encoded" in v and v["reason"] in SCHEMA_REASONS],
    ids=ids,
)
def test_schema_rejects_structurally_invalid_json(v: dict[str, Any]) -> None:
    doc = json.loads(v["encoded"])
    assert not SCHEMAS[v["kind"]].is_valid(doc)


def test_spec_lists_every_reason_code_with_its_error() -> None:
    spec = (WIRE_DIR / "SPEC.md").read_text(encoding="utf-8")
    errors = [
        getattr(wire, name)
        for name in wire.__all__
        if isinstance(getattr(wire, name), type)
        and issubclass(getattr(wire, name), wire.DecodeError)
    ]
    for error in errors:
        if error is wire.DecodeError:
            continue
        assert f"| `{error.reason}`" in spec and f"`{error.__name__}`" in spec, error
