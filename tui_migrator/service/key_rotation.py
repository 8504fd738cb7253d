"""``keys rotate``: a new data key generation per organization, and a migration of kind
``rotation`` that re-seals every token under an older generation with it.

The new generations are written in the transaction that creates the rotation (with its table
locks and its audit entries), so every key a token will ever be sealed under is in the database
before the first batch uses it: a rotation stopped by anything, SIGKILL included, leaves tokens
under the old or the new generation, each with its key stored. The rotation then runs like any
migration (here or detached; pause, cancel, windows, resume), see engine/rotation_runner.py.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tui_migrator.common.errors import BadInput
from tui_migrator.common.migration_config import MigrationConfig, parse_config
from tui_migrator.engine.rotation import rotation_condition
from tui_migrator.service import lifecycle
from tui_migrator.service.access import authorize
from tui_migrator.service.session import Session
from tui_migrator.storage import migration_creation, table_locks
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.column_storage import reflect
from tui_migrator.storage.keyring import KEY_STATUS_RETIRED
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import MigrationKind
from tui_migrator.storage.operators import Action

# A rotation's batches are re-sealing only (no backup, no plaintext read): bigger by default.
DEFAULT_BATCH_SIZE = 1000
# What of a migration's configuration a rotation takes; the rest is fixed by what it is.
ROTATION_OPTIONS = ("batch_size", "max_concurrency", "window", "timezone", "not_before")


def rotation_config(session: Session, organizations: list[str], options: dict[str, Any]) -> MigrationConfig:
    """The rotation's configuration: the organizations whose keys it rotates (every one with
    keys when none is named), and of ``options`` only what a rotation takes."""
    unknown = sorted(set(options) - set(ROTATION_OPTIONS))
    if unknown:
        raise BadInput(f"A key rotation does not take {', '.join(unknown)}; nothing was started.")
    with_keys = sorted({info.organization_id for info in session.keyring.describe()})
    if not with_keys:
        raise BadInput(
            "This database has no data keys yet: nothing has been encrypted, so there is nothing to "
            "rotate. Nothing was started.",
            hint="Encrypt first: tui-migrator start",
        )
    missing = sorted(set(organizations) - set(with_keys))
    if missing:
        raise BadInput(
            f"No data key to rotate for {', '.join(missing)}: no value of "
            f"{'that organization' if len(missing) == 1 else 'those organizations'} was ever "
            f"encrypted. Organizations with keys: {', '.join(with_keys)}. Nothing was started.",
            hint="Name one of those with --organization, or leave it out to rotate them all.",
        )
    values = {"batch_size": DEFAULT_BATCH_SIZE, **options}
    values.update(organization_ids=sorted(organizations) or with_keys, create_backups=False)
    return parse_config(values)


def rotate(
    session: Session,
    organizations: list[str],
    options: dict[str, Any],
    *,
    detach: bool,
    on_progress: lifecycle.OnProgress | None,
) -> MigrationRecord:
    """Store the new generations with a new rotation, then run it here or detached."""
    authorize(session, Action.MANAGE_KEYS, "keys rotate")
    config = rotation_config(session, organizations, options)
    tables = _tables_to_rotate(session, config.organization_ids)
    held = _held(session, [name for name, _category, _rows in tables])
    if held:
        table_locks.raise_table_held(held)

    def store_generations(connection: sa.Connection, migration_id: str) -> None:
        made = session.keyring.add_generations(connection, config.organization_ids, created_by=session.user)
        session.audit.append(
            connection,
            AuditOperation.DATA_KEYS_ROTATED,
            user_id=session.user,
            success=True,
            migration_id=migration_id,
            details={
                "organizations": {
                    organization: {"newKeyId": new_key_id, "retiringKeyIds": sorted(older)}
                    for organization, (new_key_id, older) in sorted(made.items())
                },
                "totalRecords": sum(rows for _name, _category, rows in tables),
                "batchSize": config.batch_size,
            },
        )

    migration_id = migration_creation.create(
        session.engine,
        config=config,
        created_by=session.user,
        tables=tables,
        skipped_records=0,
        estimated_seconds=None,
        warnings=[],
        kind=MigrationKind.ROTATION,
        also=store_generations,
    )
    return lifecycle.run_or_detach(session, migration_id, detach=detach, on_progress=on_progress)


def _tables_to_rotate(session: Session, organizations: list[str]) -> list[tuple[str, str, int]]:
    """Every mapped table, with its rows holding a token under a key of ``organizations`` that
    is not retired (each will be under a retiring key once the new generations are stored)."""
    keys = [
        info.key_id
        for info in session.keyring.describe()
        if info.organization_id in organizations and info.status != KEY_STATUS_RETIRED
    ]
    tables = []
    with session.engine.connect() as connection:
        for mapped in session.mapping().tables:
            access = reflect(connection, mapped)
            rows = connection.execute(
                sa.select(sa.func.count()).select_from(access.table).where(rotation_condition(access, keys))
            ).scalar_one()
            tables.append((mapped.name, mapped.category.value, int(rows)))
    return tables


def _held(session: Session, names: list[str]) -> dict[str, str]:
    with session.engine.connect() as connection:
        return table_locks.holders(connection, names)
