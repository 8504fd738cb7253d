"""What verification proves without opening every token again, and where it still opens them.

Each fresh token's sealed bytes are opened as they are sealed, to the exact bytes sealed; the row
metadata records a keyed digest of the tokens written. Verification then needs only find those
tokens in the row. Anything else (a token altered since, another row's tokens and metadata
copied over, metadata written before the tokens' digest existed) is opened and judged as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import FAST, raw_dump, rotate_every_key
from tui_migrator.crypto import ciphers
from tui_migrator.crypto.ciphers import RowContext, ValueCipher
from tui_migrator.crypto.codec import encode_key, encode_value
from tui_migrator.engine.cpu_pool import BatchContext, CpuPool
from tui_migrator.engine.verification import VerificationResult, verify_migration
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.column_storage import organizations_in, reflect
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import row_metadata_table

pytestmark = BOTH_BACKENDS
DEMOGRAPHICS = {**FAST, "data_categories": ["DEMOGRAPHICS"]}


@pytest.fixture
def openings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RowContext]]:
    """Every row whose tokens this process opens (by ValueCipher.open_encoded_cells)."""
    opened: list[RowContext] = []
    original = ValueCipher.open_encoded_cells

    def counted(self: ValueCipher, row: RowContext, cells: Any) -> Any:
        opened.append(row)
        return original(self, row, cells)

    monkeypatch.setattr(ValueCipher, "open_encoded_cells", counted)
    yield opened


def verify_again(service: MigratorService, migration_id: str, *, processes: int = 0) -> VerificationResult:
    """The verification stage of ``migration_id`` run once more: in this process, or with
    ``processes`` worker processes that read and check the windows of keys themselves."""
    record = service.status(migration_id)
    mapping = service.mapping()
    with service.engine.connect() as connection:
        tables = {table.name: reflect(connection, mapping.table(table.name)) for table in record.tables}
        organizations = sorted(
            set().union(*(organizations_in(connection, access) for access in tables.values()))
        )
    cipher = service.value_cipher()
    keys = cipher.worker_keys(organizations, None) if processes else None
    with CpuPool(BatchContext(cipher, None, service.engine), processes, keys) as pool:
        assert pool.processes == processes
        return verify_migration(service.engine, record, tables, pool, None)


def scalar(service: MigratorService, sql: str, **parameters: Any) -> Any:
    with service.engine.connect() as connection:
        return connection.execute(sa.text(sql), parameters).scalar_one()


def execute(service: MigratorService, sql: str, **parameters: Any) -> None:
    with service.engine.begin() as connection:
        connection.execute(sa.text(sql), parameters)


def stored_row(service: MigratorService, row_id: int) -> dict[str, Any]:
    with service.engine.connect() as connection:
        found = connection.execute(sa.text("SELECT * FROM demographics WHERE id = :id"), {"id": row_id})
        return dict(found.mappings().one())


def metadata_of(service: MigratorService, migration_id: str, row_id: int) -> dict[str, Any]:
    metadata = row_metadata_table.c
    with service.engine.connect() as connection:
        return dict(
            connection.execute(
                sa.select(metadata.digest, metadata.sealed_columns, metadata.tokens_digest).where(
                    metadata.migration_id == migration_id,
                    metadata.table_name == "demographics",
                    metadata.row_key == encode_key((row_id,)),
                )
            )
            .mappings()
            .one()
        )


def test_every_row_written_records_its_tokens_digest_and_verifies_without_opening_a_token(
    service: MigratorService, openings: list[RowContext]
) -> None:
    record = service.start(DEMOGRAPHICS)
    assert record.status is Status.COMPLETED and record.encrypted_records > 0
    assert scalar(service, "SELECT count(*) FROM tm_row_metadata WHERE tokens_digest IS NULL") == 0
    openings.clear()  # (whatever the run itself opened)

    result = verify_again(service, record.id)

    assert result.passed and result.verified_rows == record.encrypted_records
    assert openings == []


def test_another_rows_tokens_and_metadata_copied_over_a_row_are_a_mismatch(
    service: MigratorService, openings: list[RowContext]
) -> None:
    record = service.start(DEMOGRAPHICS)
    first, second = (scalar(service, f"SELECT {f}(id) FROM demographics") for f in ("min", "max"))
    copied = metadata_of(service, record.id, first)
    # Everything the migration wrote of the first row (its cells and its row metadata), given to
    # the second: only the row's key, bound into both digests and every token, tells them apart.
    with service.engine.begin() as connection:
        columns = [c["name"] for c in sa.inspect(connection).get_columns("demographics") if c["name"] != "id"]
        assignments = ", ".join(f"{c} = (SELECT {c} FROM demographics WHERE id = :first)" for c in columns)
        connection.execute(
            sa.text(f"UPDATE demographics SET {assignments} WHERE id = :second"),
            {"first": first, "second": second},
        )
        connection.execute(
            sa.update(row_metadata_table)
            .where(
                row_metadata_table.c.migration_id == record.id,
                row_metadata_table.c.table_name == "demographics",
                row_metadata_table.c.row_key == encode_key((second,)),
            )
            .values(**copied)
        )
    openings.clear()

    result = verify_again(service, record.id)

    assert not result.passed and result.mismatched_rows == 1
    assert f"row {second} of demographics" in str(result.problem)
    assert [row.primary_key for row in openings] == [(second,)]  # the one row opened: the copy


def test_worker_processes_reading_the_windows_themselves_find_what_this_process_finds(
    service: MigratorService,
) -> None:
    record = service.start(DEMOGRAPHICS)
    assert verify_again(service, record.id, processes=2) == verify_again(service, record.id)
    # The last row's token altered: the window holding it is read and checked by a worker.
    row_id = scalar(service, "SELECT max(id) FROM demographics")
    token = scalar(service, "SELECT last_name FROM demographics WHERE id = :id", id=row_id)
    altered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    execute(service, "UPDATE demographics SET last_name = :value WHERE id = :id", value=altered, id=row_id)

    in_workers = verify_again(service, record.id, processes=2)

    assert in_workers == verify_again(service, record.id)
    assert not in_workers.passed and in_workers.mismatched_rows == 1
    assert in_workers.verified_rows == record.encrypted_records - 1
    assert f"row {row_id} of demographics" in str(in_workers.problem)


def test_a_token_altered_after_the_write_is_opened_and_found_a_mismatch(
    service: MigratorService, openings: list[RowContext]
) -> None:
    record = service.start(DEMOGRAPHICS)
    row_id = scalar(service, "SELECT min(id) FROM demographics")
    token = scalar(service, "SELECT last_name FROM demographics WHERE id = :id", id=row_id)
    # One character of the sealed part changed: still a well-formed token, no longer the one written.
    altered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    execute(service, "UPDATE demographics SET last_name = :value WHERE id = :id", value=altered, id=row_id)
    openings.clear()

    result = verify_again(service, record.id)

    assert not result.passed and result.mismatched_rows == 1
    assert [row.primary_key for row in openings] == [(row_id,)]


def test_rows_recorded_without_a_tokens_digest_are_opened_and_verified(
    service: MigratorService, openings: list[RowContext]
) -> None:
    """Row metadata written before schema version 8 (or re-sealed by a key rotation) has none."""
    record = service.start(DEMOGRAPHICS)
    execute(service, "UPDATE tm_row_metadata SET tokens_digest = NULL")
    openings.clear()

    result = verify_again(service, record.id)

    assert result.passed and result.verified_rows == record.encrypted_records
    assert len(openings) == record.encrypted_records


def test_after_a_key_rotation_the_rows_it_sealed_again_are_opened(
    service: MigratorService, openings: list[RowContext]
) -> None:
    record = service.start(DEMOGRAPHICS)
    rotate_every_key(service)  # (its own verification opened every token it wrote)
    # The digests of the old tokens would describe tokens no longer there: they are gone.
    assert scalar(service, "SELECT count(*) FROM tm_row_metadata WHERE tokens_digest IS NOT NULL") == 0
    openings.clear()

    result = verify_again(service, record.id)

    assert result.passed and result.verified_rows == record.encrypted_records
    assert len(openings) == record.encrypted_records


def test_a_fresh_token_that_does_not_open_to_its_value_is_a_failed_row_never_written(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = scalar(service, "SELECT min(id) FROM demographics")
    execute(service, "UPDATE demographics SET last_name = 'Nowhere-Else' WHERE id = :id", id=broken)
    before = raw_dump(service.engine)
    row_before = stored_row(service, broken)
    opens_to = ciphers._opens_to

    def not_for_that_name(unseal: Any, nonce: bytes, sealed: bytes, associated: bytes, plain: bytes) -> bool:
        return plain != encode_value("Nowhere-Else") and opens_to(unseal, nonce, sealed, associated, plain)

    monkeypatch.setattr(ciphers, "_opens_to", not_for_that_name)
    # One batch at a time: sealed in this process, where the check is the one patched.
    record = service.start({**DEMOGRAPHICS, "max_concurrency": 1})

    assert record.status is Status.COMPLETED and record.failed_records == 1
    [failure] = service.failed_records(record.id)
    assert "did not open to its value" in str(failure) and "last_name" in str(failure)
    after = stored_row(service, broken)  # (beside the companion columns the run added)
    assert {name: after[name] for name in row_before} == row_before
    monkeypatch.setattr(ciphers, "_opens_to", opens_to)
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before
