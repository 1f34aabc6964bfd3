"""Behaviour of the wire codec that users and other languages rely on."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest

from jobwire.wire import (
    FORMATS,
    Codec,
    DecodeError,
    EncodeError,
    ErrorRecord,
    Format,
    FormatNotAccepted,
    InvalidEnvelope,
    JobEnvelope,
    JobwireError,
    MalformedMessage,
    PayloadTooLarge,
    ResultEnvelope,
    SignatureError,
    UnsupportedValue,
    UnsupportedVersion,
    WireError,
    detect_framing,
)

EVERYTHING = Codec(accept=FORMATS)
UNPICKLED: list[str] = []


def _record(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class Trap:
    """Unpickling this appends to UNPICKLED: proof that a payload was (or was not) loaded."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_record, ("trap",))


def job(fmt: Format = "json", **kw: Any) -> JobEnvelope:
    return JobEnvelope(id=kw.pop("id", "job-1"), function="f", enqueued_ms=1, format=fmt, **kw)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_and_is_detected_from_the_bytes(fmt: Format) -> None:
    original = job(fmt, args=(1, "two", [3.0]), kwargs={"k": {"n": None}}, headers={"h": "v"})
    data = EVERYTHING.encode_job(original)
    assert detect_framing(data) == ("json" if fmt == "json" else "msgpack")
    decoded = EVERYTHING.decode_job(data)
    assert decoded == original
    assert decoded.format == fmt


def test_json_jobs_are_plain_json_that_any_library_can_write() -> None:
    foreign = orjson.dumps(
        {"v": "1.0", "fmt": "json", "id": "from-node", "function": "add", "enqueued_ms": 5}
    )
    decoded = Codec().decode_job(foreign)
    assert (decoded.id, decoded.function, decoded.args, decoded.kwargs) == (
        "from-node",
        "add",
        (),
        {},
    )
    assert decoded.queue == "default" and decoded.job_try == 1
    ours = Codec().encode_job(job(args=(1,)))
    assert orjson.loads(ours)["args"] == [1]


def test_pickle_is_never_unpickled_unless_accepted() -> None:
    data = EVERYTHING.encode_job(job("pickle", args=(Trap(),)))
    UNPICKLED.clear()
    refusing = Codec()  # default accept: json + msgpack
    header = refusing.read_job_header(data)
    assert header.id == "job-1" and header.format == "pickle"
    with pytest.raises(FormatNotAccepted) as info:
        refusing.decode_job(data)
    assert info.value.header is not None and info.value.header.id == "job-1"
    assert info.value.reason == "format_refused"
    assert UNPICKLED == []
    assert EVERYTHING.decode_job(data).args == ("trap",)
    assert UNPICKLED == ["trap"]


def test_a_reader_can_refuse_any_format() -> None:
    data = Codec().encode_job(job("json"))
    with pytest.raises(FormatNotAccepted, match="'json' is not accepted"):
        Codec(accept={"msgpack"}).decode_job(data)


def test_newer_minor_versions_and_unknown_fields_are_read() -> None:
    doc = orjson.loads(Codec().encode_job(job(args=(1,))))
    doc.update(v="1.42", priority=9, future={"x": [1]})
    decoded = Codec().decode_job(orjson.dumps(doc))
    assert decoded.version == (1, 42) and decoded.args == (1,)


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_unknown_major_version_names_both_versions(fmt: Format) -> None:
    import msgpack

    doc = {"v": "2.0", "fmt": fmt, "id": "x", "function": "f", "enqueued_ms": 0}
    data = orjson.dumps(doc) if fmt == "json" else msgpack.packb(doc)
    with pytest.raises(UnsupportedVersion) as info:
        Codec().decode_job(data)
    assert "2.0" in str(info.value) and "1.x" in str(info.value)
    assert (info.value.found, info.value.supported) == ("2.0", "1.x")


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Level(enum.Enum):
    HIGH = "high"


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2026-01-02T03:04:05+00:00"),
        (date(2026, 1, 2), "2026-01-02"),
        (uuid.UUID(int=7), "00000000-0000-0000-0000-000000000007"),
        (Decimal("0.10"), "0.10"),
        ({3, 1, 2}, [1, 2, 3]),
        (frozenset({"b", "a"}), ["a", "b"]),
        ((1, 2), [1, 2]),
        (Point(1, 2), {"x": 1, "y": 2}),
        (Level.HIGH, "high"),
    ],
    ids=["datetime", "date", "uuid", "decimal", "set", "frozenset", "tuple", "dataclass", "enum"],
)
def test_non_json_values_have_one_defined_conversion(
    fmt: Format, value: Any, expected: Any
) -> None:
    decoded = EVERYTHING.decode_job(EVERYTHING.encode_job(job(fmt, args=(value,))))
    assert decoded.args == (expected,)


