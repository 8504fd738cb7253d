"""Finding many byte strings at once in files too big to read whole: the sweep's proof.

Thousands of sampled values are looked for in database files of any size, in one pass over
each file. Searching for each value separately would read every file thousands of times, so the
values are indexed by short pieces (q-grams) and the file is probed at every STRIDE-th byte:
every value is at least MIN_BYTES long, so every place it occurs covers one probe whose q-gram
lies inside it, and that probe finds it (each candidate is then compared in full). Files are
read in chunks that overlap by the longest pattern, so a value across a chunk border is found.

A long value is searched for as overlapping fragments, so it is found even where the database
split it across pages (an SQLite overflow page, a PostgreSQL TOAST chunk): whatever single
place it is split at, one fragment lies wholly on one side.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from tui_migrator.engine import cpu_pool

# Shorter values are not searched for. Tokens are base64url text and backups random bytes, so
# a short value made of letters turns up in them by chance: a 6-letter value once in ~70 GB of
# tokens per value, across thousands of sampled values in a multi-GB file a false alarm in
# almost every run; at 8 bytes it is 4,000 times rarer.
MIN_BYTES = 8
GRAM = 5
STRIDE = MIN_BYTES - GRAM + 1
# Values longer than this are searched for as fragments of FRAGMENT_BYTES, every FRAGMENT_STEP.
LONG_BYTES = 64
FRAGMENT_BYTES = 32
FRAGMENT_STEP = FRAGMENT_BYTES // 2
CHUNK_BYTES = 4 << 20


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
    """The byte patterns of the sampled values, indexed for one pass over the bytes.

    A probe's q-gram gives the offsets it can have in a pattern; each offset gives a start,
    whose first MIN_BYTES bytes give the lengths of the patterns beginning with them; each
    length gives one candidate looked up whole. So a probe costs a few dictionary lookups
    however many values share its q-gram (thousands share "Patie" in clinical notes)."""

    # piece bytes -> (value number, piece number) of every value that has that piece
    owners: dict[bytes, list[tuple[int, int]]] = field(default_factory=dict)
    # how many pieces each value has
    pieces: list[int] = field(default_factory=list)
    offsets: dict[bytes, set[int]] = field(default_factory=dict)
    lengths: dict[bytes, set[int]] = field(default_factory=dict)
    longest: int = 0

    def add(self, data: bytes) -> int:
        """Index one value (at least MIN_BYTES long); returns its number."""
        if len(data) < MIN_BYTES:
            raise ValueError(f"values shorter than {MIN_BYTES} bytes are not searched for")
        number = len(self.pieces)
        split = fragments(data)
        self.pieces.append(len(split))
        for piece_number, piece in enumerate(split):
            self.owners.setdefault(piece, []).append((number, piece_number))
            self.lengths.setdefault(piece[:MIN_BYTES], set()).add(len(piece))
            self.longest = max(self.longest, len(piece))
            for offset in range(STRIDE):
                self.offsets.setdefault(piece[offset : offset + GRAM], set()).add(offset)
        return number

    @property
    def values(self) -> int:
        return len(self.pieces)


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
    position = 0  # where the buffer starts in the whole stream
    pool: _SearchPool | None = None
    try:
        for chunk in chunks:
            findings.bytes_read += len(chunk)
            if not needles.pieces:
                continue
            buffer = tail + chunk
            if pool is None and processes > 1 and position > 0:
                # A second chunk: the file is big enough for the workers to pay for starting.
                pool = _SearchPool(needles, processes)
            if pool is None:
                _merge(findings, _search_buffer(needles, buffer, position, len(tail)))
            else:
                pool.submit(buffer, position, len(tail), findings)
            cut = max(0, len(buffer) - keep)
            tail = buffer[cut:]
            position += cut
        if pool is not None:
            pool.drain(findings)
    finally:
        if pool is not None:
            pool.close()
    return findings


def _search_buffer(needles: Needles, buffer: bytes, position: int, carried: int) -> Findings:
    """What ``buffer`` (at ``position`` in the stream; its first ``carried`` bytes are the end of
    the previous buffer) holds. A place that ends within those carried bytes was found there,
    so only places that end after them count here: each place is counted once."""
    findings = Findings()
    offsets_of, lengths_of, owners_of = needles.offsets.get, needles.lengths.get, needles.owners.get
    seen: set[tuple[bytes, int]] = set()  # one place reached from several probes
    # Probes sit at multiples of STRIDE in the whole stream, whatever the chunk borders.
    for probe in range((-position) % STRIDE, len(buffer) - GRAM + 1, STRIDE):
        offsets = offsets_of(buffer[probe : probe + GRAM])
        if offsets is None:
            continue
        for offset in offsets:
            start = probe - offset
            lengths = lengths_of(buffer[start : start + MIN_BYTES]) if start >= 0 else None
            if lengths is None:
                continue
            for length in lengths:
                if start + length <= carried:
                    continue
                piece = buffer[start : start + length]
                owners = owners_of(piece)
                if owners is None or (piece, start) in seen:
                    continue
                seen.add((piece, start))
                findings.occurrences += 1
                for value, piece_number in owners:
                    findings.pieces_found.setdefault(value, set()).add(piece_number)
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

    def submit(self, buffer: bytes, position: int, carried: int, findings: Findings) -> None:
        self._in_flight.append(self._executor.submit(_search_held, buffer, position, carried))
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
    _held_needles = needles


def _search_held(buffer: bytes, position: int, carried: int) -> Findings:
    assert _held_needles is not None, "the worker was started with the needles"
    return _search_buffer(_held_needles, buffer, position, carried)
