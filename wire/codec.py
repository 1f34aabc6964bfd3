"""Bytes <-> envelopes, for every format, with size limits, accept sets and signatures.

A :class:`Codec` is immutable configuration (accepted formats, signing keys, size limit) plus
pure functions. Framing, chosen by the first byte of a message:

* ``{`` (optionally after JSON whitespace): a JSON object, format ``json``;
* a msgpack map header (``0x80``-``0x8f``, ``0xde``, ``0xdf``): format ``msgpack`` or ``pickle``
  (the ``fmt`` field tells). A pickle job is a msgpack map whose arguments sit pickled in the
  ``payload`` field, so its metadata is readable without unpickling anything.

See ``SPEC.md`` for the normative description.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any, Final

import msgpack
import orjson

from .envelope import (
    DEFAULT_QUEUE,
    FORMATS,
    MAX_MS,
    MAX_RESULT_TRY,
    MAX_TRY,
    WIRE_VERSION,
    ErrorRecord,
    Format,
    JobEnvelope,
    JobHeader,
    ResultEnvelope,
)
from .errors import (
    DecodeError,
    EncodeError,
    FormatNotAccepted,
    InvalidArgument,
    InvalidEnvelope,
    MalformedMessage,
    PayloadTooLarge,
    SignatureError,
    UnsupportedValue,
    UnsupportedVersion,
)
from .fields import (
    MAX_NAME_LENGTH,
    MAX_OUTCOME_LENGTH,
    check_version,
    error_fields,
    error_record,
    header_values,
    headers_out,
    int_in,
    int_out,
    is_str_map,
    job_header,
    name_out,
    opt_str,
    req_str,
    str_out,
)
from .pickling import pickle_args, pickle_value, unpickle, unpickle_args
from .signing import sign, verify
from .values import json_default, msgpack_default

__all__ = ["DEFAULT_ACCEPT", "DEFAULT_MAX_SIZE", "Codec", "check_format", "detect_framing"]

#: Formats a reader accepts unless told otherwise. Pickle must always be opted into.
DEFAULT_ACCEPT: Final[frozenset[Format]] = frozenset({"json", "msgpack"})
#: Default limit on an encoded message, enforced when encoding and before decoding.
DEFAULT_MAX_SIZE: Final = 1024 * 1024
_VERSION_TEXT: Final = f"{WIRE_VERSION[0]}.{WIRE_VERSION[1]}"
_JSON_WS: Final = frozenset(b" \t\r\n")
_FORMAT_NAMED: Final[dict[str, Format]] = {f: f for f in FORMATS}


def check_format(name: object) -> Format:
    """Return ``name`` if it is a format (a serializer) of the wire, else raise InvalidArgument.

    The one check of a format name: a client's ``serializer=`` setting and a job's own
    ``_serializer=`` (through :meth:`Codec.encode_job`) are refused with the same error.
    """
    if type(name) is str:
        for known in FORMATS:
            if name == known:
                return known
    names = ", ".join(repr(f) for f in FORMATS)
    raise InvalidArgument(f"unknown serializer {name!r:.40}: the formats are {names}")


def detect_framing(data: bytes | bytearray | memoryview) -> str:
    """Return ``"json"`` or ``"msgpack"`` for a message's framing, or raise MalformedMessage."""
    if not data:
        raise MalformedMessage("empty message")
    b0 = data[0]
    if b0 == 0x7B or b0 in _JSON_WS:
        return "json"
    if 0x80 <= b0 <= 0x8F or b0 in (0xDE, 0xDF):
        return "msgpack"
    raise MalformedMessage(
        f"not a jobwire message: first byte 0x{b0:02x} starts neither a JSON object "
        "nor a msgpack map"
    )


def _reject_ext(code: int, data: bytes) -> Any:
    raise MalformedMessage(f"msgpack extension type {code} is not part of the jobwire format")


