"""Data key rotation (``keys rotate``): a new generation per organization, every older token
re-sealed under it in place, values byte-exact before and after, ownership kept by the
migration that sealed each cell (so it still verifies and rolls back), old keys retired only
once the rotation is verified."""

from __future__ import annotations

import os
import pwd
import re
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import FAST, assert_fully_encrypted, raw_dump
from tui_migrator.common.errors import BadInput, StateConflict
from tui_migrator.engine import verification
from tui_migrator.engine.rotation import RotationBatches
from tui_migrator.reader import RecordReader
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.column_storage import cell_token, reflect
from tui_migrator.storage.keyring import KEY_STATUS_ACTIVE, KEY_STATUS_RETIRED, retiring_key_ids
from tui_migrator.storage.migration_status import MigrationKind, Phase, Status
from tui_migrator.storage.tables import data_keys_table

pytestmark = BOTH_BACKENDS

ROTATION = {"batch_size": 40, "max_concurrency": 2}
_KEY_ID = re.compile(r"^tmenc:v1:([a-z0-9_]+):")


def _tokens(service: MigratorService) -> dict[tuple[str, tuple[Any, ...], str], str]:
    """Every live token of the mapped tables, by (table, key, column)."""
    found = {}
    with service.engine.connect() as connection:
        for mapped in service.mapping().tables:
            access = reflect(connection, mapped)
            for row in connection.execute(access.select_rows()).mappings():
                for column in mapped.columns:
                    token = cell_token(column, row)
                    if token is not None:
                        key = tuple(row[name] for name in mapped.primary_key)
                        found[(mapped.name, key, column.name)] = token
    return found


def _key_of(token: str) -> str:
    match = _KEY_ID.match(token)
    assert match is not None, token
    return match.group(1)


def _keys(service: MigratorService) -> dict[str, tuple[str, int, str]]:
    """key id → (organization, generation, status)."""
    with service.engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                data_keys_table.c.key_id,
                data_keys_table.c.organization_id,
                data_keys_table.c.generation,
                data_keys_table.c.status,
            )
        ).all()
    return {key_id: (organization, generation, status) for key_id, organization, generation, status in rows}


def test_rotation_reseals_every_token_under_the_new_generation_and_every_value_stays_exact(
    service: MigratorService,
) -> None:
    before = raw_dump(service.engine)
    encryption = service.start(FAST)
    assert encryption.status is Status.COMPLETED, encryption.error_message
    old_tokens = _tokens(service)
    old_keys = _keys(service)

    rotation = service.rotate_keys([], ROTATION)

    assert rotation.status is Status.COMPLETED, rotation.error_message
    assert rotation.kind is MigrationKind.ROTATION and not rotation.can_rollback
    # No backup stage ran (and the monitor marks it skipped); verification did.
    assert rotation.skipped_phases == {Phase.BACKUP}
    assert Phase.BACKUP.value not in rotation.phase_seconds
    assert Phase.VERIFICATION.value in rotation.phase_seconds
    assert rotation.encrypted_records == rotation.total_records == encryption.total_records
    assert rotation.verification and rotation.verification["passed"]
    # The owning migration was verified again, row by row, against its digests.
    assert rotation.verification["verifiedRows"] == encryption.total_records
    keys = _keys(service)
    new_active = {k: v for k, v in keys.items() if v[2] == KEY_STATUS_ACTIVE}
    assert {org for org, _g, _s in new_active.values()} == {org for org, _g, _s in old_keys.values()}
    assert all(generation == 2 for _org, generation, _s in new_active.values())
    assert all(keys[key_id][2] == KEY_STATUS_RETIRED for key_id in old_keys)
    new_tokens = _tokens(service)
    assert new_tokens.keys() == old_tokens.keys()
    for place, token in new_tokens.items():
        assert token != old_tokens[place]
        assert _key_of(token) in new_active, place
    # Every value opens to exactly what it was before the encryption, type included.
    assert assert_fully_encrypted(service, service.mapping(), before) == encryption.total_records
    # The encryption migration still owns its cells: rolling it back restores the original.
    rolled, _result = service.rollback(encryption.id, confirm=True)
    assert rolled.status is Status.ROLLED_BACK
    assert raw_dump(service.engine) == before
    operations = [e.operation for e in service.audit_entries(limit=None, migration_id=rotation.id).entries]
    for expected in (
        "data_keys_rotated",
        "integrity_verified",
        "data_keys_retired",
        "data_migration_completed",
    ):
        assert expected in operations


def test_rotating_one_organization_leaves_every_other_token_as_it_was(service: MigratorService) -> None:
    before = raw_dump(service.engine)
    service.start(FAST)
    old_tokens = _tokens(service)
    old_keys = _keys(service)
    chosen = sorted({organization for organization, _g, _s in old_keys.values()})[0]

    rotation = service.rotate_keys([chosen], ROTATION)

    assert rotation.status is Status.COMPLETED, rotation.error_message
    assert rotation.config.organization_ids == [chosen]
    keys = _keys(service)
    changed = unchanged = 0
    for place, token in _tokens(service).items():
        organization = keys[_key_of(token)][0]
        if organization == chosen:
            assert keys[_key_of(token)][1:] == (2, KEY_STATUS_ACTIVE)
            changed += 1
        else:
            assert token == old_tokens[place]
            unchanged += 1
    assert changed and unchanged
    assert all(status == KEY_STATUS_ACTIVE for org, _g, status in keys.values() if org != chosen)
    assert assert_fully_encrypted(service, service.mapping(), before) > 0


