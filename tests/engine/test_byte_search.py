"""The sweep's byte search (engine/byte_search.py): every occurrence, wherever the chunks are cut,
once; long values found even when the database split them; nothing found where nothing is."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from tui_migrator.engine.byte_search import CHUNK_BYTES, MIN_BYTES, Needles, search


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    return (data[start : start + size] for start in range(0, len(data), size))


def noise(size: int, seed: int = 5) -> bytearray:
    return bytearray(random.Random(seed).randbytes(size))


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


def test_worker_processes_find_exactly_what_one_process_finds() -> None:
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
    shared = search(needles, chunks(bytes(data), 1000), processes=2)
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


def test_values_too_short_to_tell_from_chance_are_refused() -> None:
    with pytest.raises(ValueError, match=f"shorter than {MIN_BYTES} bytes"):
        Needles().add(b"Ana Paz")
