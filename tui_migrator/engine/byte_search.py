"""Finding many byte strings at once in files too big to read whole: the sweep's proof.

Thousands of sampled values are looked for in database files of any size, in one pass over
each file. Searching for each value separately would read every file thousands of times, so
the pieces of all the values go into one Aho–Corasick automaton (ahocorasick_rs, the Rust
aho-corasick library): it reads each byte once and reports every place where any piece ends,
overlapping ones and pieces inside other pieces included, whatever the number of values. Files
are read in chunks that overlap by the longest piece less one byte, so a piece across a chunk
border lies whole in one buffer; a place that ends within the overlap was counted in the buffer
before, so each is counted once.

A long value is searched for as overlapping fragments, so it is found even where the database
split it across pages (an SQLite overflow page, a PostgreSQL TOAST chunk): whatever single
place it is split at, one fragment lies wholly on one side.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import ahocorasick_rs

# Shorter values are not searched for. Tokens are base64url text and backups random bytes, so
# a short value made of letters turns up in them by chance: a 6-letter value once in ~70 GB of
# tokens per value, across thousands of sampled values in a multi-GB file a false alarm in
# almost every run; at 8 bytes it is 4,000 times rarer.
MIN_BYTES = 8
# Values longer than this are searched for as fragments of FRAGMENT_BYTES, every FRAGMENT_STEP.
LONG_BYTES = 64
FRAGMENT_BYTES = 32
FRAGMENT_STEP = FRAGMENT_BYTES // 2
# A longer value is searched as this many fragments spread evenly over it, however long: every
# FRAGMENT_STEP, a sample of 200-KB values had 2.5 million pieces and took the sweep's automaton
# to 600 MiB (2026-12-07). Half of them seen still finds a value left whole or in large part.
MOST_FRAGMENTS = 64
CHUNK_BYTES = 4 << 20
# Up to this many pieces the automaton is a full DFA (about 12 KB a piece, ~2.5 times faster
# than the contiguous NFA it is beyond: 0.4 s against 1 s for 150 MB and the 2,400 pieces of a
# 200-row sample of six text columns); past it the DFA's memory would grow with the sample.
DFA_PIECES = 4000


def fragments(data: bytes) -> list[bytes]:
    """The pieces ``data`` is searched as: itself, or overlapping fragments when long (at most
    MOST_FRAGMENTS of them, spread evenly from its start to its end when it is longer still)."""
    if len(data) <= LONG_BYTES:
        return [data]
    last = len(data) - FRAGMENT_BYTES
    starts = list(range(0, last + 1, FRAGMENT_STEP))
    if starts[-1] != last:
        starts.append(last)
    if len(starts) > MOST_FRAGMENTS:
        starts = [round(number * last / (MOST_FRAGMENTS - 1)) for number in range(MOST_FRAGMENTS)]
    return [data[start : start + FRAGMENT_BYTES] for start in starts]


@dataclass
class Needles:
    """The byte patterns of the sampled values, and the automaton that finds them all at once
    (built on the first search after the last ``add``; an ``add`` after a search has it built
    again)."""

    # piece bytes -> (value number, piece number) of every value that has that piece
    owners: dict[bytes, list[tuple[int, int]]] = field(default_factory=dict)
    # how many pieces each value has
    pieces: list[int] = field(default_factory=list)
    longest: int = 0
    _automaton: _Automaton | None = field(default=None, init=False, repr=False, compare=False)

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

    def automaton(self) -> _Automaton:
        """The automaton of every piece, and each piece's owners by the piece's index (one entry
        per piece, however many values share it, so a place is counted once)."""
        if self._automaton is None:
            patterns = list(self.owners)
            implementation = (
                ahocorasick_rs.Implementation.DFA
                if len(patterns) <= DFA_PIECES
                else ahocorasick_rs.Implementation.ContiguousNFA
            )
            automaton = ahocorasick_rs.BytesAhoCorasick(
                patterns, matchkind=ahocorasick_rs.MatchKind.Standard, implementation=implementation
            )
            self._automaton = _Automaton(automaton, [self.owners[piece] for piece in patterns])
        return self._automaton


@dataclass(frozen=True)
class _Automaton:
    search: ahocorasick_rs.BytesAhoCorasick
    owners: list[list[tuple[int, int]]]  # by pattern index


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


def search(needles: Needles, chunks: Iterable[bytes], *, threads: int = 1) -> Findings:
    """Find the needles in the concatenation of ``chunks``; with ``threads`` > 1, the buffers are
    searched by that many threads while the next chunks are read (the automaton runs without
    the GIL, so each thread has a core; each buffer's findings depend on it alone, so they merge
    into exactly what one thread finds)."""
    findings = Findings()
    keep = max(0, needles.longest - 1)
    tail = b""
    pool = _SearchThreads(threads) if threads > 1 else None
    try:
        for chunk in chunks:
            findings.bytes_read += len(chunk)
            if not needles.pieces:
                continue
            buffer = tail + chunk
            if pool is None:
                _merge(findings, _search_buffer(needles, buffer, len(tail)))
            else:
                pool.submit(needles, buffer, len(tail), findings)
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
    automaton = needles.automaton()
    owners_of = automaton.owners
    for pattern, _start, end in automaton.search.find_matches_as_indexes(buffer, overlapping=True):
        if end <= carried:  # ``end`` is one past a place's last byte
            continue
        findings.occurrences += 1
        for value, piece_number in owners_of[pattern]:
            pieces_found.setdefault(value, set()).add(piece_number)
    return findings


def _merge(into: Findings, part: Findings) -> None:
    into.occurrences += part.occurrences
    for value, pieces in part.pieces_found.items():
        into.pieces_found.setdefault(value, set()).update(pieces)


class _SearchThreads:
    """Threads that search the buffers they are given, a few buffers ahead of the results."""

    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="byte-search")
        self._in_flight: deque[Future[Findings]] = deque()
        self._limit = 2 * threads  # a buffer read ahead for each thread; memory stays bounded

    def submit(self, needles: Needles, buffer: bytes, carried: int, findings: Findings) -> None:
        needles.automaton()  # built here once, not by two threads at the same time
        self._in_flight.append(self._executor.submit(_search_buffer, needles, buffer, carried))
        while len(self._in_flight) > self._limit:
            _merge(findings, self._in_flight.popleft().result())

    def drain(self, findings: Findings) -> None:
        while self._in_flight:
            _merge(findings, self._in_flight.popleft().result())

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
