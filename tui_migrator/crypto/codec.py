"""Typed encoding of one SQL value into bytes and back, exactly.

A token must give back the very value that was read from the database: the same Python type
(so the same SQL type when written back) and the same value to the last bit — ``1.10`` stays
``Decimal('1.10')``, ``-0.0`` stays ``-0.0``, a naive timestamp stays naive. Each encoding is a
one-byte type tag followed by a payload.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

_STR = b"s"
_INT = b"i"
_FLOAT = b"f"
_DECIMAL = b"m"
_BOOL = b"b"
_DATE = b"D"
_DATETIME = b"T"
_TIME = b"t"
_BYTES = b"y"
_JSON = b"j"
_UUID = b"u"

# A part's length in pack: 4 bytes, big-endian.
LENGTH = struct.Struct(">I").pack
# Separates a datetime's ISO text from its IANA zone name, which ISO 8601 cannot carry.
_ZONE_SEPARATOR = "\x1f"


class UnsupportedValue(TypeError):
    """The value's type has no exact encoding. The message names the type, never the value."""


def encode_value(value: Any) -> bytes:
    """Encode a non-NULL SQL value. NULL is never encrypted, so ``None`` is refused."""
    # Text first, by exact type: most sealed values are text (a subclass of str takes the way below).
    if type(value) is str:
        return _STR + value.encode("utf-8", "surrogatepass")
    # bool before int and datetime before date: each is a subclass of the other.
    if value is None:
        raise UnsupportedValue("NULL is stored as NULL and is never encoded")
    if isinstance(value, bool):
        return _BOOL + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return _STR + value.encode("utf-8", "surrogatepass")
    if isinstance(value, int):
        return _INT + str(int(value)).encode("ascii")
    if isinstance(value, float):
        return _FLOAT + struct.pack(">d", value)
    if isinstance(value, Decimal):
        return _DECIMAL + str(value).encode("ascii")
    if isinstance(value, datetime):
        return _DATETIME + _encode_datetime(value).encode("utf-8")
    if isinstance(value, date):
        return _DATE + value.isoformat().encode("ascii")
    if isinstance(value, time):
        return _TIME + value.isoformat().encode("ascii")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _BYTES + bytes(value)
    if isinstance(value, uuid.UUID):
        return _UUID + value.bytes
    if isinstance(value, (dict, list)):
        return _JSON + _encode_json(value)
    raise UnsupportedValue(f"values of type {type(value).__name__} cannot be encrypted exactly")


def decode_value(data: bytes) -> Any:
    """Inverse of :func:`encode_value`."""
    tag, payload = data[:1], data[1:]
    if tag == _STR:
        return payload.decode("utf-8", "surrogatepass")
    if tag == _INT:
        return int(payload)
    if tag == _FLOAT:
        return struct.unpack(">d", payload)[0]
    if tag == _DECIMAL:
        return Decimal(payload.decode("ascii"))
    if tag == _BOOL:
        return payload == b"\x01"
    if tag == _DATETIME:
        return _decode_datetime(payload.decode("utf-8"))
    if tag == _DATE:
        return date.fromisoformat(payload.decode("ascii"))
    if tag == _TIME:
        return time.fromisoformat(payload.decode("ascii"))
    if tag == _BYTES:
        return payload
    if tag == _UUID:
        return uuid.UUID(bytes=payload)
    if tag == _JSON:
        return json.loads(payload.decode("utf-8"))
    raise ValueError(f"unknown value type tag {tag!r}")


def pack(*parts: bytes) -> bytes:
    """Length-prefixed concatenation: unambiguous, and much cheaper than JSON on the hot path."""
    joined = []
    for part in parts:
        joined.append(LENGTH(len(part)))
        joined.append(part)
    return b"".join(joined)


def unpack(data: bytes) -> list[bytes]:
    parts, position = [], 0
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        parts.append(data[position + 4 : position + 4 + length])
        position += 4 + length
    return parts


def pack_values(values: Sequence[Any]) -> bytes:
    """Packed encodings of column values; NULL is the empty part (every encoding has a tag byte).

    A key of one integer, the common case (verification packs every row's), is written out
    here: its encoding is the tag and the decimal digits, as encode_value gives them."""
    if len(values) == 1 and type(values[0]) is int:
        encoded = _INT + b"%d" % values[0]
        return LENGTH(len(encoded)) + encoded
    return pack(*[b"" if value is None else encode_value(value) for value in values])


def unpack_values(data: bytes) -> list[Any]:
    return [None if part == b"" else decode_value(part) for part in unpack(data)]


def encode_key(parts: tuple[Any, ...] | list[Any]) -> str:
    """Canonical text of a primary key, its types kept: how the tool's tables name a row.

    A JSON list of the base64 of each part's encoding: ``["aTE="]`` for the integer 1. Written
    out rather than through json.dumps (it names every row a run seals or verifies); base64 has
    no character JSON escapes, so the text is the same."""
    if not parts:
        return "[]"
    return (
        '["'
        + '","'.join(
            [binascii.b2a_base64(encode_value(part), newline=False).decode("ascii") for part in parts]
        )
        + '"]'
    )


def encode_keys(keys: Iterable[tuple[Any, ...]]) -> list[str]:
    """:func:`encode_key` of each of ``keys``: what verification and rollback name a batch's
    rows by. A key of one integer, the common case, is written out here (its encoding is the
    tag and the decimal digits) without a call per key; any other goes through encode_key."""
    encoded = []
    for key in keys:
        if len(key) == 1 and type(key[0]) is int:
            encoded.append(
                '["' + binascii.b2a_base64(_INT + b"%d" % key[0], newline=False).decode("ascii") + '"]'
            )
        else:
            encoded.append(encode_key(key))
    return encoded


def decode_key(text: str) -> tuple[Any, ...]:
    return tuple(decode_value(base64.b64decode(part)) for part in json.loads(text))


def encode_optional(value: Any) -> str | None:
    """Like :func:`encode_value`, as text, with NULL kept as None (for lists of column values)."""
    return None if value is None else base64.b64encode(encode_value(value)).decode("ascii")


def decode_optional(text: str | None) -> Any:
    return None if text is None else decode_value(base64.b64decode(text))


def _encode_datetime(value: datetime) -> str:
    # fold disambiguates repeated wall-clock times at a DST change; ISO 8601 has no place for it.
    if isinstance(value.tzinfo, ZoneInfo):
        # The wall-clock time and the zone name, not an offset: a time in a DST gap (which has
        # no real offset) and its fold must come back as they were, not normalised.
        return f"{value.fold}{value.replace(tzinfo=None).isoformat()}{_ZONE_SEPARATOR}{value.tzinfo.key}"
    return f"{value.fold}{value.isoformat()}"


def _decode_datetime(text: str) -> datetime:
    fold, rest = int(text[0]), text[1:]
    iso, _, zone = rest.partition(_ZONE_SEPARATOR)
    value = datetime.fromisoformat(iso)
    if zone:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value.replace(fold=fold)


def _encode_json(value: dict[str, Any] | list[Any]) -> bytes:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # json.dumps silently turns non-string keys into strings and tuples into lists; such a value
    # would not come back as it went in, so refuse it rather than change it.
    if json.loads(text) != value:
        raise UnsupportedValue("this JSON value does not survive a JSON round trip unchanged")
    return text.encode("utf-8")
