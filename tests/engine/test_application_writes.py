"""The application keeps writing while and after a table is migrated; migrations overlap.

A value the application writes after a migration is the newer value: the read API returns it,
the next migration seals it, and rolling back the older migration keeps it. Each migration
verifies and rolls back exactly the cells it sealed, so overlapping migrations never undo each
other's work — in either rollback order, and the table ends byte for byte as it was, apart
from the application's own writes.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.support.application_writes import (
    MOTOR,
    a_sealed_row,
    app_write,
    first_row_where,
    started,
    stored_row,
)
from tests.support.databases import BOTH_BACKENDS
from tests.support.faults import BatchGate, tampered_token
from tests.support.migration_helpers import Background, raw_dump
from tests.support.rollback_workers import rollbacks_in_workers
from tui_migrator.crypto.codec import encode_key
from tui_migrator.crypto.tokens import is_token
from tui_migrator.reader import RecordReader
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS


@pytest.mark.parametrize("order", ["newest first", "oldest first"])
def test_overlapping_migrations_keep_the_applications_writes_in_either_rollback_order(
    service: MigratorService, order: str
) -> None:
    before = raw_dump(service.engine)
    first = started(service, MOTOR)
    row_id = a_sealed_row(service)
    original = RecordReader.for_service(service).read_row("motor_symptoms", stored_row(service, row_id))

    # After the migration the application writes a score (a column whose token lives in its
    # companion) and a note (a text column holding its token in place).
    app_write(service, row_id, updrs_part3=99, gait_notes="written after the migration")
    reader = RecordReader.for_service(service)
    current = reader.read_row("motor_symptoms", stored_row(service, row_id))
    assert current["updrs_part3"] == 99 and current["gait_notes"] == "written after the migration"
    assert current["tremor_score"] == original["tremor_score"]

    # The next migration seals exactly those two values and verifies.
    second = started(service, MOTOR)
    assert second.encrypted_records == 1
    sealed = stored_row(service, row_id)
    assert sealed["updrs_part3"] is None and is_token(sealed["updrs_part3__tm_token"])
    assert is_token(sealed["gait_notes"])
    assert reader.read_row("motor_symptoms", sealed)["updrs_part3"] == 99

    rollbacks = [second, first] if order == "newest first" else [first, second]
    _, result = service.rollback(rollbacks[0].id, confirm=True)
    row = stored_row(service, row_id)
    if order == "newest first":
        # Migration 2 put back only what it sealed: the application's values, as plaintext;
        # migration 1's tokens in the row's other columns stay, and still read.
        assert row["updrs_part3"] == 99 and row["gait_notes"] == "written after the migration"
        assert is_token(row["tremor_score__tm_token"])
        assert result.restored_rows == 1
    else:
        # Migration 1 restored its own cells everywhere but left migration 2's two tokens.
        assert is_token(row["gait_notes"]) and is_token(row["updrs_part3__tm_token"])
        assert row["tremor_score"] == original["tremor_score"]
    assert reader.read_row("motor_symptoms", row)["updrs_part3"] == 99
    service.rollback(rollbacks[1].id, confirm=True)

    row = stored_row(service, row_id)
    assert row["updrs_part3"] == 99 and row["gait_notes"] == "written after the migration"
    # Put the application's two writes back as they were: then every table, every other value
    # and every column (no companion left behind) is byte for byte as before the migrations.
    app_write(service, row_id, updrs_part3=original["updrs_part3"], gait_notes=original["gait_notes"])
    assert raw_dump(service.engine) == before


def test_rollback_keeps_a_value_written_beside_a_companion_token_and_counts_it(
    service: MigratorService,
) -> None:
    before = raw_dump(service.engine)
    first = started(service, MOTOR)
    row_id = a_sealed_row(service)
    original = RecordReader.for_service(service).read_row("motor_symptoms", stored_row(service, row_id))
    app_write(service, row_id, updrs_part3=99)

    _, result = service.rollback(first.id, confirm=True)
    assert result.kept_newer_values == 1
    row = stored_row(service, row_id)
    assert row["updrs_part3"] == 99 and "updrs_part3__tm_token" not in row
    app_write(service, row_id, updrs_part3=original["updrs_part3"])
    assert raw_dump(service.engine) == before


def test_a_text_value_overwritten_after_the_migration_is_sealed_next_and_kept_by_rollback(
    service: MigratorService,
) -> None:
    before = raw_dump(service.engine)
    first = started(service, MOTOR)
    row_id = a_sealed_row(service)
    original = RecordReader.for_service(service).read_row("motor_symptoms", stored_row(service, row_id))
    app_write(service, row_id, gait_notes="plaintext again")
    second = started(service, MOTOR)
    assert second.encrypted_records == 1 and is_token(stored_row(service, row_id)["gait_notes"])

    service.rollback(second.id, confirm=True)
    _, result = service.rollback(first.id, confirm=True)
    assert result.kept_newer_values == 1
    assert stored_row(service, row_id)["gait_notes"] == "plaintext again"
    app_write(service, row_id, gait_notes=original["gait_notes"])
    assert raw_dump(service.engine) == before


def test_a_row_written_during_its_own_migration_is_sealed_again_and_rolls_back_whole(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    row_id = first_row_where(service, "gait_notes IS NOT NULL AND updrs_part3 IS NOT NULL")
    original = dict(stored_row(service, row_id))
    # The first batch seals the row; while the third waits, the application writes two of its
    # columns; the migration's catch-up pass seals them again.
    gate = BatchGate(monkeypatch, open_for=2)
    running = Background(
        lambda: service.start({"data_categories": ["MOTOR_SYMPTOMS"], "batch_size": 20, "max_concurrency": 1})
    )
    assert gate.holding.wait(60)
    app_write(service, row_id, updrs_part3=99, gait_notes="written during the migration")
    gate.release()
    record = running.join()
    assert record.status is Status.COMPLETED, record.error_message
    assert record.verification is not None and record.verification["passed"]

    # The row's metadata still names every cell the migration sealed in it, not only the two
    # sealed again, so rollback puts the whole row back.
    with service.engine.connect() as connection:
        (columns,) = connection.execute(
            sa.text(
                "SELECT sealed_columns FROM tm_row_metadata WHERE migration_id = :id AND table_name = "
                "'motor_symptoms' AND row_key = :key"
            ),
            {"id": record.id, "key": encode_key((row_id,))},
        ).one()
    expected = {name for name in SENSITIVE if original[name] is not None} | {"updrs_part3", "gait_notes"}
    assert set(json.loads(columns)) == expected
    service.rollback(record.id, confirm=True)
    row = stored_row(service, row_id)
    assert row["updrs_part3"] == 99 and row["gait_notes"] == "written during the migration"
    app_write(service, row_id, updrs_part3=original["updrs_part3"], gait_notes=original["gait_notes"])
    assert raw_dump(service.engine) == before


SENSITIVE = (
    "updrs_part3",
    "tremor_score",
    "rigidity_score",
    "bradykinesia_score",
    "on_medication",
    "gait_notes",
)


@pytest.mark.parametrize("where", ["this process", "worker processes"])
def test_rollback_restores_rows_the_application_moved_to_another_organization(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A row's tokens and digest are bound to the organization that sealed it; an application
    that moves the row to another organization afterwards (a patient's record transferred) does
    not change them. Before, rollback opened them as the new organization's, failed, and
    stopped with the row unrecoverable — its backup too was checked as the new one's. Now they
    are opened as the recorded key's organization's: one row with its tokens whole, one with a
    token damaged, which comes back from its backup."""
    if where == "worker processes":
        rollbacks_in_workers(monkeypatch)
    before = raw_dump(service.engine)
    first = started(service, MOTOR)
    moved = [
        first_row_where(service, "gait_notes IS NOT NULL"),
        first_row_where(service, "gait_notes IS NOT NULL AND id > (SELECT min(id) FROM motor_symptoms)"),
    ]
    organization = {row_id: stored_row(service, row_id)["organization_id"] for row_id in moved}
    with service.engine.begin() as connection:
        others = {
            row_id: connection.execute(
                sa.text("SELECT min(organization_id) FROM motor_symptoms WHERE organization_id <> :o"),
                {"o": organization[row_id]},
            ).scalar_one()
            for row_id in moved
        }
        for row_id in moved:
            connection.execute(
                sa.text("UPDATE motor_symptoms SET organization_id = :o WHERE id = :id"),
                {"o": others[row_id], "id": row_id},
            )
    app_write(service, moved[1], gait_notes=tampered_token(stored_row(service, moved[1])["gait_notes"]))

    rolled_back, result = service.rollback(first.id, confirm=True)
    assert rolled_back.status is Status.ROLLED_BACK and result.unrecoverable == []
    assert result.restored_from_backup == 1
    with service.engine.begin() as connection:
        for row_id in moved:
            assert stored_row(service, row_id)["organization_id"] == others[row_id]
            connection.execute(
                sa.text("UPDATE motor_symptoms SET organization_id = :o WHERE id = :id"),
                {"o": organization[row_id], "id": row_id},
            )
    assert raw_dump(service.engine) == before


