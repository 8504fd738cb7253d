"""A deterministic, synthetic ParkML dataset for demos, tests and benchmarks.

ParkML is a research platform for Parkinson's disease; its records fall into nine data
categories (see :mod:`tui_migrator.common.categories`). This package builds one table per category,
plus ``organizations`` and ``patients``, and fills them with invented but plausible records:
European movement-disorder centres, patients with names from many languages, UPDRS and MoCA
scores, medication plans with levodopa-equivalent doses, falls and their descriptions.

The data exists to exercise an encryption round trip, so it deliberately contains what breaks
naive code: non-ASCII and multi-script text, emoji, quotes, backslashes and newlines in free
text, NULLs in every kind of column, empty strings, floats with long fractions, exact
``Decimal`` doses, dates, timestamps with and without microseconds, booleans both ways, JSON
objects and lists, a composite primary key and a text primary key.

Everything comes from one ``random.Random(seed)`` and fixed base dates, so the same seed always
gives the same database content. Names, addresses and e-mail domains are invented (e-mails use
reserved ``.example`` domains); any resemblance to a real person is chance.

The package is split by concept:

- :mod:`~tui_migrator.demo.schema` — the tables and the built-in mapping profile;
- the fixed pools values are drawn from: :mod:`~tui_migrator.demo.people` (names, sexes,
  relationships, e-mail domains), :mod:`~tui_migrator.demo.places` (regions, cities, centres)
  and :mod:`~tui_migrator.demo.clinical_vocabulary` (notes, incidents, drugs, schedules);
- the drawing: :mod:`~tui_migrator.demo.probabilities` (one outcome per ``random()``),
  :mod:`~tui_migrator.demo.random_values` (single values, NULLs and empty texts),
  :mod:`~tui_migrator.demo.patients` (organizations and patients) and
  :mod:`~tui_migrator.demo.category_rows` (the rows of the nine category tables);
- :mod:`~tui_migrator.demo.generator` — :func:`build_demo_database`, chunk by chunk;
- this module — the demo mark: :func:`build_marked_demo_database` records in ``tm_meta`` that
  the database is a demo before it builds one, and :func:`demo_mark` reads that record back.
  ``demo`` replaces only a marked database, so tables that merely share the demo's names are
  never dropped.

Tuning constants such as ``PATIENTS_PER_CHUNK`` are deliberately not re-exported here: they are
read in :mod:`~tui_migrator.demo.generator`, so that is the module to patch.
"""

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tui_migrator.demo.generator import (
    MAX_ORGANIZATIONS,
    MAX_PATIENTS,
    DemoSummary,
    build_demo_database,
    drop_demo_tables,
    validate_demo_size,
)
from tui_migrator.demo.schema import (
    CATEGORY_TABLE_NAMES,
    DEMO_PROFILE,
    DEMO_TABLE_NAMES,
    autonomic_symptoms_table,
    daily_activities_table,
    demo_metadata,
    demographics_table,
    emergency_contacts_table,
    environmental_factors_table,
    medication_data_table,
    motor_symptoms_table,
    non_motor_symptoms_table,
    organizations_table,
    patients_table,
    safety_incidents_table,
)
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.tables import META_DEMO_DATABASE, meta_table, read_meta, utc_now, write_meta

__all__ = [
    "CATEGORY_TABLE_NAMES",
    "DEMO_PROFILE",
    "DEMO_TABLE_NAMES",
    "MAX_ORGANIZATIONS",
    "MAX_PATIENTS",
    "DemoSummary",
    "autonomic_symptoms_table",
    "build_demo_database",
    "build_marked_demo_database",
    "daily_activities_table",
    "demo_mark",
    "demo_metadata",
    "demographics_table",
    "drop_demo_tables",
    "emergency_contacts_table",
    "environmental_factors_table",
    "medication_data_table",
    "motor_symptoms_table",
    "non_motor_symptoms_table",
    "organizations_table",
    "patients_table",
    "safety_incidents_table",
    "validate_demo_size",
]


def build_marked_demo_database(
    engine: Engine, *, patients: int = 2000, organizations: int = 4, seed: int = 7
) -> DemoSummary:
    """Mark the database as a demo in ``tm_meta``, then build the demo dataset in it.

    The tool's tables must exist already. The mark is written first, so a database holding the
    demo dataset, even one half built when a build was interrupted, is always marked and
    ``demo`` may replace it. Raises :class:`BadInput` (before writing anything) for sizes out
    of range.
    """
    validate_demo_size(patients, organizations)
    mark = {
        "patients": patients,
        "organizations": organizations,
        "seed": seed,
        "builtAt": utc_now().isoformat(),
    }
    with serialized_write(engine) as connection:
        write_meta(connection, META_DEMO_DATABASE, json.dumps(mark))
    return build_demo_database(engine, patients=patients, organizations=organizations, seed=seed)


def demo_mark(bind: Engine | Connection) -> dict[str, Any] | None:
    """What the demo mark of this database records, or None when it has none (no ``tm_meta``,
    or no mark: tui-migrator did not build it as a demo). A mark whose value cannot be read
    still marks the database: it reads as an empty dict."""
    if not sa.inspect(bind).has_table(meta_table.name):
        return None
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            value = read_meta(connection, META_DEMO_DATABASE)
    else:
        value = read_meta(bind, META_DEMO_DATABASE)
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
