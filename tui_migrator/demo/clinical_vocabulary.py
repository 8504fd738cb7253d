"""The clinical vocabulary of the demo: free-text notes per table, incident types and their
descriptions, diary states and comments, measuring devices, crops near rural homes,
prescribers, and the drugs with their doses, levodopa-equivalent factors and schedules.

The texts deliberately mix languages, scripts, emoji, quotes and line-breaking characters, so
an encryption round trip is exercised on what breaks naive code. Fixed data: drawing from it
is the generator's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tui_migrator.demo.probabilities import thresholds

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
