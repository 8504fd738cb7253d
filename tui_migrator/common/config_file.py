"""A MigrationConfig file (``--config FILE``, the TUI's "load configuration"): JSON or TOML holding
the seed's camelCase keys, every one optional.

A file is held to its own types: ``"500"`` is not a number and ``1`` is not true there, although a
command line, where everything is text, gives ``--batch-size 500``. Ranges, defaults and allowed
values stay MigrationConfig's alone: each value whose type is right is checked by the model's own
validators. Every problem of a file is reported at once, one line each, naming the file (and the
line, where the key is found) and the key.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import ValidationError

from tui_migrator.common.errors import InvalidMigrationConfig
from tui_migrator.common.migration_config import MigrationConfig

# The syntax of a file, by its extension.
FORMATS = {".json": "JSON", ".toml": "TOML"}
# The file's keys (the seed's camelCase names) → MigrationConfig's field names.
FILE_KEYS = {str(field.alias): name for name, field in MigrationConfig.model_fields.items()}

# tomllib (Python 3.11) puts the position in its message only: "Invalid value (at line 1, column 5)".
_TOML_POSITION = re.compile(r"^(?P<what>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")


@dataclass(frozen=True)
class _Problem:
    key: str  # as the file spells it, with an index for a list item: dataCategories[1]
    text: str


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings ``path`` sets, validated, by MigrationConfig field name (keys it leaves out are
    absent, so whoever merges it with options applies the model's defaults). Raises
    :class:`InvalidMigrationConfig` naming the file and every problem in it."""
    syntax = FORMATS.get(path.suffix.lower())
    if syntax is None:
        raise InvalidMigrationConfig(
            f"{path}: a configuration file must be JSON or TOML, named by its extension "
            f"({' or '.join(FORMATS)}); '{path.suffix or path.name}' is neither.",
            hint="Give a .json or .toml file holding MigrationConfig keys.",
        )
    document = _parse(path, syntax, _read_text(path))
    present, problems = _typed_values(document)
    config_values, range_problems = _validated(present)
    problems += range_problems
    if problems:
        raise InvalidMigrationConfig(_problem_lines(path, document.text, syntax, problems), hint=_HINT)
    return config_values


def read_config_object(settings: Any, source: str) -> dict[str, Any]:
    """:func:`read_config_file` for a configuration already parsed from JSON (an HTTP request's
    body): the same keys, types and checks, every problem at once, ``source`` naming where it
    came from ("the request body"). Returns the settings it sets, by field name."""
    if not isinstance(settings, dict):
        raise InvalidMigrationConfig(
            f'{source} must be one object of settings ({{"batchSize": 500, ...}}), not {_value_words(settings)}.',
            hint=f"Its keys are {', '.join(FILE_KEYS)} (each optional).",
        )
    present, problems = _typed_values(_Document("", settings))
    config_values, range_problems = _validated(present)
    problems += range_problems
    if problems:
        count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
        raise InvalidMigrationConfig(
            f"{source[:1].upper()}{source[1:]} has {count}: "
            + "; ".join(f"{problem.key}: {problem.text.rstrip('.')}" for problem in problems)
            + ".",
            hint=f"Nothing was done. Its keys are {', '.join(FILE_KEYS)} (each optional).",
        )
    return config_values


_HINT = (
    f"Nothing was written. Fix the file and run again; its keys are {', '.join(FILE_KEYS)} (each optional)."
)


@dataclass(frozen=True)
class _Document:
    text: str
    settings: dict[str, Any]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidMigrationConfig(
            f"The configuration file {path} does not exist.",
            hint="Check the path: a relative one starts from the current directory.",
        ) from None
    except IsADirectoryError:
        raise InvalidMigrationConfig(
            f"The configuration file {path} is a directory.", hint="Give the path of a .json or .toml file."
        ) from None
    except UnicodeDecodeError as error:
        raise InvalidMigrationConfig(
            f"The configuration file {path} is not UTF-8 text (byte {error.start}).",
            hint="Save it as UTF-8.",
        ) from None
    except OSError as error:
        raise InvalidMigrationConfig(
            f"The configuration file {path} cannot be read: {error.strerror or error}.",
            hint="Check that it exists and that you may read it.",
        ) from None


