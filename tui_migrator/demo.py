"""A deterministic, synthetic ParkML dataset for demos, tests and benchmarks.

ParkML is a research platform for Parkinson's disease; its records fall into nine data
categories (see :mod:`tui_migrator.categories`). This module builds one table per category,
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
"""

from __future__ import annotations

import logging
import random
import time
import unicodedata
import uuid
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from itertools import accumulate
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tui_migrator.categories import DataCategory
from tui_migrator.errors import BadInput

log = logging.getLogger(__name__)

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

# -- tables ----------------------------------------------------------------------------------

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


# -- reference data --------------------------------------------------------------------------


@dataclass(frozen=True)
class _City:
    name: str
    region: str
    postcode: str
    lat: float
    lon: float


@dataclass(frozen=True)
class _Names:
    female: tuple[str, ...]
    male: tuple[str, ...]
    last: tuple[str, ...]
    # Languages whose surnames inflect by sex (Polish) give the female forms, aligned with last.
    last_female: tuple[str, ...] = ()

    def surname(self, index: int, *, female: bool) -> str:
        return (self.last_female if female and self.last_female else self.last)[index]


@dataclass(frozen=True)
class _Region:
    """Where a centre's patients live: cities, streets, phone and address conventions."""

    country: str
    names: str  # key into _NAMES for most of its patients
    phone_prefix: str
    address_format: str  # str.format fields: street, number, postcode, city
    streets: tuple[str, ...]
    cities: tuple[_City, ...]


_NAMES: dict[str, _Names] = {
    "de": _Names(
        female=("Anna", "Ursula", "Gisela", "Käthe", "Renate", "Hannelore", "Zoë", "Jördis"),
        male=("Jürgen", "Klaus", "Günther", "Hans-Peter", "Uwe", "Wolfgang", "Jörg", "Björn"),
        last=(
            "Müller",
            "Schmidt",
            "Weiß",
            "Groß",
            "Köhler",
            "Schäfer",
            "Meyer-Lüdenscheidt",
            "Fuß",
            "Bäcker",
            "Hoffmann",
        ),
    ),
    "sv": _Names(
        female=("Ingrid", "Åsa", "Märta", "Birgitta", "Lena", "Elsa"),
        male=("Björn", "Åke", "Lars", "Göran", "Pär", "Sven"),
        last=("Sjöström", "Åberg", "Lindqvist", "Andersson", "Öberg", "Ekström"),
    ),
    "fr": _Names(
        female=("Amélie", "Hélène", "Françoise", "Maëlle", "Noémie", "Zoë"),
        male=("François", "Jérôme", "Gaël", "Benoît", "Loïc", "Jean-Luc"),
        last=("Lefèvre", "Dupont", "Gauthier", "Mercier", "Lemaître", "Béranger", "d'Aubigné"),
    ),
    "nl": _Names(
        female=("Anouk", "Fenna", "Ineke", "Zoë", "Sanne", "Geertje"),
        male=("Joost", "Pieter", "Sjoerd", "Thijs", "Bram", "Gerrit"),
        last=("van den Berg", "de Vries", "Jansen", "van 't Hof", "Bakker", "IJzerman"),
    ),
    "en": _Names(
        female=("Siobhan", "Margaret", "Zoë", "Eileen", "Priya", "Gwenllian"),
        male=("Nigel", "Graham", "Seán", "Rhys", "Oliver", "Kwame"),
        last=("O'Brien", "Smith", "Featherstonehaugh", "Patel", "Jones-Llewellyn", "Ó Súilleabháin"),
    ),
    "da": _Names(
        female=("Åse", "Mette", "Birthe", "Signe", "Sørine"),
        male=("Søren", "Jørgen", "Bjørn", "Mads", "Ebbe"),
        last=("Jørgensen", "Sørensen", "Møller", "Kierkegaard", "Østergaard", "Bæk"),
    ),
    "es": _Names(
        female=("Begoña", "Nuria", "Inés", "Mª Ángeles", "Montserrat"),
        male=("José", "Íñigo", "Joaquín", "Martí", "Jesús"),
        last=("Núñez", "Ibáñez", "García-Peña", "Muñoz", "Fernández", "Puig i Soler"),
    ),
    "pl": _Names(
        female=("Łucja", "Małgorzata", "Zofia", "Jadwiga", "Agnieszka"),
        male=("Łukasz", "Grzegorz", "Wojciech", "Zbigniew", "Jerzy"),
        last=("Wiśniewski", "Kowalski", "Wójcik", "Lewandowski", "Brzęczyszczykiewicz", "Żółkiewski"),
        last_female=("Wiśniewska", "Kowalska", "Wójcik", "Lewandowska", "Brzęczyszczykiewicz", "Żółkiewska"),
    ),
    "tr": _Names(
        female=("Ayşe", "Yağmur", "Şebnem", "Gülşen", "Öznur"),
        male=("Mehmet", "Ömer", "Çağrı", "İsmail", "Doğan"),
        # Some registries keep Turkish surnames upper-case, which brings in Ğ, İ and Ş.
        last=("Yılmaz", "Öztürk", "Çelik", "Şahin", "ÇAĞLAYAN", "AĞAOĞLU"),
    ),
    "it": _Names(
        female=("Chiara", "Giuseppina", "Maria Grazia", "Lucrezia", "Noemi"),
        male=("Niccolò", "Giuseppe", "Pasquale", "Andrea", "Ugo"),
        last=("Bianchi", "Rossi", "D'Angelo", "Esposito", "Dell'Acqua", "Caruso"),
    ),
    "zh": _Names(
        female=("芳", "静", "秀英", "丽"),
        male=("伟", "强", "磊", "建国"),
        last=("李", "王", "张", "陈", "欧阳"),
    ),
}

