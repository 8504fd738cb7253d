"""Building the demo database: validate the sizes, recreate the tables and insert the rows,
generated patient by patient from one seeded ``random.Random``, in chunks of
:data:`PATIENTS_PER_CHUNK` patients.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import date

from sqlalchemy.engine import Engine

from tui_migrator.common.errors import BadInput
from tui_migrator.demo.category_rows import CategoryRows, Row
from tui_migrator.demo.patients import Organization, PatientDrawer, draw_organizations
from tui_migrator.demo.random_values import RandomValues
from tui_migrator.demo.schema import (
    CATEGORY_TABLE_NAMES,
    DEMO_TABLE_NAMES,
    demo_metadata,
    organizations_table,
)

# Named after the package, not this module, so log lines read "tui_migrator.demo" as before.
log = logging.getLogger(__package__)

MAX_PATIENTS = 5_000_000
MAX_ORGANIZATIONS = 1000
# Patients generated and inserted per transaction: bounds memory (about 50,000 rows in flight)
# whatever the requested size, while keeping commits few enough not to dominate on SQLite.
PATIENTS_PER_CHUNK = 5000


class _Generator:
    """Produces the rows of all tables, patient by patient, from one seeded RNG.

    Rows are produced in a fixed order, so the content depends only on the seed and the
    requested sizes, never on chunking or on the database.
    """

    def __init__(self, rng: random.Random, organizations: list[Organization]) -> None:
        self._patients = PatientDrawer(rng, organizations)
        self._values = RandomValues(rng)
        self._rows = CategoryRows(self._values)

    def chunk(self, first_patient: int, last_patient: int) -> dict[str, list[Row]]:
        """All rows (patients and category tables) for patients first_patient..last_patient."""
        # Every table but organizations, parents first (dicts keep insertion order).
        rows: dict[str, list[Row]] = {name: [] for name in DEMO_TABLE_NAMES[1:]}
        for patient_id in range(first_patient, last_patient + 1):
            patient = self._patients.patient(patient_id)
            self._values.set_complete(patient_id == 1)
            rows["patients"].append(
                {
                    "id": patient.id,
                    "organization_id": patient.organization_id,
                    "external_ref": f"PD-{patient.id:06d}",
                    "enrolled_on": date.fromordinal(patient.enrolled_day),
                }
            )
            rows["demographics"].append(self._rows.demographics(patient))
            rows["motor_symptoms"].extend(self._rows.motor_symptoms(patient))
            rows["non_motor_symptoms"].extend(self._rows.non_motor_symptoms(patient))
            rows["autonomic_symptoms"].extend(self._rows.autonomic_symptoms(patient))
            rows["daily_activities"].extend(self._rows.daily_activities(patient))
            rows["medication_data"].extend(self._rows.medication_data(patient))
            rows["emergency_contacts"].extend(self._rows.emergency_contacts(patient))
            rows["safety_incidents"].extend(self._rows.safety_incidents(patient))
            rows["environmental_factors"].extend(self._rows.environmental_factors(patient))
        return rows


# -- public API ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`build_demo_database` built and how long it took."""

    organizations: int
    patients: int
    rows_by_table: dict[str, int]
    seconds: float

    @property
    def sensitive_records(self) -> int:
        """Rows in the nine category tables, i.e. the records a migration will encrypt."""
        return sum(self.rows_by_table.get(name, 0) for name in CATEGORY_TABLE_NAMES)


def _check_count(value: object, what: str, flag: str, upper: int) -> None:
    # bool is an int subclass, but --patients True is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise BadInput(
            f"The demo needs between 1 and {upper:,} {what}; {value!r} was requested.",
            hint=f"Pass {flag} with a whole number from 1 to {upper:,}.",
        )


def validate_demo_size(patients: int, organizations: int) -> None:
    """Raise :class:`BadInput` for sizes the demo cannot build (callers check before dropping)."""
    _check_count(patients, "patients", "--patients", MAX_PATIENTS)
    _check_count(organizations, "organizations", "--organizations", MAX_ORGANIZATIONS)
    if organizations > patients:
        raise BadInput(
            f"The demo cannot spread {patients} patients over {organizations} organizations: "
            "every organization needs at least one patient.",
            hint=f"Use --organizations {patients} or fewer, or raise --patients to {organizations} or more.",
        )


def drop_demo_tables(engine: Engine) -> None:
    """Drop the demo tables that exist, children before parents; no other table is touched."""
    demo_metadata.drop_all(engine, checkfirst=True)


def build_demo_database(
    engine: Engine, *, patients: int = 2000, organizations: int = 4, seed: int = 7
) -> DemoSummary:
    """Drop, recreate and fill the demo tables in the database behind ``engine``.

    The same arguments always produce the same content. Rows are generated and inserted in
    chunks of PATIENTS_PER_CHUNK patients, one transaction each, so memory does not grow with
    the size. Raises :class:`BadInput` (before touching the database) for sizes out of range.
    """
    validate_demo_size(patients, organizations)
    started = time.perf_counter()
    rng = random.Random(seed)
    drop_demo_tables(engine)
    demo_metadata.create_all(engine)

    orgs = draw_organizations(rng, organizations)
    with engine.begin() as connection:
        connection.execute(
            organizations_table.insert(),
            [{"id": org.id, "name": org.name, "country": org.region.country} for org in orgs],
        )
    rows_by_table = dict.fromkeys(DEMO_TABLE_NAMES, 0)
    rows_by_table[organizations_table.name] = len(orgs)

    generator = _Generator(rng, orgs)
    tables = demo_metadata.tables
    for first in range(1, patients + 1, PATIENTS_PER_CHUNK):
        chunk = generator.chunk(first, min(first + PATIENTS_PER_CHUNK - 1, patients))
        with engine.begin() as connection:
            # DEMO_TABLE_NAMES lists parents before children, as the foreign keys require.
            for name, rows in chunk.items():
                if rows:
                    connection.execute(tables[name].insert(), rows)
                rows_by_table[name] += len(rows)

    summary = DemoSummary(
        organizations=len(orgs),
        patients=patients,
        rows_by_table=rows_by_table,
        seconds=time.perf_counter() - started,
    )
    log.info(
        "built the demo dataset: %d patients in %d organizations, %d sensitive records in %.1f s",
        patients,
        len(orgs),
        summary.sensitive_records,
        summary.seconds,
    )
    return summary
