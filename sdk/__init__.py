"""jobwire: a Redis job queue for Python with one wire format for every language.

``jobwire.wire`` defines the format, ``jobwire`` the clients and ``jobwire.worker`` the worker.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import (
    DecodeError,
    EncodeError,
    FormatNotAccepted,
    InvalidEnvelope,
    JobwireError,
    MalformedMessage,
    PayloadTooLarge,
    SignatureError,
    UnsupportedValue,
    UnsupportedVersion,
    WireError,
)

try:
    __version__ = version("jobwire")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0+unknown"

__all__ = [
    "DecodeError",
    "EncodeError",
    "FormatNotAccepted",
    "InvalidEnvelope",
    "JobwireError",
    "MalformedMessage",
    "PayloadTooLarge",
    "SignatureError",
    "UnsupportedValue",
    "UnsupportedVersion",
    "WireError",
    "__version__",
]