_REGIONS: dict[str, _Region] = {
    "de": _Region(
        "Germany",
        "de",
        "+49",
        "{street} {number}, {postcode} {city}",
        (
            "Friedrichstraße",
            "Karl-Marx-Allee",
            "Am Großen Wannsee",
            "Schönhauser Allee",
            "Königsweg",
            "Mühlenstraße",
        ),
        (
            _City("Berlin", "Berlin", "10117", 52.52, 13.405),
            _City("Potsdam", "Brandenburg", "14467", 52.391, 13.064),
            _City("Düsseldorf", "Nordrhein-Westfalen", "40213", 51.227, 6.773),
            _City("Köln", "Nordrhein-Westfalen", "50667", 50.938, 6.96),
            _City("Tübingen", "Baden-Württemberg", "72070", 48.521, 9.057),
            _City("Görlitz", "Sachsen", "02826", 51.153, 14.987),
        ),
    ),
    "sv": _Region(
        "Sweden",
        "sv",
        "+46",
        "{street} {number}\n{postcode} {city}",
        ("Drottninggatan", "Sveavägen", "Östra Ågatan", "Götgatan", "Kungsgatan"),
        (
            _City("Stockholm", "Stockholms län", "111 20", 59.329, 18.069),
            _City("Göteborg", "Västra Götaland", "411 03", 57.709, 11.974),
            _City("Malmö", "Skåne", "211 20", 55.605, 13.004),
            _City("Umeå", "Västerbotten", "903 25", 63.826, 20.263),
            _City("Östersund", "Jämtland", "831 30", 63.179, 14.636),
        ),
    ),
    "fr": _Region(
        "France",
        "fr",
        "+33",
        "{number} {street}, {postcode} {city}",
        (
            "rue Mouffetard",
            "boulevard de l'Hôpital",
            "avenue des Champs-Élysées",
            "rue du Faubourg Saint-Honoré",
            "quai d'Orsay",
        ),
        (
            _City("Paris", "Île-de-France", "75013", 48.839, 2.365),
            _City("Saint-Étienne", "Auvergne-Rhône-Alpes", "42000", 45.44, 4.387),
            _City("Besançon", "Bourgogne-Franche-Comté", "25000", 47.238, 6.024),
            _City("Nîmes", "Occitanie", "30000", 43.837, 4.36),
            _City("Orléans", "Centre-Val de Loire", "45000", 47.903, 1.909),
        ),
    ),
    "nl": _Region(
        "Netherlands",
        "nl",
        "+31",
        "{street} {number}\n{postcode} {city}",
        ("Keizersgracht", "Hoogstraat", "Groenewoudseweg", "Sint Annastraat", "Oude Gracht"),
        (
            _City("Nijmegen", "Gelderland", "6525 GA", 51.842, 5.852),
            _City("Arnhem", "Gelderland", "6811 AA", 51.985, 5.899),
            _City("Utrecht", "Utrecht", "3511 AA", 52.091, 5.122),
            _City("'s-Hertogenbosch", "Noord-Brabant", "5211 AA", 51.699, 5.304),
            _City("Groningen", "Groningen", "9711 AA", 53.219, 6.567),
        ),
    ),
    "en": _Region(
        "United Kingdom",
        "en",
        "+44",
        "{number} {street}\n{city}\n{postcode}",
        ("Queen Square", "Gray's Inn Road", "Old Kent Road", "Ffordd yr Afon", "High Street"),
        (
            _City("London", "Greater London", "WC1N 3BG", 51.522, -0.122),
            _City("Caerdydd / Cardiff", "Wales", "CF10 1AA", 51.481, -3.179),
            _City("Edinburgh", "Scotland", "EH1 1YZ", 55.953, -3.188),
            _City("Llanfairpwllgwyngyll", "Wales", "LL61 5UJ", 53.221, -4.207),
            _City("Belfast", "Northern Ireland", "BT1 5GS", 54.597, -5.93),
        ),
    ),
    "da": _Region(
        "Denmark",
        "da",
        "+45",
        "{street} {number}, {postcode} {city}",
        ("Strøget", "Nørrebrogade", "Vestergade", "Smedegade", "Østerbrogade"),
        (
            _City("København", "Hovedstaden", "2100", 55.676, 12.568),
            _City("Ærøskøbing", "Syddanmark", "5970", 54.888, 10.411),
            _City("Aarhus", "Midtjylland", "8000", 56.163, 10.204),
            _City("Odense", "Syddanmark", "5000", 55.404, 10.388),
            _City("Aalborg", "Nordjylland", "9000", 57.048, 9.919),
        ),
    ),
    "es": _Region(
        "Spain",
        "es",
        "+34",
        "{street}, {number}\n{postcode} {city}",
        (
            "Carrer de Sant Antoni Maria Claret",
            "Calle de Alcalá",
            "Passeig de Gràcia",
            "Avenida de la Constitución",
            "Rúa do Vilar",
        ),
        (
            _City("Barcelona", "Cataluña", "08025", 41.413, 2.174),
            _City("Madrid", "Comunidad de Madrid", "28014", 40.416, -3.703),
            _City("A Coruña", "Galicia", "15001", 43.362, -8.411),
            _City("Cádiz", "Andalucía", "11001", 36.527, -6.288),
            _City("Donostia / San Sebastián", "País Vasco", "20003", 43.318, -1.981),
        ),
    ),
    "pl": _Region(
        "Poland",
        "pl",
        "+48",
        "{street} {number}\n{postcode} {city}",
        ("ul. Długa", "ul. Świętokrzyska", "al. Jerozolimskie", "ul. Żeromskiego", "ul. Piękna"),
        (
            _City("Gdańsk", "pomorskie", "80-952", 54.352, 18.646),
            _City("Łódź", "łódzkie", "90-001", 51.759, 19.456),
            _City("Kraków", "małopolskie", "31-001", 50.065, 19.945),
            _City("Wrocław", "dolnośląskie", "50-001", 51.108, 17.039),
            _City("Szczebrzeszyn", "lubelskie", "22-460", 50.695, 22.979),
        ),
    ),
    "tr": _Region(
        "Türkiye",
        "tr",
        "+90",
        "{street} No: {number}\n{postcode} {city}",
        ("Atatürk Caddesi", "İstiklal Caddesi", "Bağdat Caddesi", "Gül Sokak"),
        (
            _City("İstanbul", "Marmara", "34098", 41.008, 28.978),
            _City("İzmir", "Ege", "35210", 38.423, 27.142),
            _City("Muğla", "Ege", "48000", 37.215, 28.363),
            _City("Ağrı", "Doğu Anadolu", "04100", 39.72, 43.051),
            _City("Iğdır", "Doğu Anadolu", "76000", 39.92, 44.045),
        ),
    ),
    "it": _Region(
        "Italy",
        "it",
        "+39",
        "{street} {number}, {postcode} {city}",
        ("Via Celoria", "Corso Buenos Aires", "Piazza del Duomo", "Via dell'Università"),
        (
            _City("Milano", "Lombardia", "20133", 45.478, 9.232),
            _City("Forlì", "Emilia-Romagna", "47121", 44.222, 12.041),
            _City("Cefalù", "Sicilia", "90015", 38.039, 14.023),
            _City("Napoli", "Campania", "80138", 40.852, 14.268),
        ),
    ),
}

