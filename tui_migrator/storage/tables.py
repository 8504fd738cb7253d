"""The tool's own tables, created beside the user's data with a ``tm_`` prefix.

Only these tables and, during a migration, the mapped columns are ever written. The audit table
is append-only: triggers on each dialect reject UPDATE and DELETE, so altering history needs
DDL rights and leaves a break that ``audit --verify`` finds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tui_migrator.common.errors import ConfigError
from tui_migrator.storage import audit_triggers
from tui_migrator.storage.database import serialized_write

# Versions 2 to 4 added nullable columns only (2: tm_row_metadata.sealed_columns,
# tm_migrations.swept_at and .sweep; 3: tm_migrations.phase_progress and .rollback_progress;
# 4: tm_migrations.claim_epoch, tm_operators.proof); version 5 added a table, tm_api_tokens;
# version 6 a nullable column again, tm_migrations.pause_reason; version 7 tm_migrations.kind
# (NULL: an encryption migration, the only kind before); version 8 tm_row_metadata.tokens_digest
# (NULL: verification opens the row's tokens, as it did for every row before); version 9 a table,
# tm_shared_windows; version 10 tm_checkpoints.backup_rows and .backup_digest (NULL: a batch of a
# version that copied the backups in a stage of their own, before any batch).
# upgrade_tool_tables adds the tables and columns an older database lacks.
SCHEMA_VERSION = "10"
TABLE_PREFIX = "tm_"

metadata = sa.MetaData()


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes on every dialect (SQLite has no time zone type, so store naive UTC)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UtcDateTime needs an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


meta_table = sa.Table(
    "tm_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

operators_table = sa.Table(
    "tm_operators",
    metadata,
    sa.Column("username", sa.String(128), primary_key=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("granted_by", sa.String(128), nullable=False),
    sa.Column("granted_at", UtcDateTime, nullable=False),
    # HMAC over the row under a key derived from the master key (storage/operators.py): a row
    # inserted or edited by a database writer does not verify and grants nothing. Version 4.
    sa.Column("proof", sa.String(64), nullable=True),
)

# Operators' API tokens (storage/api_tokens.py). Never the token: its public id, and an HMAC of
# its secret bound to the id, operator, creation and expiry under a key derived from the master
# key, so a database writer can neither mint a token nor move one to another operator or date.
# The HMAC is erased when the token is revoked. Schema version 5.
api_tokens_table = sa.Table(
    "tm_api_tokens",
    metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("operator", sa.String(128), nullable=False, index=True),
    sa.Column("secret_hmac", sa.String(64), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Column("revoked_by", sa.String(128), nullable=True),
)

data_keys_table = sa.Table(
    "tm_data_keys",
    metadata,
    sa.Column("key_id", sa.String(48), primary_key=True),
    sa.Column("organization_id", sa.String(255), nullable=False),
    # One generation per organization at a time: the unique pair is what stops two processes
    # from each creating a first key for the same organization.
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("algorithm", sa.String(32), nullable=False),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.UniqueConstraint("organization_id", "generation", name="tm_data_keys_org_generation"),
)

audit_table = sa.Table(
    "tm_audit",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.String(32), nullable=False, unique=True),
    sa.Column("operation", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("success", sa.Boolean, nullable=False),
    # Kept as the exact text that was hashed, so verification never depends on how a driver
    # round-trips timestamps or JSON.
    sa.Column("timestamp", sa.String(40), nullable=False),
    sa.Column("migration_id", sa.String(64), nullable=True, index=True),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("previous_hash", sa.String(64), nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.Column("proof", sa.String(64), nullable=False),
)

migrations_table = sa.Table(
    "tm_migrations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("phase", sa.String(32), nullable=True),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=True),
    sa.Column("completed_at", UtcDateTime, nullable=True),
    # The worker that runs the migration proves it is alive by moving this forward.
    sa.Column("heartbeat_at", UtcDateTime, nullable=True),
    sa.Column("worker", sa.String(128), nullable=True),
    sa.Column("total_records", sa.Integer, nullable=False, default=0),
    sa.Column("skipped_records", sa.Integer, nullable=False, default=0),
    sa.Column("estimated_seconds", sa.Float, nullable=True),
    # Requests from any process; the worker acts on them between batches.
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("pause_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("cancel_reason", sa.Text, nullable=True),
    sa.Column("cancelled_at", UtcDateTime, nullable=True),
    sa.Column("cancelled_by", sa.String(128), nullable=True),
    sa.Column("paused_seconds", sa.Float, nullable=False, default=0.0),
    sa.Column("rate_per_second", sa.Float, nullable=True),
    sa.Column("batch_size_current", sa.Integer, nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("warnings", sa.Text, nullable=False, default="[]"),
    sa.Column("phase_seconds", sa.Text, nullable=False, default="{}"),
    sa.Column("verification", sa.Text, nullable=True),
    sa.Column("rolled_back_at", UtcDateTime, nullable=True),
    sa.Column("rollback_seconds", sa.Float, nullable=True),
    # When the plaintext left in the database files was last swept away, and what the sweep
    # proved (JSON); NULL until a sweep ran. Added in schema version 2.
    sa.Column("swept_at", UtcDateTime, nullable=True),
    sa.Column("sweep", sa.Text, nullable=True),
    # Progress inside a phase that is not batch processing (backup, verification), as JSON
    # {"phase", "done", "total", "ratePerSecond", "at"}; NULL outside them. Schema version 3.
    sa.Column("phase_progress", sa.Text, nullable=True),
    # A rollback under way or stopped part-way, as JSON {"startedAt", "heartbeatAt",
    # "restoredRows", "table", "tablesDone", "tablesTotal", "pid", "host"}; NULL before the
    # first rollback. Schema version 3.
    sa.Column("rollback_progress", sa.Text, nullable=True),
    # Raised by every claim (a worker's run, a rollback): a worker writes only while the epoch
    # is still the one its claim set, so one that merely looked dead cannot write after another
    # took over (storage/migration_claims.py). NULL (before any claim) counts as 0. Version 4.
    sa.Column("claim_epoch", sa.Integer, nullable=True),
    # Why a paused worker waits when it paused itself: outside its maintenance window, or before
    # its scheduled start (common/windows.py); NULL for an operator's pause. Schema version 6.
    sa.Column("pause_reason", sa.Text, nullable=True),
    # What the migration does (storage/migration_status.MigrationKind): NULL or "encryption"
    # seals plaintext; "rotation" re-seals tokens under a new data key generation. Version 7.
    sa.Column("kind", sa.String(16), nullable=True),
)

migration_tables_table = sa.Table(
    "tm_migration_tables",
    metadata,
    sa.Column("migration_id", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(255), primary_key=True),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("total_records", sa.Integer, nullable=False, default=0),
    sa.Column("encrypted_records", sa.Integer, nullable=False, default=0),
    # Key of the last row of the last batch committed in order: resume starts after it.
    sa.Column("checkpoint_key", sa.Text, nullable=True),
    sa.Column("done", sa.Boolean, nullable=False, default=False),
    sa.Column("backup_table", sa.String(63), nullable=True),
    sa.Column("backup_rows", sa.Integer, nullable=True),
    sa.Column("backup_digest", sa.String(64), nullable=True),
    sa.Column("backup_verified", sa.Boolean, nullable=False, default=False),
    # Companion columns this migration added; rollback drops only these, and only when empty.
    sa.Column("companions_added", sa.Text, nullable=False, default="[]"),
)

# One row per table a live migration holds: the primary key is what refuses a second one.
table_locks_table = sa.Table(
    "tm_table_locks",
    metadata,
    sa.Column("table_name", sa.String(255), primary_key=True),
    sa.Column("migration_id", sa.String(64), nullable=False),
)

row_metadata_table = sa.Table(
    "tm_row_metadata",
    metadata,
    sa.Column("migration_id", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(255), primary_key=True),
    sa.Column("row_key", sa.Text, primary_key=True),
    sa.Column("key_id", sa.String(48), nullable=False),
    sa.Column("algorithm", sa.String(32), nullable=False),
    sa.Column("encrypted_at", UtcDateTime, nullable=False),
    # HMAC-SHA-256 of the original values this migration sealed in the row (see
    # engine.sealed_cells); NULL sealed_columns marks a version-1 row, whose digest covers
    # every mapped column.
    sa.Column("digest", sa.String(64), nullable=False),
    # JSON {column: nonce of the token this migration wrote there}: which cells are this
    # migration's, so verification and rollback touch exactly those. Added in schema version 2.
    sa.Column("sealed_columns", sa.Text, nullable=True),
    # HMAC-SHA-256 of the tokens this migration wrote in those cells, each opened to its
    # original before the write (storage.sealed_cells): verification finds them unchanged without
    # opening them again. NULL for rows written before schema version 8 and rows whose tokens a
    # key rotation replaced: verification opens those. Added in schema version 8.
    sa.Column("tokens_digest", sa.String(64), nullable=True),
)

failed_records_table = sa.Table(
    "tm_failed_records",
    metadata,
    sa.Column("migration_id", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(255), primary_key=True),
    sa.Column("row_key", sa.Text, primary_key=True),
    sa.Column("key_display", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("resolved", sa.Boolean, nullable=False, default=False),
    sa.Column("last_failed_at", UtcDateTime, nullable=False),
)

# The batch log: one row per committed batch (the rows it read). Its SQL name is historical; a
# table's resume position is ``tm_migration_tables.checkpoint_key``, not this.
batch_log_table = sa.Table(
    "tm_checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("migration_id", sa.String(64), nullable=False, index=True),
    sa.Column("table_name", sa.String(255), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("committed_at", UtcDateTime, nullable=False),
    # What the batch did to the migration's backup copy of the table, in the same transaction
    # as its rows (engine/backup.py): backups added, and the change to the sum of the
    # copy's stored digests (64 hex digits, modulo 2**256). Added in schema version 10.
    sa.Column("backup_rows", sa.Integer, nullable=True),
    sa.Column("backup_digest", sa.String(64), nullable=True),
)

# The windows of keys of a backup copy's read-back or a verification, published by the
# migration's owner so that a joined worker can take some (storage/shared_windows.py; PostgreSQL,
# where workers can join). Kept while their step runs. Added in schema version 9.
shared_windows_table = sa.Table(
    "tm_shared_windows",
    metadata,
    sa.Column("migration_id", sa.String(64), primary_key=True),
    sa.Column("step", sa.String(32), primary_key=True),
    sa.Column("table_name", sa.String(255), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    # The window's first and last key (crypto.codec.encode_key).
    sa.Column("first_key", sa.Text, nullable=False),
    sa.Column("last_key", sa.Text, nullable=False),
    # NULL while no worker has taken the window; the worker that took it after.
    sa.Column("taken_by", sa.String(255), nullable=True),
    # What the window came to (JSON), once a joined worker has done it.
    sa.Column("result", sa.Text, nullable=True),
)


META_SCHEMA_VERSION = "schema_version"
META_KEY_FINGERPRINT = "master_key_fingerprint"
# The derivation root wrapped by the current master key, once the master key was rotated
# (storage/master_key_rotation.py); absent before.
META_DERIVATION_ROOT = "derivation_root"
META_AUDIT_HEAD = "audit_head"
# The audit chain's random id with its proof (storage/audit.py): anchor lines name their chain.
META_AUDIT_CHAIN = "audit_chain"
META_CREATED_BY = "created_by"
# The commit cost the last calibration by an operator who may write measured (JSON
# {"commitSeconds", "at"}): estimates by those who may not reuse it (engine/estimate.py).
META_LAST_CALIBRATION = "last_calibration"
# Present only in a database tui-migrator built as its demo (JSON: patients, organizations, seed,
# builtAt); 'demo' replaces no database without it (service/demo_admin.py).
META_DEMO_DATABASE = "demo_database"


def tool_tables_exist(engine: Engine) -> bool:
    return sa.inspect(engine).has_table(meta_table.name)


def read_meta(connection: Connection, name: str) -> str | None:
    return connection.execute(
        sa.select(meta_table.c.value).where(meta_table.c.name == name)
    ).scalar_one_or_none()


def write_meta(connection: Connection, name: str, value: str) -> None:
    updated = connection.execute(sa.update(meta_table).where(meta_table.c.name == name).values(value=value))
    if updated.rowcount == 0:
        connection.execute(sa.insert(meta_table).values(name=name, value=value))


def create_tool_tables(engine: Engine, *, key_fingerprint: str, created_by: str) -> bool:
    """Create the tool's tables and triggers if missing. Returns True if this call created them.

    Runs under the database's write lock so two processes starting on a fresh database at the
    same moment cannot both create (and both bootstrap) the schema.
    """
    with serialized_write(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('tui_migrator_schema'))"))
        if sa.inspect(connection).has_table(meta_table.name):
            return False
        metadata.create_all(connection)
        audit_triggers.create(connection)
        connection.execute(
            sa.insert(meta_table),
            [
                {"name": META_SCHEMA_VERSION, "value": SCHEMA_VERSION},
                {"name": META_KEY_FINGERPRINT, "value": key_fingerprint},
                {"name": META_CREATED_BY, "value": created_by},
            ],
        )
        return True


def schema_is_current(engine: Engine) -> bool:
    with engine.connect() as connection:
        return read_meta(connection, META_SCHEMA_VERSION) == SCHEMA_VERSION


def upgrade_tool_tables(engine: Engine, *, then: Callable[[Connection], object] | None = None) -> None:
    """Bring a database set up by an older version to this schema.

    Every change since version 1 added nullable columns or a whole table, so an upgrade creates
    the tables missing, adds the columns the others lack and records the version; a database
    already current costs one read. ``then`` fills the new columns, in the upgrade's transaction
    (it needs keys this module has not)."""
    with engine.connect() as connection:
        if read_meta(connection, META_SCHEMA_VERSION) == SCHEMA_VERSION:
            return
    with serialized_write(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('tui_migrator_schema'))"))
        if read_meta(connection, META_SCHEMA_VERSION) == SCHEMA_VERSION:
            return
        inspector = sa.inspect(connection)
        missing = [table for table in metadata.sorted_tables if not inspector.has_table(table.name)]
        metadata.create_all(connection, tables=missing)
        created = {table.name for table in missing}
        quote = connection.dialect.identifier_preparer.quote
        for table in metadata.sorted_tables:
            if table.name in created:
                continue
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    if not column.nullable:
                        raise ConfigError(f"Cannot add the required column {table.name}.{column.name}.")
                    kind = column.type.compile(dialect=connection.dialect)
                    connection.exec_driver_sql(
                        f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {kind}"
                    )
        if then is not None:
            then(connection)
        write_meta(connection, META_SCHEMA_VERSION, SCHEMA_VERSION)


def drop_tool_tables(engine: Engine) -> None:
    """Drop every tool table (used only when the demo database is rebuilt)."""
    with engine.begin() as connection:
        metadata.drop_all(connection, checkfirst=True)
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("DROP FUNCTION IF EXISTS tm_audit_append_only()")
