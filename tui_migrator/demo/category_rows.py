"""The rows of the nine category tables for one patient, drawn from the demo's seeded RNG:
UPDRS and MoCA scores, blood pressure measurements, ON/OFF diaries, medication plans with
levodopa-equivalent doses, emergency contacts, safety incidents and environmental exposure.

Ids are counted here, in the order rows are drawn, so they depend only on the seed and the
requested sizes, never on chunking or on the database.
"""

from __future__ import annotations

import uuid
from bisect import bisect
from collections.abc import Iterator
from datetime import date
from typing import Any

from tui_migrator.demo.clinical_vocabulary import (
    AUTONOMIC_NOTES,
    CROPS,
    DAILY_NOTES,
    DEMOGRAPHIC_NOTES,
    DEVICES,
    DIARY_COMMENTS,
    DIARY_STATES,
    DRUG_THRESHOLDS,
    DRUGS,
    ENVIRONMENT_NOTES,
    GAIT_NOTES,
    INCIDENT_DESCRIPTIONS,
    INCIDENT_THRESHOLDS,
    INCIDENT_TYPES,
    NON_MOTOR_NOTES,
    PRESCRIBERS,
    SCHEDULES,
)
from tui_migrator.demo.patients import Patient
from tui_migrator.demo.people import FAMILY, FEMALE_RELATIONS, RELATIONSHIPS
from tui_migrator.demo.probabilities import thresholds
from tui_migrator.demo.random_values import RandomValues
from tui_migrator.demo.schema import CATEGORY_TABLE_NAMES

Row = dict[str, Any]

FIRST_BIRTH_DAY = date(1930, 1, 1).toordinal()
LAST_BIRTH_DAY = date(1975, 12, 31).toordinal()

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