# (id, name, region) of real European movement-disorder centres, used in this order; more
# organizations than these get generated names.
_CENTRES: tuple[tuple[str, str, str], ...] = (
    ("org_charite_berlin", "Charité – Universitätsmedizin Berlin", "de"),
    ("org_karolinska_stockholm", "Karolinska Universitetssjukhuset", "sv"),
    ("org_pitie_paris", "Hôpital Pitié-Salpêtrière", "fr"),
    ("org_radboud_nijmegen", "Radboudumc", "nl"),
    ("org_queen_square_london", "National Hospital for Neurology and Neurosurgery, Queen Square", "en"),
    ("org_rigshospitalet_copenhagen", "Rigshospitalet", "da"),
    ("org_santpau_barcelona", "Hospital de la Santa Creu i Sant Pau", "es"),
    ("org_uck_gdansk", "Uniwersyteckie Centrum Kliniczne, Gdańsk", "pl"),
    ("org_cerrahpasa_istanbul", "İstanbul Üniversitesi-Cerrahpaşa Tıp Fakültesi", "tr"),
    ("org_besta_milano", "Fondazione IRCCS Istituto Neurologico Carlo Besta", "it"),
    ("org_hertie_tuebingen", "Hertie-Institut für klinische Hirnforschung, Tübingen", "de"),
)