def _parse(path: Path, syntax: str, text: str) -> _Document:
    try:
        settings = (
            json.loads(text, object_pairs_hook=_refuse_repeated_keys)
            if syntax == "JSON"
            else tomllib.loads(text)
        )
    except json.JSONDecodeError as error:
        raise _syntax_error(path, syntax, error.msg, error.lineno, error.colno) from None
    except tomllib.TOMLDecodeError as error:
        position = _TOML_POSITION.match(str(error))
        if position is None:
            raise _syntax_error(path, syntax, str(error), None, None) from None
        raise _syntax_error(
            path, syntax, position["what"], int(position["line"]), int(position["column"])
        ) from None
    except _RepeatedKey as repeated:
        raise InvalidMigrationConfig(
            f"{path}: the key {repeated.key} is given twice.", hint="Keep one of them."
        ) from None
    if not isinstance(settings, dict):
        raise InvalidMigrationConfig(
            f'{path}: the file must hold one object of settings ({{"batchSize": 500, ...}}), '
            f"not {_value_words(settings)}.",
            hint=f"Its keys are {', '.join(FILE_KEYS)} (each optional).",
        )
    return _Document(text, settings)


def _syntax_error(
    path: Path, syntax: str, what: str, line: int | None, column: int | None
) -> InvalidMigrationConfig:
    where = f" at line {line}, column {column}" if line is not None else ""
    return InvalidMigrationConfig(
        f"{path}: not valid {syntax}{where}: {what}.",
        hint="Fix the syntax there; nothing was written.",
    )


class _RepeatedKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON allows a key twice and keeps the last: in a configuration that hides a mistake.
    (TOML refuses a repeated key itself.)"""
    settings: dict[str, Any] = {}
    for key, value in pairs:
        if key in settings:
            raise _RepeatedKey(key)
        settings[key] = value
    return settings


# -- keys and types ------------------------------------------------------------------------


def _typed_values(document: _Document) -> tuple[dict[str, Any], list[_Problem]]:
    """The settings whose key is known and whose value has the field's type; the others' problems."""
    present: dict[str, Any] = {}
    problems: list[_Problem] = []
    for key, value in document.settings.items():
        if key not in FILE_KEYS:
            problems.append(_Problem(key, _unknown_key_text(key)))
            continue
        annotation = MigrationConfig.model_fields[FILE_KEYS[key]].annotation
        found = _type_problems(key, annotation, value)
        if found:
            problems += found
        else:
            present[key] = value
    return present, problems


def _unknown_key_text(key: str) -> str:
    """Unknown, with the key most likely meant: the same letters (batch_size, BatchSize), else
    the closest spelling."""
    squashed = {name.lower(): name for name in FILE_KEYS}
    guess = squashed.get(key.replace("_", "").replace("-", "").lower())
    if guess is None:
        close = difflib.get_close_matches(key, list(FILE_KEYS), n=1, cutoff=0.6)
        guess = close[0] if close else None
    if guess is not None:
        return f"not a MigrationConfig key; did you mean {guess}?"
    return f"not a MigrationConfig key; the keys are {', '.join(FILE_KEYS)}."


def _type_problems(key: str, annotation: Any, value: Any) -> list[_Problem]:
    if get_origin(annotation) is list:
        if not isinstance(value, list):
            return [_Problem(key, _wrong_type_text(annotation, value))]
        (item_type,) = get_args(annotation)
        return [
            _Problem(f"{key}[{index}]", _wrong_type_text(item_type, item))
            for index, item in enumerate(value)
            if not _has_type(item_type, item)
        ]
    return [] if _has_type(annotation, value) else [_Problem(key, _wrong_type_text(annotation, value))]


def _has_type(annotation: Any, value: Any) -> bool:
    """Whether ``value``, as the file holds it, has a MigrationConfig field's type, strictly."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_has_type(option, value) for option in get_args(annotation))
    if origin is list:
        return isinstance(value, list) and all(_has_type(get_args(annotation)[0], item) for item in value)
    if origin is Literal:
        return any(type(value) is type(allowed) and value == allowed for allowed in get_args(annotation))
    if annotation is type(None):
        # null: the setting left unset (TOML has no null, JSON and a request body do).
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type) and issubclass(annotation, str):
        # str and the categories' StrEnum: which names are allowed is the model's to say.
        return isinstance(value, str)
    raise TypeError(f"A configuration file cannot hold a value of type {annotation!r}.")


