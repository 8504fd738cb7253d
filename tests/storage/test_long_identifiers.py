"""Generated identifiers (companion columns, backup tables) fit PostgreSQL's 63-byte limit.

A column whose type cannot hold a token gets a companion ``<column>__tm_token``; for a long
column name that is more than 63 bytes, which PostgreSQL would truncate. Such a name is shortened
with a hash of the whole name — deterministic, counted in UTF-8 bytes, distinct for names that
share a long prefix — while a name that fits (and every companion on SQLite, which has no limit
and whose existing companions keep their names) stays the plain ``<column>__tm_token``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.databases import ADMIN, opened_on_mapping
from tests.support.migration_helpers import assert_fully_encrypted, raw_dump
from tui_migrator.engine.backup import backup_table_name
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.column_storage import reflect
from tui_migrator.storage.identifiers import HASH_DIGITS, MAX_IDENTIFIER_BYTES, fit_identifier
from tui_migrator.storage.mapping import COMPANION_SUFFIX, ResolvedColumn, Storage
from tui_migrator.storage.migration_status import Status


def _size(name: str) -> int:
    return len(name.encode("utf-8"))


# -- the helper ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "score__tm_token", "x" * 63, "é" * 31 + "x"])
def test_a_name_that_fits_is_unchanged(name: str) -> None:
    assert _size(name) <= MAX_IDENTIFIER_BYTES
    assert fit_identifier(name) == name


@pytest.mark.parametrize("length", [64, 65, 70, 200, 5000])
def test_a_long_name_is_cut_to_63_bytes_with_a_hash(length: int) -> None:
    name = "c" * length
    fitted = fit_identifier(name)
    assert _size(fitted) == MAX_IDENTIFIER_BYTES
    head, _, digest = fitted.rpartition("_")
    assert head == name[: MAX_IDENTIFIER_BYTES - HASH_DIGITS - 1]
    assert len(digest) == HASH_DIGITS and all(c in "0123456789abcdef" for c in digest)


@pytest.mark.parametrize(
    "name",
    [
        "é" * 32,  # 32 characters, 64 bytes: fits in characters, not in bytes
        "ö" * 27 + "x" + "ö" * 20,  # the cut falls inside a two-byte character
        "医疗记录" * 10,  # three-byte characters
        "🧠" * 20,  # four-byte characters
        "a" + "🧠" * 20,
        "ab" + "🧠" * 20,
        "abc" + "🧠" * 20,
    ],
)
def test_multibyte_names_are_counted_in_bytes_and_cut_between_characters(name: str) -> None:
    fitted = fit_identifier(name)
    assert _size(fitted) <= MAX_IDENTIFIER_BYTES
    assert fitted != name
    head = fitted[: -(HASH_DIGITS + 1)]
    assert name.startswith(head)  # whole characters only: no half character, no replacement
    assert fitted.encode("utf-8").decode("utf-8") == fitted
    # As long as it can be: one more character of the name would not fit.
    assert _size(head) + _size(name[len(head)]) > MAX_IDENTIFIER_BYTES - HASH_DIGITS - 1


def test_long_names_sharing_a_prefix_do_not_collide() -> None:
    prefix = "p" * 60
    names = [prefix + suffix for suffix in ("a", "b", "aa", "ab", "_1", "_2", "xxxxxxxxxx")]
    names += [prefix + "é" * 3, prefix + "ë" * 3]
    fitted = [fit_identifier(name) for name in names]
    assert len(set(fitted)) == len(names)
    assert all(_size(name) <= MAX_IDENTIFIER_BYTES for name in fitted)
    companions = {fit_identifier(name + COMPANION_SUFFIX) for name in names}
    assert len(companions) == len(names)


def test_the_name_is_the_same_in_every_process() -> None:
    names = ["x" * 64, "visit_" + "é" * 40, "医疗记录" * 10 + COMPANION_SUFFIX]
    script = (
        "from tui_migrator.storage.identifiers import fit_identifier\n"
        f"for name in {names!r}:\n"
        "    print(fit_identifier(name).encode('utf-8').hex())\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout.split()
        for seed in ("1", "2")
    ]
    here = [fit_identifier(name).encode("utf-8").hex() for name in names]
    assert runs[0] == runs[1] == here
    # Pinned: the existing scheme (first 54 bytes, '_', 8 hex digits of SHA-256) names backup
    # tables that already exist; it must never change.
    assert fit_identifier("x" * 64) == "x" * 54 + "_" + "7ce10097"


def test_a_limit_with_no_room_for_the_hash_is_refused() -> None:
    with pytest.raises(ValueError):
        fit_identifier("x" * 20, limit=HASH_DIGITS + 1)


def test_backup_table_names_use_the_same_rule() -> None:
    assert backup_table_name("migration_abc", "visits") == "tm_bk_abc_visits"
    long_ascii = backup_table_name("migration_20240101_abcdef", "t" * 60)
    assert long_ascii == fit_identifier("tm_bk_20240101_abcdef_" + "t" * 60)
    # 40 characters but 80 bytes: the old character count let this through to be truncated.
    multibyte = backup_table_name("migration_20240101_abcdef", "é" * 40)
    assert _size(multibyte) <= MAX_IDENTIFIER_BYTES
    assert multibyte != backup_table_name("migration_20240101_abcdef", "é" * 39 + "ë")


def test_companion_names_fit_the_limit_they_are_given() -> None:
    def column(name: str, limit: int | None) -> ResolvedColumn:
        return ResolvedColumn(name, "INTEGER", True, Storage.COMPANION, identifier_limit=limit)

    assert column("score", MAX_IDENTIFIER_BYTES).companion == "score__tm_token"
    assert column("s" * 53, MAX_IDENTIFIER_BYTES).companion == "s" * 53 + COMPANION_SUFFIX  # 63 bytes
    long_name = "s" * 54
    assert column(long_name, MAX_IDENTIFIER_BYTES).companion == fit_identifier(long_name + COMPANION_SUFFIX)
    assert column(long_name, None).companion == long_name + COMPANION_SUFFIX  # SQLite: no limit
    in_place = ResolvedColumn(
        long_name, "TEXT", True, Storage.IN_PLACE, identifier_limit=MAX_IDENTIFIER_BYTES
    )
    assert in_place.companion is None


# -- end to end ---------------------------------------------------------------------------------

# 60 bytes each: the column names fit, their companions (70 bytes) do not.
LONG_SCORE = "visit_score_measured_by_the_attending_neurologist_at_intake1"
LONG_SCORE_TWIN = "visit_score_measured_by_the_attending_neurologist_at_intake2"
LONG_DAY = "date_of_the_visit_" + "ö" * 21  # 39 characters, 60 bytes
SHORT = "seen_on"
TABLE = "assessments_with_rather_long_column_names"

MAPPING = f"""
[[tables]]
name = "{TABLE}"
category = "MOTOR_SYMPTOMS"
primary_key = "id"
organization_column = "site"
default_organization = "walk_in"
columns = ["{LONG_SCORE}", "{LONG_SCORE_TWIN}", "{LONG_DAY}", "{SHORT}", "note"]
"""


@pytest.fixture
def clinic(empty_database_url: str, tmp_path: Path) -> Iterator[MigratorService]:
    assert {_size(name) for name in (LONG_SCORE, LONG_SCORE_TWIN, LONG_DAY)} == {60}
    engine = sa.create_engine(empty_database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f'CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, site TEXT, "{LONG_SCORE}" INTEGER, '
                f'"{LONG_SCORE_TWIN}" BIGINT, "{LONG_DAY}" DATE, "{SHORT}" DATE, note TEXT)'
            )
        )
        connection.execute(
            sa.text(
                f"INSERT INTO {TABLE} VALUES (:id, :site, :score, :twin, CAST(:day AS DATE), :seen, :note)"
            ),
            [
                {
                    "id": n,
                    "site": ["org_a", "org_b", None][n % 3],
                    "score": n * 7 if n % 4 else None,
                    "twin": -(2**40) - n,
                    "day": f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}" if n % 5 else None,
                    "seen": f"2023-{1 + n % 12:02d}-{1 + n % 28:02d}",
                    "note": f"visit {n}: Ærøskøbing 🧠",
                }
                for n in range(40)
            ],
        )
    engine.dispose()
    with opened_on_mapping(tmp_path, empty_database_url, MAPPING, user=ADMIN) as opened:
        yield opened


@pytest.mark.backends("sqlite", "postgresql")
def test_long_column_names_migrate_and_roll_back_byte_for_byte(clinic: MigratorService, backend: str) -> None:
    before = raw_dump(clinic.engine)
    mapped = clinic.mapping().table(TABLE)
    companions = {column.name: column.companion for column in mapped.columns}
    assert companions[SHORT] == SHORT + COMPANION_SUFFIX
    assert companions["note"] is None
    long_names = (LONG_SCORE, LONG_SCORE_TWIN, LONG_DAY)
    if backend == "postgresql":
        for name in long_names:
            assert companions[name] == fit_identifier(name + COMPANION_SUFFIX) != name + COMPANION_SUFFIX
            assert _size(str(companions[name])) <= MAX_IDENTIFIER_BYTES
        assert companions[LONG_SCORE] != companions[LONG_SCORE_TWIN]
    else:
        # SQLite has no identifier limit: companions keep the plain name existing databases use.
        for name in long_names:
            assert companions[name] == name + COMPANION_SUFFIX

    record = clinic.start({"batch_size": 7, "max_concurrency": 2})
    assert record.status is Status.COMPLETED, record.error_message
    assert record.failed_records == 0
    assert record.encrypted_records == 40
    assert record.verification and record.verification["passed"]
    assert assert_fully_encrypted(clinic, clinic.mapping(), before) == 40
    with clinic.engine.connect() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns(TABLE)}
        assert set(companions.values()) - {None} <= columns
        access = reflect(connection, mapped)
        assert all(access.has_companion(column) for column in mapped.columns if column.companion)
        tokens = connection.execute(
            sa.select(sa.func.count()).where(access.table.c[str(companions[LONG_SCORE_TWIN])].is_not(None))
        ).scalar_one()
        assert tokens == 40
        assert (
            connection.execute(
                sa.select(sa.func.count()).where(access.table.c[LONG_SCORE_TWIN].is_not(None))
            ).scalar_one()
            == 0
        )

    rolled, result = clinic.rollback(record.id, confirm=True)
    assert rolled.status is Status.ROLLED_BACK
    assert result.restored_rows == 40
    assert raw_dump(clinic.engine) == before  # values, their types, and no companion left
