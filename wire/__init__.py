"""jobwire's wire format: job and result envelopes and their encodings.

Pure code: no I/O and no Redis. ``SPEC.md`` beside this module is the normative description,
``schema/`` holds the JSON Schema of the JSON envelopes and ``vectors/`` the golden test vectors
that any implementation can check itself against.

>>> from jobwire.wire import Codec, JobEnvelope
>>> codec = Codec()
>>> data = codec.encode_job(JobEnvelope(id="j1", function="add", enqueued_ms=0, args=(1, 2)))
>>> codec.decode_job(data).args
(1, 2)
"""

from .codec import DEFAULT_ACCEPT, DEFAULT_MAX_SIZE, Codec, check_format, detect_framing
from .envelope import (
    DEFAULT_QUEUE,
    FORMATS,
    MAX_MS,
    MAX_RESULT_TRY,
    MAX_TRY,
    OUTCOMES,
    WIRE_VERSION,
    ErrorRecord,
    Format,
    JobEnvelope,
    JobHeader,
    Outcome,
    ResultEnvelope,
)
from .errors import (
    DecodeError,
    EncodeError,
    FormatNotAccepted,
    InvalidArgument,
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
    "DEFAULT_ACCEPT",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_QUEUE",
    "FORMATS",
    "MAX_MS",
    "MAX_RESULT_TRY",
    "MAX_TRY",
    "OUTCOMES",
    "WIRE_VERSION",
    "Codec",
    "DecodeError",
    "EncodeError",
    "ErrorRecord",
    "Format",
    "FormatNotAccepted",
    "InvalidArgument",
    "InvalidEnvelope",
    "JobEnvelope",
    "JobHeader",
    "JobwireError",
    "MalformedMessage",
    "Outcome",
    "PayloadTooLarge",
    "ResultEnvelope",
    "SignatureError",
    "UnsupportedValue",
    "UnsupportedVersion",
    "WireError",
    "check_format",
    "detect_framing",
]
