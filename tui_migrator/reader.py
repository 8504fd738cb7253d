"""The read API applications use during and after a migration.

While a table is being migrated some rows hold plaintext and some hold tokens; afterwards all of
them hold tokens. An application that reads through :class:`RecordReader` gets the original
value either way, which is what keeps reads available with zero downtime::

    from tui_migrator.reader import RecordReader

    with RecordReader.open("postgresql+psycopg://app@db/parkml", schema="mapping.toml") as reader:
        row = reader.read_row("demographics", row_from_your_query)        # whole row
        name = reader.read_value(stored, table="demographics", column="last_name",
                                 primary_key=42, organization_id="org_a")  # one value
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tui_migrator.common.errors import DecryptionFailed
from tui_migrator.common.settings import Settings
from tui_migrator.crypto.ciphers import RowContext, ValueCipher
from tui_migrator.crypto.tokens import is_token
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.column_storage import RecordRefused, cell_token, organization_id
from tui_migrator.storage.mapping import ResolvedMapping, ResolvedTable
from tui_migrator.storage.operators import Action


class RecordReader:
    """Turns stored values of mapped columns back into their originals."""

    def __init__(
        self, cipher: ValueCipher, mapping: ResolvedMapping, *, on_close: Callable[[], None] | None = None
    ) -> None:
        self._cipher = cipher
        self._mapping = mapping
        self._on_close = on_close

    @classmethod
    def open(
        cls,
        database_url: str | None = None,
        *,
        schema: str | Path | None = None,
        data_dir: str | Path | None = None,
    ) -> RecordReader:
        """A reader for a database, with the master key from the environment or key file.
        Closing the reader closes its connection to the database."""
        settings = Settings.resolve(
            {"database_url": database_url, "schema_path": schema, "data_dir": data_dir}
        )
        service = MigratorService.open(settings)
        try:
            return cls.for_service(service, on_close=service.close)
        except BaseException:
            service.close()
            raise

    @classmethod
    def for_service(
        cls, service: MigratorService, *, on_close: Callable[[], None] | None = None
    ) -> RecordReader:
        """A reader on an open service, for an operator allowed to read (refusals are audited)."""
        service.authorize(Action.READ, "read records")
        return cls(service.value_cipher(), service.mapping(), on_close=on_close)

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()

    def read_value(
        self,
        stored: Any,
        *,
        table: str,
        column: str,
        primary_key: Any,
        organization_id: Any,
    ) -> Any:
        """The original value of ``stored``, whether it is plaintext or a token.

        Text in token form that does not open (a damaged token) raises DecryptionFailed: it is
        never returned as if it were the value. For a column whose tokens live in a companion
        column (non-text types), prefer :meth:`read_row`, which knows which of the two holds
        the current value.
        """
        if not is_token(stored):
            return stored
        mapped = self._mapping.table(table)
        organization = organization_id_of(mapped, organization_id)
        if not organization:
            raise DecryptionFailed(
                f"The row of {table} with key {primary_key!r} has no organization, so its "
                f"token in '{column}' cannot be matched to a key."
            )
        key = tuple(primary_key) if isinstance(primary_key, (tuple, list)) else (primary_key,)
        return self._cipher.decrypt(stored, RowContext(table, column, key, organization))

    def read_row(self, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``row`` (column name → stored value) with every mapped column decrypted
        and the companion columns removed. The row must include the key and organization.

        A non-NULL value beside a companion token was written after the migration and is the
        current one; the token is of the value it replaced."""
        mapped = self._mapping.table(table)
        result = dict(row)
        key = tuple(row[name] for name in mapped.primary_key)
        organization = (
            organization_id_of(mapped, row.get(mapped.organization_column))
            if mapped.organization_column
            else mapped.default_organization
        )
        for column in mapped.columns:
            if column.companion is not None:
                result.pop(column.companion, None)
            if column.name not in row:
                continue
            token = cell_token(column, row)
            if token is None:
                result[column.name] = row[column.name]
                continue
            if not organization:
                raise DecryptionFailed(
                    f"The row of {table} with key {key!r} has no organization, so its token in "
                    f"'{column.name}' cannot be matched to a key."
                )
            result[column.name] = self._cipher.decrypt(
                token, RowContext(table, column.name, key, organization)
            )
        return result


def organization_id_of(mapped: ResolvedTable, value: Any) -> str | None:
    """The engine's organization rule for a value of the organization column (or an id)."""
    try:
        return organization_id(mapped, value)
    except RecordRefused as error:
        raise DecryptionFailed(error.message) from None
