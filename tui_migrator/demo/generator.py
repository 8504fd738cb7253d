"""Generating the demo rows and building the demo database.

:class:`_Generator` turns one seeded ``random.Random`` into the rows of every demo table,
patient by patient; :func:`build_demo_database` validates the sizes, recreates the tables and
inserts the rows in chunks of :data:`PATIENTS_PER_CHUNK` patients.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Engine

from tui_migrator.common.errors import BadInput
from tui_migrator.demo.schema import (
    CATEGORY_TABLE_NAMES,
    DEMO_TABLE_NAMES,
    demo_metadata,
    organizations_table,
)
from tui_migrator.demo.vocabulary import (
    ASCII_NAMES,
    AUTONOMIC_NOTES,
    CENTRES,
    CROPS,
    DAILY_NOTES,
    DEMOGRAPHIC_NOTES,
    DEVICES,
    DIARY_COMMENTS,
    DIARY_STATES,
    DRUG_THRESHOLDS,
    DRUGS,
    ENVIRONMENT_NOTES,
    FAMILY,
    FEMALE_RELATIONS,
    GAIT_NOTES,
    INCIDENT_DESCRIPTIONS,
    INCIDENT_THRESHOLDS,
    INCIDENT_TYPES,
    MAIL_DOMAINS,
    NAMES,
    NON_MOTOR_NOTES,
    PRESCRIBERS,
    REGIONS,
    RELATIONSHIPS,
    SCHEDULES,
    SEX_THRESHOLDS,
    SEXES,
    City,
    Names,
    Region,
    thresholds,
)

# Named after the package, not this module, so log lines read "tui_migrator.demo" as before.
log = logging.getLogger(__package__)

Row = dict[str, Any]

MAX_PATIENTS = 5_000_000
MAX_ORGANIZATIONS = 1000
# Patients generated and inserted per transaction: bounds memory (about 50,000 rows in flight)
# whatever the requested size, while keeping commits few enough not to dominate on SQLite.
PATIENTS_PER_CHUNK = 5000

# Share of nullable sensitive values left NULL, and of free-text values left as "".
NULL_RATE = 0.07
EMPTY_TEXT_RATE = 0.04
# Share of patients whose names come from any language rather than their centre's region.
FOREIGN_NAME_RATE = 0.3
# Share of timestamps that carry microseconds (the rest are whole seconds, as many systems store).
MICROSECOND_RATE = 0.3

# Fixed reference dates: the data must never depend on when it was built.
BASE_DATE = date(2024, 1, 1)
_BASE_DAY = BASE_DATE.toordinal()
_FIRST_ENROLMENT_DAY = date(2012, 1, 1).toordinal()
_FIRST_BIRTH_DAY = date(1930, 1, 1).toordinal()
_LAST_BIRTH_DAY = date(1975, 12, 31).toordinal()


# How many rows of a table a patient gets, from the probabilities of 0, 1, 2, ... rows;
# chosen so 2,000 patients give about 17,500 category rows.
_MOTOR_COUNTS = thresholds(0.0, 0.45, 0.3, 0.25)  # mean 1.8
_NON_MOTOR_COUNTS = thresholds(0.2, 0.7, 0.1)  # mean 0.9
_AUTONOMIC_COUNTS = thresholds(0.2, 0.8)  # mean 0.8
_DAILY_COUNTS = thresholds(0.2, 0.7, 0.1)  # mean 0.9
_MEDICATION_COUNTS = thresholds(0.15, 0.55, 0.25, 0.05)  # mean 1.2
_CONTACT_COUNTS = thresholds(0.0, 0.6, 0.4)  # one or two, mean 1.4
_INCIDENT_COUNTS = thresholds(0.78, 0.15, 0.05, 0.02)  # mean 0.31
_ENVIRONMENT_COUNTS = thresholds(0.5, 0.5)  # mean 0.5


# -- generation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Organization:
    id: str
    name: str
    region: Region


@dataclass(frozen=True)
class _Patient:
    id: int
    organization_id: str
    region: Region
    names: Names
    sex: str
    first_name: str
    last_name: str
    surname_index: int  # into names.last, so relatives can share the surname
    city: City
    enrolled_day: int  # date ordinal


def _organizations(rng: random.Random, count: int) -> list[_Organization]:
    """The real centres first, then generated clinics in random regions."""
    organizations = [_Organization(org_id, name, REGIONS[region]) for org_id, name, region in CENTRES[:count]]
    regions = list(REGIONS.values())
    for number in range(len(organizations) + 1, count + 1):
        region = rng.choice(regions)
        city = rng.choice(region.cities)
        organizations.append(
            _Organization(f"org_clinic_{number:04d}", f"Movement Disorders Centre {city.name}", region)
        )
    return organizations


class _Generator:
    """Produces the rows of all tables, patient by patient, from one seeded RNG.

    Rows are produced in a fixed order and ids are counted here, so the content depends only on
    the seed and the requested sizes, never on chunking or on the database.
    """

    def __init__(self, rng: random.Random, organizations: Sequence[_Organization]) -> None:
        self._rng = rng
        self._organizations = organizations
        # Uneven sizes, as in a real network: earlier (larger) centres get more patients.
        weights = [rng.uniform(0.6, 1.4) / (1 + 0.35 * rank) for rank in range(len(organizations))]
        total = sum(weights)
        self._organization_thresholds = thresholds(*(weight / total for weight in weights))
        self._name_pools = list(NAMES.values())
        self._next_id = dict.fromkeys(CATEGORY_TABLE_NAMES, 1)
        self._null_rate = NULL_RATE
        self._empty_rate = EMPTY_TEXT_RATE

    def chunk(self, first_patient: int, last_patient: int) -> dict[str, list[Row]]:
        """All rows (patients and category tables) for patients first_patient..last_patient."""
        # Every table but organizations, parents first (dicts keep insertion order).
        rows: dict[str, list[Row]] = {name: [] for name in DEMO_TABLE_NAMES[1:]}
        for patient_id in range(first_patient, last_patient + 1):
            patient = self._patient(patient_id)
            # Patient 1 is complete (no NULL, no empty text) so there is always a full example.
            complete = patient_id == 1
            self._null_rate = 0.0 if complete else NULL_RATE
            self._empty_rate = 0.0 if complete else EMPTY_TEXT_RATE
            rows["patients"].append(
                {
                    "id": patient.id,
                    "organization_id": patient.organization_id,
                    "external_ref": f"PD-{patient.id:06d}",
                    "enrolled_on": date.fromordinal(patient.enrolled_day),
                }
            )
            rows["demographics"].append(self._demographics(patient))
            rows["motor_symptoms"].extend(self._motor_symptoms(patient))
            rows["non_motor_symptoms"].extend(self._non_motor_symptoms(patient))
            rows["autonomic_symptoms"].extend(self._autonomic_symptoms(patient))
            rows["daily_activities"].extend(self._daily_activities(patient))
            rows["medication_data"].extend(self._medication_data(patient))
            rows["emergency_contacts"].extend(self._emergency_contacts(patient))
            rows["safety_incidents"].extend(self._safety_incidents(patient))
            rows["environmental_factors"].extend(self._environmental_factors(patient))
        return rows

    # -- patients --------------------------------------------------------------------------

    def _organization_of(self, patient_id: int) -> _Organization:
        """Patient n <= the organization count goes to organization n, so every organization
        has a patient; the others are drawn by weight, one draw per patient so that the
        RNG sequence, and hence the data, is the same whatever the chunk size."""
        if patient_id <= len(self._organizations):
            return self._organizations[patient_id - 1]
        return self._organizations[bisect(self._organization_thresholds, self._rng.random())]

    def _patient(self, patient_id: int) -> _Patient:
        rng = self._rng
        organization = self._organization_of(patient_id)
        region = organization.region
        names = rng.choice(self._name_pools) if rng.random() < FOREIGN_NAME_RATE else NAMES[region.names]
        sex = SEXES[bisect(SEX_THRESHOLDS, rng.random())]
        female = sex == "female" or (sex == "diverse" and rng.random() < 0.5)
        surname_index = rng.randrange(len(names.last))
        return _Patient(
            id=patient_id,
            organization_id=organization.id,
            region=region,
            names=names,
            sex=sex,
            first_name=rng.choice(names.female if female else names.male),
            last_name=names.surname(surname_index, female=female),
            surname_index=surname_index,
            city=rng.choice(region.cities),
            enrolled_day=rng.randrange(_FIRST_ENROLMENT_DAY, _BASE_DAY),
        )

    # -- value helpers ---------------------------------------------------------------------

    def _id(self, table: str) -> int:
        value = self._next_id[table]
        self._next_id[table] = value + 1
        return value

    def _count(self, thresholds: Sequence[float]) -> int:
        return bisect(thresholds, self._rng.random())

    def _maybe(self, value: Any) -> Any:
        """The value, or NULL for a share of NULL_RATE."""
        return None if self._rng.random() < self._null_rate else value

    def _text(self, pool: Sequence[str]) -> str | None:
        """A free-text value from the pool, sometimes NULL or empty; now and then two lines."""
        rng = self._rng
        draw = rng.random()
        if draw < self._null_rate:
            return None
        if draw < self._null_rate + self._empty_rate:
            return ""
        text = rng.choice(pool)
        if draw > 0.9:
            text += "\n" + rng.choice(pool)
        return text

    def _day_since(self, first_day: int) -> date:
        return date.fromordinal(self._rng.randrange(first_day, _BASE_DAY + 1))

    def _timestamp_since(self, first_day: int) -> datetime:
        """A daytime timestamp between first_day and the base date, sometimes with microseconds."""
        rng = self._rng
        day = date.fromordinal(rng.randrange(first_day, _BASE_DAY + 1))
        micro = rng.randrange(1, 1_000_000) if rng.random() < MICROSECOND_RATE else 0
        return datetime(
            day.year,
            day.month,
            day.day,
            rng.randrange(7, 20),
            rng.randrange(60),
            rng.randrange(60),
            micro,
        )

    def _phone(self, region: Region) -> str:
        rng = self._rng
        subscriber = rng.randrange(100_000, 9_999_999)
        if rng.random() < 0.15:  # written the local way, with the trunk prefix in brackets
            return f"{region.phone_prefix} (0){rng.randrange(10, 99)} {subscriber}"
        return f"{region.phone_prefix} {rng.randrange(10, 999)} {subscriber}"

    def _email(self, first_name: str, last_name: str) -> str | None:
        rng = self._rng
        draw = rng.random()
        if draw < self._null_rate:
            return None
        if draw < self._null_rate + self._empty_rate:
            return ""
        if draw > 0.95:  # an internationalised address keeps the name's own letters
            local = f"{first_name}.{last_name}".lower().replace(" ", "")
        else:
            local = f"{ASCII_NAMES[first_name]}.{ASCII_NAMES[last_name]}"
            if draw > 0.6:
                local += str(rng.randrange(1, 99))
        return f"{local}@{rng.choice(MAIL_DOMAINS)}"

    # -- category tables -------------------------------------------------------------------

    def _demographics(self, patient: _Patient) -> Row:
        rng = self._rng
        region = patient.region
        city = patient.city
        address = region.address_format.format(
            street=rng.choice(region.streets),
            number=f"{rng.randrange(1, 200)}{rng.choice(('', '', '', 'a', 'b'))}",
            postcode=city.postcode,
            city=city.name,
        )
        mean_height = 166.0 if patient.sex == "female" else 178.0
        return {
            "id": self._id("demographics"),
            "patient_id": patient.id,
            "organization_id": patient.organization_id,
            "first_name": self._maybe(patient.first_name),
            "last_name": self._maybe(patient.last_name),
            "birth_date": self._maybe(date.fromordinal(rng.randrange(_FIRST_BIRTH_DAY, _LAST_BIRTH_DAY))),
            "sex": patient.sex,
            "address": self._maybe(address),
            "phone": self._maybe(self._phone(region)),
            "email": self._email(patient.first_name, patient.last_name),
            "height_cm": self._maybe(round(rng.gauss(mean_height, 8.0), 1)),
            "notes": self._text(DEMOGRAPHIC_NOTES),
            "updated_at": self._timestamp_since(patient.enrolled_day),
        }

    def _motor_symptoms(self, patient: _Patient) -> Iterator[Row]:
        rng = self._rng
        for _ in range(self._count(_MOTOR_COUNTS)):
            updrs = int(rng.triangular(0, 132, 26))
            # Item scores follow the total, so a severe total never has all-zero items.
            base = updrs // 30
            yield {
                "id": self._id("motor_symptoms"),
                "patient_id": patient.id,
                "organization_id": patient.organization_id,
                "assessed_at": self._timestamp_since(patient.enrolled_day),
                "updrs_part3": self._maybe(updrs),
                "tremor_score": self._maybe(min(4, base + rng.randrange(0, 2))),
                "rigidity_score": self._maybe(min(4, base + rng.randrange(0, 2))),
                "bradykinesia_score": self._maybe(min(4, base + rng.randrange(0, 2))),
                "on_medication": self._maybe(rng.random() < 0.7),
                "gait_notes": self._text(GAIT_NOTES),
            }

    def _non_motor_symptoms(self, patient: _Patient) -> Iterator[Row]:
        rng = self._rng
        for _ in range(self._count(_NON_MOTOR_COUNTS)):
            yield {
                "id": self._id("non_motor_symptoms"),
                "patient_id": patient.id,
                "organization_id": patient.organization_id,
                "assessed_on": self._day_since(patient.enrolled_day),
                "moca_score": self._maybe(min(30, int(rng.triangular(8, 31, 26)))),
                "depression_score": self._maybe(rng.randrange(0, 16)),  # GDS-15
                # The mean of three 0-10 ratings, so many values have long binary fractions.
                "sleep_quality": self._maybe((rng.randrange(11) + rng.randrange(11) + rng.randrange(11)) / 3),
                "hallucinations": self._maybe(rng.random() < 0.15),
                "notes": self._text(NON_MOTOR_NOTES),
            }

    def _autonomic_symptoms(self, patient: _Patient) -> Iterator[Row]:
        rng = self._rng
        for _ in range(self._count(_AUTONOMIC_COUNTS)):
            systolic = rng.randrange(105, 175)
            diastolic = rng.randrange(60, 100)
            drop = max(0, int(rng.gauss(12, 10)))
            heart_rate = rng.randrange(58, 95)
            measurements = {
                "supine": {"sys": systolic, "dia": diastolic},
                "standing": {"sys": systolic - drop, "dia": diastolic - drop // 2, "after_min": 3},
                # lying, after one minute and after three minutes standing
                "heart_rate": [heart_rate, heart_rate + rng.randrange(15), heart_rate + rng.randrange(20)],
                "temperature_c": round(rng.uniform(35.8, 37.6), 1),
                "device": rng.choice(DEVICES),
                "symptomatic": rng.random() < 0.4,
            }
            yield {
                "id": self._id("autonomic_symptoms"),
                "patient_id": patient.id,
                "organization_id": patient.organization_id,
                "recorded_on": self._day_since(patient.enrolled_day),
                "orthostatic_drop_mmhg": self._maybe(drop),
                "constipation": self._maybe(rng.random() < 0.6),
                "urinary_urgency": self._maybe(rng.random() < 0.4),
                "measurements": self._maybe(measurements),
                "notes": self._text(AUTONOMIC_NOTES),
            }

    def _diary(self) -> list[dict[str, Any]]:
        """A day's ON/OFF diary: a few entries from the morning on, some with a comment."""
        rng = self._rng
        hour = rng.randrange(6, 10)
        entries: list[dict[str, Any]] = []
        for _ in range(rng.randrange(3, 7)):
            entry: dict[str, Any] = {"hour": hour, "state": rng.choice(DIARY_STATES)}
            if rng.random() < 0.2:
                entry["comment"] = rng.choice(DIARY_COMMENTS)
            entries.append(entry)
            hour += rng.randrange(2, 4)
        return entries

    def _daily_activities(self, patient: _Patient) -> Iterator[Row]:
        rng = self._rng
        for _ in range(self._count(_DAILY_COUNTS)):
            yield {
                "id": self._id("daily_activities"),
                "patient_id": patient.id,
                "organization_id": patient.organization_id,
                "recorded_on": self._day_since(patient.enrolled_day),
                "schwab_england_pct": self._maybe(10 * int(rng.triangular(2, 11, 8))),
                "falls_last_month": self._maybe(min(6, int(rng.expovariate(1.5)))),
                "diary": self._maybe(self._diary()),
                "notes": self._text(DAILY_NOTES),
            }

    def _medication_data(self, patient: _Patient) -> Iterator[Row]:
        rng = self._rng
        for _ in range(self._count(_MEDICATION_COUNTS)):
            drug = DRUGS[bisect(DRUG_THRESHOLDS, rng.random())]
            dose = rng.choice(drug.doses)
            schedule = SCHEDULES[rng.choice(drug.schedules)]
            yield {
                "id": self._id("medication_data"),
                "patient_id": patient.id,
                "organization_id": patient.organization_id,
                "drug_name": self._maybe(drug.name),
                "dose_mg": self._maybe(dose),
                "levodopa_equivalent_mg": self._maybe(
                    round(float(dose) * schedule["per_day"] * drug.led_factor, 2)
                ),
                "schedule": self._maybe(schedule),
                # Medication often predates enrolment in the study by a few years.
                "started_on": self._maybe(self._day_since(patient.enrolled_day - 5 * 365)),
                "prescriber": self._maybe(rng.choice(PRESCRIBERS)),
            }

    def _emergency_contacts(self, patient: _Patient) -> Iterator[Row]:
        rng = self._rng
        names = patient.names
        for contact_no in range(1, self._count(_CONTACT_COUNTS) + 1):
            relationship = rng.choice(RELATIONSHIPS)
            female = FEMALE_RELATIONS.get(relationship, rng.random() < 0.5)
            first_name = rng.choice(names.female if female else names.male)
            # Family members mostly share the patient's surname (in its male or female form).
            if relationship in FAMILY and rng.random() < 0.7:
                surname_index = patient.surname_index
            else:
                surname_index = rng.randrange(len(names.last))
            last_name = names.surname(surname_index, female=female)
            yield {
                "patient_id": patient.id,
                "contact_no": contact_no,
                "organization_id": patient.organization_id,
                "contact_name": self._maybe(f"{first_name} {last_name}"),
                "relationship": relationship,
                "phone": self._maybe(self._phone(patient.region)),
                "email": self._email(first_name, last_name),
                "is_primary": contact_no == 1,
            }

    def _safety_incidents(self, patient: _Patient) -> Iterator[Row]:
        rng = self._rng
        for _ in range(self._count(_INCIDENT_COUNTS)):
            incident_type = INCIDENT_TYPES[bisect(INCIDENT_THRESHOLDS, rng.random())]
            yield {
                # uuid4-shaped but drawn from the seeded RNG, so it is reproducible.
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "patient_id": patient.id,
                "organization_id": patient.organization_id,
                "occurred_at": self._maybe(self._timestamp_since(patient.enrolled_day)),
                "incident_type": incident_type,
                "severity": self._maybe(min(5, 1 + int(rng.expovariate(0.9)))),
                "injury": self._maybe(rng.random() < 0.35),
                "description": self._text(INCIDENT_DESCRIPTIONS[incident_type]),
            }

    def _environmental_factors(self, patient: _Patient) -> Iterator[Row]:
        rng = self._rng
        city = patient.city
        for _ in range(self._count(_ENVIRONMENT_COUNTS)):
            rural = rng.random() < 0.35
            location: dict[str, Any] = {
                "region": city.region,
                "city": city.name,
                "lat": round(city.lat + rng.uniform(-0.3, 0.3), 5),
                "lon": round(city.lon + rng.uniform(-0.3, 0.3), 5),
                "setting": "rural" if rural else "urban",
            }
            if rural:
                location["nearby"] = {
                    "farmland_km": round(rng.uniform(0.1, 5.0), 2),
                    "crops": rng.sample(CROPS, 2),
                }
            yield {
                "id": self._id("environmental_factors"),
                "patient_id": patient.id,
                "organization_id": patient.organization_id,
                "pesticide_exposure": self._maybe(rng.random() < (0.4 if rural else 0.1)),
                "well_water": self._maybe(rural and rng.random() < 0.5),
                "residence_years": self._maybe(rng.randrange(1, 60)),
                "location": self._maybe(location),
                "notes": self._text(ENVIRONMENT_NOTES),
            }


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

    orgs = _organizations(rng, organizations)
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
