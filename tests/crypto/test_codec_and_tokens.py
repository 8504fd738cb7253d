"""Every SQL value type survives encode → encrypt → decrypt → decode exactly, type included."""

from __future__ import annotations

import base64
import math
import struct
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tui_migrator.crypto.ciphers import RowContext
from tui_migrator.crypto.codec import (
    UnsupportedValue,
    decode_value,
    encode_key,
    encode_keys,
    encode_value,
    pack,
    pack_values,
)
from tui_migrator.crypto.tokens import (
    KEY_ID_PATTERN,
    NONCE_BYTES,
    TAG_BYTES,
    TOKEN_PREFIX,
    is_token,
    parse_token,
    token_nonce,
    token_parts,
    token_text,
)
from tui_migrator.service.facade import MigratorService

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

sql_values = st.one_of(
    st.text(),  # the empty string included
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.booleans(),
    st.dates(),
    st.datetimes(),  # naive
    st.datetimes(timezones=st.timezones()),  # aware, with IANA zones
    st.datetimes(timezones=st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-1439, 1439))),
    st.times(),
    st.binary(),
    st.uuids(),
    st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    st.lists(json_values, max_size=5),
)


def assert_identical(original: Any, restored: Any) -> None:
    assert type(restored) is type(original) or (
        isinstance(original, (bytearray, memoryview)) and type(restored) is bytes
    )
    if isinstance(original, float):
        assert struct.pack(">d", restored) == struct.pack(">d", original)  # -0.0 and NaN bits too
    elif isinstance(original, Decimal):
        assert restored.as_tuple() == original.as_tuple()  # Decimal("1.10") keeps its trailing zero
    elif isinstance(original, datetime):
        assert restored == original
        assert restored.utcoffset() == original.utcoffset()
        assert restored.fold == original.fold
        assert (restored.tzinfo is None) == (original.tzinfo is None)
        if isinstance(original.tzinfo, ZoneInfo):
            assert restored.tzinfo == original.tzinfo
    else:
        assert restored == original


@given(sql_values)
def test_codec_round_trips_every_sql_value_exactly(value: Any) -> None:
    assert_identical(value, decode_value(encode_value(value)))


@hypothesis_settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=sql_values, key=st.one_of(st.integers(), st.text(min_size=1), st.tuples(st.integers(), st.text()))
)
def test_token_round_trips_every_sql_value_exactly(service: MigratorService, value: Any, key: Any) -> None:
    cipher = service.value_cipher()
    context = RowContext(
        "demographics", "notes", key if isinstance(key, tuple) else (key,), "org_charite_berlin"
    )
    token = cipher.encrypt(value, context)
    assert is_token(token) and token.startswith(TOKEN_PREFIX)
    assert_identical(value, cipher.decrypt(token, context))
    # The cheap nonce read off the text is the token's nonce: what tells this sealing apart.
    parsed = parse_token(token)
    assert parsed is not None
    assert token_nonce(token) == base64.urlsafe_b64encode(parsed.nonce).decode("ascii")
    assert token_nonce(cipher.encrypt(value, context)) != token_nonce(token)


@hypothesis_settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.dictionaries(st.text(min_size=1, max_size=8), sql_values, min_size=1, max_size=4))
def test_a_row_is_digested_the_same_from_its_values_or_the_bytes_its_tokens_open_to(
    service: MigratorService, cells: dict[str, Any]
) -> None:
    """Sealing digests the bytes it encrypts and verification the bytes the tokens open to:
    the digest the row metadata records of the values themselves. The nonces and key id
    sealing records are those its tokens carry."""
    cipher = service.value_cipher()
    row = RowContext("demographics", "", (7,), "org_charite_berlin")
    sealed = cipher.seal_cells(row, list(cells.items()))
    tokens, encoded = sealed.tokens, sealed.encoded
    assert encoded == [encode_value(value) for value in cells.values()]
    # What sealing records of each token is what reading the token gives.
    assert sealed.nonces == [token_nonce(token) for token in tokens]
    assert {parse_token(token).key_id for token in tokens} == {sealed.key_id}  # type: ignore[union-attr]
    opened = cipher.open_encoded_cells(row, list(zip(cells, tokens, strict=True)))
    assert opened == encoded
    by_value = cipher.digest_cells("demographics", (7,), "org_charite_berlin", cells)
    by_bytes = cipher.digest_encoded_cells(
        "demographics", (7,), "org_charite_berlin", dict(zip(cells, opened, strict=True))
    )
    assert by_bytes == by_value
    # A NULL cell is the empty encoding in both.
    nulls = dict.fromkeys(cells)
    assert cipher.digest_cells("demographics", (7,), "org_charite_berlin", nulls) == (
        cipher.digest_encoded_cells("demographics", (7,), "org_charite_berlin", dict.fromkeys(cells, b""))
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        'Łucja Wiśniewska 🧠\n"quoted"',
        0,
        -7,
        1.5,
        -0.0,
        math.inf,
        Decimal("62.50"),
        Decimal("-0.000"),
        True,
        False,
        date(1948, 2, 29),
        datetime(2024, 3, 31, 2, 30),
        datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime(2024, 1, 1, tzinfo=UTC),
        time(8, 15, 0, 12),
        b"\x00\xff",
        {"supine": {"sys": 132}, "ä": [1, 2.5, None, "x"]},
        [],
        {},
    ],
)
def test_token_round_trip_of_typical_medical_values(service: MigratorService, value: Any) -> None:
    cipher = service.value_cipher()
    context = RowContext("motor_symptoms", "updrs_part3", (17,), "org_karolinska_stockholm")
    assert_identical(value, cipher.decrypt(cipher.encrypt(value, context), context))


