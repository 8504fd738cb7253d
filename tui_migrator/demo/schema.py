"""The demo tables, their metadata and the built-in mapping profile derived from them.

One table per ParkML data category, plus ``organizations`` and ``patients``. Sensitive columns
are tagged where they are declared, and :data:`DEMO_PROFILE` is derived from those tags, so the
tables and the profile cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tui_migrator.common.categories import DataCategory

demo_metadata = sa.MetaData()


_SqlType = sa.types.TypeEngine[Any] | type[sa.types.TypeEngine[Any]]


def _sensitive(name: str, sql_type: _SqlType) -> sa.Column[Any]:
    """A sensitive column: always nullable (an encrypted value may move to a companion column,
    leaving NULL behind) and tagged so :data:`DEMO_PROFILE` is derived from the tables."""
    return sa.Column(name, sql_type, nullable=True, info={"sensitive": True})


def _owner_columns() -> list[sa.Column[Any]]:
    """The organization and patient every category row belongs to."""
    return [
        sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("organization_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
    ]


def _integer_id() -> sa.Column[Any]:
    # The generator assigns every id itself, so no SERIAL/sequence is created that would then
    # lag behind the inserted ids on PostgreSQL.
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=False)


# JSON NULLs must be SQL NULLs, not the JSON literal 'null', so "IS NULL" finds them.
_Json = sa.JSON(none_as_null=True)

organizations_table = sa.Table(
    "organizations",
    demo_metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("country", sa.Text, nullable=False),
)

patients_table = sa.Table(
    "patients",
    demo_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("organization_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("external_ref", sa.Text, nullable=False),
    sa.Column("enrolled_on", sa.Date, nullable=False),
)

demographics_table = sa.Table(
    "demographics",
    demo_metadata,
    _integer_id(),
    *_owner_columns(),
    _sensitive("first_name", sa.Text),
    _sensitive("last_name", sa.Text),
    _sensitive("birth_date", sa.Date),
    sa.Column("sex", sa.Text, nullable=False),
    _sensitive("address", sa.Text),
    _sensitive("phone", sa.Text),
    _sensitive("email", sa.Text),
    _sensitive("height_cm", sa.Float),
    _sensitive("notes", sa.Text),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

motor_symptoms_table = sa.Table(
    "motor_symptoms",
    demo_metadata,
    _integer_id(),
    *_owner_columns(),
    sa.Column("assessed_at", sa.DateTime, nullable=False),
    _sensitive("updrs_part3", sa.Integer),
    _sensitive("tremor_score", sa.Integer),
    _sensitive("rigidity_score", sa.Integer),
    _sensitive("bradykinesia_score", sa.Integer),
    _sensitive("on_medication", sa.Boolean),
    _sensitive("gait_notes", sa.Text),
)

non_motor_symptoms_table = sa.Table(
    "non_motor_symptoms",
    demo_metadata,
    _integer_id(),
    *_owner_columns(),
    sa.Column("assessed_on", sa.Date, nullable=False),
    _sensitive("moca_score", sa.Integer),
    _sensitive("depression_score", sa.Integer),
    _sensitive("sleep_quality", sa.Float),
    _sensitive("hallucinations", sa.Boolean),
    _sensitive("notes", sa.Text),
)

autonomic_symptoms_table = sa.Table(
    "autonomic_symptoms",
    demo_metadata,
    _integer_id(),
    *_owner_columns(),
    sa.Column("recorded_on", sa.Date, nullable=False),
    _sensitive("orthostatic_drop_mmhg", sa.Integer),
    _sensitive("constipation", sa.Boolean),
    _sensitive("urinary_urgency", sa.Boolean),
    _sensitive("measurements", _Json),
    _sensitive("notes", sa.Text),
)

daily_activities_table = sa.Table(
    "daily_activities",
    demo_metadata,
    _integer_id(),
    *_owner_columns(),
    sa.Column("recorded_on", sa.Date, nullable=False),
    _sensitive("schwab_england_pct", sa.Integer),
    _sensitive("falls_last_month", sa.Integer),
    _sensitive("diary", _Json),
    _sensitive("notes", sa.Text),
)

medication_data_table = sa.Table(
    "medication_data",
    demo_metadata,
    _integer_id(),
    *_owner_columns(),
    _sensitive("drug_name", sa.Text),
    _sensitive("dose_mg", sa.Numeric(10, 2)),
    _sensitive("levodopa_equivalent_mg", sa.Float),
    _sensitive("schedule", _Json),
    _sensitive("started_on", sa.Date),
    _sensitive("prescriber", sa.Text),
)

emergency_contacts_table = sa.Table(
    "emergency_contacts",
    demo_metadata,
    # A composite natural key (patient, contact number) rather than a surrogate id.
    sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), primary_key=True),
    sa.Column("contact_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("organization_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
    _sensitive("contact_name", sa.Text),
    sa.Column("relationship", sa.Text, nullable=False),
    _sensitive("phone", sa.Text),
    _sensitive("email", sa.Text),
    sa.Column("is_primary", sa.Boolean, nullable=False),
)

safety_incidents_table = sa.Table(
    "safety_incidents",
    demo_metadata,
    # A text (UUID-shaped) key, as systems that sync incidents from mobile apps often use.
    sa.Column("id", sa.String(36), primary_key=True),
    *_owner_columns(),
    # Sensitive because the exact time of an incident can identify a patient; it is also the
    # demo's one sensitive timestamp column, so datetime values take part in the round trip.
    _sensitive("occurred_at", sa.DateTime),
    sa.Column("incident_type", sa.Text, nullable=False),
    _sensitive("severity", sa.Integer),
    _sensitive("injury", sa.Boolean),
    _sensitive("description", sa.Text),
)

environmental_factors_table = sa.Table(
    "environmental_factors",
    demo_metadata,
    _integer_id(),
    *_owner_columns(),
    _sensitive("pesticide_exposure", sa.Boolean),
    _sensitive("well_water", sa.Boolean),
    _sensitive("residence_years", sa.Integer),
    _sensitive("location", _Json),
    _sensitive("notes", sa.Text),
)

_CATEGORY_TABLES: tuple[tuple[sa.Table, DataCategory], ...] = (
    (demographics_table, DataCategory.DEMOGRAPHICS),
    (motor_symptoms_table, DataCategory.MOTOR_SYMPTOMS),
    (non_motor_symptoms_table, DataCategory.NON_MOTOR_SYMPTOMS),
    (autonomic_symptoms_table, DataCategory.AUTONOMIC_SYMPTOMS),
    (daily_activities_table, DataCategory.DAILY_ACTIVITIES),
    (medication_data_table, DataCategory.MEDICATION_DATA),
    (emergency_contacts_table, DataCategory.EMERGENCY_CONTACTS),
    (safety_incidents_table, DataCategory.SAFETY_INCIDENTS),
    (environmental_factors_table, DataCategory.ENVIRONMENTAL_FACTORS),
)

CATEGORY_TABLE_NAMES: tuple[str, ...] = tuple(table.name for table, _ in _CATEGORY_TABLES)
DEMO_TABLE_NAMES: tuple[str, ...] = (
    organizations_table.name,
    patients_table.name,
    *CATEGORY_TABLE_NAMES,
)


def _profile_entry(table: sa.Table, category: DataCategory) -> dict[str, Any]:
    key = [column.name for column in table.primary_key.columns]
    return {
        "name": table.name,
        "category": category.value,
        "primary_key": key[0] if len(key) == 1 else key,
        "organization_column": "organization_id",
        "columns": [column.name for column in table.columns if column.info.get("sensitive")],
    }


DEMO_PROFILE: list[dict[str, Any]] = [_profile_entry(table, category) for table, category in _CATEGORY_TABLES]
"""The built-in schema mapping of the demo tables, in the shape of a mapping file's entries."""
