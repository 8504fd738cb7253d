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
        organization_id: str | None,
    ) -> Any:
        """The original value of ``stored``, whether it is plaintext or a token.

        For a column whose tokens live in a companion column (non-text types), pass the
        companion's value when it is not NULL, and the column's own value otherwise.
        """
        if not is_token(stored):
            return stored
        mapped = self._mapping.table(table)
        organization = organization_id or mapped.default_organization
        if not organization:
            raise DecryptionFailed(
                f"The row of {table} with key {primary_key!r} has no organization, so its "
                f"token in '{column}' cannot be matched to a key."
            )
        key = tuple(primary_key) if isinstance(primary_key, (tuple, list)) else (primary_key,)
        return self._cipher.decrypt(stored, RowContext(table, column, key, organization))

    def read_row(self, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``row`` (column name → stored value) with every mapped column decrypted
        and the companion columns removed. The row must include the key and organization."""
        mapped = self._mapping.table(table)
        result = dict(row)
        key = tuple(row[name] for name in mapped.primary_key)
        organization = _organization_of(mapped, row)
        for column in mapped.columns:
            stored = result.get(column.name)
            if column.companion is not None:
                token = result.pop(column.companion, None)
                if token is not None:
                    stored = token
            if column.name in row:
                result[column.name] = self.read_value(
                    stored,
                    table=table,
                    column=column.name,
                    primary_key=key,
                    organization_id=organization,
                )
        return result


def _organization_of(table: ResolvedTable, row: Mapping[str, Any]) -> str | None:
    if table.organization_column is None:
        return table.default_organization
    value = row.get(table.organization_column)
    return value if value not in (None, "") else table.default_organization
