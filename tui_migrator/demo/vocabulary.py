"""The pools the demo draws its values from: names, regions and cities, centres, notes,
drugs and schedules, relationships, incident types and e-mail domains.

Everything here is fixed data plus the small pure helpers that build it; drawing from these
pools is :mod:`tui_migrator.demo.generator`'s business. Names, addresses and e-mail domains are
invented (e-mails use reserved ``.example`` domains); the centres are real clinics.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate
from typing import Any


@dataclass(frozen=True)
class City:
    name: str
    region: str
    postcode: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Names:
    female: tuple[str, ...]
    male: tuple[str, ...]
    last: tuple[str, ...]
    # Languages whose surnames inflect by sex (Polish) give the female forms, aligned with last.
    last_female: tuple[str, ...] = ()

    def surname(self, index: int, *, female: bool) -> str:
        return (self.last_female if female and self.last_female else self.last)[index]


@dataclass(frozen=True)
class Region:
    """Where a centre's patients live: cities, streets, phone and address conventions."""

    country: str
    names: str  # key into NAMES for most of its patients
    phone_prefix: str
    address_format: str  # str.format fields: street, number, postcode, city
    streets: tuple[str, ...]
    cities: tuple[City, ...]


NAMES: dict[str, Names] = {
    "de": Names(
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
    "sv": Names(
        female=("Ingrid", "Åsa", "Märta", "Birgitta", "Lena", "Elsa"),
        male=("Björn", "Åke", "Lars", "Göran", "Pär", "Sven"),
        last=("Sjöström", "Åberg", "Lindqvist", "Andersson", "Öberg", "Ekström"),
    ),
    "fr": Names(
        female=("Amélie", "Hélène", "Françoise", "Maëlle", "Noémie", "Zoë"),
        male=("François", "Jérôme", "Gaël", "Benoît", "Loïc", "Jean-Luc"),
        last=("Lefèvre", "Dupont", "Gauthier", "Mercier", "Lemaître", "Béranger", "d'Aubigné"),
    ),
    "nl": Names(
        female=("Anouk", "Fenna", "Ineke", "Zoë", "Sanne", "Geertje"),
        male=("Joost", "Pieter", "Sjoerd", "Thijs", "Bram", "Gerrit"),
        last=("van den Berg", "de Vries", "Jansen", "van 't Hof", "Bakker", "IJzerman"),
    ),
    "en": Names(
        female=("Siobhan", "Margaret", "Zoë", "Eileen", "Priya", "Gwenllian"),
        male=("Nigel", "Graham", "Seán", "Rhys", "Oliver", "Kwame"),
        last=("O'Brien", "Smith", "Featherstonehaugh", "Patel", "Jones-Llewellyn", "Ó Súilleabháin"),
    ),
    "da": Names(
        female=("Åse", "Mette", "Birthe", "Signe", "Sørine"),
        male=("Søren", "Jørgen", "Bjørn", "Mads", "Ebbe"),
        last=("Jørgensen", "Sørensen", "Møller", "Kierkegaard", "Østergaard", "Bæk"),
    ),
    "es": Names(
        female=("Begoña", "Nuria", "Inés", "Mª Ángeles", "Montserrat"),
        male=("José", "Íñigo", "Joaquín", "Martí", "Jesús"),
        last=("Núñez", "Ibáñez", "García-Peña", "Muñoz", "Fernández", "Puig i Soler"),
    ),
    "pl": Names(
        female=("Łucja", "Małgorzata", "Zofia", "Jadwiga", "Agnieszka"),
        male=("Łukasz", "Grzegorz", "Wojciech", "Zbigniew", "Jerzy"),
        last=("Wiśniewski", "Kowalski", "Wójcik", "Lewandowski", "Brzęczyszczykiewicz", "Żółkiewski"),
        last_female=("Wiśniewska", "Kowalska", "Wójcik", "Lewandowska", "Brzęczyszczykiewicz", "Żółkiewska"),
    ),
    "tr": Names(
        female=("Ayşe", "Yağmur", "Şebnem", "Gülşen", "Öznur"),
        male=("Mehmet", "Ömer", "Çağrı", "İsmail", "Doğan"),
        # Some registries keep Turkish surnames upper-case, which brings in Ğ, İ and Ş.
        last=("Yılmaz", "Öztürk", "Çelik", "Şahin", "ÇAĞLAYAN", "AĞAOĞLU"),
    ),
    "it": Names(
        female=("Chiara", "Giuseppina", "Maria Grazia", "Lucrezia", "Noemi"),
        male=("Niccolò", "Giuseppe", "Pasquale", "Andrea", "Ugo"),
        last=("Bianchi", "Rossi", "D'Angelo", "Esposito", "Dell'Acqua", "Caruso"),
    ),
    "zh": Names(
        female=("芳", "静", "秀英", "丽"),
        male=("伟", "强", "磊", "建国"),
        last=("李", "王", "张", "陈", "欧阳"),
    ),
}

REGIONS: dict[str, Region] = {
    "de": Region(
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
            City("Berlin", "Berlin", "10117", 52.52, 13.405),
            City("Potsdam", "Brandenburg", "14467", 52.391, 13.064),
            City("Düsseldorf", "Nordrhein-Westfalen", "40213", 51.227, 6.773),
            City("Köln", "Nordrhein-Westfalen", "50667", 50.938, 6.96),
            City("Tübingen", "Baden-Württemberg", "72070", 48.521, 9.057),
            City("Görlitz", "Sachsen", "02826", 51.153, 14.987),
        ),
    ),
    "sv": Region(
        "Sweden",
        "sv",
        "+46",
        "{street} {number}\n{postcode} {city}",
        ("Drottninggatan", "Sveavägen", "Östra Ågatan", "Götgatan", "Kungsgatan"),
        (
            City("Stockholm", "Stockholms län", "111 20", 59.329, 18.069),
            City("Göteborg", "Västra Götaland", "411 03", 57.709, 11.974),
            City("Malmö", "Skåne", "211 20", 55.605, 13.004),
            City("Umeå", "Västerbotten", "903 25", 63.826, 20.263),
            City("Östersund", "Jämtland", "831 30", 63.179, 14.636),
        ),
    ),
    "fr": Region(
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
            City("Paris", "Île-de-France", "75013", 48.839, 2.365),
            City("Saint-Étienne", "Auvergne-Rhône-Alpes", "42000", 45.44, 4.387),
            City("Besançon", "Bourgogne-Franche-Comté", "25000", 47.238, 6.024),
            City("Nîmes", "Occitanie", "30000", 43.837, 4.36),
            City("Orléans", "Centre-Val de Loire", "45000", 47.903, 1.909),
        ),
    ),
    "nl": Region(
        "Netherlands",
        "nl",
        "+31",
        "{street} {number}\n{postcode} {city}",
        ("Keizersgracht", "Hoogstraat", "Groenewoudseweg", "Sint Annastraat", "Oude Gracht"),
        (
            City("Nijmegen", "Gelderland", "6525 GA", 51.842, 5.852),
            City("Arnhem", "Gelderland", "6811 AA", 51.985, 5.899),
            City("Utrecht", "Utrecht", "3511 AA", 52.091, 5.122),
            City("'s-Hertogenbosch", "Noord-Brabant", "5211 AA", 51.699, 5.304),
            City("Groningen", "Groningen", "9711 AA", 53.219, 6.567),
        ),
    ),
    "en": Region(
        "United Kingdom",
        "en",
        "+44",
        "{number} {street}\n{city}\n{postcode}",
        ("Queen Square", "Gray's Inn Road", "Old Kent Road", "Ffordd yr Afon", "High Street"),
        (
            City("London", "Greater London", "WC1N 3BG", 51.522, -0.122),
            City("Caerdydd / Cardiff", "Wales", "CF10 1AA", 51.481, -3.179),
            City("Edinburgh", "Scotland", "EH1 1YZ", 55.953, -3.188),
            City("Llanfairpwllgwyngyll", "Wales", "LL61 5UJ", 53.221, -4.207),
            City("Belfast", "Northern Ireland", "BT1 5GS", 54.597, -5.93),
        ),
    ),
    "da": Region(
        "Denmark",
        "da",
        "+45",
        "{street} {number}, {postcode} {city}",
        ("Strøget", "Nørrebrogade", "Vestergade", "Smedegade", "Østerbrogade"),
        (
            City("København", "Hovedstaden", "2100", 55.676, 12.568),
            City("Ærøskøbing", "Syddanmark", "5970", 54.888, 10.411),
            City("Aarhus", "Midtjylland", "8000", 56.163, 10.204),
            City("Odense", "Syddanmark", "5000", 55.404, 10.388),
            City("Aalborg", "Nordjylland", "9000", 57.048, 9.919),
        ),
    ),
    "es": Region(
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
            City("Barcelona", "Cataluña", "08025", 41.413, 2.174),
            City("Madrid", "Comunidad de Madrid", "28014", 40.416, -3.703),
            City("A Coruña", "Galicia", "15001", 43.362, -8.411),
            City("Cádiz", "Andalucía", "11001", 36.527, -6.288),
            City("Donostia / San Sebastián", "País Vasco", "20003", 43.318, -1.981),
        ),
    ),
    "pl": Region(
        "Poland",
        "pl",
        "+48",
        "{street} {number}\n{postcode} {city}",
        ("ul. Długa", "ul. Świętokrzyska", "al. Jerozolimskie", "ul. Żeromskiego", "ul. Piękna"),
        (
            City("Gdańsk", "pomorskie", "80-952", 54.352, 18.646),
            City("Łódź", "łódzkie", "90-001", 51.759, 19.456),
            City("Kraków", "małopolskie", "31-001", 50.065, 19.945),
            City("Wrocław", "dolnośląskie", "50-001", 51.108, 17.039),
            City("Szczebrzeszyn", "lubelskie", "22-460", 50.695, 22.979),
        ),
    ),
    "tr": Region(
        "Türkiye",
        "tr",
        "+90",
        "{street} No: {number}\n{postcode} {city}",
        ("Atatürk Caddesi", "İstiklal Caddesi", "Bağdat Caddesi", "Gül Sokak"),
        (
            City("İstanbul", "Marmara", "34098", 41.008, 28.978),
            City("İzmir", "Ege", "35210", 38.423, 27.142),
            City("Muğla", "Ege", "48000", 37.215, 28.363),
            City("Ağrı", "Doğu Anadolu", "04100", 39.72, 43.051),
            City("Iğdır", "Doğu Anadolu", "76000", 39.92, 44.045),
        ),
    ),
    "it": Region(
        "Italy",
        "it",
        "+39",
        "{street} {number}, {postcode} {city}",
        ("Via Celoria", "Corso Buenos Aires", "Piazza del Duomo", "Via dell'Università"),
        (
            City("Milano", "Lombardia", "20133", 45.478, 9.232),
            City("Forlì", "Emilia-Romagna", "47121", 44.222, 12.041),
            City("Cefalù", "Sicilia", "90015", 38.039, 14.023),
            City("Napoli", "Campania", "80138", 40.852, 14.268),
        ),
    ),
}

