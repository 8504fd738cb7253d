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
- :mod:`~tui_migrator.demo.generator` — :func:`build_demo_database`, chunk by chunk.

Tuning constants such as ``PATIENTS_PER_CHUNK`` are deliberately not re-exported here: they are
read in :mod:`~tui_migrator.demo.generator`, so that is the module to patch.
"""

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

__all__ = [
    "CATEGORY_TABLE_NAMES",
    "DEMO_PROFILE",
    "DEMO_TABLE_NAMES",
    "MAX_ORGANIZATIONS",
    "MAX_PATIENTS",
    "DemoSummary",
    "autonomic_symptoms_table",
    "build_demo_database",
    "daily_activities_table",
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