def test_a_row_the_application_changes_between_read_and_write_is_not_overwritten(
    service: MigratorService,
) -> None:
    service.start(FAST)
    organizations = sorted({org for org, _g, _s in _keys(service).values()})
    with service.engine.connect() as connection:
        demographics = reflect(connection, service.mapping().table("demographics"))
    # The detached worker acts as the operating-system user running the suite.
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")
    rotation = service.rotate_keys(
        organizations, {"batch_size": 1000, "not_before": "2999-01-01T00:00"}, detach=True
    )
    # The rotation exists (and the new generations with it); its worker waits for its start.
    assert service.cancel(rotation.id, "the test drives one batch itself").status is Status.CANCELLED
    with service.engine.connect() as connection:
        retiring = retiring_key_ids(connection, organizations)
    assert retiring
    batches = RotationBatches(
        service.engine,
        demographics,
        migration_id=rotation.id,
        cipher=service.value_cipher(),
        retiring=retiring,
        epoch=service.status(rotation.id).claim_epoch,
    )
    batch = batches.next_batch(after=None, limit=1000)
    assert batch is not None and len(batch.rows) > 5
    changed_id = batch.rows[3]["id"]
    with service.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE demographics SET last_name = 'Written by the app' WHERE id = :id"),
            {"id": changed_id},
        )

    result = batches.process(batch)

    assert result.encrypted == len(batch.rows) - 1
    with service.engine.connect() as connection:
        assert (
            connection.execute(
                sa.text("SELECT last_name FROM demographics WHERE id = :id"), {"id": changed_id}
            ).scalar_one()
            == "Written by the app"
        )
    # The changed row's other cells are still under the old key: the next pass takes them.
    assert batches.pending_rows() == 1


def test_a_rotation_has_nothing_to_roll_back_or_sweep_and_runs_in_one_worker(
    service: MigratorService,
) -> None:
    service.start(FAST)
    rotation = service.rotate_keys([], ROTATION)
    with pytest.raises(StateConflict, match="key rotation"):
        service.rollback(rotation.id, confirm=True)
    with pytest.raises(BadInput, match="key rotation"):
        service.sweep(rotation.id, confirm=True)
    with pytest.raises(StateConflict, match="one worker"):
        service.join(rotation.id)


def test_nothing_to_rotate_and_unknown_organizations_are_refused_before_anything_is_written(
    service: MigratorService,
) -> None:
    with pytest.raises(BadInput, match="no data keys yet"):
        service.rotate_keys([], ROTATION)
    service.start(FAST)
    keys_before = _keys(service)
    migrations_before = len(service.list_migrations()[1])
    with pytest.raises(BadInput, match="No data key to rotate for org_nowhere"):
        service.rotate_keys(["org_nowhere"], ROTATION)
    with pytest.raises(BadInput, match="does not take"):
        service.rotate_keys([], {"create_backups": True})
    assert _keys(service) == keys_before
    assert len(service.list_migrations()[1]) == migrations_before


def test_a_rotation_waits_for_an_unfinished_migration_of_its_tables(service: MigratorService) -> None:
    service.start(FAST)
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")  # the detached worker's user
    unfinished = service.start({**FAST, "not_before": "2999-01-01T00:00"}, detach=True)
    service.cancel(unfinished.id, "left unfinished on purpose")
    keys_before = _keys(service)
    with pytest.raises(StateConflict, match=unfinished.id):
        service.rotate_keys([], ROTATION)
    assert _keys(service) == keys_before


def test_a_resume_finishes_a_rotation_whose_verification_found_old_tokens_written_after_a_tables_pass(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An application that writes a row back as it was (a snapshot restored, a row copied from
    a replica) between a table's rotation pass and the rotation's verification puts a token
    under a retiring key back. The verification fails on it, as it must; before, the table was
    marked done and a resume went straight to verification and failed the same way for ever."""
    encryption = service.start(FAST)
    assert encryption.status is Status.COMPLETED, encryption.error_message
    (table, key, column), old_token = next(iter(_tokens(service).items()))
    assert table == "demographics" and column == "first_name"
    [key_column] = service.mapping().table(table).primary_key
    where = f"FROM demographics WHERE {key_column} = :key"

    def value_read_back() -> Any:
        with service.engine.connect() as connection:
            row = connection.execute(sa.text(f"SELECT * {where}"), {"key": key[0]}).mappings().one()
        return RecordReader.for_service(service).read_row(table, dict(row))[column]

    original = value_read_back()
    real = verification.verify_rotation
    calls: list[int] = []

    def write_the_old_row_back(*args: Any, **kwargs: Any) -> verification.VerificationResult:
        if not calls:
            with service.engine.begin() as connection:
                update = f"UPDATE demographics SET first_name = :token WHERE {key_column} = :key"
                connection.execute(sa.text(update), {"token": old_token, "key": key[0]})
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(verification, "verify_rotation", write_the_old_row_back)
    rotation = service.rotate_keys([], ROTATION)
    assert rotation.status is Status.FAILED
    assert "still hold tokens under a retiring key" in (rotation.error_message or "")

    resumed = service.resume(rotation.id)
    assert resumed.status is Status.COMPLETED, resumed.error_message
    assert _key_of(_tokens(service)[(table, key, column)]) != _key_of(old_token)
    # Verified whole at last: the old generations are retired.
    assert {status for _organization, _generation, status in _keys(service).values()} == {
        KEY_STATUS_ACTIVE,
        KEY_STATUS_RETIRED,
    }
    # The row reads back its value (the token written back, re-sealed under the new generation).
    # A rollback of the encryption would not restore that cell: its row metadata names the
    # nonce of the token the first pass wrote, not of the one written back (README, Key
    # rotation); not asserted here.
    assert value_read_back() == original
