"""Finding many byte strings at once in files too big to read whole: the sweep's proof.

Thousands of sampled values are looked for in database files of any size, in one pass over
each file. Searching for each value separately would read every file thousands of times, so
the pieces of all the values go into one Aho–Corasick automaton (pyahocorasick, in C): it reads
each byte once and reports every place where any piece ends, overlapping ones and pieces inside
other pieces included, whatever the number of values. Files are read in chunks that overlap by
the longest piece less one byte, so a piece across a chunk border lies whole in one buffer; a
place that ends within the overlap was counted in the buffer before, so each is counted once.

A long value is searched for as overlapping fragments, so it is found even where the database
split it across pages (an SQLite overflow page, a PostgreSQL TOAST chunk): whatever single
place it is split at, one fragment lies wholly on one side.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import ahocorasick

from tui_migrator.engine import cpu_pool

# Shorter values are not searched for. Tokens are base64url text and backups random bytes, so
# a short value made of letters turns up in them by chance: a 6-letter value once in ~70 GB of
# tokens per value, across thousands of sampled values in a multi-GB file a false alarm in
# almost every run; at 8 bytes it is 4,000 times rarer.
MIN_BYTES = 8
# Values longer than this are searched for as fragments of FRAGMENT_BYTES, every FRAGMENT_STEP.
LONG_BYTES = 64
FRAGMENT_BYTES = 32
FRAGMENT_STEP = FRAGMENT_BYTES // 2
CHUNK_BYTES = 4 << 20
# pyahocorasick's wheels take str keys only (ahocorasick.unicode), so bytes are mapped to str as latin-1:
# one character per byte and back, every byte value included, so places and lengths are the
# same in both. Decoding a buffer this way is a plain copy, small beside the search.
_BYTES_AS_TEXT = "latin-1"


def fragments(data: bytes) -> list[bytes]:
    """The pieces ``data`` is searched as: itself, or overlapping fragments when long."""
    if len(data) <= LONG_BYTES:
        return [data]
    starts = list(range(0, len(data) - FRAGMENT_BYTES + 1, FRAGMENT_STEP))
    if starts[-1] != len(data) - FRAGMENT_BYTES:
        starts.append(len(data) - FRAGMENT_BYTES)
    return [data[start : start + FRAGMENT_BYTES] for start in starts]


@dataclass
class Needles:
    """The byte patterns of the sampled values, and the automaton that finds them all at once.

    The automaton is built on the first search after the last ``add`` (an ``add`` after a search
    has it built again), and is never pickled: a worker process gets the pieces and builds its
    own, which costs about what unpickling one would and does not depend on the extension's
    pickle support."""

    # piece bytes -> (value number, piece number) of every value that has that piece
    owners: dict[bytes, list[tuple[int, int]]] = field(default_factory=dict)
    # how many pieces each value has
    pieces: list[int] = field(default_factory=list)
    longest: int = 0
    _automaton: Any = field(default=None, init=False, repr=False, compare=False)

    def add(self, data: bytes) -> int:
        """Index one value (at least MIN_BYTES long); returns its number."""
        if len(data) < MIN_BYTES:
            raise ValueError(f"values shorter than {MIN_BYTES} bytes are not searched for")
        number = len(self.pieces)
        split = fragments(data)
        self.pieces.append(len(split))
        for piece_number, piece in enumerate(split):
            self.owners.setdefault(piece, []).append((number, piece_number))
            self.longest = max(self.longest, len(piece))
        self._automaton = None
        return number

    @property
    def values(self) -> int:
        return len(self.pieces)

    def automaton(self) -> Any:
        """The automaton of every piece: a match's value is the owners list of its piece (one
        entry per piece, however many values share it, so a place is counted once)."""
        if self._automaton is None:
            automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY)
            for piece, owners in self.owners.items():
                automaton.add_word(piece.decode(_BYTES_AS_TEXT), owners)
            automaton.make_automaton()
            self._automaton = automaton
        return self._automaton

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_automaton": None}


@dataclass
class Findings:
    """What one search found: the pieces of each value seen, every occurrence, the bytes read."""

    pieces_found: dict[int, set[int]] = field(default_factory=dict)
    occurrences: int = 0
    bytes_read: int = 0

    def found_values(self, needles: Needles) -> set[int]:
        """Values found: a short one whole; a long one when at least half of its fragments
        were seen (splits cost it a few; another value merely sharing a phrase has fewer)."""
        return {value for value, seen in self.pieces_found.items() if 2 * len(seen) >= needles.pieces[value]}


def search(needles: Needles, chunks: Iterable[bytes], *, processes: int = 0) -> Findings:
    """Find the needles in the concatenation of ``chunks``; with ``processes``, the buffers are
    searched by that many worker processes while the next chunks are read (each buffer's
    findings depend on it alone, so they merge into exactly what one process finds)."""
    findings = Findings()
    keep = max(0, needles.longest - 1)
    tail = b""
    pool: _SearchPool | None = None
    try:
        for index, chunk in enumerate(chunks):
            findings.bytes_read += len(chunk)
            if not needles.pieces:
                continue
            buffer = tail + chunk
            if pool is None and processes > 1 and index > 0:
                # A second chunk: the file is big enough for the workers to pay for starting.
                # Even with the automaton in C, searching a buffer costs far more than sending
                # it to a worker, so on a big file two processes beat one (measured).
                pool = _SearchPool(needles, processes)
            if pool is None:
                _merge(findings, _search_buffer(needles, buffer, len(tail)))
            else:
                pool.submit(buffer, len(tail), findings)
            tail = buffer[max(0, len(buffer) - keep) :]
        if pool is not None:
            pool.drain(findings)
    finally:
        if pool is not None:
            pool.close()
    return findings


def _search_buffer(needles: Needles, buffer: bytes, carried: int) -> Findings:
    """What ``buffer`` (its first ``carried`` bytes are the end of the previous buffer) holds. A
    place that ends within those carried bytes was found there, so only places that end after
    them count here: each place is counted once."""
    findings = Findings()
    pieces_found = findings.pieces_found
    for end, owners in needles.automaton().iter(buffer.decode(_BYTES_AS_TEXT)):
        if end < carried:  # ``end`` is the index of a place's last byte
            continue
        findings.occurrences += 1
        for value, piece_number in owners:
            pieces_found.setdefault(value, set()).add(piece_number)
    return findings


def _merge(into: Findings, part: Findings) -> None:
    into.occurrences += part.occurrences
    for value, pieces in part.pieces_found.items():
        into.pieces_found.setdefault(value, set()).update(pieces)


class _SearchPool:
    """Worker processes that each hold the needles and search the buffers they are sent."""

    def __init__(self, needles: Needles, processes: int) -> None:
        self._executor = ProcessPoolExecutor(
            processes,
            mp_context=cpu_pool.process_context(),
            initializer=_hold_needles,
            initargs=(needles,),
        )
        self._in_flight: deque[Future[Findings]] = deque()
        self._limit = 2 * processes  # a buffer read ahead for each worker; memory stays bounded

    def submit(self, buffer: bytes, carried: int, findings: Findings) -> None:
        self._in_flight.append(self._executor.submit(_search_held, buffer, carried))
        while len(self._in_flight) > self._limit:
            _merge(findings, self._in_flight.popleft().result())

    def drain(self, findings: Findings) -> None:
        while self._in_flight:
            _merge(findings, self._in_flight.popleft().result())

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


_held_needles: Needles | None = None


def _hold_needles(needles: Needles) -> None:
    global _held_needles
    needles.automaton()  # built once per worker, before its first buffer
    _held_needles = needles


def _search_held(buffer: bytes, carried: int) -> Findings:
    assert _held_needles is not None, "the worker was started with the needles"
    return _search_buffer(_held_needles, buffer, carried)
