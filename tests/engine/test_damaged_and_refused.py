"""Values that are not what they seem, and rows the database will not take.

Text in token form that does not open is never plaintext: verification reports it, rollback
restores it from the sealed backup, the read API refuses it. A row the database refuses to
update (a user trigger, a check constraint) is a recorded failed row with the reason, never an
error for the whole run or the estimate. Organization ids read the same everywhere: an integer
or blank organization column reads back through the read API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.databases import ADMIN, BOTH_BACKENDS, opened_on_mapping
from tests.support.migration_helpers import FAST, raw_dump
from tui_migrator.common.errors import DecryptionFailed
from tui_migrator.crypto.tokens import TOKEN_PREFIX, is_token, parse_token
from tui_migrator.reader import RecordReader
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS
MOTOR = {"data_categories": ["MOTOR_SYMPTOMS"], **FAST}


def scalar(service: MigratorService, sql: str, **parameters: Any) -> Any:
    with service.engine.connect() as connection:
        return connection.execute(sa.text(sql), parameters).scalar_one()


def execute(service: MigratorService, *statements: str, **parameters: Any) -> None:
    with service.engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement), parameters)


def stored_row(service: MigratorService, row_id: int) -> dict[str, Any]:
    table = sa.Table("motor_symptoms", sa.MetaData(), autoload_with=service.engine)
    with service.engine.connect() as connection:
        return dict(connection.execute(sa.select(table).where(table.c.id == row_id)).mappings().one())


def test_a_token_damaged_so_it_no_longer_parses_is_restored_from_the_backup(service: MigratorService) -> None:
    before = raw_dump(service.engine)
    record = service.start(MOTOR)
    assert record.status is Status.COMPLETED, record.error_message
    row_id = scalar(service, "SELECT min(id) FROM motor_symptoms WHERE gait_notes IS NOT NULL")
    token = scalar(service, "SELECT gait_notes FROM motor_symptoms WHERE id = :id", id=row_id)
    damaged = token[:-6] + "+" + token[-6:]
    assert parse_token(damaged) is None and is_token(damaged)
    execute(service, "UPDATE motor_symptoms SET gait_notes = :value WHERE id = :id", value=damaged, id=row_id)

    # The read API never hands the damaged text out as the patient's note.
    reader = RecordReader.for_service(service)
    with pytest.raises(DecryptionFailed):
        reader.read_row("motor_symptoms", stored_row(service, row_id))

    _, result = service.rollback(record.id, confirm=True)
    assert result.restored_from_backup == 1 and result.kept_newer_values == 0
    assert raw_dump(service.engine) == before


def test_plaintext_that_looks_like_a_token_is_reported_not_counted_as_encrypted(
    service: MigratorService,
) -> None:
    row_id = scalar(service, "SELECT min(id) FROM motor_symptoms WHERE gait_notes IS NOT NULL")
    execute(
        service,
        "UPDATE motor_symptoms SET gait_notes = :value WHERE id = :id",
        value=TOKEN_PREFIX + "dek_1:not-really-a-token",
        id=row_id,
    )
    before = raw_dump(service.engine)
    record = service.start(MOTOR)
    assert record.status is Status.FAILED
    assert record.verification is not None and record.verification["damagedRows"] == 1
    assert "token form" in (record.error_message or "") and "gait_notes" in (record.error_message or "")
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before


def _refuse_updates(service: MigratorService, backend: str, frozen: int, checked: int) -> None:
    if backend == "sqlite":
        execute(
            service,
            f"CREATE TRIGGER frozen_row BEFORE UPDATE ON motor_symptoms WHEN OLD.id = {frozen} "
            "BEGIN SELECT RAISE(ABORT, 'this assessment is frozen'); END",
            f"CREATE TRIGGER checked_row BEFORE UPDATE ON motor_symptoms WHEN NEW.id = {checked} "
            "AND NEW.gait_notes LIKE 'tmenc:%' BEGIN SELECT RAISE(ABORT, 'notes must be readable'); END",
        )
    else:
        execute(
            service,
            "CREATE FUNCTION frozen_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'this assessment is frozen'; END $$",
            f"CREATE TRIGGER frozen_row BEFORE UPDATE ON motor_symptoms FOR EACH ROW WHEN (OLD.id = {frozen}) "
            "EXECUTE FUNCTION frozen_row()",
            f"ALTER TABLE motor_symptoms ADD CONSTRAINT notes_readable CHECK (id <> {checked} "
            "OR gait_notes NOT LIKE 'tmenc:%')",
        )


def test_rows_the_database_refuses_to_update_are_failed_rows_with_the_reason(
    service: MigratorService, backend: str
) -> None:
    frozen, checked = (
        scalar(service, "SELECT min(id) FROM motor_symptoms WHERE gait_notes IS NOT NULL"),
        scalar(service, "SELECT max(id) FROM motor_symptoms WHERE gait_notes IS NOT NULL"),
    )
    _refuse_updates(service, backend, frozen, checked)
    before = raw_dump(service.engine)

    # The estimate's sample meets the same refusals and still answers.
    estimate = service.estimate(MOTOR)
    assert estimate.estimated_records > 0
    record = service.start(MOTOR)
    assert record.status is Status.COMPLETED, record.error_message
    failed = {item["key_display"]: item["reason"] for item in service.failed_records(record.id)}
    assert set(failed) == {str(frozen), str(checked)}
    assert "this assessment is frozen" in failed[str(frozen)]
    assert "the database refused the update" in failed[str(checked)]
    assert record.encrypted_records > 0
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before


MAPPING = """
[[tables]]
name = "visits"
category = "MOTOR_SYMPTOMS"
primary_key = "id"
organization_column = "site"
default_organization = "walk_in"
columns = ["note", "score"]
"""


@pytest.fixture
def clinic(empty_database_url: str, tmp_path: Path) -> Iterator[MigratorService]:
    engine = sa.create_engine(empty_database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("CREATE TABLE visits (id INTEGER PRIMARY KEY, site INTEGER, note TEXT, score INTEGER)")
        )
        connection.execute(
            sa.text("INSERT INTO visits VALUES (:id, :site, :note, :score)"),
            [{"id": n, "site": [7, 8, None][n % 3], "note": f"visit {n}", "score": n} for n in range(12)],
        )
    engine.dispose()
    with opened_on_mapping(tmp_path, empty_database_url, MAPPING, user=ADMIN) as opened:
        yield opened


def test_the_read_api_reads_rows_of_integer_and_blank_organizations(clinic: MigratorService) -> None:
    table = sa.Table("visits", sa.MetaData(), autoload_with=clinic.engine)
    with clinic.engine.connect() as connection:
        before = [dict(row) for row in connection.execute(sa.select(table).order_by(table.c.id)).mappings()]
    record = clinic.start({"batch_size": 5})
    assert record.status is Status.COMPLETED and record.encrypted_records == 12, record.error_message
    assert {key.organization_id for key in clinic.data_keys()} >= {"7", "8", "walk_in"}
    table = sa.Table("visits", sa.MetaData(), autoload_with=clinic.engine)
    reader = RecordReader.for_service(clinic)
    with clinic.engine.connect() as connection:
        rows = [dict(row) for row in connection.execute(sa.select(table).order_by(table.c.id)).mappings()]
    assert all(is_token(row["note"]) for row in rows)
    assert [reader.read_row("visits", row) for row in rows] == before
    assert reader.read_value(
        rows[0]["note"], table="visits", column="note", primary_key=0, organization_id=7
    ) == ("visit 0")