# Romanisations for names that Unicode decomposition cannot turn into ASCII.
_ASCII_SPELLINGS = {
    "芳": "fang",
    "静": "jing",
    "秀英": "xiuying",
    "丽": "li",
    "伟": "wei",
    "强": "qiang",
    "磊": "lei",
    "建国": "jianguo",
    "李": "li",
    "王": "wang",
    "张": "zhang",
    "陈": "chen",
    "欧阳": "ouyang",
}
_ASCII_LETTERS = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "ı": "i"}
)
_MAIL_DOMAINS = ("mail.example", "post.example", "inbox.example", "web.example", "example.org")


def _thresholds(*probabilities: float) -> tuple[float, ...]:
    """Bisect boundaries for drawing outcome i with probabilities[i] from one random().

    The last boundary is left out, so rounding in the running sum can never yield an index
    past the end.
    """
    return tuple(accumulate(probabilities))[:-1]


_SEXES = ("female", "male", "diverse")
_SEX_THRESHOLDS = _thresholds(0.4, 0.59, 0.01)  # PD is about 1.5 times as common in men
_RELATIONSHIPS = (
    "spouse",
    "partner",
    "daughter",
    "son",
    "sibling",
    "neighbour",
    "friend",
    "legal guardian",
    "carer",
)
_FAMILY = frozenset({"spouse", "daughter", "son", "sibling"})
_FEMALE_RELATIONS = {"daughter": True, "son": False}
_INCIDENT_TYPES = ("fall", "freezing episode", "choking", "medication error", "wandering")
_INCIDENT_THRESHOLDS = _thresholds(0.5, 0.2, 0.1, 0.12, 0.08)
_DIARY_STATES = ("on", "on", "off", "on with dyskinesia", "asleep")

