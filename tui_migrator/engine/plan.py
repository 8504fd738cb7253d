"""A migration's plan: the validated configuration, the rows it would touch, and which of its
tables another migration holds. Estimate, pre-flight checks and start all begin from one, so
they judge the same scope."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from tui_migrator.common.migration_config import MigrationConfig
from tui_migrator.engine.scope import MigrationScope, analyse
from tui_migrator.storage import table_locks
from tui_migrator.storage.mapping import ResolvedMapping


@dataclass(frozen=True)
class Plan:
    config: MigrationConfig
    scope: MigrationScope
    # table name → id of the migration that holds it
    held: dict[str, str]


def plan_migration(engine: Engine, mapping: ResolvedMapping, config: MigrationConfig) -> Plan:
    """Resolve ``config``'s scope and the locks on it, writing nothing."""
    with engine.connect() as connection:
        scope = analyse(connection, mapping, config)
        held = table_locks.holders(connection, [table.name for table in scope.tables])
    return Plan(config, scope, held)