def test_rollback_counts_and_words_sealed_rows_it_no_longer_finds_under_their_key(
    service: MigratorService,
) -> None:
    """A row the application deleted after the migration is gone; one it gave another key still
    holds the migration's tokens, bound to the old key, which the rollback (reading rows by key)
    cannot match to their row metadata. Before, the rollback said nothing of either and reported
    success; now it counts them (notFoundRows), warns in words, and keeps their backups."""
    first = started(service, MOTOR)
    sealed = [
        first_row_where(service, "gait_notes IS NOT NULL"),
        first_row_where(service, "gait_notes IS NOT NULL AND id > (SELECT min(id) FROM motor_symptoms)"),
    ]
    with service.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM motor_symptoms WHERE id = :id"), {"id": sealed[0]})
        connection.execute(sa.text("UPDATE motor_symptoms SET id = 999999 WHERE id = :id"), {"id": sealed[1]})

    rolled_back, result = service.rollback(first.id, confirm=True)
    assert rolled_back.status is Status.ROLLED_BACK
    assert result.not_found_rows == 2 and result.to_json()["notFoundRows"] == 2
    [warning] = result.warnings
    assert warning.startswith("2 rows the migration sealed were not found under their key")
    assert is_token(stored_row(service, 999999)["gait_notes"])
    with service.engine.connect() as connection:
        backups = connection.execute(
            sa.text(f'SELECT count(*) FROM "{first.tables[0].backup_table}"')
        ).scalar_one()
    assert backups == first.encrypted_records


def test_a_rollback_that_finds_every_sealed_row_warns_of_nothing(service: MigratorService) -> None:
    first = started(service, MOTOR)
    _, result = service.rollback(first.id, confirm=True)
    assert result.not_found_rows == 0 and result.warnings == []