_DEMOGRAPHIC_NOTES = (
    "Prefers to be addressed as „Frau Doktor“.",
    "Hörgerät links – bitte laut und deutlich sprechen.",
    'Says "call my daughter first, not my son".',
    "Interpreter needed: Türkçe.",
    "Needs step-free access ♿",
    "Lives alone since 2021.\nDaughter visits weekly.",
    "Allergie: Penicillin (Exanthem 1998).",
    "Takes part in the PPMI sub-study.",
    "DBS candidate — neuropsychological evaluation pending.",
    "Pacemaker since 2019; no MRI.",
    "Wünscht Kontakt per E-Mail 📧",
    "Legacy import\tfield 7\tunparsed",
    "Imported from C:\\legacy\\parkml_export.csv (row 1184).",
    "Ancienne infirmière ; très bien informée sur la maladie.",
    "Patiënt rijdt nog auto, overleg met CBR lopend.",
)
_GAIT_NOTES = (
    "Shuffling gait, reduced arm swing on the right.",
    "Freezing at doorways; visual cues help.",
    "Festination beim Wenden 🚶",
    "Marche à petits pas, demi-tour en 5 pas.",
    "Går med rollator, kort steglängd.",
    "Stabil, kein Rollator nötig.",
    'Pull test: 3 steps back ("retropulsion").',
    "Kleine Schritte\nArmschwung re. vermindert",
    "Gait unremarkable today.",
    "Postural instability; uses a cane (bastón).",
    "Chód szurający, zamrożenia przy zakrętach.",
)
_NON_MOTOR_NOTES = (
    "Vivid dreams; REM sleep behaviour disorder suspected.",
    "Geruchssinn deutlich vermindert (Hyposmie).",
    "Apathie; Ehefrau: „er sitzt nur noch herum“.",
    "Sömnproblem, vaknar 3–4 gånger per natt.",
    "Anxiety before OFF periods 😟",
    'Hallucinations: sees "people in the garden" at dusk.',
    "患者夜间多梦，白天嗜睡。",
    "Depresja umiarkowana, skierowano do psychiatry.",
    "Pain in the left shoulder, probably dystonic.\nPhysiotherapy twice a week.",
    "Fatigue in the afternoon; naps 1–2 h.",
)
_AUTONOMIC_NOTES = (
    "Dizziness on standing, worse after meals.",
    "Kompressionsstrümpfe verordnet.",
    "Orthostatic hypotension; increase fluids to 2 L/day.",
    "Nykturie 2–3×/Nacht.",
    "Sialorrhoe am Abend.",
    "Pollakiurie; urologisches Konsil angefragt.",
    "Svimmel ved opstigning om morgenen.",
    "Constipation improved with macrogol.\nContinue daily.",
)
_DAILY_NOTES = (
    "Needs help buttoning shirts.",
    "Kocht noch selbst, braucht aber länger.",
    "Handwriting smaller (micrographia) ✍️",
    "Fährt seit 2022 kein Auto mehr.",
    "Garden work in the morning when „ON“.",
    "Dressing takes 45 min.\nShower chair installed.",
    "Fait ses courses seule, avec un déambulateur.",
    "Gaat dagelijks fietsen op de hometrainer.",
)
_ENVIRONMENT_NOTES = (
    "Worked 30 years in vineyards (Weinbau), sprayed paraquat.",
    "Grew up on a farm near Ærøskøbing.",
    "Private well until 1985.",
    "Industrial area nearby (Stahlwerk, 800 m).",
    "Lives next to a golf course ⛳",
    'Occupation: "Landwirt" (retired).',
    "Exposure to trichloroethylene as a dry cleaner.",
    "Rice farming family in Zhejiang (浙江) before 1990.",
)
_INCIDENT_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "fall": (
        "Fell in the bathroom at night, hit head on the sink.",
        "Sturz auf der Treppe; Platzwunde am Knie.",
        "Chute dans la cuisine, sans perte de connaissance.",
        "Föll i trädgården, ingen skada.",
    ),
    "freezing episode": (
        "Froze in a doorway and fell forward onto both hands.",
        "Freezing an der Supermarktkasse 🛒, ca. 2 Minuten.",
        "Bevroor bij het oversteken;\nvoorbijganger hielp.",
    ),
    "choking": (
        "Choked on bread; spouse performed the Heimlich manoeuvre.",
        "Verschlucken bei der Tabletteneinnahme.",
    ),
    "medication error": (
        "Took the evening levodopa dose twice.",
        "Dosis vergessen → ausgeprägte OFF-Phase.",
        'Pharmacy dispensed "Ropinirol 5 mg" instead of 0.5 mg.',
    ),
    "wandering": (
        "Found at 03:00 in the garden, confused.",
        "Left home, found by police 2 km away.",
        "Salió de casa de madrugada; lo encontró un vecino.",
    ),
}
_PRESCRIBERS = (
    "Dr. med. Anna Köhler",
    "Prof. Dr. Jürgen Weiß",
    "Dr. Ingrid Sjöström",
    "Dr Amélie Lefèvre",
    "dr. Joost de Vries",
    "Dr Siobhan O'Neill",
    "dr hab. n. med. Grzegorz Brzęczyszczykiewicz",
    "Dra. Begoña Ibáñez",
    "Doç. Dr. Şebnem Güneş",
    "Dott.ssa Chiara Bianchi",
    "Dr. Søren Østergaard",
    "李明 医生",
)
_DEVICES = ("Omron M3 – Oberarm", "Boso medicus", "Tensiomètre Microlife", "手动血压计")
_DIARY_COMMENTS = ("müde", "Zittern ↑", "bien", "yorgun", "sömnig", "good walk 🌳")