def test_bytes_are_refused_in_json_and_carried_by_msgpack_and_pickle() -> None:
    with pytest.raises(UnsupportedValue, match=r"kwargs\['blob'\].*msgpack or pickle"):
        Codec().encode_job(job(kwargs={"blob": b"\x00"}))
    for fmt in ("msgpack", "pickle"):
        data = EVERYTHING.encode_job(job(fmt, kwargs={"blob": b"\x00"}))  # type: ignore[arg-type]
        assert EVERYTHING.decode_job(data).kwargs == {"blob": b"\x00"}


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_unsupported_values_raise_a_typed_error_naming_the_argument(fmt: Format) -> None:
    with pytest.raises(UnsupportedValue) as info:
        Codec().encode_job(job(fmt, args=(1, 2, object())))
    assert info.value.location == "args[2]"
    assert "args[2]" in str(info.value) and "object" in str(info.value)
    assert isinstance(info.value, (EncodeError, TypeError, JobwireError))


def test_unpicklable_argument_is_named() -> None:
    import threading

    with pytest.raises(UnsupportedValue) as info:
        Codec().encode_job(job("pickle", kwargs={"ok": 1, "lock": threading.Lock()}))
    assert info.value.location == "kwargs['lock']"


def test_payload_limit_is_enforced_when_writing_and_before_reading() -> None:
    small = Codec(max_size=200)
    with pytest.raises(PayloadTooLarge) as info:
        small.encode_job(job(args=("x" * 300,)))
    assert info.value.size > 200 and info.value.limit == 200
    big = Codec().encode_job(job(args=("x" * 300,)))
    with pytest.raises(PayloadTooLarge):
        small.decode_job(big)
    assert issubclass(PayloadTooLarge, EncodeError) and issubclass(PayloadTooLarge, DecodeError)


def test_default_limit_is_one_mebibyte() -> None:
    fits = Codec().encode_job(job(args=("x" * (1024 * 1024 - 200),)))
    assert len(fits) <= 1024 * 1024
    with pytest.raises(PayloadTooLarge):
        Codec().encode_job(job(args=("x" * (1024 * 1024),)))


@pytest.mark.parametrize("fmt", FORMATS)
def test_signed_messages_verify_and_tampering_is_detected(fmt: Format) -> None:
    signer = Codec(accept=FORMATS, signing_key=b"secret")
    data = signer.encode_job(job(fmt, args=("pay", 100)))
    assert signer.decode_job(data).args == ("pay", 100)
    # an unsigned reader can still read it (the sig member is just ignored)
    assert EVERYTHING.decode_job(data).args == ("pay", 100)
    tampered = data.replace(b"pay", b"PAY")
    with pytest.raises(SignatureError, match="does not match"):
        signer.decode_job(tampered)
    with pytest.raises(SignatureError, match="not signed"):
        signer.decode_job(EVERYTHING.encode_job(job(fmt)))
    with pytest.raises(SignatureError) as info:
        Codec(accept=FORMATS, signing_key=b"other").decode_job(data)
    assert info.value.header is not None and info.value.header.id == "job-1"


