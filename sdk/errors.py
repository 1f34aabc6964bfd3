"""Every error jobwire raises, in one tree.

::

    JobwireError                    root: catch this to catch anything jobwire raises on purpose
    └── WireError                   a value or message does not fit the wire format
        ├── EncodeError             a job or result cannot be encoded
        │   └── UnsupportedValue    an argument / return value has no encoding in that format
        ├── DecodeError             stored bytes cannot be read (``.reason``, ``.header``)
        │   ├── MalformedMessage    not a JSON object or msgpack map at all
        │   ├── InvalidEnvelope     a field is missing or of the wrong type
        │   ├── UnsupportedVersion  unknown major version (names both versions)
        │   ├── FormatNotAccepted   e.g. pickle, when the reader did not opt in
        │   └── SignatureError      HMAC signature missing or wrong
        └── PayloadTooLarge         over the size limit (both an EncodeError and a DecodeError)

None of these names shadows a builtin.
"""

from __future__ import annotations

from jobwire.wire.errors import (
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
]
