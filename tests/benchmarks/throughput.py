"""Throughput on ~100,000 demo rows, against a hand-written script that only encrypts.

Run: .venv/bin/python -m tests.benchmarks.throughput [--rows 100000]

Prints, in one run: the estimate, tui-migrator's real run (with backups and verification, and
without them), its rows/s and event-loop stall, and the peer: ten lines of raw DB-API code that
read every mapped column, AES-GCM encrypt it and write it back with executemany — no backups,
no guard, no metadata, no verification, no audit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tui_migrator.common.settings import Settings
from tui_migrator.demo import DEMO_PROFILE
from tui_migrator.service.facade import MigratorService, create_demo_service

ROWS_PER_PATIENT = 8.83  # the demo's average across its nine category tables


def hand_written_peer(path: Path) -> tuple[int, float]:
    """The peer: what a quick one-off script would do. Returns (rows, seconds)."""
    started, rows = time.perf_counter(), 0
    connection, aead = sqlite3.connect(path), AESGCM(AESGCM.generate_key(bit_length=256))
    for entry in DEMO_PROFILE:
        keys = entry["primary_key"] if isinstance(entry["primary_key"], list) else [entry["primary_key"]]
        data = connection.execute(
            f"SELECT {','.join(keys + entry['columns'])} FROM {entry['name']}"
        ).fetchall()
        seal = lambda v: None if v is None else (n := os.urandom(12)) + aead.encrypt(n, str(v).encode(), None)  # noqa: E731
        updates = [[seal(v) for v in row[len(keys) :]] + list(row[: len(keys)]) for row in data]
        assignments = ", ".join(f"{c} = ?" for c in entry["columns"])
        connection.executemany(
            f"UPDATE {entry['name']} SET {assignments} WHERE {' AND '.join(f'{k} = ?' for k in keys)}",
            updates,
        )
        connection.commit()
        rows += len(data)
    return rows, time.perf_counter() - started


def run_tool(root: Path, config: dict[str, object]) -> dict[str, float]:
    settings = Settings.resolve(
        {"data_dir": root / "data", "database_url": f"sqlite:///{root / 'parkml.db'}"}, environ={}
    )
    with MigratorService.open(settings, user="bench") as service:
        estimate = service.estimate(config)
        started = time.perf_counter()
        record = service.start(config)
        seconds = time.perf_counter() - started
        completed = next(
            e
            for e in service.audit_entries(limit=None, migration_id=record.id).entries
            if e.operation == "data_migration_completed"
        )
        assert record.status.value == "completed", record.error_message
        return {
            "rows": record.encrypted_records,
            "seconds": seconds,
            "estimate": estimate.estimated_time_seconds,
            "lag_ms": completed.details["eventLoopMaxLagMs"],
            "phases": record.phase_seconds,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    patients = round(args.rows / ROWS_PER_PATIENT)
    with tempfile.TemporaryDirectory() as scratch:
        template = Path(scratch) / "template"
        template.mkdir()
        service, summary = create_demo_service(
            Settings.resolve(
                {"data_dir": template / "data", "database_url": f"sqlite:///{template / 'parkml.db'}"},
                environ={},
            ),
            patients=patients,
            organizations=4,
            seed=7,
            user="bench",
        )
        service.close()
        print(f"demo: {summary.sensitive_records:,} rows in the nine category tables ({patients:,} patients)")
        runs = {
            "full (backups + verification), batch 1000, concurrency 2": {
                "batch_size": 1000,
                "max_concurrency": 2,
            },
            "full, batch 1000, concurrency 1": {"batch_size": 1000, "max_concurrency": 1},
            "no backups, no verification, batch 1000, concurrency 2": {
                "batch_size": 1000,
                "max_concurrency": 2,
                "create_backups": False,
                "skip_integrity_checks": True,
            },
        }
        for label, config in runs.items():
            copy = Path(scratch) / label.split(",")[0].replace(" ", "_")
            shutil.copytree(template, copy)
            result = run_tool(copy, config)
            error = 100 * (result["estimate"] - result["seconds"]) / result["seconds"]
            print(
                f"tui-migrator {label}: {result['rows']:,} rows in {result['seconds']:.2f} s = "
                f"{result['rows'] / result['seconds']:,.0f} rows/s; estimate {result['estimate']:.2f} s "
                f"({error:+.0f}%); event loop max stall {result['lag_ms']} ms; phases "
                + ", ".join(f"{k} {v:.2f}s" for k, v in result["phases"].items())
            )
        peer = Path(scratch) / "peer"
        shutil.copytree(template, peer)
        rows, seconds = hand_written_peer(peer / "parkml.db")
        print(
            f"peer (raw sqlite3 + AES-GCM + executemany, nothing else): {rows:,} rows in {seconds:.2f} s = "
            f"{rows / seconds:,.0f} rows/s"
        )


if __name__ == "__main__":
    main()