def _unpack(data: bytes | bytearray | memoryview) -> Any:
    # timestamp=3: the standard msgpack timestamp extension (-1) reads as an aware datetime.
    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_reject_ext, timestamp=3)


class Codec:
    """Encodes and decodes jobwire messages.

    ``accept``: formats the *decoder* will decode arguments / values of (pickle only if named).
    ``signing_key``: when set, encoded messages are signed with HMAC-SHA256 and decoded
    messages must carry a valid signature by this key or one of ``verify_keys`` (for key
    rotation). ``max_size``: byte limit checked when encoding and before decoding.
    """

    __slots__ = ("_sign_key", "_verify_keys", "accept", "max_size")

    def __init__(
        self,
        *,
        accept: Iterable[Format] = DEFAULT_ACCEPT,
        signing_key: bytes | str | None = None,
        verify_keys: Iterable[bytes | str] = (),
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        accepted = _accepted(accept)
        if type(max_size) is not int or max_size <= 0:
            raise InvalidArgument(f"max_size must be a positive integer, not {max_size!r:.40}")
        self.accept: frozenset[Format] = accepted
        self.max_size = max_size
        self._sign_key = _key_bytes(signing_key) if signing_key is not None else None
        keys = [self._sign_key] if self._sign_key is not None else []
        if isinstance(verify_keys, (str, bytes)):
            raise InvalidArgument("verify_keys is a collection of keys, not one key")
        keys.extend(_key_bytes(k) for k in _iterate(verify_keys, "verify_keys"))
        if keys and self._sign_key is None:
            raise InvalidArgument("verify_keys needs a signing_key too")
        self._verify_keys: tuple[bytes, ...] = tuple(keys)

    def __repr__(self) -> str:
        signed = "signed" if self._sign_key else "unsigned"
        return f"Codec(accept={sorted(self.accept)}, max_size={self.max_size}, {signed})"

    @property
    def signs(self) -> bool:
        """True when this codec signs what it encodes and requires signatures to decode."""
        return self._sign_key is not None

    # ------------------------------------------------------------------ jobs

    def encode_job(self, job: JobEnvelope) -> bytes:
        """Encode a job in its own ``job.format``.

        Raises :class:`EncodeError` subclasses, and :class:`InvalidArgument` for an unknown
        format (see :func:`check_format`).
        """
        fmt = check_format(job.format)
        # The metadata is checked against the same rules the decoder applies, so that a
        # job this writer accepts is never one that every reader must dead-letter.
        fields: dict[str, Any] = {
            "v": _VERSION_TEXT,
            "fmt": fmt,
            "id": name_out("id", job.id),
            "function": name_out("function", job.function),
        }
        _put_unless_default(fields, "queue", str_out("queue", job.queue), DEFAULT_QUEUE)
        _put_unless_default(fields, "try", int_out("try", job.job_try, 1, MAX_TRY), 1)
        fields["enqueued_ms"] = int_out("enqueued_ms", job.enqueued_ms, 0, MAX_MS)
        if job.defer_until_ms is not None:
            fields["defer_until_ms"] = int_out("defer_until_ms", job.defer_until_ms, 0, MAX_MS)
        if job.expires_ms is not None:
            fields["expires_ms"] = int_out("expires_ms", job.expires_ms, 0, MAX_MS)
        if job.headers:
            fields["headers"] = headers_out(job.headers)
        for key in job.kwargs:
            if type(key) is not str:
                raise UnsupportedValue(
                    f"keyword argument names must be strings, not {type(key).__qualname__}",
                    location=f"kwargs[{key!r}]",
                    format=fmt,
                )
        if fmt == "pickle":
            fields["payload"] = pickle_args(job.args, job.kwargs)
        else:
            if job.args:
                fields["args"] = job.args
            if job.kwargs:
                fields["kwargs"] = job.kwargs
        return self._finish(_encode_fields(fields, fmt, _locate_arg(job)))

    def decode_job(self, data: bytes | bytearray | memoryview) -> JobEnvelope:
        """Decode a whole job, arguments included.

        Raises :class:`FormatNotAccepted` (carrying the header) for a format outside
        ``accept``; every failure is a :class:`DecodeError`.
        """
        obj, fmt, version = self._open(data)
        values = header_values(obj, fmt, version)
        if fmt not in self.accept:
            raise FormatNotAccepted(fmt, self.accept, header=JobHeader(**values))
        if fmt == "pickle":
            args, kwargs = unpickle_args(obj, JobHeader(**values))
        else:
            # null is the same as absent (SPEC §3)
            raw_args = obj.get("args")
            raw_args = [] if raw_args is None else raw_args
            raw_kwargs = obj.get("kwargs")
            raw_kwargs = {} if raw_kwargs is None else raw_kwargs
            if type(raw_args) is not list:
                raise InvalidEnvelope("field 'args' must be an array", header=JobHeader(**values))
            if not is_str_map(raw_kwargs):
                raise InvalidEnvelope(
                    "field 'kwargs' must be an object with string keys", header=JobHeader(**values)
                )
            args, kwargs = tuple(raw_args), raw_kwargs
        return JobEnvelope(**values, args=args, kwargs=kwargs)

    def read_job_header(self, data: bytes | bytearray | memoryview) -> JobHeader:
        """Read a job's metadata without decoding its arguments (never unpickles).

        Works for every known format, accepted or not; signatures are still checked.
        """
        obj, fmt, version = self._open(data)
        return job_header(obj, fmt, version)

    # --------------------------------------------------------------- results

    def encode_result(self, result: ResultEnvelope) -> bytes:
        """Encode a result in ``result.format``.

        A success whose value cannot be encoded raises :class:`UnsupportedValue` with
        ``location="result"``; a worker then stores an error result instead.
        """
        fmt = check_format(result.format)
        outcome = result.outcome
        if type(outcome) is not str or not 0 < len(outcome) <= MAX_OUTCOME_LENGTH:
            raise EncodeError(f"outcome must be a string of 1 to {MAX_OUTCOME_LENGTH} characters")
        # ``id`` and ``function`` are only type-checked: a worker must be able to record the
        # failure of a job whose stored id no reader accepts (it is dead-lettered by that id).
        fields: dict[str, Any] = {
            "v": _VERSION_TEXT,
            "fmt": fmt,
            "id": str_out("id", result.id),
            "function": str_out("function", result.function),
        }
        _put_unless_default(fields, "queue", str_out("queue", result.queue), DEFAULT_QUEUE)
        _put_unless_default(fields, "try", int_out("try", result.job_try, 1, MAX_RESULT_TRY), 1)
        fields["outcome"] = outcome
        fields["enqueued_ms"] = int_out("enqueued_ms", result.enqueued_ms, 0, MAX_MS)
        fields["started_ms"] = int_out("started_ms", result.started_ms, 0, MAX_MS)
        fields["finished_ms"] = int_out("finished_ms", result.finished_ms, 0, MAX_MS)
        fields["worker"] = str_out("worker", result.worker)
        if result.success:
            if fmt == "pickle":
                fields["payload"] = pickle_value(result.value, "result")
            else:
                fields["value"] = result.value
        else:
            error = result.error
            if error is None:
                raise EncodeError(f"a result with outcome {result.outcome!r} needs an error")
            fields["error"] = error_fields(error, 0)
            if fmt == "pickle" and result.exception is not None:
                # An unpicklable exception is left out: the portable record still describes it.
                with contextlib.suppress(UnsupportedValue):
                    fields["payload"] = pickle_value(result.exception, "exception")
        return self._finish(_encode_fields(fields, fmt, lambda: "result"))

    def decode_result(self, data: bytes | bytearray | memoryview) -> ResultEnvelope:
        """Decode a result.

        Error records are readable in every format; a pickled success value needs ``pickle``
        in ``accept`` (else :class:`FormatNotAccepted`), a pickled exception is attached only
        when pickle is accepted.
        """
        obj, fmt, version = self._open(data)
        rid = req_str(obj, "id", limit=MAX_NAME_LENGTH)
        function = req_str(obj, "function", limit=MAX_NAME_LENGTH)
        queue = opt_str(obj, "queue", DEFAULT_QUEUE)
        job_try = int_in(obj, "try", 1, MAX_RESULT_TRY, default=1)
        outcome = req_str(obj, "outcome", limit=MAX_OUTCOME_LENGTH)
        enqueued_ms = int_in(obj, "enqueued_ms", 0, MAX_MS)
        started_ms = int_in(obj, "started_ms", 0, MAX_MS)
        finished_ms = int_in(obj, "finished_ms", 0, MAX_MS)
        worker = opt_str(obj, "worker", "")
        value: Any = None
        error: ErrorRecord | None = None
        exception: BaseException | None = None
        payload = obj.get("payload")
        if fmt == "pickle" and payload is not None and type(payload) is not bytes:
            raise InvalidEnvelope("field 'payload' must be binary")
        if outcome == "success":
            if fmt == "pickle":
                if "pickle" not in self.accept:
                    raise FormatNotAccepted(fmt, self.accept)
                if payload is None:
                    raise InvalidEnvelope("a pickle success result needs 'payload'")
                value = unpickle(payload, None)
            else:
                value = obj.get("value")
        else:
            error = error_record(obj.get("error"), 0)
            if fmt == "pickle" and payload is not None and "pickle" in self.accept:
                loaded = unpickle(payload, None)
                if isinstance(loaded, BaseException):
                    exception = loaded
        return ResultEnvelope(
            id=rid,
            function=function,
            queue=queue,
            job_try=job_try,
            outcome=outcome,
            value=value,
            error=error,
            exception=exception,
            enqueued_ms=enqueued_ms,
            started_ms=started_ms,
            finished_ms=finished_ms,
            worker=worker,
            format=fmt,
            version=version,
        )

    # -------------------------------------------------------------- plumbing

    def _finish(self, data: bytes) -> bytes:
        if self._sign_key is not None:
            data = sign(data, self._sign_key)
        if len(data) > self.max_size:
            raise PayloadTooLarge(len(data), self.max_size)
        return data

    def _open(
        self, data: bytes | bytearray | memoryview
    ) -> tuple[dict[str, Any], Format, tuple[int, int]]:
        """Check size and signature, parse, and check version and format names."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise MalformedMessage(f"a message is bytes, not {type(data).__qualname__}")
        if type(data) is not bytes:
            data = bytes(data)
        if len(data) > self.max_size:
            raise PayloadTooLarge(len(data), self.max_size)
        framing = detect_framing(data)
        if self._verify_keys:
            problem = verify(data, framing, self._verify_keys)
            if problem is not None:
                raise SignatureError(problem, header=_best_effort_header(data, framing))
        try:
            obj = orjson.loads(data) if framing == "json" else _unpack(data)
        except DecodeError:
            raise
        except Exception as exc:
            raise MalformedMessage(f"cannot parse {framing} message: {exc}") from None
        if type(obj) is not dict:
            raise MalformedMessage(f"a {framing} message must be an object/map at top level")
        try:
            version = check_version(obj)
        except UnsupportedVersion as exc:
            exc.header = _lenient_header(obj)  # so that it can be dead-lettered by id
            raise
        name = obj.get("fmt")
        if type(name) is not str:
            raise InvalidEnvelope("field 'fmt' must be a string")
        fmt = _FORMAT_NAMED.get(name)
        if fmt is None:
            raise FormatNotAccepted(name, self.accept)
        if (framing == "json") != (fmt == "json"):
            raise InvalidEnvelope(f"a {framing}-framed message cannot have fmt {fmt!r}")
        return obj, fmt, version


# ---------------------------------------------------------------- encoding


def _put_unless_default(fields: dict[str, Any], name: str, value: Any, default: Any) -> None:
    # A member equal to its default is left out (SPEC §3: readers supply the default): it
    # costs bytes in every stored envelope and nothing in meaning.
    if value != default:
        fields[name] = value


def _accepted(accept: Iterable[Format]) -> frozenset[Format]:
    """The accepted formats, checked (a string is one name, not a collection of them)."""
    if isinstance(accept, str):
        raise InvalidArgument(f"accept is a collection of formats, such as ({accept!r},)")
    items = _iterate(accept, "accept")
    unknown = sorted({repr(f) for f in items if type(f) is not str or f not in FORMATS})
    if unknown:
        names = ", ".join(repr(f) for f in FORMATS)
        raise InvalidArgument(
            f"unknown formats in accept: {', '.join(unknown)} (the formats are {names})"
        )
    return frozenset(items)


def _iterate(values: Iterable[Any], name: str) -> list[Any]:
    try:
        return list(values)
    except TypeError:
        raise InvalidArgument(
            f"{name} must be a collection, not {type(values).__qualname__}"
        ) from None


def _key_bytes(key: bytes | str) -> bytes:
    if isinstance(key, str):
        raw = key.encode()
    elif isinstance(key, (bytes, bytearray, memoryview)):
        raw = bytes(key)
    else:
        raise InvalidArgument(f"a signing key is bytes or str, not {type(key).__qualname__}")
    if not raw:
        raise InvalidArgument("a signing key must not be empty")
    return raw


def _encode_fields(fields: dict[str, Any], fmt: Format, locate: Callable[[], str]) -> bytes:
    """Encode checked fields: JSON for ``json``, msgpack for ``msgpack`` and ``pickle``."""
    try:
        if fmt == "json":
            return orjson.dumps(fields, default=json_default)
        packed: bytes = msgpack.packb(
            fields, default=msgpack_default, use_bin_type=True, datetime=False
        )
        return packed
    except (TypeError, ValueError, OverflowError) as exc:
        location = locate()
        reason = exc.__cause__ if exc.__cause__ is not None else exc
        raise UnsupportedValue(
            f"cannot encode {location} as {fmt}: {reason}", location=location, format=fmt
        ) from exc


def _locate_arg(job: JobEnvelope) -> Callable[[], str]:
    """Return a function that finds which argument failed to encode (only called on failure)."""

    def locate() -> str:
        values = [(f"args[{i}]", v) for i, v in enumerate(job.args)]
        values += [(f"kwargs[{k!r}]", v) for k, v in job.kwargs.items()]
        for location, value in values:
            if not _encodes(value, job.format):
                return location
        return "job metadata"

    return locate


def _encodes(value: Any, fmt: str) -> bool:
    try:
        if fmt == "json":
            orjson.dumps(value, default=json_default)
        else:
            msgpack.packb(value, default=msgpack_default, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _lenient_header(obj: dict[str, Any]) -> JobHeader | None:
    """Metadata of a message of another major version, if it is laid out like ours."""
    fmt = obj.get("fmt")
    if fmt not in FORMATS:
        return None
    try:
        return job_header(obj, fmt, WIRE_VERSION)
    except DecodeError:
        return None


def _best_effort_header(data: bytes, framing: str) -> JobHeader | None:
    """Parse a header for error reports (e.g. a bad signature); never unpickles."""
    try:
        obj = orjson.loads(data) if framing == "json" else _unpack(data)
        if type(obj) is not dict:
            return None
        fmt = obj.get("fmt")
        if fmt not in FORMATS:
            return None
        return job_header(obj, fmt, check_version(obj))
    except Exception:
        return None


# ---------------------------------------------------------------- decoding
