"""The CPU cost per row of each batch function a run's worker processes execute, in this process.

Run: .venv/bin/python -m tests.benchmarks.batch_functions [--rows 1000] [--repeat 25]

A batch like the peers benchmark's (six text columns of 30–40 characters, four organizations) is
sealed with its backups, verified and its backups read back by the same functions a run ships to
its workers (engine/cpu_pool.py): ``batches.seal_batch``, ``verification.verify_batch`` and
``backup.read_back_batch``. For each it prints the best time per row
over ``--repeat`` runs, the Python function calls per row (counted by cProfile, which does not
depend on the machine's load), and, as the floor, AES-GCM alone on the same values.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tui_migrator.common.categories import DataCategory
from tui_migrator.crypto.ciphers import RowSealer, ValueCipher
from tui_migrator.crypto.data_keys import ThrowawayKeys
from tui_migrator.crypto.keys import MasterKey
from tui_migrator.engine import backup, batches, verification
from tui_migrator.engine.cpu_pool import BatchContext
from tui_migrator.storage.column_storage import RowShape
from tui_migrator.storage.mapping import ResolvedColumn, ResolvedTable, Storage
from tui_migrator.storage.row_metadata import Recorded

COLUMNS = ("first_name", "last_name", "address", "phone", "email", "notes")
ORGANIZATIONS = [f"org_{number}" for number in range(1, 5)]
SHAPE = RowShape(
    ResolvedTable(
        name="records",
        category=DataCategory.DEMOGRAPHICS,
        primary_key=("id",),
        organization_column="organization_id",
        default_organization=None,
        columns=tuple(ResolvedColumn(name, "TEXT", True, Storage.IN_PLACE) for name in COLUMNS),
    )
)


def plain_rows(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": number,
            "organization_id": ORGANIZATIONS[number % len(ORGANIZATIONS)],
            **{name: f"{name} of patient {number:07d}, some more text" for name in COLUMNS},
        }
        for number in range(1, count + 1)
    ]


def workloads(rows: list[dict[str, Any]]) -> dict[str, Callable[[], object]]:
    """Each batch function bound to its input, made the way a run makes it."""
    master = MasterKey(os.urandom(32), "benchmark")
    cipher = ValueCipher(ThrowawayKeys(), master, actor="benchmark")
    cipher.prepare(ORGANIZATIONS)
    crypto = BatchContext(cipher, RowSealer(master, "migration_benchmark"))
    # As a run's batches read them: plaintext rows without a backup, which sealing makes.
    read = [{**row, batches.BACKUP_HELD: None} for row in rows]
    sealed, _failures = batches.seal_batch(crypto, SHAPE, read, dry_run=False, with_backups=True)
    if not all(item["backup"] for item in sealed):
        raise RuntimeError("the benchmark's batch was not backed up")
    written = [dict(rows[item["index"]], **item["tokens"]) for item in sealed]
    keys = [item["row_key"] for item in sealed]
    recorded = {
        item["row_key"]: Recorded(item["digest"], item["sealed_columns"], item["tokens_digest"])
        for item in sealed
    }
    # As for rows recorded before the tokens' digest (or re-sealed by a rotation): every token opened.
    opening = {row_key: entry._replace(tokens_digest=None) for row_key, entry in recorded.items()}
    # As the read-back reads them: each backup row's key, then its sealed bytes.
    backed_up = [(item["backup"]["id"], item["backup"][backup.SEALED_COLUMN]) for item in sealed]
    for entries in (recorded, opening):
        verdict = verification.verify_batch(crypto, SHAPE, written, keys, entries)
        if verdict.verified != len(rows):
            raise RuntimeError(f"the benchmark's own batch did not verify: {verdict}")
    aead = AESGCM(os.urandom(32))
    values = [f"{name} of patient {number:07d}".encode() for number in range(len(rows)) for name in COLUMNS]
    nonce = os.urandom(12)
    return {
        "seal_batch": lambda: batches.seal_batch(crypto, SHAPE, read, dry_run=False, with_backups=True),
        "verify_batch": lambda: verification.verify_batch(crypto, SHAPE, written, keys, recorded),
        "verify_batch, opening": lambda: verification.verify_batch(crypto, SHAPE, written, keys, opening),
        "read_back_batch": lambda: backup.read_back_batch(backed_up),
        "AES-GCM alone": lambda: [aead.encrypt(nonce, value, b"") for value in values],
    }


def best_seconds(work: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def calls(work: Callable[[], object]) -> int:
    profile = cProfile.Profile()
    profile.enable()
    work()
    profile.disable()
    return int(pstats.Stats(profile).total_calls)  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="rows in the batch (default 1000)")
    parser.add_argument("--repeat", type=int, default=25, help="runs of each, best taken (default 25)")
    args = parser.parse_args()
    rows = plain_rows(args.rows)
    print(f"one batch of {args.rows:,} rows × {len(COLUMNS)} text columns, best of {args.repeat}")
    print(f"{'function':<16} {'µs per row':>10} {'calls per row':>14}")
    for name, work in workloads(rows).items():
        seconds = best_seconds(work, args.repeat)
        print(f"{name:<16} {seconds * 1e6 / args.rows:>10.1f} {calls(work) / args.rows:>14.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
