"""The demo's organizations and patients: the real centres first, then generated clinics; each
patient with a centre (larger centres get more), a sex, a name from the centre's language or,
for some, any other, a home city and an enrolment date.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from tui_migrator.demo.people import NAMES, SEX_THRESHOLDS, SEXES, Names
from tui_migrator.demo.places import CENTRES, REGIONS, City, Region
from tui_migrator.demo.probabilities import thresholds
from tui_migrator.demo.random_values import BASE_DAY

# Share of patients whose names come from any language rather than their centre's region.
FOREIGN_NAME_RATE = 0.3
FIRST_ENROLMENT_DAY = date(2012, 1, 1).toordinal()


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    region: Region


@dataclass(frozen=True)
class Patient:
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


def draw_organizations(rng: random.Random, count: int) -> list[Organization]:
    """The real centres first, then generated clinics in random regions."""
    organizations = [Organization(org_id, name, REGIONS[region]) for org_id, name, region in CENTRES[:count]]
    regions = list(REGIONS.values())
    for number in range(len(organizations) + 1, count + 1):
        region = rng.choice(regions)
        city = rng.choice(region.cities)
        organizations.append(
            Organization(f"org_clinic_{number:04d}", f"Movement Disorders Centre {city.name}", region)
        )
    return organizations


class PatientDrawer:
    """Draws patient after patient from one seeded RNG, spread over ``organizations``."""

    def __init__(self, rng: random.Random, organizations: Sequence[Organization]) -> None:
        self._rng = rng
        self._organizations = organizations
        # Uneven sizes, as in a real network: earlier (larger) centres get more patients.
        weights = [rng.uniform(0.6, 1.4) / (1 + 0.35 * rank) for rank in range(len(organizations))]
        total = sum(weights)
        self._organization_thresholds = thresholds(*(weight / total for weight in weights))
        self._name_pools = list(NAMES.values())

    def _organization_of(self, patient_id: int) -> Organization:
        """Patient n <= the organization count goes to organization n, so every organization
        has a patient; the others are drawn by weight, one draw per patient so that the
        RNG sequence, and hence the data, is the same whatever the chunk size."""
        if patient_id <= len(self._organizations):
            return self._organizations[patient_id - 1]
        return self._organizations[bisect(self._organization_thresholds, self._rng.random())]

    def patient(self, patient_id: int) -> Patient:
        rng = self._rng
        organization = self._organization_of(patient_id)
        region = organization.region
        names = rng.choice(self._name_pools) if rng.random() < FOREIGN_NAME_RATE else NAMES[region.names]
        sex = SEXES[bisect(SEX_THRESHOLDS, rng.random())]
        female = sex == "female" or (sex == "diverse" and rng.random() < 0.5)
        surname_index = rng.randrange(len(names.last))
        return Patient(
            id=patient_id,
            organization_id=organization.id,
            region=region,
            names=names,
            sex=sex,
            first_name=rng.choice(names.female if female else names.male),
            last_name=names.surname(surname_index, female=female),
            surname_index=surname_index,
            city=rng.choice(region.cities),
            enrolled_day=rng.randrange(FIRST_ENROLMENT_DAY, BASE_DAY),
        )
