"""HMAC-SHA256 signing of encoded messages (SPEC.md, "Signing").

The signature is the last member of the message's top-level object or map, named ``sig``, set
to 64 lowercase hex digits of HMAC-SHA256 over the bytes of every *other* member exactly as
stored: for JSON the bytes between the opening ``{`` and the ``,"sig"`` member; for msgpack
the bytes after the map header up to the ``sig`` entry. A verifier therefore never re-encodes
anything, and a signed message is still a plain JSON object or msgpack map.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

__all__ = ["sign", "verify"]

# Signature member appended as the last member of the object / map (see SPEC.md, "Signing").
_JSON_SIG_OPEN: Final = b',"sig":"'
_JSON_SIG_LEN: Final = len(_JSON_SIG_OPEN) + 64 + 2  # ,"sig":"<64 hex>"}
_MSGPACK_SIG_OPEN: Final = b"\xa3sig\xd9\x40"  # fixstr "sig", str8 of length 64
_MSGPACK_SIG_LEN: Final = len(_MSGPACK_SIG_OPEN) + 64
_HEX: Final = frozenset(b"0123456789abcdef")


def _msgpack_header(count: int) -> bytes:
    if count < 16:
        return bytes((0x80 | count,))
    if count < 0x10000:
        return b"\xde" + count.to_bytes(2, "big")
    return b"\xdf" + count.to_bytes(4, "big")


def _msgpack_header_len(b0: int) -> int:
    return 1 if b0 < 0xDE else (3 if b0 == 0xDE else 5)


def _msgpack_count(data: bytes) -> int:
    b0 = data[0]
    if b0 < 0xDE:
        return b0 & 0x0F
    return int.from_bytes(data[1 : _msgpack_header_len(b0)], "big")


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).hexdigest().encode()


def sign(data: bytes, key: bytes) -> bytes:
    """Return ``data`` (an unsigned JSON or msgpack message) with a ``sig`` member added."""
    if data[0] == 0x7B:  # JSON: ...} -> ...,"sig":"<hex>"}
        return data[:-1] + _JSON_SIG_OPEN + _mac(key, data[1:-1]) + b'"}'
    hlen = _msgpack_header_len(data[0])
    body = data[hlen:]
    return _msgpack_header(_msgpack_count(data) + 1) + body + _MSGPACK_SIG_OPEN + _mac(key, body)


def verify(data: bytes, framing: str, keys: tuple[bytes, ...]) -> str | None:
    """Return None when ``data`` carries a valid signature by one of ``keys``, else why not."""
    if framing == "json":
        if (
            len(data) < _JSON_SIG_LEN + 1
            or data[0] != 0x7B
            or data[-_JSON_SIG_LEN : -_JSON_SIG_LEN + len(_JSON_SIG_OPEN)] != _JSON_SIG_OPEN
            or data[-2:] != b'"}'
        ):
            return "message is not signed (no trailing 'sig' member)"
        body, mac = data[1:-_JSON_SIG_LEN], data[-66:-2]
    else:
        hlen = _msgpack_header_len(data[0])
        if len(data) < hlen + _MSGPACK_SIG_LEN or data[-_MSGPACK_SIG_LEN:-64] != _MSGPACK_SIG_OPEN:
            return "message is not signed (no trailing 'sig' entry)"
        body, mac = data[hlen:-_MSGPACK_SIG_LEN], data[-64:]
    if not _HEX.issuperset(mac):
        return "signature is not 64 lowercase hex digits"
    for key in keys:
        if hmac.compare_digest(_mac(key, body), mac):
            return None
    return "signature does not match any configured key"
