"""The read API returns the original whether a value is still plaintext or already a token."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tui_migrator.common.errors import DecryptionFailed
from tui_migrator.common.settings import Settings
from tui_migrator.crypto.ciphers import RowContext
from tui_migrator.reader import RecordReader
from tui_migrator.service.facade import MigratorService

pytestmark = BOTH_BACKENDS


def first_row(service: MigratorService, table_name: str) -> dict:
    table = sa.Table(table_name, sa.MetaData(), autoload_with=service.engine)
    with service.engine.connect() as connection:
        return dict(
            connection.execute(sa.select(table).order_by(*table.primary_key.columns).limit(1))
            .mappings()
            .one()
        )


def test_plaintext_values_pass_through_unchanged(service: MigratorService) -> None:
    reader = RecordReader.for_service(service)
    row = first_row(service, "demographics")
    assert reader.read_row("demographics", row) == row


def test_tokens_in_place_and_in_companion_columns_read_back_as_originals(service: MigratorService) -> None:
    reader = RecordReader.for_service(service)
    cipher = service.value_cipher()
    row = first_row(service, "demographics")
    organization = row["organization_id"]
    stored = dict(row)
    # last_name (TEXT) holds its token in place; birth_date (DATE) in its companion column.
    stored["last_name"] = cipher.encrypt(
        row["last_name"], RowContext("demographics", "last_name", (row["id"],), organization)
    )
    stored["birth_date"] = None
    stored["birth_date__tm_token"] = cipher.encrypt(
        row["birth_date"], RowContext("demographics", "birth_date", (row["id"],), organization)
    )
    restored = reader.read_row("demographics", stored)
    assert restored == row
    assert isinstance(restored["birth_date"], date)


def test_read_value_with_a_composite_key(service: MigratorService) -> None:
    reader = RecordReader.for_service(service)
    row = first_row(service, "emergency_contacts")
    key = (row["patient_id"], row["contact_no"])
    token = service.value_cipher().encrypt(
        row["phone"], RowContext("emergency_contacts", "phone", key, row["organization_id"])
    )
    assert (
        reader.read_value(
            token,
            table="emergency_contacts",
            column="phone",
            primary_key=key,
            organization_id=row["organization_id"],
        )
        == row["phone"]
    )


def test_token_read_with_the_wrong_row_context_is_refused(service: MigratorService) -> None:
    reader = RecordReader.for_service(service)
    token = service.value_cipher().encrypt(
        "x", RowContext("demographics", "notes", (1,), "org_charite_berlin")
    )
    with pytest.raises(DecryptionFailed):
        reader.read_value(
            token, table="demographics", column="notes", primary_key=2, organization_id="org_charite_berlin"
        )


def test_reader_open_works_from_a_url(settings: Settings, service: MigratorService) -> None:
    token = service.value_cipher().encrypt(
        "Zoë", RowContext("demographics", "first_name", (5,), "org_pitie_paris")
    )
    with RecordReader.open(settings.effective_database_url, data_dir=settings.data_dir) as reader:
        assert (
            reader.read_value(
                token,
                table="demographics",
                column="first_name",
                primary_key=5,
                organization_id="org_pitie_paris",
            )
            == "Zoë"
        )
