"""Sealing a whole table and unsealing it again gives back every value byte for byte, type included."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS, make_settings, opened_on_mapping
from tests.support.migration_helpers import raw_dump
from tui_migrator.common.errors import MappingError
from tui_migrator.crypto.tokens import is_token
from tui_migrator.reader import RecordReader
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.column_storage import (
    RecordRefused,
    add_companion_columns,
    drop_companion_columns,
    organizations_in,
    reflect,
    seal_row,
    unseal_row,
)
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.mapping import ResolvedMapping, Storage, load_mapping_file, resolve_mapping

BATCH = 50


def seal_everything(service: MigratorService, mapping: ResolvedMapping) -> int:
    cipher = service.value_cipher()
    sealed = 0
    for mapped in mapping.tables:
        with service.engine.begin() as connection:
            access = add_companion_columns(connection, reflect(connection, mapped))
            organizations = organizations_in(connection, access)
        cipher.prepare(organizations)
        after = None
        while True:
            with serialized_write(service.engine) as connection:
                rows = connection.execute(access.select_rows(after=after, limit=BATCH)).mappings().all()
                if not rows:
                    break
                sealer = cipher.table_sealer(mapped.name)
                updates = [
                    s.parameters for s in (seal_row(access, row, sealer) for row in rows) if s is not None
                ]
                if updates:
                    connection.execute(access.update_statement(), updates)
                sealed += len(updates)
                after = tuple(rows[-1][name] for name in mapped.primary_key)
    return sealed


def unseal_everything(service: MigratorService, mapping: ResolvedMapping) -> None:
    cipher = service.value_cipher()
    for mapped in mapping.tables:
        with serialized_write(service.engine) as connection:
            access = reflect(connection, mapped)
            rows = connection.execute(access.select_rows()).mappings().all()
            updates = [p for p in (unseal_row(access, row, cipher) for row in rows) if p is not None]
            if updates:
                connection.execute(access.update_statement(), updates)
            drop_companion_columns(connection, access)


def assert_no_plaintext_left(service: MigratorService, mapping: ResolvedMapping) -> None:
    with service.engine.connect() as connection:
        for mapped in mapping.tables:
            access = reflect(connection, mapped)
            for row in connection.execute(access.select_rows()).mappings():
                for column in mapped.columns:
                    if column.storage is Storage.IN_PLACE:
                        assert row[column.name] is None or is_token(row[column.name])
                    else:
                        assert row[column.name] is None
                        assert row[column.companion] is None or is_token(row[column.companion])


@BOTH_BACKENDS
def test_demo_tables_seal_and_unseal_byte_for_byte(service: MigratorService) -> None:
    mapping = service.mapping()
    before = raw_dump(service.engine)
    assert seal_everything(service, mapping) > 400  # 60 patients: every row with a non-NULL value
    assert_no_plaintext_left(service, mapping)
    assert raw_dump(service.engine) != before
    assert seal_everything(service, mapping) == 0  # idempotent: nothing sealed twice
    unseal_everything(service, mapping)
    assert raw_dump(service.engine) == before


@BOTH_BACKENDS
def test_reads_during_sealing_see_the_originals(service: MigratorService) -> None:
    mapping = service.mapping()
    table = mapping.table("medication_data")
    reader = RecordReader.for_service(service)
    with service.engine.connect() as connection:
        originals = [
            dict(r)
            for r in connection.execute(sa.text("SELECT * FROM medication_data ORDER BY id")).mappings()
        ]
    seal_everything(service, ResolvedMapping(mapping.source, (table,)))
    # The application reads typed values through its own column types; the reader returns them.
    typed = sa.Table("medication_data", sa.MetaData(), autoload_with=service.engine)
    with service.engine.connect() as connection:
        rows = connection.execute(sa.select(typed).order_by(typed.c.id)).mappings().all()
    for original, row in zip(originals, rows, strict=True):
        restored = reader.read_row("medication_data", dict(row))
        assert set(restored) == set(original)
        assert restored["drug_name"] == original["drug_name"]
        if original["dose_mg"] is not None:
            assert Decimal(str(restored["dose_mg"])) == Decimal(str(original["dose_mg"]))


CLINIC_MAPPING = """
[[tables]]
name = "visits"
category = "MOTOR_SYMPTOMS"
primary_key = ["patient", "encounter", "code"]
organization_column = "site"
default_organization = "org_fallback"
columns = ["summary", "score", "seen_on", "payload", "blob", "ratio", "flag", "short_code"]
"""


@pytest.fixture
def clinic(tmp_path: Path) -> tuple[MigratorService, ResolvedMapping]:
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE visits (patient TEXT, encounter INTEGER, code TEXT, site TEXT, summary TEXT, "
            "score INTEGER, seen_on DATE, payload JSON, blob BLOB, ratio NUMERIC(6, 3), flag BOOLEAN, "
            "short_code VARCHAR(8), PRIMARY KEY (patient, encounter, code))"
        )
        rows = [
            (
                "p-1",
                1,
                "A",
                "org_x",
                'Ærøskøbing, notes\n"quoted"',
                3,
                "2024-01-05",
                '{"a": [1, 2.5]}',
                b"\x00\xff",
                1.25,
                1,
                "AB12",
            ),
            (
                "p-1",
                2,
                "A",
                "org_x",
                "",
                0,
                "2024-1-5",
                "[]",
                b"",
                100,
                0,
                "",
            ),  # odd date text, integer NUMERIC
            (
                "p-2",
                1,
                "B",
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
            ),  # NULL organization → default
            (
                "p-3",
                7,
                "C",
                "",
                "李小龙 🧠",
                -5,
                738000,
                "null",
                bytes(range(256)),
                "7.500",
                1,
                "x",
            ),  # mixed storage classes
            ("p-4", 1, "D", "org_y", 42, 3.5, "not a date", 1, "text in a blob column", -0.0, 2, 12345678),
        ]
        connection.exec_driver_sql("INSERT INTO visits VALUES (" + ", ".join("?" * 12) + ")", rows)
    engine.dispose()
    with opened_on_mapping(tmp_path, url, CLINIC_MAPPING) as service:
        yield service, service.mapping()


def test_mapped_table_with_composite_text_key_and_every_storage_class_round_trips(
    clinic: tuple[MigratorService, ResolvedMapping],
) -> None:
    service, mapping = clinic
    before = raw_dump(service.engine)
    assert seal_everything(service, mapping) == 4  # the all-NULL row has nothing to seal
    assert_no_plaintext_left(service, mapping)
    unseal_everything(service, mapping)
    assert raw_dump(service.engine) == before


def test_row_without_organization_and_no_default_is_refused_with_its_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE r (id TEXT PRIMARY KEY, org TEXT, note TEXT)")
        connection.exec_driver_sql("INSERT INTO r VALUES ('k1', NULL, 'secret note')")
    engine.dispose()
    (tmp_path / "m.toml").write_text(
        '[[tables]]\nname="r"\ncategory="DEMOGRAPHICS"\nprimary_key="id"\norganization_column="org"\ncolumns=["note"]\n'
    )
    with MigratorService.open(
        make_settings(tmp_path, database_url=url, schema_path=tmp_path / "m.toml"),
        user="a",
        may_set_up=True,
    ) as service:
        mapped = service.mapping().table("r")
        with service.engine.connect() as connection:
            access = reflect(connection, mapped)
            row = connection.execute(access.select_rows()).mappings().one()
        with pytest.raises(RecordRefused, match="r with key k1 has no organization in 'org'") as refused:
            seal_row(access, row, service.value_cipher().table_sealer("r"))
        assert "secret note" not in str(refused.value)


def test_not_null_typed_column_is_refused_at_mapping_time(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'n.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE s (id INTEGER PRIMARY KEY, score INTEGER NOT NULL)")
    (tmp_path / "m.toml").write_text(
        '[[tables]]\nname="s"\ncategory="MOTOR_SYMPTOMS"\nprimary_key="id"\ncolumns=["score"]\n'
    )
    with pytest.raises(MappingError, match="'score' is INTEGER NOT NULL.*Make 'score' nullable"):
        resolve_mapping(load_mapping_file(tmp_path / "m.toml"), engine, source="m.toml")
    engine.dispose()


def test_uuid_values_survive_on_the_typed_path(service: MigratorService) -> None:
    """PostgreSQL hands the codec typed values such as UUID; they must come back as UUID."""
    from tui_migrator.crypto.ciphers import RowContext

    value = uuid.uuid4()
    context = RowContext("visits", "ref", ("p",), "org")
    assert service.value_cipher().decrypt(service.value_cipher().encrypt(value, context), context) == value
