"""verify_batch's two ways to a verdict give the same one.

A row whose every token is one this migration wrote, as written, is verified from its recorded
tokens digest alone (the digest covers the cells' names with their tokens). Every other row —
beside this migration's tokens a token it did not write, text in token form that does not open,
a cell changed since — goes the whole way: the recorded cells are read, this migration's are
checked, and every other cell in token form must open.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.faults import tampered_token
from tui_migrator.common.categories import DataCategory
from tui_migrator.crypto.ciphers import RowContext, ValueCipher
from tui_migrator.crypto.data_keys import ThrowawayKeys
from tui_migrator.crypto.keys import MasterKey
from tui_migrator.engine import batches, verification
from tui_migrator.engine.cpu_pool import BatchContext
from tui_migrator.storage.column_storage import RowShape
from tui_migrator.storage.mapping import ResolvedColumn, ResolvedTable, Storage
from tui_migrator.storage.row_metadata import Recorded
from tui_migrator.storage.sealed_cells import SealedCells

TABLE = ResolvedTable(
    name="notes",
    category=DataCategory.DEMOGRAPHICS,
    primary_key=("id",),
    organization_column="organization_id",
    default_organization=None,
    columns=tuple(ResolvedColumn(name, "TEXT", True, Storage.IN_PLACE) for name in ("a", "b", "c")),
)
SHAPE = RowShape(TABLE)


@pytest.fixture
def context() -> BatchContext:
    cipher = ValueCipher(ThrowawayKeys(), MasterKey(os.urandom(32), "test"), actor="tester")
    cipher.prepare(["org_1"])
    return BatchContext(cipher)


@pytest.fixture
def cells_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str | None]]:
    """Every row metadata's cells verification parses (SealedCells.from_metadata)."""
    parsed: list[str | None] = []
    original = SealedCells.from_metadata.__func__  # type: ignore[attr-defined]

    def counted(cls: type[SealedCells], text: str | None, mapped: ResolvedTable) -> SealedCells:
        parsed.append(text)
        return original(cls, text, mapped)  # type: ignore[no-any-return]

    monkeypatch.setattr(SealedCells, "from_metadata", classmethod(counted))
    yield parsed


def sealed_rows(
    context: BatchContext, rows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Recorded]]:
    """``rows`` sealed as a batch does, and written: each row as the table then holds it, and
    the row metadata recorded for it."""
    sealed, failures = batches.seal_batch(context, SHAPE, rows, dry_run=False, with_backups=False)
    assert not failures and len(sealed) == len(rows)
    written = [{**rows[item["index"]], **item["tokens"]} for item in sealed]
    recorded = {
        item["row_key"]: Recorded(item["digest"], item["sealed_columns"], item["tokens_digest"])
        for item in sealed
    }
    return written, recorded


def verdict_of(
    context: BatchContext, written: list[dict[str, Any]], recorded: dict[str, Recorded]
) -> verification.BatchVerdict:
    return verification.verify_batch(context, SHAPE, written, list(recorded), recorded)


def row(number: int, **cells: Any) -> dict[str, Any]:
    return {
        "id": number,
        "organization_id": "org_1",
        "a": f"a {number}",
        "b": f"b {number}",
        "c": None,
        **cells,
    }


def test_rows_holding_only_the_tokens_written_are_verified_without_reading_their_cells(
    context: BatchContext, cells_read: list[str | None]
) -> None:
    written, recorded = sealed_rows(context, [row(1), row(2, c="c 2")])
    verdict = verdict_of(context, written, recorded)
    assert (verdict.verified, verdict.mismatched, verdict.damaged) == (2, 0, 0)
    assert cells_read == []


def test_a_token_this_migration_did_not_write_beside_its_own_takes_the_whole_way(
    context: BatchContext, cells_read: list[str | None]
) -> None:
    # Another sealing's token in c (an earlier migration's, kept by this one's batch).
    earlier = context.cipher.encrypt("c 1", RowContext("notes", "c", (1,), "org_1"))
    written, recorded = sealed_rows(context, [row(1, c=earlier)])
    assert SealedCells.from_metadata(recorded[next(iter(recorded))].sealed_columns, TABLE).columns == (
        "a",
        "b",
    )
    cells_read.clear()
    verdict = verdict_of(context, written, recorded)
    assert (verdict.verified, verdict.mismatched, verdict.damaged) == (1, 0, 0)
    assert len(cells_read) == 1  # judged by its recorded cells, not by the shortcut


def test_text_in_token_form_that_does_not_open_beside_the_tokens_written_is_reported(
    context: BatchContext,
) -> None:
    # Where the batch read it, c held text in token form that never opened (kept, as a token).
    fake = "tmenc:v1:dek_x:bm90LWEtdG9rZW4tYXQtYWxsLWF0LWFsbC1hdC1hbGw"
    written, recorded = sealed_rows(context, [row(1, c=fake)])
    verdict = verdict_of(context, written, recorded)
    assert (verdict.verified, verdict.mismatched, verdict.damaged) == (1, 0, 1)
    assert verdict.problem is not None and "c" in verdict.problem and "token form" in verdict.problem


def test_a_token_written_then_altered_is_a_mismatch_and_a_newer_one_a_change(context: BatchContext) -> None:
    written, recorded = sealed_rows(context, [row(1), row(2), row(3)])
    # Row 1's a: the token written, a character of its payload altered since. (Not the last
    # one: some of its bits may be base64's padding, and the token would decode as before.)
    written[0]["a"] = tampered_token(written[0]["a"])
    # Row 2's a: a newer token of the same place (another sealing, another nonce).
    written[1]["a"] = context.cipher.encrypt("a 2, newer", RowContext("notes", "a", (2,), "org_1"))
    verdict = verdict_of(context, written, recorded)
    # Row 2 is neither verified nor a mismatch: verify_table counts it as unverifiable.
    assert (verdict.verified, verdict.mismatched, verdict.damaged) == (1, 1, 0)
    assert verdict.problem is not None and "row 1 of notes" in verdict.problem


def test_the_shortcut_gives_the_verdict_the_whole_way_gives(context: BatchContext) -> None:
    earlier = context.cipher.encrypt("c 3", RowContext("notes", "c", (3,), "org_1"))
    written, recorded = sealed_rows(context, [row(1), row(2, c="c 2"), row(3, c=earlier), row(4)])
    written[3]["b"] = "b 4, written in plaintext since"
    for row_key, stored in zip(recorded, written, strict=True):
        cells = SealedCells.from_metadata(recorded[row_key].sealed_columns, TABLE)
        whole_way = verification.check_row(SHAPE, stored, cells, recorded[row_key], context.cipher)
        shortcut = verification._holds_only_the_tokens_written(
            SHAPE, stored, recorded[row_key], context.cipher
        )
        assert not shortcut or whole_way is verification.RowCheck.VERIFIED
    shortcuts = [
        verification._holds_only_the_tokens_written(SHAPE, stored, recorded[row_key], context.cipher)
        for row_key, stored in zip(recorded, written, strict=True)
    ]
    assert shortcuts == [True, True, False, False]
