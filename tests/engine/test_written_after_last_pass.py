"""Rows the application writes in plaintext after a table's last pass and before verification
counts what is left (engine/runner.py, SEAL_AGAIN_ROUNDS; engine/verification.py).

Before, such a write failed the migration's completeness check, and no resume could finish it:
the table was marked done, so a resume went straight to verification and failed again. Now
verification sends the run back to seal them and verifies again, a bounded number of times; an
application that keeps writing faster fails the run with words that say so, and a resume seals
what is left (a row written with a NULL key, which no pass can seal, fails it at once:
test_null_keys.py). Each ends byte for byte after rollback.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.application_writes import MOTOR, app_write, first_row_where, stored_row
from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import raw_dump
from tests.support.verification_writes import write_before_each_verification
from tui_migrator.crypto.tokens import is_token
from tui_migrator.engine import runner
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS


def verifications_audited(service: MigratorService, migration_id: str) -> list[bool]:
    entries = service.audit_entries(limit=None, migration_id=migration_id).entries
    return [
        entry.success
        for entry in sorted(entries, key=lambda entry: entry.seq)
        if entry.operation == AuditOperation.INTEGRITY_VERIFIED.value
    ]


def test_a_write_after_a_tables_last_pass_is_sealed_and_verified_before_completion(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    row_id = first_row_where(service, "gait_notes IS NOT NULL")
    original = stored_row(service, row_id)["gait_notes"]

    def overwrite_a_sealed_note(_round: int) -> None:
        assert is_token(stored_row(service, row_id)["gait_notes"])
        app_write(service, row_id, gait_notes="written just before verification")

    results = write_before_each_verification(monkeypatch, overwrite_a_sealed_note, times=1)
    record = service.start(MOTOR)

    assert record.status is Status.COMPLETED, record.error_message
    # The first count found the row; the run sealed it and the second verification passed.
    assert [result["passed"] for result in results] == [False, True]
    assert results[0]["plaintextRowsLeft"] == 1 and "motor_symptoms" in results[0]["problem"]
    assert record.verification is not None and record.verification["plaintextRowsLeft"] == 0
    assert verifications_audited(service, record.id) == [False, True]
    # Said where the operator and the report look, not only in the log.
    assert any("1 rows written in plaintext after their table's last pass" in w for w in record.warnings)
    assert is_token(stored_row(service, row_id)["gait_notes"])

    service.rollback(record.id, confirm=True)
    # The application's write is the newer value, and rollback keeps it; nothing else changed.
    assert stored_row(service, row_id)["gait_notes"] == "written just before verification"
    app_write(service, row_id, gait_notes=original)
    assert raw_dump(service.engine) == before


def test_an_application_that_keeps_writing_fails_the_run_in_words_and_a_resume_finishes_it(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    row_id = first_row_where(service, "gait_notes IS NOT NULL")
    original = stored_row(service, row_id)["gait_notes"]

    def overwrite_again(round_number: int) -> None:
        app_write(service, row_id, gait_notes=f"written before verification {round_number}")

    results = write_before_each_verification(monkeypatch, overwrite_again, times=runner.SEAL_AGAIN_ROUNDS + 1)
    record = service.start(MOTOR)

    assert record.status is Status.FAILED
    assert len(results) == runner.SEAL_AGAIN_ROUNDS + 1 and not any(r["passed"] for r in results)
    message = record.error_message or ""
    assert "1 rows of motor_symptoms still hold plaintext" in message
    assert "keeps writing plaintext" in message and f"tui-migrator resume {record.id}" in message

    # The application stops; the resume seals the row (its table was marked done) and passes.
    resumed = service.resume(record.id)
    assert resumed.status is Status.COMPLETED, resumed.error_message
    assert resumed.verification is not None and resumed.verification["passed"]
    assert is_token(stored_row(service, row_id)["gait_notes"])

    service.rollback(record.id, confirm=True)
    last = f"written before verification {runner.SEAL_AGAIN_ROUNDS}"
    assert stored_row(service, row_id)["gait_notes"] == last
    app_write(service, row_id, gait_notes=original)
    assert raw_dump(service.engine) == before


def test_a_row_moved_to_another_organization_during_the_run_is_named_as_moved_not_damaged(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its tokens are bound to the organization that sealed it, which alone may read them: the
    run fails (the new organization could not read the row), but in words that say what
    happened and what to do — before, it said the row "does not decrypt to the values it held",
    as if it were damaged. Given back, a resume completes."""
    before = raw_dump(service.engine)
    row_id = first_row_where(service, "gait_notes IS NOT NULL")
    first = stored_row(service, row_id)["organization_id"]
    with service.engine.connect() as connection:
        other = connection.execute(
            sa.text("SELECT min(organization_id) FROM motor_symptoms WHERE organization_id <> :o"),
            {"o": first},
        ).scalar_one()

    def move_to(organization: str) -> None:
        with service.engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE motor_symptoms SET organization_id = :o WHERE id = :id"),
                {"o": organization, "id": row_id},
            )

    write_before_each_verification(monkeypatch, lambda _round: move_to(other), times=1)
    record = service.start(MOTOR)

    assert record.status is Status.FAILED
    message = record.error_message or ""
    assert f"row {row_id} of motor_symptoms was moved to organization {other}" in message
    assert f"sealed it under {first}'s key" in message and "does not decrypt" not in message

    move_to(first)
    resumed = service.resume(record.id)
    assert resumed.status is Status.COMPLETED, resumed.error_message
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before
