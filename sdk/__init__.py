"""jobwire: a Redis job queue for Python with one wire format for every language.

``jobwire.wire`` defines the format, ``jobwire`` the clients and ``jobwire.worker`` the worker.
"""

from __future__ import annotations

from ._version import __version__
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