def test_signing_keys_can_be_rotated() -> None:
    old = Codec(signing_key="old").encode_job(job())
    rotated = Codec(signing_key="new", verify_keys=["old"])
    assert rotated.decode_job(old).id == "job-1"
    # new messages are signed with the new key only: an old-key-only reader refuses them
    with pytest.raises(SignatureError):
        Codec(signing_key="old").decode_job(rotated.encode_job(job()))


def test_headers_must_be_strings() -> None:
    with pytest.raises(EncodeError, match="headers"):
        Codec().encode_job(job(headers={"n": 1}))  # type: ignore[dict-item]


def raise_chain() -> None:
    try:
        {}["missing"]
    except KeyError as exc:
        raise RuntimeError("lookup failed") from exc


def test_error_records_keep_type_message_traceback_and_cause() -> None:
    with pytest.raises(RuntimeError) as info:
        raise_chain()
    record = ErrorRecord.from_exception(info.value)
    assert record.type == "builtins.RuntimeError"
    assert record.message == "lookup failed"
    assert "raise_chain" in record.traceback
    assert record.cause is not None and record.cause.type == "builtins.KeyError"
    assert [r.type for r in record.chain()] == ["builtins.RuntimeError", "builtins.KeyError"]


def raise_suppressed() -> None:
    try:
        raise KeyError("inner")
    except KeyError:
        raise ValueError("outer") from None


def test_suppressed_context_is_not_a_cause() -> None:
    with pytest.raises(ValueError, match="outer") as info:
        raise_suppressed()
    assert ErrorRecord.from_exception(info.value).cause is None


class AppError(Exception):
    pass


@pytest.mark.parametrize("fmt", FORMATS)
def test_failed_results_carry_the_error_record_in_every_format(fmt: Format) -> None:
    try:
        raise AppError("card declined")
    except AppError as exc:
        record, error = ErrorRecord.from_exception(exc), exc
    result = ResultEnvelope(
        id="r",
        function="charge",
        outcome="error",
        error=record,
        exception=error,
        enqueued_ms=1,
        started_ms=2,
        finished_ms=3,
        format=fmt,
    )
    data = EVERYTHING.encode_result(result)
    plain = Codec().decode_result(data)  # no pickle: the record is still readable
    assert plain.error == record and not plain.success
    assert plain.error.type.endswith("test_wire_codec.AppError")
    assert plain.exception is None
    if fmt == "pickle":
        full = EVERYTHING.decode_result(data)
        assert isinstance(full.exception, AppError) and str(full.exception) == "card declined"


def test_pickled_success_value_needs_pickle_accepted() -> None:
    result = ResultEnvelope(
        id="r", function="f", value={1, 2}, enqueued_ms=1, started_ms=2, finished_ms=3,
        format="pickle",
    )  # fmt: skip
    data = EVERYTHING.encode_result(result)
    assert EVERYTHING.decode_result(data).value == {1, 2}
    with pytest.raises(FormatNotAccepted):
        Codec().decode_result(data)


def test_result_values_that_cannot_be_encoded_name_the_result() -> None:
    result = ResultEnvelope(
        id="r", function="f", value=object(), enqueued_ms=1, started_ms=2, finished_ms=3
    )
    with pytest.raises(UnsupportedValue) as info:
        Codec().encode_result(result)
    assert info.value.location == "result"


def test_every_error_shares_one_root() -> None:
    for exc_type in (
        EncodeError,
        UnsupportedValue,
        DecodeError,
        MalformedMessage,
        InvalidEnvelope,
        UnsupportedVersion,
        FormatNotAccepted,
        SignatureError,
        PayloadTooLarge,
    ):
        assert issubclass(exc_type, WireError) and issubclass(exc_type, JobwireError)


def test_codec_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown formats"):
        Codec(accept={"yaml"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="signing_key"):
        Codec(verify_keys=["k"])
    with pytest.raises(ValueError, match="empty"):
        Codec(signing_key="")