# (id, name, region) of real European movement-disorder centres, used in this order; more
# organizations than these get generated names.
CENTRES: tuple[tuple[str, str, str], ...] = (
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
MAIL_DOMAINS = ("mail.example", "post.example", "inbox.example", "web.example", "example.org")


def thresholds(*probabilities: float) -> tuple[float, ...]:
    """Bisect boundaries for drawing outcome i with probabilities[i] from one random().

    The last boundary is left out, so rounding in the running sum can never yield an index
    past the end.
    """
    return tuple(accumulate(probabilities))[:-1]


SEXES = ("female", "male", "diverse")
SEX_THRESHOLDS = thresholds(0.4, 0.59, 0.01)  # PD is about 1.5 times as common in men
RELATIONSHIPS = (
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
FAMILY = frozenset({"spouse", "daughter", "son", "sibling"})
FEMALE_RELATIONS = {"daughter": True, "son": False}
INCIDENT_TYPES = ("fall", "freezing episode", "choking", "medication error", "wandering")
INCIDENT_THRESHOLDS = thresholds(0.5, 0.2, 0.1, 0.12, 0.08)
DIARY_STATES = ("on", "on", "off", "on with dyskinesia", "asleep")

DEMOGRAPHIC_NOTES = (
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
GAIT_NOTES = (
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
NON_MOTOR_NOTES = (
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
AUTONOMIC_NOTES = (
    "Dizziness on standing, worse after meals.",
    "Kompressionsstrümpfe verordnet.",
    "Orthostatic hypotension; increase fluids to 2 L/day.",
    "Nykturie 2–3×/Nacht.",
    "Sialorrhoe am Abend.",
    "Pollakiurie; urologisches Konsil angefragt.",
    "Svimmel ved opstigning om morgenen.",
    "Constipation improved with macrogol.\nContinue daily.",
)
DAILY_NOTES = (
    "Needs help buttoning shirts.",
    "Kocht noch selbst, braucht aber länger.",
    "Handwriting smaller (micrographia) ✍️",
    "Fährt seit 2022 kein Auto mehr.",
    "Garden work in the morning when „ON“.",
    "Dressing takes 45 min.\nShower chair installed.",
    "Fait ses courses seule, avec un déambulateur.",
    "Gaat dagelijks fietsen op de hometrainer.",
)
ENVIRONMENT_NOTES = (
    "Worked 30 years in vineyards (Weinbau), sprayed paraquat.",
    "Grew up on a farm near Ærøskøbing.",
    "Private well until 1985.",
    "Industrial area nearby (Stahlwerk, 800 m).",
    "Lives next to a golf course ⛳",
    'Occupation: "Landwirt" (retired).',
    "Exposure to trichloroethylene as a dry cleaner.",
    "Rice farming family in Zhejiang (浙江) before 1990.",
)
# Crops grown near a rural residence (two are drawn), each named in its own language.
CROPS = ("Weizen", "vin", "maïs", "äpplen", "hops", "ryż")
INCIDENT_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
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
PRESCRIBERS = (
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
DEVICES = ("Omron M3 – Oberarm", "Boso medicus", "Tensiomètre Microlife", "手动血压计")
DIARY_COMMENTS = ("müde", "Zittern ↑", "bien", "yorgun", "sömnig", "good walk 🌳")


@dataclass(frozen=True)
class _Drug:
    name: str
    doses: tuple[Decimal, ...]
    # Levodopa-equivalent mg per mg of daily dose, roughly after Tomlinson et al. (2010);
    # good enough for a demo, not for treatment.
    led_factor: float
    schedules: tuple[int, ...]  # indices into SCHEDULES that suit the drug


def _decimals(*values: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(value) for value in values)


# Shared, read-only schedule objects: they are only serialised, never changed.
SCHEDULES: tuple[dict[str, Any], ...] = (
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
DRUGS: tuple[_Drug, ...] = (
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
DRUG_THRESHOLDS = thresholds(0.34, 0.08, 0.14, 0.1, 0.1, 0.04, 0.07, 0.05, 0.05, 0.03)


def _ascii(name: str) -> str:
    """A lower-case ASCII spelling of a name for e-mail addresses."""
    if name in _ASCII_SPELLINGS:
        return _ASCII_SPELLINGS[name]
    decomposed = unicodedata.normalize("NFKD", name.translate(_ASCII_LETTERS))
    return "".join(ch for ch in decomposed if (ch.isascii() and ch.isalnum()) or ch == "-").lower()


# The ASCII spelling of every name in NAMES, for the local part of e-mail addresses.
ASCII_NAMES: dict[str, str] = {
    name: _ascii(name)
    for names in NAMES.values()
    for name in (*names.female, *names.male, *names.last, *names.last_female)
}
