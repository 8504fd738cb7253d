"""The sweep's byte search (engine/byte_search.py): every occurrence, wherever the chunks are cut,
once; long values found even when the database split them; nothing found where nothing is."""

from __future__ import annotations

import random
from collections.abc import Iterator
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_migrator.engine.byte_search import (
    CHUNK_BYTES,
    FRAGMENT_BYTES,
    LONG_BYTES,
    MIN_BYTES,
    MOST_FRAGMENTS,
    Needles,
    fragments,
    search,
)


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    return (data[start : start + size] for start in range(0, len(data), size))


def noise(size: int, seed: int = 5) -> bytearray:
    return bytearray(random.Random(seed).randbytes(size))


def cut(data: bytes, at: list[int]) -> list[bytes]:
    """``data`` in chunks cut at the places ``at`` (in any order, repeats give empty chunks)."""
    places = [0, *sorted(at), len(data)]
    return [data[start:end] for start, end in pairwise(places)]


def expected(values: list[bytes], data: bytes) -> tuple[set[int], int]:
    """What the search must find, by brute force over the whole stream: the values found (a
    short one where it occurs, a long one where at least half of its fragments do) and the
    places where any piece occurs, each counted once however many values share the piece."""
    found = {
        number
        for number, value in enumerate(values)
        if 2 * sum(piece in data for piece in fragments(value)) >= len(fragments(value))
    }
    pieces = {piece for value in values for piece in fragments(value)}
    places = sum(1 for piece in pieces for start in range(len(data)) if data.startswith(piece, start))
    return found, places


def test_a_value_is_found_at_every_offset_across_chunk_borders_and_counted_once() -> None:
    value = "García-Müller, Calle Mayor 12".encode()
    for offset in range(-len(value), 8):
        data = noise(3000)
        data[1000 + offset : 1000 + offset + len(value)] = value
        needles = Needles()
        number = needles.add(value)
        findings = search(needles, chunks(bytes(data), 1000))
        assert findings.found_values(needles) == {number}, offset
        assert findings.occurrences == 1, offset


def test_many_values_only_the_planted_ones_are_found() -> None:
    rng = random.Random(3)
    words = ["tremor", "Levodopa", "rigidity", "Straße", "freezing", "morning", "dose", "gait"]
    values = {" ".join(rng.choice(words) for _ in range(rng.randint(2, 12))) + f" #{i}" for i in range(2000)}
    ordered = sorted(values)
    needles = Needles()
    numbers = {value: needles.add(value.encode()) for value in ordered}
    planted = rng.sample(ordered, 40)
    data = noise(2 * CHUNK_BYTES + 999)
    for index, value in enumerate(planted):
        at = CHUNK_BYTES - 20 + index * 500
        data[at : at + len(value.encode())] = value.encode()
    findings = search(needles, chunks(bytes(data), CHUNK_BYTES))
    assert findings.found_values(needles) == {numbers[value] for value in planted}
    assert findings.bytes_read == len(data)