@dataclass(frozen=True)
class _Drug:
    name: str
    doses: tuple[Decimal, ...]
    # Levodopa-equivalent mg per mg of daily dose, roughly after Tomlinson et al. (2010);
    # good enough for a demo, not for treatment.
    led_factor: float
    schedules: tuple[int, ...]  # indices into _SCHEDULES that suit the drug


def _decimals(*values: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(value) for value in values)


# Shared, read-only schedule objects: they are only serialised, never changed.
_SCHEDULES: tuple[dict[str, Any], ...] = (
    {
        "times": ["07:00", "11:00", "15:00", "19:00"],
        "per_day": 4,
        "with_food": False,
        "instructions": "30 Min. vor dem Essen einnehmen",
    },
    {"times": ["08:00"], "per_day": 1, "with_food": True, "instructions": "morgens"},
    {
        "times": ["08:00", "20:00"],
        "per_day": 2,
        "with_food": None,
        "instructions": "matin et soir, pas avec des protéines",
    },
    {
        "times": ["06:30", "09:30", "12:30", "15:30", "18:30"],
        "per_day": 5,
        "with_food": False,
        "on_demand": {"allowed": True, "max_extra_doses": 2, "note": "bei OFF ½ Tablette"},
    },
    {
        "times": ["08:00", "14:00", "20:00"],
        "per_day": 3,
        "with_food": True,
        "instructions": "med mat",
        "titration": [{"week": 1, "mg": 0.26}, {"week": 2, "mg": 0.52}],
    },
    {
        "times": ["08:00"],
        "per_day": 1,
        "patch": True,
        "sites": ["Schulter", "Hüfte", "Bauch"],
        "instructions": "täglich Pflaster wechseln",
    },
)
_DRUGS: tuple[_Drug, ...] = (
    _Drug(
        "levodopa/carbidopa",
        _decimals("50.00", "62.50", "100.00", "125.00", "150.00", "187.50", "250.00"),
        1.0,
        (0, 2, 3, 4),
    ),
    _Drug("levodopa/benserazide", _decimals("62.50", "125.00", "250.00"), 1.0, (0, 3, 4)),
    _Drug("pramipexole", _decimals("0.18", "0.26", "0.52", "1.05", "2.10", "3.15"), 100.0, (1, 4)),
    _Drug("ropinirole", _decimals("0.25", "2.00", "4.00", "8.00", "12.00"), 20.0, (1, 4)),
    _Drug("rasagiline", _decimals("0.50", "1.00"), 100.0, (1,)),
    _Drug("safinamide", _decimals("50.00", "100.00"), 1.0, (1,)),
    _Drug("amantadine", _decimals("100.00", "200.00"), 1.0, (1, 2)),
    _Drug("rotigotine", _decimals("2.00", "4.00", "6.00", "8.00"), 30.0, (5,)),
    _Drug("entacapone", _decimals("200.00"), 0.33, (0, 4)),
    _Drug("opicapone", _decimals("50.00"), 1.0, (1,)),
)
_DRUG_THRESHOLDS = _thresholds(0.34, 0.08, 0.14, 0.1, 0.1, 0.04, 0.07, 0.05, 0.05, 0.03)