def test_nan_float_keeps_its_bits() -> None:
    restored = decode_value(encode_value(float("nan")))
    assert math.isnan(restored)


def test_null_is_never_encoded() -> None:
    with pytest.raises(UnsupportedValue):
        encode_value(None)


def test_values_that_cannot_round_trip_are_refused_not_changed() -> None:
    with pytest.raises(UnsupportedValue, match="JSON"):
        encode_value({1: "integer keys would come back as strings"})
    with pytest.raises(UnsupportedValue, match="set"):
        encode_value({"a set"})


def test_token_is_self_describing_and_versioned(service: MigratorService) -> None:
    cipher = service.value_cipher()
    token = cipher.encrypt("x", RowContext("demographics", "email", (1,), "org_pitie_paris"))
    parsed = parse_token(token)
    assert parsed is not None
    assert parsed.version == 1
    assert parsed.key_id.startswith("dek_")
    assert len(parsed.nonce) == 12


@pytest.mark.parametrize(
    "text",
    [
        "plain text",
        "tmenc:v1:",
        "tmenc:v1:dek_1:",
        "tmenc:v1:dek_1:short",
        "tmenc:v1:DEK:" + "A" * 40,
        "tmenc:v1:dek_1:" + "A" * 40 + "!",
        "tmenc:v2:dek_1:" + "A" * 40,
        "tmenc:v1:a:b:c",
    ],
)
def test_text_that_does_not_parse_as_a_token_is_told_apart(text: str) -> None:
    # Text with the prefix is in token form whether or not it parses: a damaged token is never
    # taken for plaintext (it would be re-sealed or shown as the value). The rest is plaintext.
    assert parse_token(text) is None
    assert is_token(text) is text.startswith(TOKEN_PREFIX)


@pytest.mark.parametrize(
    "value",
    [
        datetime(1995, 3, 26, 0, 0, tzinfo=ZoneInfo("Asia/Ulaanbaatar")),  # inside a DST gap
        datetime(2024, 3, 31, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")),  # inside a DST gap
        datetime(2024, 10, 27, 2, 30, fold=0, tzinfo=ZoneInfo("Europe/Berlin")),  # repeated hour, first
        datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")),  # repeated hour, second
    ],
)
def test_wall_clock_times_at_dst_changes_come_back_unnormalised(value: datetime) -> None:
    restored = decode_value(encode_value(value))
    assert restored.replace(tzinfo=None) == value.replace(tzinfo=None)
    assert restored.tzinfo == value.tzinfo and restored.fold == value.fold
    assert restored.utcoffset() == value.utcoffset()


@given(
    key_id=st.from_regex(KEY_ID_PATTERN, fullmatch=True),
    sealed=st.binary(min_size=NONCE_BYTES + TAG_BYTES, max_size=512),
)
def test_a_token_text_parses_back_to_exactly_the_bytes_it_was_made_of(key_id: str, sealed: bytes) -> None:
    # Sealing opens each value's sealed bytes once; verification later compares token texts
    # (engine.verification). What links the two is this: the text is those bytes, and only they.
    text = token_text(key_id, sealed)
    assert token_parts(text) == (key_id, sealed)


@hypothesis_settings(max_examples=300)
@given(
    keys=st.lists(
        st.lists(sql_values.filter(lambda value: value is not None), min_size=1, max_size=3).map(tuple)
    )
)
def test_a_batch_of_keys_is_named_exactly_as_each_key_alone(keys: list[tuple[Any, ...]]) -> None:
    """encode_keys writes a key of one integer out itself: the same text as encode_key, for
    any key (booleans, which are integers to Python, included)."""
    assert encode_keys(keys) == [encode_key(key) for key in keys]
    assert encode_keys([(1,), (-7,), (2**80,), (True,), (0,)]) == [
        encode_key(key) for key in [(1,), (-7,), (2**80,), (True,), (0,)]
    ]


@hypothesis_settings(max_examples=300)
@given(values=st.lists(sql_values, min_size=1, max_size=3))
def test_a_key_of_one_integer_is_packed_as_any_other_values_are(values: list[Any]) -> None:
    """pack_values writes a key of one integer out itself: the same bytes as packing the
    values' encodings, for any values (booleans, integers to Python, and NULL included)."""
    for packed in (values, values[:1], [1], [-7], [2**80], [True], [0], [None]):
        assert pack_values(packed) == pack(
            *[b"" if value is None else encode_value(value) for value in packed]
        )