class CategoryRows:
    """One method per category table: the rows it holds for a patient."""

    def __init__(self, values: RandomValues) -> None:
        self._values = values
        self._rng = values.rng
        self._next_id = dict.fromkeys(CATEGORY_TABLE_NAMES, 1)

    def _id(self, table: str) -> int:
        value = self._next_id[table]
        self._next_id[table] = value + 1
        return value

    def demographics(self, patient: Patient) -> Row:
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
            "first_name": self._values.maybe(patient.first_name),
            "last_name": self._values.maybe(patient.last_name),
            "birth_date": self._values.maybe(
                date.fromordinal(rng.randrange(FIRST_BIRTH_DAY, LAST_BIRTH_DAY))
            ),
            "sex": patient.sex,
            "address": self._values.maybe(address),
            "phone": self._values.maybe(self._values.phone(region)),
            "email": self._values.email(patient.first_name, patient.last_name),
            "height_cm": self._values.maybe(round(rng.gauss(mean_height, 8.0), 1)),
            "notes": self._values.text(DEMOGRAPHIC_NOTES),
            "updated_at": self._values.timestamp_since(patient.enrolled_day),
        }

    def motor_symptoms(self, patient: Patient) -> Iterator[Row]:
        rng = self._rng
        for _ in range(self._values.count(_MOTOR_COUNTS)):
            updrs = int(rng.triangular(0, 132, 26))
            # Item scores follow the total, so a severe total never has all-zero items.
            base = updrs // 30
            yield {
                "id": self._id("motor_symptoms"),
                "patient_id": patient.id,
                "organization_id": patient.organization_id,
                "assessed_at": self._values.timestamp_since(patient.enrolled_day),
                "updrs_part3": self._values.maybe(updrs),
                "tremor_score": self._values.maybe(min(4, base + rng.randrange(0, 2))),
                "rigidity_score": self._values.maybe(min(4, base + rng.randrange(0, 2))),
                "bradykinesia_score": self._values.maybe(min(4, base + rng.randrange(0, 2))),
                "on_medication": self._values.maybe(rng.random() < 0.7),
                "gait_notes": self._values.text(GAIT_NOTES),
            }

    def non_motor_symptoms(self, patient: Patient) -> Iterator[Row]:
        rng = self._rng
        for _ in range(self._values.count(_NON_MOTOR_COUNTS)):
            yield {
                "id": self._id("non_motor_symptoms"),
                "patient_id": patient.id,
                "organization_id": patient.organization_id,
                "assessed_on": self._values.day_since(patient.enrolled_day),
                "moca_score": self._values.maybe(min(30, int(rng.triangular(8, 31, 26)))),
                "depression_score": self._values.maybe(rng.randrange(0, 16)),  # GDS-15
                # The mean of three 0-10 ratings, so many values have long binary fractions.
                "sleep_quality": self._values.maybe(
                    (rng.randrange(11) + rng.randrange(11) + rng.randrange(11)) / 3
                ),
                "hallucinations": self._values.maybe(rng.random() < 0.15),
                "notes": self._values.text(NON_MOTOR_NOTES),
            }

    def autonomic_symptoms(self, patient: Patient) -> Iterator[Row]:
        rng = self._rng
        for _ in range(self._values.count(_AUTONOMIC_COUNTS)):
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
                "recorded_on": self._values.day_since(patient.enrolled_day),
                "orthostatic_drop_mmhg": self._values.maybe(drop),
                "constipation": self._values.maybe(rng.random() < 0.6),
                "urinary_urgency": self._values.maybe(rng.random() < 0.4),
                "measurements": self._values.maybe(measurements),
                "notes": self._values.text(AUTONOMIC_NOTES),
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

    def daily_activities(self, patient: Patient) -> Iterator[Row]:
        rng = self._rng
        for _ in range(self._values.count(_DAILY_COUNTS)):
            yield {
                "id": self._id("daily_activities"),
                "patient_id": patient.id,
                "organization_id": patient.organization_id,
                "recorded_on": self._values.day_since(patient.enrolled_day),
                "schwab_england_pct": self._values.maybe(10 * int(rng.triangular(2, 11, 8))),
                "falls_last_month": self._values.maybe(min(6, int(rng.expovariate(1.5)))),
                "diary": self._values.maybe(self._diary()),
                "notes": self._values.text(DAILY_NOTES),
            }

    def medication_data(self, patient: Patient) -> Iterator[Row]:
        rng = self._rng
        for _ in range(self._values.count(_MEDICATION_COUNTS)):
            drug = DRUGS[bisect(DRUG_THRESHOLDS, rng.random())]
            dose = rng.choice(drug.doses)
            schedule = SCHEDULES[rng.choice(drug.schedules)]
            yield {
                "id": self._id("medication_data"),
                "patient_id": patient.id,
                "organization_id": patient.organization_id,
                "drug_name": self._values.maybe(drug.name),
                "dose_mg": self._values.maybe(dose),
                "levodopa_equivalent_mg": self._values.maybe(
                    round(float(dose) * schedule["per_day"] * drug.led_factor, 2)
                ),
                "schedule": self._values.maybe(schedule),
                # Medication often predates enrolment in the study by a few years.
                "started_on": self._values.maybe(self._values.day_since(patient.enrolled_day - 5 * 365)),
                "prescriber": self._values.maybe(rng.choice(PRESCRIBERS)),
            }

    def emergency_contacts(self, patient: Patient) -> Iterator[Row]:
        rng = self._rng
        names = patient.names
        for contact_no in range(1, self._values.count(_CONTACT_COUNTS) + 1):
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
                "contact_name": self._values.maybe(f"{first_name} {last_name}"),
                "relationship": relationship,
                "phone": self._values.maybe(self._values.phone(patient.region)),
                "email": self._values.email(first_name, last_name),
                "is_primary": contact_no == 1,
            }

    def safety_incidents(self, patient: Patient) -> Iterator[Row]:
        rng = self._rng
        for _ in range(self._values.count(_INCIDENT_COUNTS)):
            incident_type = INCIDENT_TYPES[bisect(INCIDENT_THRESHOLDS, rng.random())]
            yield {
                # uuid4-shaped but drawn from the seeded RNG, so it is reproducible.
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "patient_id": patient.id,
                "organization_id": patient.organization_id,
                "occurred_at": self._values.maybe(self._values.timestamp_since(patient.enrolled_day)),
                "incident_type": incident_type,
                "severity": self._values.maybe(min(5, 1 + int(rng.expovariate(0.9)))),
                "injury": self._values.maybe(rng.random() < 0.35),
                "description": self._values.text(INCIDENT_DESCRIPTIONS[incident_type]),
            }

    def environmental_factors(self, patient: Patient) -> Iterator[Row]:
        rng = self._rng
        city = patient.city
        for _ in range(self._values.count(_ENVIRONMENT_COUNTS)):
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
                "pesticide_exposure": self._values.maybe(rng.random() < (0.4 if rural else 0.1)),
                "well_water": self._values.maybe(rural and rng.random() < 0.5),
                "residence_years": self._values.maybe(rng.randrange(1, 60)),
                "location": self._values.maybe(location),
                "notes": self._values.text(ENVIRONMENT_NOTES),
            }