# How many rows of a table a patient gets, from the probabilities of 0, 1, 2, ... rows;
# chosen so 2,000 patients give about 17,500 category rows.
_MOTOR_COUNTS = _thresholds(0.0, 0.45, 0.3, 0.25)  # mean 1.8
_NON_MOTOR_COUNTS = _thresholds(0.2, 0.7, 0.1)  # mean 0.9
_AUTONOMIC_COUNTS = _thresholds(0.2, 0.8)  # mean 0.8
_DAILY_COUNTS = _thresholds(0.2, 0.7, 0.1)  # mean 0.9
_MEDICATION_COUNTS = _thresholds(0.15, 0.55, 0.25, 0.05)  # mean 1.2
_CONTACT_COUNTS = _thresholds(0.0, 0.6, 0.4)  # one or two, mean 1.4
_INCIDENT_COUNTS = _thresholds(0.78, 0.15, 0.05, 0.02)  # mean 0.31
_ENVIRONMENT_COUNTS = _thresholds(0.5, 0.5)  # mean 0.5


def _ascii(name: str) -> str:
    """A lower-case ASCII spelling of a name for e-mail addresses."""
    if name in _ASCII_SPELLINGS:
        return _ASCII_SPELLINGS[name]
    decomposed = unicodedata.normalize("NFKD", name.translate(_ASCII_LETTERS))
    return "".join(ch for ch in decomposed if (ch.isascii() and ch.isalnum()) or ch == "-").lower()


_ASCII_NAMES: dict[str, str] = {
    name: _ascii(name)
    for names in _NAMES.values()
    for name in (*names.female, *names.male, *names.last, *names.last_female)
}


# -- generation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Organization:
    id: str
    name: str
    region: _Region


@dataclass(frozen=True)
class _Patient:
    id: int
    organization_id: str
    region: _Region
    names: _Names
    sex: str
    first_name: str
    last_name: str
    surname_index: int  # into names.last, so relatives can share the surname
    city: _City
    enrolled_day: int  # date ordinal