def test_threads_find_exactly_what_one_thread_finds() -> None:
    rng = random.Random(11)
    values = [f"Parkinson patient {i}, Calle Mayor {rng.randint(1, 99)}".encode() for i in range(300)]
    needles = Needles()
    numbers = [needles.add(value) for value in values]
    data = noise(40_000, seed=2)
    planted = rng.sample(range(len(values)), 60)
    for index, number in enumerate(planted):
        # Every tenth one straddles a chunk border; some twice, to be counted twice.
        at = 1000 * (index + 1) - (len(values[number]) // 2 if index % 10 == 0 else -7)
        data[at : at + len(values[number])] = values[number]
        if index % 7 == 0:
            data[at + 300 : at + 300 + len(values[number])] = values[number]
    alone = search(needles, chunks(bytes(data), 1000))
    shared = search(needles, chunks(bytes(data), 1000), threads=2)
    assert shared.found_values(needles) == alone.found_values(needles) >= {numbers[n] for n in planted}
    assert (shared.occurrences, shared.pieces_found, shared.bytes_read) == (
        alone.occurrences,
        alone.pieces_found,
        alone.bytes_read,
    )


def test_a_long_value_split_across_pages_is_found_but_one_sharing_a_phrase_is_not() -> None:
    note = ("Reports freezing of gait when turning; dose moved to the morning. " * 4).encode()
    cousin = note[:40] + b" and nothing else in common with the other note at all, none."
    needles = Needles()
    found_note, found_cousin = needles.add(note), needles.add(cousin)
    # As an SQLite overflow page would: the value in two parts, a page header between them.
    split = 150
    data = bytes(noise(500)) + note[:split] + b"\x00\x00\x00\x07" + note[split:] + bytes(noise(500, 9))
    assert note not in data
    findings = search(needles, chunks(data, 256))
    assert found_note in findings.found_values(needles)
    assert found_cousin not in findings.found_values(needles)


def test_a_very_long_value_is_searched_as_a_bounded_number_of_fragments_spread_over_it() -> None:
    """However long a value (a scanned report in a text column), its pieces are at most
    MOST_FRAGMENTS, from its first byte to its last, so a sample of large values keeps the
    automaton small; left whole or in large part, it is still found, and not from a tenth."""
    value = bytes(noise(100_000, 11))
    pieces = fragments(value)
    assert len(pieces) == MOST_FRAGMENTS
    assert pieces[0] == value[:FRAGMENT_BYTES] and pieces[-1] == value[-FRAGMENT_BYTES:]
    needles = Needles()
    number = needles.add(value)
    for part, found in ((value, {number}), (value[:60_000], {number}), (value[-10_000:], set())):
        data = bytes(noise(3000)) + part + bytes(noise(3000, 6))
        assert search(needles, chunks(data, 4096)).found_values(needles) == found, len(part)


def test_a_long_value_is_found_by_half_of_its_fragments_and_not_by_fewer() -> None:
    value = b"Tremor at rest in the left hand since 2019; worse under stress, better on Levodopa."[:80]
    assert len(fragments(value)) == 4  # at 0, 16, 32 and 48: two lie in value[:48], two in value[32:]
    needles = Needles()
    number = needles.add(value)
    for part, found in (
        (value[:48], {number}),
        (value[:47], set()),
        (value[32:], {number}),
        (value[33:], set()),
    ):
        data = bytes(noise(300)) + part + bytes(noise(300, 6))
        assert search(needles, chunks(data, 100)).found_values(needles) == found, part


def test_values_too_short_to_tell_from_chance_are_refused() -> None:
    with pytest.raises(ValueError, match=f"shorter than {MIN_BYTES} bytes"):
        Needles().add(b"Ana Paz")


def test_a_value_across_a_chunk_border_is_found_once_whatever_the_chunk_size() -> None:
    value = b"Levodopa 100 mg at breakfast"
    data = bytes(noise(200)) + value + bytes(noise(200, 6))
    for size in (1, 2, 7, 10, 27, 28, 29, 64, 201, 215, 1000):
        needles = Needles()
        number = needles.add(value)
        findings = search(needles, chunks(data, size))
        assert findings.found_values(needles) == {number}, size
        assert (findings.occurrences, findings.pieces_found) == (1, {number: {0}}), size


def test_values_inside_one_another_are_each_found_where_they_overlap() -> None:
    whole = b"Parkinson patient, Calle Mayor 12"
    inside = {
        "prefix": b"Parkinson patient",
        "suffix": b"Calle Mayor 12",
        "middle": b"patient, Calle",
        "overlapping the end": b"Mayor 12 and more",  # not in the data: only its start is
    }
    needles = Needles()
    numbers = {name: needles.add(value) for name, value in {"whole": whole, **inside}.items()}
    data = bytes(noise(100)) + whole + bytes(noise(100, 6))
    for size in (5, 40, len(data)):
        findings = search(needles, chunks(data, size))
        assert findings.found_values(needles) == {
            numbers[name] for name in ("whole", "prefix", "suffix", "middle")
        }, size
        assert findings.occurrences == 4, size


def test_values_at_the_very_start_and_the_very_end_of_the_stream_are_found() -> None:
    first, last = b"Garcia-Muller, Ana", b"freezing of gait when turning"
    data = first + bytes(noise(500)) + last
    needles = Needles()
    at_start, at_end = needles.add(first), needles.add(last)
    for size in (1, 3, 17, 100, len(data)):
        findings = search(needles, chunks(data, size))
        assert findings.found_values(needles) == {at_start, at_end}, size
        assert findings.occurrences == 2, size
    # A stream that is nothing but the value: it starts and ends there.
    assert search(needles, [first]).found_values(needles) == {at_start}
    assert search(needles, chunks(last, 4)).found_values(needles) == {at_end}


def test_threads_agree_on_long_and_overlapping_values_in_small_chunks() -> None:
    rng = random.Random(17)
    note = ("Reports freezing of gait when turning; dose moved to the morning. " * 3).encode()
    values = [
        note,
        note[:40],
        note[20:60],
        b"dose moved",
        *(f"Calle Mayor {i}, Madrid".encode() for i in range(50)),
    ]
    needles = Needles()
    for value in values:
        needles.add(value)
    data = noise(30_000, seed=4)
    for at in range(500, 29_000, 700):
        value = rng.choice(values)
        data[at : at + len(value)] = value
    for size in (13, 1000):
        alone = search(needles, chunks(bytes(data), size))
        shared = search(needles, chunks(bytes(data), size), threads=2)
        found, places = expected(values, bytes(data))
        assert alone.found_values(needles) == shared.found_values(needles) == found, size
        assert alone.occurrences == shared.occurrences == places, size
        assert alone.pieces_found == shared.pieces_found, size


# Few byte values, so values share prefixes, suffixes and middles, and occur by chance; lengths
# either side of LONG_BYTES, so long values are searched as fragments.
ALPHABET = b"ab\xff"


def byte_strings(min_size: int, max_size: int) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(ALPHABET), min_size=min_size, max_size=max_size).map(bytes)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    values = draw(st.lists(byte_strings(MIN_BYTES, 2 * LONG_BYTES + 10), min_size=1, max_size=8))
    # Parts of values too, so a long value may have only some of its fragments in the stream.
    parts_of_values = st.sampled_from(values).flatmap(
        lambda value: st.tuples(st.integers(0, len(value)), st.integers(0, len(value))).map(
            lambda ends: value[min(ends) : max(ends)]
        )
    )
    parts = draw(
        st.lists(st.one_of(byte_strings(0, 60), st.sampled_from(values), parts_of_values), max_size=12)
    )
    data = b"".join(parts)
    at = draw(st.lists(st.integers(0, len(data)), max_size=12))
    return values, cut(data, at)


@settings(max_examples=100, deadline=None)
@given(streams())
def test_what_is_found_is_what_a_brute_force_search_of_the_whole_stream_finds(
    case: tuple[list[bytes], list[bytes]],
) -> None:
    values, data_chunks = case
    needles = Needles()
    for value in values:
        needles.add(value)
    findings = search(needles, data_chunks)
    found, places = expected(values, b"".join(data_chunks))
    assert findings.found_values(needles) == found
    assert findings.occurrences == places
    assert findings.bytes_read == sum(map(len, data_chunks))
