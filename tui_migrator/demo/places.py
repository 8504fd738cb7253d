"""Where the demo's patients live and are treated: regions with their cities, streets, phone
and address conventions, and the real European movement-disorder centres the organizations
are named after. Fixed data: drawing from it is the generator's business."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class City:
    name: str
    region: str
    postcode: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Region:
    """Where a centre's patients live: cities, streets, phone and address conventions."""

    country: str
    names: str  # key into NAMES for most of its patients
    phone_prefix: str
    address_format: str  # str.format fields: street, number, postcode, city
    streets: tuple[str, ...]
    cities: tuple[City, ...]


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
