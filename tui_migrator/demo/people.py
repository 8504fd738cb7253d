"""The people in the demo: first names and surnames per language (with their ASCII spellings
for e-mail addresses), sexes, the relationships of emergency contacts and the e-mail domains.

Names and e-mail domains are invented (e-mails use reserved ``.example`` domains); any
resemblance to a real person is chance. Fixed data: drawing from it is the generator's business.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from tui_migrator.demo.probabilities import thresholds


@dataclass(frozen=True)
class Names:
    female: tuple[str, ...]
    male: tuple[str, ...]
    last: tuple[str, ...]
    # Languages whose surnames inflect by sex (Polish) give the female forms, aligned with last.
    last_female: tuple[str, ...] = ()

    def surname(self, index: int, *, female: bool) -> str:
        return (self.last_female if female and self.last_female else self.last)[index]


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
MAIL_DOMAINS = ("mail.example", "post.example", "inbox.example", "web.example", "example.org")

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
