"""Asking an operator to confirm before a command changes data.

Without a terminal (a script, a pipe, cron) there is nobody to ask, so the command is refused
and ``--yes`` is the only way through: a script never changes data by accident.
"""

from __future__ import annotations

import sys

from tui_migrator.common.errors import BadInput


def confirm(question: str, *, nothing_done: str, type_yes: bool = False) -> None:
    """Return if the operator agrees; else raise :class:`BadInput` (exit code 2).

    ``nothing_done`` says what the refusal left untouched ("nothing was started"). With
    ``type_yes`` the whole word must be typed: for replacing a database, "y" is too easy a slip.
    """
    if not sys.stdin.isatty():
        raise BadInput(f"{question} Refused without confirmation.", hint="Add --yes to confirm.")
    if type_yes:
        agreed = input(f"{question} Type 'yes' to continue: ").strip().lower() == "yes"
    else:
        agreed = input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    if not agreed:
        raise BadInput(f"Not confirmed; {nothing_done}.")
