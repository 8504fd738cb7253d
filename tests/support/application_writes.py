"""The application's side of the tests where it writes while or after a migration or its
rollback runs: the demo's motor_symptoms table (a text column holding its token in place, and
scores whose tokens live in companion columns), read and written as the application would."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.support.migration_helpers import FAST
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

MOTOR = {"data_categories": ["MOTOR_SYMPTOMS"], **FAST}


def stored_row(service: MigratorService, row_id: int) -> dict[str, Any]:
    table = sa.Table("motor_symptoms", sa.MetaData(), autoload_with=service.engine)
    with service.engine.connect() as connection:
        return dict(connection.execute(sa.select(table).where(table.c.id == row_id)).mappings().one())


def app_write(service: MigratorService, row_id: int, **values: Any) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    with service.engine.begin() as connection:
        connection.execute(
            sa.text(f"UPDATE motor_symptoms SET {assignments} WHERE id = :id"), {"id": row_id, **values}
        )


def first_row_where(service: MigratorService, condition: str) -> int:
    """The smallest id of the motor_symptoms rows that meet ``condition`` (SQL)."""
    with service.engine.connect() as connection:
        return int(
            connection.execute(sa.text(f"SELECT min(id) FROM motor_symptoms WHERE {condition}")).scalar_one()
        )


def a_sealed_row(service: MigratorService) -> int:
    """A row with a score sealed into its companion and a note sealed in place."""
    return first_row_where(service, "updrs_part3__tm_token IS NOT NULL AND gait_notes IS NOT NULL")


def started(service: MigratorService, config: dict[str, Any]) -> Any:
    record = service.start(config)
    assert record.status is Status.COMPLETED, record.error_message
    assert record.verification is not None and record.verification["passed"], record.verification
    return record