def _wrong_type_text(annotation: Any, value: Any) -> str:
    text = f"must be {_type_words(annotation)}, not {_value_words(value)}"
    fix = _type_fix(annotation, value)
    return f"{text}; {fix}." if fix else f"{text}."


def _type_words(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return " or ".join(_type_words(option) for option in get_args(annotation))
    if origin is Literal:
        return " or ".join(json.dumps(allowed) for allowed in get_args(annotation))
    if origin is list:
        return f"a list of {_type_words(get_args(annotation)[0]).removeprefix('a ')}s, in [ ]"
    if annotation is type(None):
        return "null"
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "a whole number"
    return "a string"


def _value_words(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a group of settings"
    return f"the {type(value).__name__} {value}"


def _type_fix(annotation: Any, value: Any) -> str | None:
    """How to write what was most likely meant, when it is plain: 500 rather than "500"."""
    if isinstance(value, str) and _has_type(annotation, _number(value)):
        return f"write {value.strip()} without quotes"
    if isinstance(value, str) and value.strip().lower() in ("true", "false") and _has_type(annotation, True):
        return f"write {value.strip().lower()} without quotes"
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value in (0, 1)
        and _has_type(annotation, True)
    ):
        return f"write {'true' if value else 'false'}"
    if not isinstance(value, list) and get_origin(annotation) is list and _has_type(annotation, [value]):
        return f"write it in brackets: [{json.dumps(value, ensure_ascii=False)}]"
    return None


def _number(text: str) -> int | None:
    stripped = text.strip()
    return int(stripped) if re.fullmatch(r"-?\d+", stripped) else None


# -- values --------------------------------------------------------------------------------


def _validated(present: dict[str, Any]) -> tuple[dict[str, Any], list[_Problem]]:
    """The values by field name, each checked by MigrationConfig's validators (ranges, names)."""
    try:
        config = MigrationConfig.model_validate(present)
    except ValidationError as error:
        problems = [
            _Problem(
                ".".join(str(part) for part in detail["loc"]),
                str(detail["msg"]).removeprefix("Value error, ") + ".",
            )
            for detail in error.errors()
        ]
        return {}, problems
    dumped = config.model_dump(mode="json")
    return {FILE_KEYS[key]: dumped[FILE_KEYS[key]] for key in present}, []


def _problem_lines(path: Path, text: str, syntax: str, problems: list[_Problem]) -> str:
    line_of = _key_line_finder(text, syntax)
    located = [(line_of(problem.key.split("[")[0]), problem) for problem in problems]
    # In the file's order; a problem whose line cannot be told comes last.
    located.sort(key=lambda item: item[0] if item[0] is not None else len(text))
    lines = [
        f"{path if line is None else f'{path}:{line}'}: {problem.key}: {problem.text}"
        for line, problem in located
    ]
    count = "1 problem" if len(lines) == 1 else f"{len(lines)} problems"
    return f"The configuration file {path} has {count}:\n" + "\n".join(f"  {line}" for line in lines)


def _key_line_finder(text: str, syntax: str) -> Callable[[str], int | None]:
    """The line a key is set on, for pointing at it (None where it cannot be told)."""

    def line_of(key: str) -> int | None:
        quoted = re.escape(json.dumps(key))
        if syntax == "JSON":
            pattern = rf"{quoted}\s*:"
        else:
            bare = re.escape(key)
            pattern = rf"^[ \t]*(?:{bare}|{quoted}|'{bare}')[ \t]*="
        found = re.search(pattern, text, flags=re.MULTILINE)
        return None if found is None else text.count("\n", 0, found.start()) + 1

    return line_of
