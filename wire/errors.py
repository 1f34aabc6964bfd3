"""Errors of the wire layer, and the root of every jobwire error.

The whole tree is drawn in :mod:`jobwire.errors`. The root lives here, in the layer that
imports nothing of jobwire, so that the wire's errors are jobwire errors without the wire
knowing of the clients; this module holds the part of the tree that needs no I/O::

    JobwireError                  root of everything jobwire raises on purpose
    ├── InvalidArgument           a call's arguments or settings do not make sense (a ValueError)
    └── WireError                 a value or a message does not fit the wire format
        ├── EncodeError           a job or result cannot be encoded
        │   └── UnsupportedValue  an argument or return value has no defined encoding
        ├── DecodeError           stored bytes cannot be turned into a job or result
        │   ├── MalformedMessage  not a JSON object / msgpack map, or not parseable at all
        │   ├── InvalidEnvelope   parseable, but a field is missing or of the wrong type
        │   ├── UnsupportedVersion  major version this reader does not know
        │   ├── FormatNotAccepted the reader does not accept this format (e.g. pickle)
        │   └── SignatureError    HMAC signature missing, malformed or wrong
        └── PayloadTooLarge       over the size limit (an EncodeError *and* a DecodeError)

:class:`InvalidArgument` is defined here because the codec refuses bad settings too (an
unknown format, an empty signing key); :mod:`jobwire.errors` re-exports it, so
``jobwire.InvalidArgument is jobwire.wire.InvalidArgument``.

Every :class:`DecodeError` has a stable ``reason`` code (used in dead-letter entries and in
the golden vectors) and, when the message was readable far enough, the job's ``header`` so that
a worker can dead-letter it by id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from .envelope import JobHeader

__all__ = [
    "DecodeError",
    "EncodeError",
    "FormatNotAccepted",
    "InvalidArgument",
    "InvalidEnvelope",
    "JobwireError",
    "MalformedMessage",
    "PayloadTooLarge",
    "SignatureError",
    "UnsupportedValue",
    "UnsupportedVersion",
    "WireError",
]


class JobwireError(Exception):
    """Base class of every error jobwire raises on purpose.

    Catch it to catch anything jobwire raises for bad input, bad state or an unavailable
    Redis (the whole tree is in :mod:`jobwire.errors`).
    """


class InvalidArgument(JobwireError, ValueError):
    """A call's arguments or settings are inconsistent, of the wrong type or out of range.

    Also a :class:`ValueError`, so code written for plain Python errors still catches it.
    The message names the argument and says what would be accepted.
    """


class WireError(JobwireError):
    """A value or a message does not fit the jobwire wire format."""


class EncodeError(WireError):
    """A job or result cannot be encoded."""


class UnsupportedValue(EncodeError, TypeError):
    """An argument or a return value has no defined encoding in the chosen format.

    ``location`` names the value: ``args[1]``, ``kwargs['when']`` or ``result``.
    """

    def __init__(self, message: str, *, location: str, format: str) -> None:
        super().__init__(message)
        self.location = location
        self.format = format


class DecodeError(WireError):
    """Stored bytes cannot be turned into a job or a result.

    ``reason`` is a stable machine-readable code; ``header`` holds the job's metadata when it
    could be read (never by unpickling anything).
    """

    reason: ClassVar[str] = "undecodable"

    def __init__(self, message: str, *, header: JobHeader | None = None) -> None:
        super().__init__(message)
        self.header = header


class MalformedMessage(DecodeError):
    """The bytes are not a JSON object or msgpack map in the expected framing."""

    reason: ClassVar[str] = "undecodable"


class InvalidEnvelope(DecodeError):
    """The message parses, but a required field is missing or has the wrong type."""

    reason: ClassVar[str] = "invalid_envelope"


class UnsupportedVersion(DecodeError):
    """The message's major version is not one this reader understands."""

    reason: ClassVar[str] = "unsupported_version"

    def __init__(self, found: str, supported: str, *, header: JobHeader | None = None) -> None:
        super().__init__(
            f"wire version {found} is not supported by this reader (it reads {supported})",
            header=header,
        )
        self.found = found
        self.supported = supported


class FormatNotAccepted(DecodeError):
    """The message uses a format this reader was not configured to accept."""

    reason: ClassVar[str] = "format_refused"

    def __init__(self, format: str, accepted: frozenset[str], *, header: JobHeader | None = None):
        names = ", ".join(sorted(accepted)) or "nothing"
        super().__init__(
            f"format {format!r} is not accepted here (accepted: {names})", header=header
        )
        self.format = format
        self.accepted = accepted


class SignatureError(DecodeError):
    """The message's HMAC signature is missing, malformed or does not match any key."""

    reason: ClassVar[str] = "bad_signature"


class PayloadTooLarge(EncodeError, DecodeError):
    """The encoded message is larger than the configured limit."""

    reason: ClassVar[str] = "oversized"

    def __init__(self, size: int, limit: int, *, header: JobHeader | None = None) -> None:
        DecodeError.__init__(
            self, f"message of {size} bytes exceeds the limit of {limit} bytes", header=header
        )
        self.size = size
        self.limit = limit