def _organizations(rng: random.Random, count: int) -> list[_Organization]:
    """The real centres first, then generated clinics in random regions."""
    organizations = [
        _Organization(org_id, name, _REGIONS[region]) for org_id, name, region in _CENTRES[:count]
    ]
    regions = list(_REGIONS.values())
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
        self._organization_thresholds = _thresholds(*(weight / total for weight in weights))
        self._name_pools = list(_NAMES.values())
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
        if rng.random() < FOREIGN_NAME_RATE:
            names = rng.choice(self._name_pools)
        else:
            names = _NAMES[region.names]
        sex = _SEXES[bisect(_SEX_THRESHOLDS, rng.random())]
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

    def _phone(self, region: _Region) -> str:
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
            local = f"{_ASCII_NAMES[first_name]}.{_ASCII_NAMES[last_name]}"
            if draw > 0.6:
                local += str(rng.randrange(1, 99))
        return f"{local}@{rng.choice(_MAIL_DOMAINS)}"

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
            "notes": self._text(_DEMOGRAPHIC_NOTES),
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
                "gait_notes": self._text(_GAIT_NOTES),
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
                "notes": self._text(_NON_MOTOR_NOTES),
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
                "device": rng.choice(_DEVICES),
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
                "notes": self._text(_AUTONOMIC_NOTES),
            }

    def _diary(self) -> list[dict[str, Any]]:
        """A day's ON/OFF diary: a few entries from the morning on, some with a comment."""
        rng = self._rng
        hour = rng.randrange(6, 10)
        entries: list[dict[str, Any]] = []
        for _ in range(rng.randrange(3, 7)):
            entry: dict[str, Any] = {"hour": hour, "state": rng.choice(_DIARY_STATES)}
            if rng.random() < 0.2:
                entry["comment"] = rng.choice(_DIARY_COMMENTS)
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
                "notes": self._text(_DAILY_NOTES),
            }

    def _medication_data(self, patient: _Patient) -> Iterator[Row]:
        rng = self._rng
        for _ in range(self._count(_MEDICATION_COUNTS)):
            drug = _DRUGS[bisect(_DRUG_THRESHOLDS, rng.random())]
            dose = rng.choice(drug.doses)
            schedule = _SCHEDULES[rng.choice(drug.schedules)]
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
                "prescriber": self._maybe(rng.choice(_PRESCRIBERS)),
            }

    def _emergency_contacts(self, patient: _Patient) -> Iterator[Row]:
        rng = self._rng
        names = patient.names
        for contact_no in range(1, self._count(_CONTACT_COUNTS) + 1):
            relationship = rng.choice(_RELATIONSHIPS)
            female = _FEMALE_RELATIONS.get(relationship, rng.random() < 0.5)
            first_name = rng.choice(names.female if female else names.male)
            # Family members mostly share the patient's surname (in its male or female form).
            if relationship in _FAMILY and rng.random() < 0.7:
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
            incident_type = _INCIDENT_TYPES[bisect(_INCIDENT_THRESHOLDS, rng.random())]
            yield {
                # uuid4-shaped but drawn from the seeded RNG, so it is reproducible.
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "patient_id": patient.id,
                "organization_id": patient.organization_id,
                "occurred_at": self._maybe(self._timestamp_since(patient.enrolled_day)),
                "incident_type": incident_type,
                "severity": self._maybe(min(5, 1 + int(rng.expovariate(0.9)))),
                "injury": self._maybe(rng.random() < 0.35),
                "description": self._text(_INCIDENT_DESCRIPTIONS[incident_type]),
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
                    "crops": rng.sample(["Weizen", "vin", "maïs", "äpplen", "hops", "ryż"], 2),
                }
            yield {
                "id": self._id("environmental_factors"),
                "patient_id": patient.id,
                "organization_id": patient.organization_id,
                "pesticide_exposure": self._maybe(rng.random() < (0.4 if rural else 0.1)),
                "well_water": self._maybe(rural and rng.random() < 0.5),
                "residence_years": self._maybe(rng.randrange(1, 60)),
                "location": self._maybe(location),
                "notes": self._text(_ENVIRONMENT_NOTES),
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


def _validate(patients: int, organizations: int) -> None:
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
    _validate(patients, organizations)
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
