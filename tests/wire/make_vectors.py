"""Regenerate wire/vectors/*.json from the cases below: ``python -m tests.wire.make_vectors``.

The committed files are the contract; ``test_wire_vectors.py`` checks the code against them.
Only regenerate on purpose (a new case, or a deliberate format change with a version bump).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack

from jobwire.wire import (
    MAX_MS,
    MAX_RESULT_TRY,
    MAX_TRY,
    Codec,
    ErrorRecord,
    JobEnvelope,
    ResultEnvelope,
)
from tests.wire.vector_values import tag

OUT = Path(__file__).resolve().parents[2] / "wire" / "vectors"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms
KEY = "vector-signing-key"
ALL = Codec(accept={"json", "msgpack", "pickle"}, max_size=1 << 24)


@dataclasses.dataclass
class Point:
    x: int
    y: float


class Color(enum.Enum):
    RED = "red"


TZ2 = timezone(timedelta(hours=2))
UNICODE = ["héllo", "日本語", "🚀 rocket", 'quote " backslash \\ slash /', "tab\tnew\nline", "\x01"]
INTS = [0, -1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1]
NESTED = {"a": [1, [2, [3, [4, {"b": {"c": [None, True, False]}}]]]], "empty": {}, "list": []}
SPECIAL = [
    datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=TZ2),
    datetime(2026, 1, 2, 3, 4, 5),
    date(2026, 1, 2),
    time(3, 4, 5),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("12.50"),
    {3, 1, 2},
    frozenset({5, 4}),
    (1, "two"),
]


def job(name: str, fmt: str, *, args: tuple[Any, ...] = (), **kw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": f"{fmt}-{name}",
        "function": kw.pop("function", "tasks.process"),
        "queue": kw.pop("queue", "default"),
        "enqueued_ms": kw.pop("enqueued_ms", T0),
        "job_try": kw.pop("job_try", 1),
        "defer_until_ms": kw.pop("defer_until_ms", None),
        "expires_ms": kw.pop("expires_ms", None),
        "headers": kw.pop("headers", {}),
        "format": fmt,
        "args": args,
        "kwargs": kw.pop("kwargs", {}),
    }
    key = kw.pop("signing_key", None)
    assert not kw, kw
    env = JobEnvelope(**fields)
    codec = Codec(accept={"json", "msgpack", "pickle"}, signing_key=key) if key else ALL
    data = codec.encode_job(env)
    decoded = codec.decode_job(data)
    vector: dict[str, Any] = {
        "name": f"{fmt}/{name}",
        "format": fmt,
        "direction": "both",
        "input": _input_fields(env),
        "decoded": {"args": tag(list(decoded.args)), "kwargs": tag(decoded.kwargs)},
    }
    if key:
        vector["signing_key"] = key
    _put_bytes(vector, data, fmt)
    return vector


def _input_fields(env: JobEnvelope) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": env.id,
        "function": env.function,
        "queue": env.queue,
        "enqueued_ms": env.enqueued_ms,
        "try": env.job_try,
    }
    if env.defer_until_ms is not None:
        out["defer_until_ms"] = env.defer_until_ms
    if env.expires_ms is not None:
        out["expires_ms"] = env.expires_ms
    if env.headers:
        out["headers"] = env.headers
    out["args"] = tag(list(env.args))
    out["kwargs"] = tag(env.kwargs)
    return out


def _put_bytes(vector: dict[str, Any], data: bytes, fmt: str) -> None:
    if fmt == "json":
        vector["encoded"] = data.decode()
    else:
        vector["encoded_hex"] = data.hex()


def jobs() -> list[dict[str, Any]]:
    out = []
    for fmt in ("json", "msgpack", "pickle"):
        out += [
            job("minimal", fmt),
            job("scalars", fmt, args=(1, 2.5, "x", True, False, None)),
            job("unicode", fmt, args=tuple(UNICODE), kwargs={"ключ": "значение"}),
            job("large-ints", fmt, args=tuple(INTS)),
            job("nested", fmt, args=(NESTED,), kwargs={"deep": [[[[[]]]]]}),
            job("kwargs", fmt, kwargs={"to": "a@example.com", "count": 3, "tags": ["x", "y"]}),
            job(
                "metadata",
                fmt,
                queue="emails",
                job_try=3,
                headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                function="myapp.tasks.send_email",
            ),
            job(
                "deferred",
                fmt,
                defer_until_ms=T0 + 60_000,
                expires_ms=T0 + 86_400_000,
                args=("later",),
            ),
            job("non-json-values", fmt, args=tuple(SPECIAL)),
            job("floats", fmt, args=(0.1, 1e300, -0.0, float("nan"), float("inf"))),
            job("empty-values", fmt, args=("", [], {}), kwargs={"e": ""}),
            job("signed", fmt, args=(1,), signing_key=KEY),
        ]
        if fmt == "json":
            out.append(job("dataclass-and-enum", fmt, args=(Point(1, 2.5), Color.RED)))
        else:
            out.append(job("bytes", fmt, args=(b"\x00\xffbinary", b"")))
            out.append(job("int-keys", fmt, args=({1: "one", 2: "two"},)))
        if fmt == "msgpack":
            out.append(job("dataclass-and-enum", fmt, args=(Point(1, 2.5), Color.RED)))
        if fmt == "pickle":
            out.append(job("huge-int", fmt, args=(2**100, -(2**200))))
        # the ends of every integer range (SPEC §3)
        out.append(
            job(
                "limits",
                fmt,
                job_try=MAX_TRY,
                enqueued_ms=0,
                defer_until_ms=MAX_MS,
                expires_ms=MAX_MS,
            )
        )
    out += decode_only()
    return out


def decode_only() -> list[dict[str, Any]]:
    """Messages another writer might produce: newer minor version, unknown fields, no options."""
    newer = {
        "v": "1.7",
        "fmt": "json",
        "id": "json-newer-minor",
        "function": "tasks.process",
        "enqueued_ms": T0,
        "args": [1],
        "future_field": {"anything": True},
        "priority": 5,
    }
    sparse = {"v": "1.0", "fmt": "json", "id": "json-sparse", "function": "f", "enqueued_ms": T0}
    spaced = '  {\n  "v": "1.0", "fmt": "json", "id": "json-whitespace",\n  "function": "f",'
    spaced += ' "enqueued_ms": 0, "args": [1, 2], "kwargs": {"k": null}\n}\n'
    mp_newer = dict(newer, fmt="msgpack", id="msgpack-newer-minor")
    mp_ts = {
        "v": "1.0",
        "fmt": "msgpack",
        "id": "msgpack-timestamp-ext",
        "function": "f",
        "enqueued_ms": T0,
        "args": [msgpack.Timestamp(1_767_225_600, 0)],
    }

    # every optional member null: the same as absent (SPEC §3)
    nulls: dict[str, Any] = {
        "v": "1.0",
        "fmt": "json",
        "id": "json-nulls",
        "function": "f",
        "queue": None,
        "try": None,
        "enqueued_ms": T0,
        "defer_until_ms": None,
        "expires_ms": None,
        "headers": None,
        "args": None,
        "kwargs": None,
    }
    mp_nulls = dict(nulls, fmt="msgpack", id="msgpack-nulls")
    # every defaulted member spelled out, as jobwire wrote them before it left defaults out
    explicit: dict[str, Any] = {
        "v": "1.0",
        "fmt": "json",
        "id": "json-explicit-defaults",
        "function": "f",
        "queue": "default",
        "try": 1,
        "enqueued_ms": T0,
        "args": [],
        "kwargs": {},
    }
    mp_explicit = dict(explicit, fmt="msgpack", id="msgpack-explicit-defaults")

    def dec(name: str, fmt: str, data: bytes) -> dict[str, Any]:
        d = ALL.decode_job(data)
        v: dict[str, Any] = {
            "name": f"{fmt}/{name}",
            "format": fmt,
            "direction": "decode",
            "expected": {
                "id": d.id,
                "function": d.function,
                "queue": d.queue,
                "enqueued_ms": d.enqueued_ms,
                "try": d.job_try,
                "version": list(d.version),
            },
            "decoded": {"args": tag(list(d.args)), "kwargs": tag(d.kwargs)},
        }
        _put_bytes(v, data, fmt)
        return v

    return [
        dec("newer-minor", "json", json.dumps(newer).encode()),
        dec("sparse", "json", json.dumps(sparse).encode()),
        dec("whitespace", "json", spaced.encode()),
        dec("newer-minor", "msgpack", msgpack.packb(mp_newer)),
        dec("timestamp-ext", "msgpack", msgpack.packb(mp_ts, datetime=True)),
        dec("nulls", "json", json.dumps(nulls).encode()),
        dec("nulls", "msgpack", msgpack.packb(mp_nulls)),
        dec("explicit-defaults", "json", json.dumps(explicit, separators=(",", ":")).encode()),
        dec("explicit-defaults", "msgpack", msgpack.packb(mp_explicit)),
    ]


TB = "Traceback (most recent call last):\n  ...\n"


def _boom() -> ErrorRecord:
    cause = ErrorRecord(
        type="builtins.ZeroDivisionError",
        message="division by zero",
        traceback=TB + "ZeroDivisionError: division by zero\n",
    )
    return ErrorRecord(
        type="myapp.errors.ChargeFailed",
        message="card declined: 4000…0002",
        traceback=TB + "myapp.errors.ChargeFailed: card declined\n",
        cause=cause,
    )


def result(name: str, fmt: str, **kw: Any) -> dict[str, Any]:
    env = ResultEnvelope(
        id=f"{fmt}-{name}",
        function="tasks.process",
        queue="default",
        job_try=kw.pop("job_try", 1),
        outcome=kw.pop("outcome", "success"),
        value=kw.pop("value", None),
        error=kw.pop("error", None),
        exception=kw.pop("exception", None),
        enqueued_ms=kw.pop("enqueued_ms", T0),
        started_ms=kw.pop("started_ms", T0 + 5),
        finished_ms=kw.pop("finished_ms", T0 + 25),
        worker="worker-1",
        format=fmt,
    )
    assert not kw
    data = ALL.encode_result(env)
    back = ALL.decode_result(data)
    v: dict[str, Any] = {
        "name": f"{fmt}/{name}",
        "format": fmt,
        "direction": "both",
        "input": {
            "id": env.id,
            "function": env.function,
            "queue": env.queue,
            "try": env.job_try,
            "outcome": env.outcome,
            "enqueued_ms": env.enqueued_ms,
            "started_ms": env.started_ms,
            "finished_ms": env.finished_ms,
            "worker": env.worker,
        },
        "decoded": {"value": tag(back.value)},
    }
    if env.error is not None:
        v["input"]["error"] = _error_json(env.error)
    else:
        v["input"]["value"] = tag(env.value)
    if env.exception is not None:
        v["input"]["exception"] = {
            "type": type(env.exception).__name__,
            "args": list(env.exception.args),
        }
    _put_bytes(v, data, fmt)
    return v


def _error_json(e: ErrorRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"type": e.type, "message": e.message, "traceback": e.traceback}
    if e.cause is not None:
        out["cause"] = _error_json(e.cause)
    return out


def results() -> list[dict[str, Any]]:
    out = []
    for fmt in ("json", "msgpack", "pickle"):
        out += [
            result("success-value", fmt, value={"sent": 3, "ids": [1, 2, 3], "note": "ünï"}),
            result("success-none", fmt),
            result("success-datetime", fmt, value=datetime(2026, 1, 2, tzinfo=timezone.utc)),
            result("error-with-cause", fmt, outcome="error", error=_boom(), job_try=3),
            result(
                "timeout",
                fmt,
                outcome="timeout",
                error=ErrorRecord(type="jobwire.JobTimedOut", message="job exceeded 30s"),
            ),
            result(
                "aborted",
                fmt,
                outcome="aborted",
                error=ErrorRecord(type="jobwire.JobAborted", message="aborted by request"),
            ),
        ]
    out.append(
        result(
            "error-with-exception",
            "pickle",
            outcome="error",
            error=ErrorRecord(type="builtins.ValueError", message="bad value"),
            exception=ValueError("bad value"),
        )
    )
    for fmt in ("json", "msgpack", "pickle"):
        # the ends of every integer range (SPEC §3): a result's try has headroom
        out.append(
            result(
                "limits",
                fmt,
                job_try=MAX_RESULT_TRY,
                enqueued_ms=0,
                started_ms=0,
                finished_ms=MAX_MS,
            )
        )
    out += result_decode_only()
    return out


def result_decode_only() -> list[dict[str, Any]]:
    """Results another writer might produce: every optional member null (SPEC §3)."""
    base: dict[str, Any] = {
        "v": "1.0",
        "fmt": "json",
        "function": "tasks.process",
        "queue": None,
        "try": None,
        "enqueued_ms": T0,
        "started_ms": T0 + 5,
        "finished_ms": T0 + 25,
        "worker": None,
    }
    success = dict(base, id="json-nulls-success", outcome="success", value=None, error=None)
    record = {"type": "builtins.ValueError", "message": "bad", "traceback": None, "cause": None}
    failure = dict(base, id="json-nulls-error", outcome="error", error=record)
    explicit = dict(base, id="json-explicit-defaults", queue="default", outcome="success", value=1)
    explicit["try"] = 1

    def dec(name: str, fmt: str, data: bytes) -> dict[str, Any]:
        r = ALL.decode_result(data)
        expected: dict[str, Any] = {
            "id": r.id,
            "function": r.function,
            "queue": r.queue,
            "try": r.job_try,
            "outcome": r.outcome,
            "enqueued_ms": r.enqueued_ms,
            "started_ms": r.started_ms,
            "finished_ms": r.finished_ms,
            "worker": r.worker,
        }
        if r.error is not None:
            expected["error"] = _error_json(r.error)
        v: dict[str, Any] = {
            "name": f"{fmt}/{name}",
            "format": fmt,
            "direction": "decode",
            "expected": expected,
            "decoded": {"value": tag(r.value)},
        }
        _put_bytes(v, data, fmt)
        return v

    def mp(doc: dict[str, Any]) -> bytes:
        return msgpack.packb(dict(doc, fmt="msgpack", id=doc["id"].replace("json", "msgpack")))

    return [
        dec("nulls-success", "json", json.dumps(success).encode()),
        dec("nulls-error", "json", json.dumps(failure).encode()),
        dec("nulls-success", "msgpack", mp(success)),
        dec("nulls-error", "msgpack", mp(failure)),
        dec("explicit-defaults", "json", json.dumps(explicit).encode()),
        dec("explicit-defaults", "msgpack", mp(explicit)),
    ]


def invalid() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []

    def bad(name: str, data: bytes, error: str, reason: str, **extra: Any) -> None:
        v: dict[str, Any] = {"name": name, "kind": extra.pop("kind", "job")}
        if data[:1] in (b"{", b" ") and _is_utf8(data):
            v["encoded"] = data.decode()
        else:
            v["encoded_hex"] = data.hex()
        v.update(extra)
        v["error"] = error
        v["reason"] = reason
        cases.append(v)

    base = {"v": "1.0", "fmt": "json", "id": "x", "function": "f", "enqueued_ms": T0}

    def j(**changes: Any) -> bytes:
        d = {**base, **changes}
        return json.dumps({k: v for k, v in d.items() if v is not ...}).encode()

    def m(**changes: Any) -> bytes:
        return msgpack.packb({**base, "fmt": "msgpack", **changes})

    finished = {**base, "outcome": "success", "started_ms": T0, "finished_ms": T0}

    def r(**changes: Any) -> bytes:
        return json.dumps({**finished, **changes}).encode()

    bad("empty", b"", "MalformedMessage", "undecodable")
    bad("garbage-bytes", b"\x00\x01\x02garbage", "MalformedMessage", "undecodable")
    bad("truncated-json", j()[:-7], "MalformedMessage", "undecodable")
    bad("json-array", b"[1, 2, 3]", "MalformedMessage", "undecodable")
    bad("json-invalid-utf8", b'{"v": "1.0", "id": "\xff\xfe"}', "MalformedMessage", "undecodable")
    bad(
        "truncated-msgpack",
        msgpack.packb({**base, "fmt": "msgpack"})[:-3],
        "MalformedMessage",
        "undecodable",
    )
    bad(
        "msgpack-unknown-ext",
        msgpack.packb({**base, "fmt": "msgpack", "args": [msgpack.ExtType(42, b"x")]}),
        "MalformedMessage",
        "undecodable",
    )
    bad("missing-version", j(v=...), "InvalidEnvelope", "invalid_envelope")
    bad("version-not-major-minor", j(v="1"), "InvalidEnvelope", "invalid_envelope")
    bad("unknown-major-version", j(v="2.0"), "UnsupportedVersion", "unsupported_version")
    bad("missing-id", j(id=...), "InvalidEnvelope", "invalid_envelope")
    bad("empty-function", j(function=""), "InvalidEnvelope", "invalid_envelope")
    bad("try-is-string", j(**{"try": "1"}), "InvalidEnvelope", "invalid_envelope")
    bad("try-is-zero", j(**{"try": 0}), "InvalidEnvelope", "invalid_envelope")
    bad("enqueued-negative", j(enqueued_ms=-5), "InvalidEnvelope", "invalid_envelope")
    bad("enqueued-float", j(enqueued_ms=1.5), "InvalidEnvelope", "invalid_envelope")
    # integer ranges (SPEC §3): out of range, or not an integer at all
    bad("try-too-large", j(**{"try": MAX_TRY + 1}), "InvalidEnvelope", "invalid_envelope")
    bad("try-max-uint64", j(**{"try": 2**64 - 1}), "InvalidEnvelope", "invalid_envelope")
    bad("try-is-bool", j(**{"try": True}), "InvalidEnvelope", "invalid_envelope")
    bad("enqueued-too-large", j(enqueued_ms=MAX_MS + 1), "InvalidEnvelope", "invalid_envelope")
    bad("enqueued-2-pow-63", j(enqueued_ms=2**63), "InvalidEnvelope", "invalid_envelope")
    bad("enqueued-is-bool", j(enqueued_ms=False), "InvalidEnvelope", "invalid_envelope")
    bad(
        "defer-until-too-large", j(defer_until_ms=MAX_MS + 1), "InvalidEnvelope", "invalid_envelope"
    )
    bad("defer-until-negative", j(defer_until_ms=-1), "InvalidEnvelope", "invalid_envelope")
    bad("expires-too-large", j(expires_ms=MAX_MS + 1), "InvalidEnvelope", "invalid_envelope")
    bad("expires-is-string", j(expires_ms=str(T0)), "InvalidEnvelope", "invalid_envelope")
    bad("msgpack-try-uint64", m(**{"try": 2**64 - 1}), "InvalidEnvelope", "invalid_envelope")
    bad("msgpack-try-is-bool", m(**{"try": True}), "InvalidEnvelope", "invalid_envelope")
    bad("msgpack-try-nan", m(**{"try": float("nan")}), "InvalidEnvelope", "invalid_envelope")
    bad("msgpack-try-float", m(**{"try": 1.0}), "InvalidEnvelope", "invalid_envelope")
    bad(
        "msgpack-enqueued-infinity",
        m(enqueued_ms=float("inf")),
        "InvalidEnvelope",
        "invalid_envelope",
    )
    bad("msgpack-enqueued-negative", m(enqueued_ms=-(2**63)), "InvalidEnvelope", "invalid_envelope")
    bad("msgpack-expires-nan", m(expires_ms=float("nan")), "InvalidEnvelope", "invalid_envelope")
    bad("args-not-array", j(args={"a": 1}), "InvalidEnvelope", "invalid_envelope")
    bad("kwargs-not-object", j(kwargs=[1]), "InvalidEnvelope", "invalid_envelope")
    bad("header-not-string", j(headers={"n": 1}), "InvalidEnvelope", "invalid_envelope")
    bad("header-value-null", j(headers={"n": None}), "InvalidEnvelope", "invalid_envelope")
    bad("headers-not-object", j(headers=["n", "v"]), "InvalidEnvelope", "invalid_envelope")
    bad("fmt-mismatch", j(fmt="msgpack"), "InvalidEnvelope", "invalid_envelope")
    bad("unknown-format", j(fmt="avro"), "FormatNotAccepted", "format_refused")
    bad(
        "msgpack-int-kwargs-key",
        msgpack.packb({**base, "fmt": "msgpack", "kwargs": {1: "x"}}),
        "InvalidEnvelope",
        "invalid_envelope",
    )
    pickled = ALL.encode_job(JobEnvelope(id="p", function="f", enqueued_ms=T0, format="pickle"))
    bad(
        "pickle-not-accepted",
        pickled,
        "FormatNotAccepted",
        "format_refused",
        accept=["json", "msgpack"],
    )
    bad(
        "pickle-not-a-pickle",
        msgpack.packb({**base, "fmt": "pickle", "payload": b"not a pickle"}),
        "MalformedMessage",
        "undecodable",
        accept=["json", "msgpack", "pickle"],
    )
    signed = Codec(signing_key=KEY).encode_job(JobEnvelope(id="s", function="f", enqueued_ms=T0))
    tampered = signed.replace(b'"function":"f"', b'"function":"g"')
    bad("signature-missing", j(), "SignatureError", "bad_signature", signing_key=KEY)
    bad("signature-tampered", tampered, "SignatureError", "bad_signature", signing_key=KEY)
    bad("signature-wrong-key", signed, "SignatureError", "bad_signature", signing_key="other-key")
    bad("oversized", j(args=["x" * 200]), "PayloadTooLarge", "oversized", max_size=128)
    bad(
        "result-error-without-record",
        json.dumps({**base, "outcome": "error", "started_ms": T0, "finished_ms": T0}).encode(),
        "InvalidEnvelope",
        "invalid_envelope",
        kind="result",
    )
    result_cases: list[tuple[str, bytes]] = [
        ("result-try-zero", r(**{"try": 0})),
        ("result-try-too-large", r(**{"try": MAX_RESULT_TRY + 1})),
        ("result-try-is-bool", r(**{"try": True})),
        ("result-started-too-large", r(started_ms=MAX_MS + 1)),
        ("result-finished-negative", r(finished_ms=-1)),
        ("result-enqueued-2-pow-63", r(enqueued_ms=2**63)),
        ("result-error-null", r(outcome="error", error=None)),
        (
            "msgpack-result-finished-nan",
            msgpack.packb({**finished, "fmt": "msgpack", "finished_ms": float("nan")}),
        ),
        (
            "msgpack-result-try-uint64",
            msgpack.packb({**finished, "fmt": "msgpack", "try": 2**64 - 1}),
        ),
    ]
    for name, data in result_cases:
        bad(name, data, "InvalidEnvelope", "invalid_envelope", kind="result")
    return cases


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def encode_errors() -> list[dict[str, Any]]:
    return [
        {
            "name": "json/bytes",
            "format": "json",
            "args": [{"$bytes": "00"}],
            "error": "UnsupportedValue",
            "location": "args[0]",
        },
        {
            "name": "json/int-over-64-bits",
            "format": "json",
            "args": [1, {"$int": str(2**64)}],
            "error": "UnsupportedValue",
            "location": "args[1]",
        },
        {
            "name": "json/bytes-in-kwargs",
            "format": "json",
            "kwargs": {"blob": {"$bytes": "ff"}},
            "error": "UnsupportedValue",
            "location": "kwargs['blob']",
        },
        {
            "name": "msgpack/int-over-64-bits",
            "format": "msgpack",
            "kwargs": {"n": {"$int": str(-(2**64))}},
            "error": "UnsupportedValue",
            "location": "kwargs['n']",
        },
        *metadata_errors(),
    ]


def metadata_errors() -> list[dict[str, Any]]:
    """Metadata out of its range (SPEC §3): a writer refuses it in every format."""
    job_cases: list[tuple[str, dict[str, Any]]] = [
        ("try-zero", {"try": 0}),
        ("try-too-large", {"try": MAX_TRY + 1}),
        ("try-is-bool", {"try": True}),
        ("try-is-float", {"try": 1.0}),
        ("enqueued-negative", {"enqueued_ms": -1}),
        ("enqueued-too-large", {"enqueued_ms": MAX_MS + 1}),
        ("enqueued-is-nan", {"enqueued_ms": {"$float": "nan"}}),
        ("defer-until-too-large", {"defer_until_ms": MAX_MS + 1}),
        ("expires-2-pow-63", {"expires_ms": {"$int": str(2**63)}}),
        ("header-not-string", {"headers": {"n": 1}}),
        ("empty-id", {"id": ""}),
    ]
    result_cases: list[tuple[str, dict[str, Any]]] = [
        ("result-try-zero", {"try": 0}),
        ("result-try-too-large", {"try": MAX_RESULT_TRY + 1}),
        ("result-try-2-pow-64", {"try": {"$int": str(2**64)}}),
        ("result-started-is-bool", {"started_ms": True}),
        ("result-finished-too-large", {"finished_ms": MAX_MS + 1}),
    ]
    out: list[dict[str, Any]] = []
    for fmt in ("json", "msgpack"):
        for name, metadata in job_cases:
            out.append(
                {
                    "name": f"{fmt}/{name}",
                    "format": fmt,
                    "metadata": metadata,
                    "error": "EncodeError",
                }
            )
        for name, metadata in result_cases:
            out.append(
                {
                    "name": f"{fmt}/{name}",
                    "kind": "result",
                    "format": fmt,
                    "metadata": metadata,
                    "error": "EncodeError",
                }
            )
    return out


def write(name: str, description: str, vectors: list[dict[str, Any]]) -> None:
    doc = {"description": description, "wire_version": "1.0", "vectors": vectors}
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    (OUT / name).write_text(text, encoding="utf-8")
    print(f"{name}: {len(vectors)} vectors")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    write(
        "jobs.json",
        "Valid job messages: input fields and values, exact bytes, decoded values.",
        jobs(),
    )
    write(
        "results.json",
        "Valid result messages: input fields, exact bytes, decoded value.",
        results(),
    )
    write(
        "invalid.json",
        "Messages a reader must refuse, with the error class and reason code.",
        invalid(),
    )
    write(
        "encode_errors.json",
        "What a writer must refuse: argument values (with the argument named) and metadata.",
        encode_errors(),
    )


if __name__ == "__main__":
    main()
